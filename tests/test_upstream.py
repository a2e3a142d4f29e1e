"""The pooled upstream client against real sockets: raw-bytes upstreams on asyncio.start_server
(and an aiohttp server where a real HTTP parser has to judge what was sent)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import gc
import hashlib
import signal
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web

from corsproxy.http import client, connection, errors, wire
from corsproxy.http.responseparser import ResponseParser
from tests.conftest import free_port

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]

OK = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nContent-Type: text/plain\r\n\r\nfine"
CHUNKED_OK = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nfi\r\n2\r\nne\r\n0\r\n\r\n"


class RawUpstream:
    """An upstream on 127.0.0.1 that runs `script` on every connection it accepts."""

    def __init__(self, script: Script) -> None:
        self.script = script
        self.connections = 0
        self.server: asyncio.base_events.Server | None = None
        self.port = 0
        self._handlers: dict[asyncio.Task, asyncio.StreamWriter] = {}

    async def start(self) -> RawUpstream:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self.server.sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        """Stop listening and end every script (their reads fail once the socket is gone)."""
        self.server.close()
        for writer in self._handlers.values():
            writer.transport.abort()
        await asyncio.gather(*self._handlers, return_exceptions=True)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        task = asyncio.current_task()
        self._handlers[task] = writer
        try:
            await self.script(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            del self._handlers[task]


@pytest.fixture
async def pool() -> AsyncIterator[client.Pool]:
    pool = client.Pool()
    yield pool
    pool.close()


@pytest.fixture
async def raw_upstream() -> AsyncIterator[Callable[[Script], Awaitable[RawUpstream]]]:
    started: list[RawUpstream] = []

    async def start(script: Script) -> RawUpstream:
        started.append(await RawUpstream(script).start())
        return started[-1]

    yield start
    for raw in started:
        await raw.close()


async def fetch(
    pool: client.Pool,
    port: int,
    method: str = "GET",
    *,
    host: str = "127.0.0.1",
    headers: list[tuple[str, str]] | None = None,
    body: aiohttp.StreamReader | None = None,
    body_length: int | None = None,
    timeout: float = 5.0,
    read_timeout: float | None = 5.0,
) -> client.Response:
    head = wire.request_head(method, "/", [("Host", f"{host}:{port}"), *(headers or [])])
    return await pool.request(
        scheme="http",
        host=host,
        port=port,
        verify=True,
        method=method,
        head=head,
        body=body,
        body_length=body_length,
        timeout=timeout,
        read_timeout=read_timeout,
    )


def answering(response: bytes, *, then_close: bool = False) -> Script:
    """Answer every request on the connection with `response` (and close after the first)."""

    async def script(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            await reader.readuntil(b"\r\n\r\n")
            writer.write(response)
            await writer.drain()
            if then_close:
                return

    return script


# Reuse of connections

REUSE_ROWS = [
    # id, method, response, server closes after it, (status, body), connections for 2 requests
    ("Content-Length: reused", "GET", OK, False, (200, b"fine"), 1),
    ("chunked: reused", "GET", CHUNKED_OK, False, (200, b"fine"), 1),
    ("HEAD: no body read, reused", "HEAD", OK[: OK.index(b"fine")], False, (200, b""), 1),
    ("204: reused", "GET", b"HTTP/1.1 204 No Content\r\n\r\n", False, (204, b""), 1),
    (
        "304 with a Content-Length has no body: reused",
        "GET",
        b'HTTP/1.1 304 Not Modified\r\nContent-Length: 4\r\nETag: "x"\r\n\r\n',
        False,
        (304, b""),
        1,
    ),
    (
        "interim 100 and 103 are skipped: reused",
        "GET",
        b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n" + OK,
        False,
        (200, b"fine"),
        1,
    ),
    (
        "HTTP/1.0 with keep-alive: reused",
        "GET",
        b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 4\r\n\r\nfine",
        False,
        (200, b"fine"),
        1,
    ),
    (
        "Connection: close: a new connection, even if the upstream stays open",
        "GET",
        OK.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n"),
        False,
        (200, b"fine"),
        2,
    ),
    (
        "HTTP/1.0 by default: a new connection",
        "GET",
        OK.replace(b"HTTP/1.1", b"HTTP/1.0"),
        False,
        (200, b"fine"),
        2,
    ),
    (
        "body until close: a new connection",
        "GET",
        b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n\r\nfine",
        True,
        (200, b"fine"),
        2,
    ),
    (
        "bytes beyond Content-Length: exactly Content-Length read, not reused",
        "GET",
        OK + b"junk",
        False,
        (200, b"fine"),
        2,
    ),
    (
        "bytes beyond the last chunk: not reused",
        "GET",
        CHUNKED_OK + b"junk",
        False,
        (200, b"fine"),
        2,
    ),
    (
        "chunked and Content-Length: chunked read, not reused",
        "GET",
        CHUNKED_OK.replace(b"\r\n\r\n", b"\r\nContent-Length: 100\r\n\r\n", 1),
        False,
        (200, b"fine"),
        2,
    ),
]


@pytest.mark.parametrize(
    "method,response,then_close,expected,connections",
    [r[1:] for r in REUSE_ROWS],
    ids=[r[0] for r in REUSE_ROWS],
)
async def test_connection_reuse(
    pool, raw_upstream, method, response, then_close, expected, connections
):
    server = await raw_upstream(answering(response, then_close=then_close))
    for _ in range(2):
        resp = await fetch(pool, server.port, method)
        try:
            assert (resp.status, await resp.read()) == expected
        finally:
            resp.release()
    assert server.connections == connections


async def test_a_body_left_unread_closes_the_connection(pool, raw_upstream):
    """release() before the body's end: the rest is still on its way, so no reuse."""
    server = await raw_upstream(answering(OK.replace(b"4", b"8") + b"fine"))
    resp = await fetch(pool, server.port)
    resp.release()
    resp = await fetch(pool, server.port)
    try:
        assert await resp.read() == b"finefine"
    finally:
        resp.release()
    assert server.connections == 2


RESPONSE_ROWS = [
    # id, response, (status, reason, headers, length), body
    (
        "Content-Length",
        OK,
        (200, "OK", [("Content-Length", "4"), ("Content-Type", "text/plain")], 4),
        b"fine",
    ),
    ("chunked", CHUNKED_OK, (200, "OK", [("Transfer-Encoding", "chunked")], None), b"fine"),
    (
        "raw header list kept: duplicates, case; bytes that are not UTF-8 read as Latin-1",
        b"HTTP/1.1 201 Cr\xe9\xe9\r\nset-cookie: a=1\r\nSet-Cookie: b=2\r\n"
        b"X-Name: caf\xe9\r\nContent-Length: 0\r\n\r\n",
        (
            201,
            "Créé",
            [
                ("set-cookie", "a=1"),
                ("Set-Cookie", "b=2"),
                ("X-Name", "café"),
                ("Content-Length", "0"),
            ],
            0,
        ),
        b"",
    ),
]


@pytest.mark.parametrize(
    "response,expected,body", [r[1:] for r in RESPONSE_ROWS], ids=[r[0] for r in RESPONSE_ROWS]
)
async def test_response_head_and_body(pool, raw_upstream, response, expected, body):
    server = await raw_upstream(answering(response))
    resp = await fetch(pool, server.port)
    try:
        assert (resp.status, resp.reason, resp.headers, resp.length) == expected
        assert await resp.read() == body
    finally:
        resp.release()


async def test_the_request_head_arrives_as_given(pool, raw_upstream):
    received: list[bytes] = []

    async def record(reader, writer):
        received.append(await reader.readuntil(b"\r\n\r\n"))
        writer.write(OK)
        await writer.drain()

    server = await raw_upstream(record)
    resp = await fetch(
        pool, server.port, headers=[("X-Name", b"caf\xe9".decode("utf-8", "surrogateescape"))]
    )
    resp.release()
    assert received == [
        b"GET / HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nX-Name: caf\xe9\r\n\r\n" % server.port
    ]


# An upstream that closes idle keep-alive connections


async def close_after_one(reader, writer):
    """Serve one request, then close the connection while it idles in the pool."""
    await answering(OK, then_close=True)(reader, writer)


async def close_on_the_next_request(reader, writer):
    """Serve one request; close on the next one without answering (the keep-alive race)."""
    await reader.readuntil(b"\r\n\r\n")
    writer.write(OK)
    await writer.drain()
    await reader.readuntil(b"\r\n\r\n")


@pytest.mark.parametrize(
    "script",
    [close_after_one, close_on_the_next_request],
    ids=["closed while idle", "closed when the next request arrives"],
)
async def test_a_stale_pooled_connection_is_retried_on_a_new_one(pool, raw_upstream, script):
    server = await raw_upstream(script)
    for _ in range(2):
        resp = await fetch(pool, server.port)
        try:
            assert (resp.status, await resp.read()) == (200, b"fine")
        finally:
            resp.release()
    assert server.connections == 2


# Streaming: nothing is held back


STREAM_ROWS = [
    # id, response head, part 1, part 2 (the server closes after it)
    (
        "chunked",
        b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"6\r\npart 1\r\n",
        b"6\r\npart 2\r\n0\r\n\r\n",
    ),
    ("Content-Length", b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n", b"part 1", b"part 2"),
    ("until close", b"HTTP/1.1 200 OK\r\n\r\n", b"part 1", b"part 2"),
]


def in_two_parts(head: bytes, part1: bytes, part2: bytes, go: asyncio.Event) -> Script:
    """Send the head and part 1, then part 2 only once `go` is set."""

    async def script(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(head + part1)
        await writer.drain()
        await go.wait()
        writer.write(part2)
        await writer.drain()

    return script


@pytest.mark.parametrize(
    "head,part1,part2", [r[1:] for r in STREAM_ROWS], ids=[r[0] for r in STREAM_ROWS]
)
async def test_chunks_hands_out_data_before_the_upstream_finished(
    pool, raw_upstream, head, part1, part2
):
    """Part 2 is only sent once the test holds part 1: a client that buffered the body would
    wait for part 2 forever (and fail with IdleTimeout)."""
    go = asyncio.Event()
    server = await raw_upstream(in_two_parts(head, part1, part2, go))
    resp = await fetch(pool, server.port)
    pieces = []
    try:
        async for piece in resp.chunks():
            pieces.append(piece)
            go.set()
    finally:
        go.set()
        resp.release()
    assert pieces[0] == b"part 1"
    assert b"".join(pieces) == b"part 1part 2"


class Hung(Exception):
    """The event loop was blocked: no other task (nor any timeout) could run."""


@contextlib.contextmanager
def hang_guard(seconds: float):
    """Fail a test whose code spins without ever yielding to the event loop.

    An await-based timeout cannot fire while the loop is blocked; SIGALRM interrupts Python
    code in the main thread wherever it is. This is a guard against a hang, not a timing
    assertion: a correct client finishes in milliseconds.
    """

    def interrupt(signum, frame):
        raise Hung(f"the event loop was blocked for {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, interrupt)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


SPLIT_ROWS = [
    # id, part 1, part 2: where one arrival of a chunked body ends
    ("arrival ends inside a chunk-size line", b"5\r\nhello\r\n5", b"\r\nworld\r\n0\r\n\r\n"),
    ("arrival ends between chunk data and its CRLF", b"5\r\nhello\r", b"\n5\r\nworld\r\n0\r\n\r\n"),
]


@pytest.mark.parametrize("part1,part2", [r[1:] for r in SPLIT_ROWS], ids=[r[0] for r in SPLIT_ROWS])
async def test_chunked_arrivals_may_end_anywhere(pool, raw_upstream, part1, part2):
    go = asyncio.Event()
    head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
    server = await raw_upstream(in_two_parts(head, part1, part2, go))
    resp = await fetch(pool, server.port)
    pieces = []
    try:
        with hang_guard(1.0):
            async for piece in resp.chunks():
                pieces.append(piece)
                go.set()
    finally:
        go.set()
        resp.release()
    assert pieces == [b"hello", b"world"]


# Request bodies: a browser's body, read by aiohttp's server, relayed as proxy.forward() does

POOL = web.AppKey("pool", client.Pool)
PORT = web.AppKey("port", int)


async def relay(request: web.Request) -> web.Response:
    """Send the request's body upstream through the pool; 502 and the error's name if it fails."""
    body = request.content if request.body_exists else None
    length = request.content_length if body is not None else None
    framing = []
    if body is not None:
        framing = [
            ("Transfer-Encoding", "chunked") if length is None else ("Content-Length", str(length))
        ]
    try:
        resp = await fetch(
            request.app[POOL],
            request.app[PORT],
            request.method,
            headers=framing,
            body=body,
            body_length=length,
        )
    except errors.UpstreamError as exc:
        return web.Response(status=502, text=type(exc).__name__)
    try:
        return web.Response(status=resp.status, body=await resp.read())
    finally:
        resp.release()


@pytest.fixture
async def front(aiohttp_client, pool):
    """front(upstream_port): a client for an aiohttp server relaying to that upstream."""

    async def go(port: int):
        app = web.Application()
        app[POOL] = pool
        app[PORT] = port
        app.router.add_route("*", "/", relay)
        return await aiohttp_client(app)

    return go


async def echo_digest(request: web.Request) -> web.Response:
    data = await request.read()
    return web.json_response(
        {
            "sha256": hashlib.sha256(data).hexdigest(),
            "length": len(data),
            "transfer-encoding": request.headers.get("Transfer-Encoding"),
            "content-length": request.headers.get("Content-Length"),
        }
    )


async def pieces_of(data: bytes) -> AsyncIterator[bytes]:
    """The body as a stream of unknown length (aiohttp's client sends it chunked)."""
    for i in range(0, len(data), 16384):
        yield data[i : i + 16384]


BODY_ROWS = [
    # id, body size, length known
    ("unknown length is sent chunked", 300_000, False),
    ("unknown length, empty body", 0, False),
    ("known length up to CHUNK goes out with the head", 1000, True),
    ("known length of exactly CHUNK", client.CHUNK, True),
    ("known length over CHUNK is streamed as is", 300_000, True),
]


@pytest.mark.parametrize("size,known", [r[1:] for r in BODY_ROWS], ids=[r[0] for r in BODY_ROWS])
async def test_request_body_arrives_intact(aiohttp_server, front, size, known):
    app = web.Application()
    app.router.add_post("/", echo_digest)
    server = await aiohttp_server(app)
    client = await front(server.port)
    data = (bytes(range(251)) * (size // 251 + 1))[:size]
    for _ in range(2):  # the second request reuses the connection: the body ended cleanly
        async with client.post("/", data=data if known else pieces_of(data)) as resp:
            assert resp.status == 200
            assert await resp.json(content_type=None) == {
                "sha256": hashlib.sha256(data).hexdigest(),
                "length": size,
                "transfer-encoding": None if known else "chunked",
                "content-length": str(size) if known else None,
            }


async def test_a_streamed_body_is_not_replayed_on_a_stale_connection(raw_upstream, front):
    """Its bytes were consumed by the first attempt: no retry, the error is shown."""
    server = await raw_upstream(close_on_the_next_request)
    client = await front(server.port)
    async with client.get("/") as resp:
        assert (resp.status, await resp.read()) == (200, b"fine")
    async with client.post("/", data=pieces_of(b"x" * 1000)) as resp:
        assert (resp.status, await resp.text()) == (502, "Disconnected")
    assert server.connections == 1


# Errors


async def test_a_closed_port_is_connect_failed(pool):
    with pytest.raises(errors.ConnectFailed) as caught:
        await fetch(pool, free_port())
    assert caught.value.os_error.errno == errno.ECONNREFUSED


async def test_an_unresolvable_host_is_host_not_found(pool):
    with pytest.raises(errors.HostNotFound, match="no-such-host.invalid"):
        await fetch(pool, 80, host="no-such-host.invalid")


async def close_at_once(reader, writer):
    await reader.readuntil(b"\r\n\r\n")


async def reset_at_once(reader, writer):
    await reader.readuntil(b"\r\n\r\n")
    writer.transport.abort()


def sending(data: bytes) -> Script:
    """Read the request, send `data`, close."""

    async def script(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(data)
        await writer.drain()

    return script


def sending_then_stalling(data: bytes) -> Script:
    """Read the request, send `data`, then send nothing more until the client hangs up."""

    async def script(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(data)
        await writer.drain()
        await reader.read()

    return script


REQUEST_ERROR_ROWS = [
    # id, script, options, error, message
    (
        "closes before any byte",
        close_at_once,
        {},
        errors.Disconnected,
        "before the response headers",
    ),
    ("resets before any byte", reset_at_once, {}, errors.Disconnected, None),
    (
        "closes in the middle of the head",
        sending(b"HTTP/1.1 200 OK\r\nContent-Ty"),
        {},
        errors.Disconnected,
        "middle of the response head",
    ),
    (
        "sends garbage",
        sending(b"\x16\x03\x01 this is not http at all\r\n\r\n"),
        {},
        errors.InvalidResponse,
        "not an HTTP response",
    ),
    (
        "sends garbage and stays open",
        sending_then_stalling(b"SSH-2.0-OpenSSH_9.6\r\n"),
        {},
        errors.InvalidResponse,
        "not an HTTP response",
    ),
    (
        "bad status line",
        sending(b"HTTP/1.1 two hundred OK\r\nContent-Length: 0\r\n\r\n"),
        {},
        errors.InvalidResponse,
        "bad status line",
    ),
    (
        "control character in a header",
        sending(b"HTTP/1.1 200 OK\r\nX-Bad: a\x00b\r\nContent-Length: 0\r\n\r\n"),
        {},
        errors.InvalidResponse,
        "control character",
    ),
    (
        "differing Content-Lengths",
        sending(b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nfine"),
        {},
        errors.InvalidResponse,
        "Content-Length",
    ),
]


@pytest.mark.parametrize(
    "script,options,error,message",
    [r[1:] for r in REQUEST_ERROR_ROWS],
    ids=[r[0] for r in REQUEST_ERROR_ROWS],
)
async def test_request_errors(pool, raw_upstream, script, options, error, message):
    server = await raw_upstream(script)
    with pytest.raises(error) as caught:
        await fetch(pool, server.port, **options)
    assert isinstance(caught.value, errors.UpstreamError)
    if message:
        assert message in str(caught.value)


@pytest.mark.parametrize("read_timeout", [None, 0.05], ids=["no read_timeout", "a shorter one"])
async def test_no_head_within_timeout_is_a_plain_timeout(pool, raw_upstream, read_timeout):
    """The head is bounded by `timeout` alone; read_timeout is for the gaps inside a body."""
    server = await raw_upstream(sending_then_stalling(b"HTTP/1.1 200 OK\r\n"))
    with pytest.raises(TimeoutError) as caught:
        await fetch(pool, server.port, timeout=0.2, read_timeout=read_timeout)
    assert not isinstance(caught.value, errors.IdleTimeout)
    assert "no response headers" in str(caught.value)


BODY_ERROR_ROWS = [
    # id, script, read_timeout, error, message
    (
        "closes mid-body with Content-Length",
        sending(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nfine"),
        5.0,
        errors.Disconnected,
        "6 of 10 bytes still due",
    ),
    (
        "closes inside a chunked body",
        sending(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nfine\r\n"),
        5.0,
        errors.Disconnected,
        "chunked body",
    ),
    (
        "bad chunk size",
        sending(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nfine\r\n0\r\n\r\n"),
        5.0,
        errors.InvalidResponse,
        "bad chunk size",
    ),
    (
        "chunk data longer than its size",
        sending(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nfine\r\n0\r\n\r\n"),
        5.0,
        errors.InvalidResponse,
        "longer than its size",
    ),
    (
        "stalls mid-body",
        sending_then_stalling(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nfine"),
        0.2,
        errors.IdleTimeout,
        "no data for 0.2 s",
    ),
    (
        "stalls inside a chunked body",
        sending_then_stalling(
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nfine\r\n"
        ),
        0.2,
        errors.IdleTimeout,
        "no data for 0.2 s",
    ),
]


async def read_all(resp: client.Response) -> bytes:
    return await resp.read()


async def iterate_chunks(resp: client.Response) -> bytes:
    return b"".join([piece async for piece in resp.chunks()])


@pytest.mark.parametrize("consume", [read_all, iterate_chunks], ids=["read()", "chunks()"])
@pytest.mark.parametrize(
    "script,read_timeout,error,message",
    [r[1:] for r in BODY_ERROR_ROWS],
    ids=[r[0] for r in BODY_ERROR_ROWS],
)
async def test_body_errors(pool, raw_upstream, script, read_timeout, error, message, consume):
    server = await raw_upstream(script)
    resp = await fetch(pool, server.port, read_timeout=read_timeout)
    try:
        assert resp.status == 200
        with pytest.raises(error) as caught:
            await consume(resp)
    finally:
        resp.release()
    if message:
        assert message in str(caught.value)


# Backpressure

BIG = 32 * 1024 * 1024
# The most one data_received() call delivers (asyncio's selector transports read 256 KiB at a
# time): reading pauses once the buffer is past HIGH_WATER, so it can hold up to one more read.
TRANSPORT_READ = 256 * 1024


async def send_big(reader, writer):
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % BIG)
    block = b"x" * (1024 * 1024)
    for _ in range(BIG // len(block)):
        writer.write(block)
        await writer.drain()


async def test_a_slow_reader_holds_back_the_upstream(pool, raw_upstream):
    """While the reader dawdles, the connection stops reading at HIGH_WATER: no piece handed
    out is much bigger, however far ahead the upstream is."""
    server = await raw_upstream(send_big)
    resp = await fetch(pool, server.port)
    sizes = []
    try:
        async for piece in resp.chunks():
            sizes.append(len(piece))
            for _ in range(8):  # a slow browser: the event loop runs several rounds meanwhile
                await asyncio.sleep(0)
    finally:
        resp.release()
    assert sum(sizes) == BIG
    assert max(sizes) <= connection.HIGH_WATER + TRANSPORT_READ, max(sizes)


# After the review: reset mid-body, the idle cap, Happy Eyeballs, Latin-1 header values


async def reset_inside_a_body_read_until_close(reader, writer):
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\npart of it")
    await writer.drain()
    # RST, not FIN: the body did not end, it broke off (linger 0 makes close() reset).
    sock = writer.get_extra_info("socket")
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def test_a_reset_inside_a_body_read_until_close_is_not_its_end(pool, raw_upstream):
    server = await raw_upstream(reset_inside_a_body_read_until_close)
    resp = await fetch(pool, server.port)
    try:
        with pytest.raises(errors.Disconnected, match="reset"):
            await resp.read()
    finally:
        resp.release()


async def test_idle_connections_beyond_the_cap_are_closed(pool, raw_upstream):
    """A burst of parallel requests leaves at most IDLE_PER_UPSTREAM connections open."""
    closed_by_us = 0
    all_closed = asyncio.Event()
    extra = 6
    burst = client.IDLE_PER_UPSTREAM + extra
    release = asyncio.Event()
    arrived = 0

    async def answer_when_all_arrived(reader, writer):
        nonlocal arrived, closed_by_us
        await reader.readuntil(b"\r\n\r\n")
        arrived += 1
        if arrived == burst:
            release.set()
        await release.wait()  # every request holds its own connection until all are in
        writer.write(OK)
        await writer.drain()
        if await reader.read() == b"":  # the client closed this connection
            closed_by_us += 1
            if closed_by_us == extra:
                all_closed.set()

    server = await raw_upstream(answer_when_all_arrived)

    async def one() -> bytes:
        resp = await fetch(pool, server.port)
        try:
            return await resp.read()
        finally:
            resp.release()

    assert await asyncio.gather(*(one() for _ in range(burst))) == [b"fine"] * burst
    await asyncio.wait_for(all_closed.wait(), timeout=10)
    assert server.connections == burst
    assert closed_by_us == extra


async def test_an_address_that_refuses_gives_way_to_the_next(pool, raw_upstream):
    """Several addresses for one name are raced, each next one after a head start; a refusal
    ends its attempt at once. The resolver's answer is set here: no DNS to arrange."""
    server = await raw_upstream(answering(OK))
    refused = socket.socket()
    refused.bind(("127.0.0.1", 0))
    dead_port = refused.getsockname()[1]
    refused.close()
    addresses = [
        (socket.AF_INET, ("127.0.0.1", dead_port)),
        (socket.AF_INET, ("127.0.0.1", server.port)),
    ]
    pool._dns[("app.test", server.port)] = (float("inf"), addresses)
    resp = await fetch(pool, server.port, host="app.test")
    try:
        assert (resp.status, await resp.read()) == (200, b"fine")
    finally:
        resp.release()


async def test_every_address_refusing_is_connect_failed(pool):
    ports = []
    for _ in range(2):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            ports.append(sock.getsockname()[1])
    addresses = [(socket.AF_INET, ("127.0.0.1", port)) for port in ports]
    pool._dns[("app.test", ports[0])] = (float("inf"), addresses)
    with pytest.raises(errors.ConnectFailed) as caught:
        await fetch(pool, ports[0], host="app.test")
    assert caught.value.os_error.errno == errno.ECONNREFUSED


async def test_a_finished_response_frees_its_parser_at_once(pool, raw_upstream):
    """llhttp holds the parser's callbacks, a reference cycle: unless release() breaks it,
    every response and all it read wait for the garbage collector (under load that tripled
    the collector's work per request)."""
    server = await raw_upstream(answering(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"))
    gc.collect()
    gc.disable()
    try:
        for _ in range(5):
            resp = await fetch(pool, server.port)
            assert await resp.read() == b"ok"
            resp.release()
            del resp
        alive = [o for o in gc.get_objects() if isinstance(o, ResponseParser)]
    finally:
        gc.enable()
    assert alive == []

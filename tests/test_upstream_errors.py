"""One vocabulary for upstream failures: the pool (HTTP) and wsclient (WebSocket) raise the
same errors.UpstreamError subclass for the same failure, against real sockets, and
gateway.explain() has words of its own for every subclass there is."""

from __future__ import annotations

import asyncio
import errno
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import trustme

from corsproxy.config.model import Route
from corsproxy.http import client, errors, wire
from corsproxy.http.wsclient import WebSocketClient
from corsproxy.proxy import gateway
from corsproxy.proxy.routing import RouteTable
from tests.conftest import free_port

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


async def close_at_once(reader, writer):
    await reader.readuntil(b"\r\n\r\n")


def sending(data: bytes) -> Script:
    async def script(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(data)
        await writer.drain()
        await reader.read()

    return script


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., Awaitable[int]]]:
    """serve(script, tls=None): a raw upstream on 127.0.0.1; its port."""
    servers: list[asyncio.base_events.Server] = []

    async def start(script: Script, tls: ssl.SSLContext | None = None) -> int:
        async def run(reader, writer):
            try:
                await script(reader, writer)
            except (asyncio.IncompleteReadError, ConnectionError, ssl.SSLError):
                pass
            finally:
                writer.close()

        servers.append(await asyncio.start_server(run, "127.0.0.1", 0, ssl=tls))
        return servers[-1].sockets[0].getsockname()[1]

    yield start
    for server in servers:
        server.close()


@pytest.fixture
async def ws_client() -> AsyncIterator[WebSocketClient]:
    upstream = WebSocketClient()
    yield upstream
    await upstream.close()


async def http_error(port: int, host: str = "127.0.0.1", scheme: str = "http") -> BaseException:
    pool = client.Pool()
    head = wire.request_head("GET", "/", [("Host", host)])
    try:
        response = await pool.request(scheme, host, port, True, "GET", head, None, None, 5, 5)
        response.release()
    except BaseException as exc:  # noqa: BLE001 - the error is what is compared
        return exc
    finally:
        pool.close()
    raise AssertionError("the request succeeded")


async def ws_error(
    ws_client: WebSocketClient, port: int, host: str = "127.0.0.1", scheme: str = "ws"
) -> BaseException:
    try:
        socket = await ws_client.connect(f"{scheme}://{host}:{port}/", [], [], True, 5)
        await socket.close()
    except BaseException as exc:  # noqa: BLE001
        return exc
    raise AssertionError("the upgrade succeeded")


SAME_ROWS = [
    # id, script (None: nothing listens), error both clients raise
    ("nothing listens", None, errors.ConnectFailed),
    ("closes before any byte", close_at_once, errors.Disconnected),
    ("answers what is not HTTP", sending(b"SSH-2.0-OpenSSH_9.6\r\n\r\n"), errors.InvalidResponse),
    (
        "a bad status line",
        sending(b"HTTP/1.1 two hundred OK\r\nContent-Length: 0\r\n\r\n"),
        errors.InvalidResponse,
    ),
    (
        "a control character in a header",
        sending(b"HTTP/1.1 101 OK\r\nX-Bad: a\x00b\r\n\r\n"),
        errors.InvalidResponse,
    ),
]


@pytest.mark.parametrize("script,error", [r[1:] for r in SAME_ROWS], ids=[r[0] for r in SAME_ROWS])
async def test_both_clients_raise_the_same_error(serve, ws_client, script, error):
    port = free_port() if script is None else await serve(script)
    from_http = await http_error(port)
    from_ws = await ws_error(ws_client, port)
    assert (type(from_http), type(from_ws)) == (error, error), (from_http, from_ws)


async def test_an_unresolvable_host_is_host_not_found_from_both(ws_client):
    from_http = await http_error(80, host="no-such-host.invalid")
    from_ws = await ws_error(ws_client, 80, host="no-such-host.invalid")
    assert (type(from_http), type(from_ws)) == (errors.HostNotFound, errors.HostNotFound)


async def test_a_refused_port_names_the_same_os_error_from_both(ws_client):
    port = free_port()
    from_http = await http_error(port)
    from_ws = await ws_error(ws_client, port)
    assert from_http.os_error.errno == from_ws.os_error.errno == errno.ECONNREFUSED


async def test_an_untrusted_certificate_is_rejected_by_both(serve, ws_client):
    cert = trustme.CA().issue_cert("127.0.0.1")
    tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    cert.configure_cert(tls)
    port = await serve(sending(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"), tls)
    from_http = await http_error(port, scheme="https")
    from_ws = await ws_error(ws_client, port, scheme="wss")
    assert (type(from_http), type(from_ws)) == (
        errors.CertificateRejected,
        errors.CertificateRejected,
    )


WS_ONLY_ROWS = [
    # id, upstream's answer to the upgrade, error, its text
    (
        "a 403 instead of 101",
        b"HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n",
        errors.UpgradeRefused,
        "status 403",
    ),
    (
        "a 101 without the right Sec-WebSocket-Accept",
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Accept: wrong\r\n\r\n",
        errors.InvalidResponse,
        "bad WebSocket handshake",
    ),
]


@pytest.mark.parametrize(
    "answer,error,text", [r[1:] for r in WS_ONLY_ROWS], ids=[r[0] for r in WS_ONLY_ROWS]
)
async def test_websocket_handshake_failures(serve, ws_client, answer, error, text):
    caught = await ws_error(ws_client, await serve(sending(answer)))
    assert type(caught) is error
    assert text in str(caught)


# gateway.explain: words for each error that can occur, and nothing else falls through

SAMPLES: dict[type[BaseException], BaseException] = {
    errors.HostNotFound: errors.HostNotFound("cannot resolve 'x'"),
    errors.ConnectFailed: errors.ConnectFailed(ConnectionRefusedError(errno.ECONNREFUSED, "no")),
    errors.CertificateRejected: errors.CertificateRejected(ssl.SSLCertVerificationError("bad")),
    errors.TLSFailed: errors.TLSFailed(ssl.SSLError("handshake failure")),
    errors.Disconnected: errors.Disconnected("the connection closed before the headers"),
    errors.InvalidResponse: errors.InvalidResponse("bad status line"),
    errors.HeadTooLarge: errors.HeadTooLarge("response head longer than 256 KiB"),
    errors.IdleTimeout: errors.IdleTimeout("no data for 0.3 s, read_timeout"),
    errors.UpgradeRefused: errors.UpgradeRefused(403),
}

EXPLAIN_ROWS = [
    # id, exception, (status, error)
    ("a plain timeout before the head", TimeoutError(), (504, "upstream timed out")),
    ("IdleTimeout inside a small body", SAMPLES[errors.IdleTimeout], (504, "upstream stalled")),
    ("host not found", SAMPLES[errors.HostNotFound], (502, "upstream host not found")),
    ("connect failed", SAMPLES[errors.ConnectFailed], (502, "upstream unreachable")),
    (
        "certificate rejected",
        SAMPLES[errors.CertificateRejected],
        (502, "upstream TLS certificate rejected"),
    ),
    ("TLS failed", SAMPLES[errors.TLSFailed], (502, "upstream TLS handshake failed")),
    ("disconnected", SAMPLES[errors.Disconnected], (502, "upstream broke off")),
    (
        "invalid response",
        SAMPLES[errors.InvalidResponse],
        (502, "upstream sent an invalid response"),
    ),
    (
        "head too large",
        SAMPLES[errors.HeadTooLarge],
        (502, "upstream response head too large"),
    ),
    (
        "upgrade refused",
        SAMPLES[errors.UpgradeRefused],
        (502, "upstream refused the WebSocket upgrade"),
    ),
]


def a_route():
    return RouteTable((Route("/", "http://127.0.0.1:9"),)).routes[0]


@pytest.mark.parametrize(
    "exc,expected", [r[1:] for r in EXPLAIN_ROWS], ids=[r[0] for r in EXPLAIN_ROWS]
)
async def test_explain(exc, expected):
    failure = await gateway.explain(exc, a_route(), 0)
    assert (failure.status, failure.error) == expected


def all_subclasses(cls: type) -> set[type]:
    found = set(cls.__subclasses__())
    for sub in list(found):
        found |= all_subclasses(sub)
    return found


async def test_every_upstream_error_has_words_of_its_own():
    """A new UpstreamError subclass without a sample here (and words in explain) fails."""
    assert all_subclasses(errors.UpstreamError) == set(SAMPLES)
    for exc in SAMPLES.values():
        failure = await gateway.explain(exc, a_route(), 0)
        assert failure.error != "upstream failed", exc


async def test_the_head_too_large_answer_says_the_limit():
    failure = await gateway.explain(SAMPLES[errors.HeadTooLarge], a_route(), 0)
    assert "exceeds 256 KiB" in failure.detail
    assert "ERR_RESPONSE_HEADERS_TOO_BIG" in failure.detail

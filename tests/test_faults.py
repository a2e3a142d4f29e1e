"""Fault injection: a misbehaving upstream or client, the documented outcome, and a normal
request served right after each one."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import aiohttp
import pytest
from aiohttp import web

from corsproxy.config.model import Route, Settings
from corsproxy.proxy.accesslog import AccessLog
from corsproxy.serve import server
from tests.conftest import ORIGIN

Script = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]
OK = b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\nContent-Type: text/plain\r\n\r\nfine"


class RawUpstream:
    """An upstream speaking raw bytes: /ok answers normally, anything else runs the fault."""

    def __init__(self, fault: Script) -> None:
        self.fault = fault
        self.server: asyncio.base_events.Server | None = None

    async def __aenter__(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}"

    async def __aexit__(self, *exc) -> None:
        self.server.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if head.startswith(b"GET /ok "):
                    writer.write(OK)
                    await writer.drain()
                    continue
                await self.fault(reader, writer)
                return
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()


def reset(writer: asyncio.StreamWriter) -> None:
    writer.transport.abort()


async def refuse_nothing_sent(reader, writer):
    reset(writer)


async def reset_mid_headers(reader, writer):
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: text/pl")
    await writer.drain()
    reset(writer)


async def malformed_status_line(reader, writer):
    writer.write(b"HTTP/1.1 two hundred OK\r\nContent-Length: 0\r\n\r\n")
    await writer.drain()


async def invalid_header_bytes(reader, writer):
    writer.write(b"HTTP/1.1 200 OK\r\nX-Bad\x00Name: v\r\nContent-Length: 0\r\n\r\n")
    await writer.drain()


async def garbage(reader, writer):
    writer.write(b"\x16\x03\x01 this is not http at all\r\n\r\n")
    await writer.drain()


GATEWAY_FAULTS = [
    ("upstream resets before the status line", refuse_nothing_sent, "upstream broke off"),
    ("upstream resets mid-headers", reset_mid_headers, None),
    ("malformed status line", malformed_status_line, "upstream sent an invalid response"),
    ("invalid header bytes", invalid_header_bytes, "upstream sent an invalid response"),
    ("not HTTP at all", garbage, "upstream sent an invalid response"),
]


async def proxy_for(start_proxy, upstream: str, **options):
    return await start_proxy(routes=(Route("/", upstream, **options),))


async def assert_still_serving(client: aiohttp.ClientSession, proxy) -> None:
    async with client.get(proxy.url + "/ok") as resp:
        assert (resp.status, await resp.text()) == (200, "fine")


@pytest.mark.parametrize(
    "fault,error", [r[1:] for r in GATEWAY_FAULTS], ids=[r[0] for r in GATEWAY_FAULTS]
)
async def test_broken_upstream_answers_a_readable_502(start_proxy, client, fault, error):
    async with RawUpstream(fault) as upstream:
        proxy = await proxy_for(start_proxy, upstream)
        async with client.get(proxy.url + "/x", headers={"Origin": ORIGIN}) as resp:
            assert resp.status == 502
            assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN
            body = await resp.json()
        assert body["upstream"] == upstream
        if error:
            assert body["error"] == error
        await assert_still_serving(client, proxy)


async def short_body(reader, writer):
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 70000)
    await writer.drain()
    reset(writer)


async def long_body(reader, writer):
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello and then some junk")
    await writer.drain()


async def test_content_length_longer_than_the_body_aborts_the_client(start_proxy, client):
    async with RawUpstream(short_body) as upstream:
        proxy = await proxy_for(start_proxy, upstream)
        with pytest.raises((aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError)):
            async with client.get(proxy.url + "/x") as resp:
                await resp.read()
        await assert_still_serving(client, proxy)


async def test_content_length_shorter_than_the_body_sends_only_content_length(start_proxy, client):
    async with RawUpstream(long_body) as upstream:
        proxy = await proxy_for(start_proxy, upstream)
        async with client.get(proxy.url + "/x") as resp:
            body = await resp.read()
        # Bytes beyond Content-Length are never passed on. aiohttp's parser reads them as a
        # broken next response: when they arrive with the body, the answer is a readable 502.
        if resp.status == 200:
            assert body == b"hello"
        else:
            assert resp.status == 502
            assert b'"error": "upstream sent an invalid response"' in body
        await assert_still_serving(client, proxy)


async def test_stall_mid_body_hits_the_idle_read_timeout_and_aborts(start_proxy, client):
    stalled = asyncio.Event()

    async def stall_mid_body(reader, writer):
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n" + b"x" * 100)
        await writer.drain()
        await stalled.wait()

    async with RawUpstream(stall_mid_body) as upstream:
        proxy = await proxy_for(start_proxy, upstream, read_timeout=0.3)
        with pytest.raises((aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError)):
            async with client.get(proxy.url + "/x") as resp:
                await resp.read()
        stalled.set()
        await assert_still_serving(client, proxy)
    assert "upstream broke off mid-body (no data for 0.3 s, read_timeout)" in proxy.log


async def test_100_kib_of_response_headers_pass_through(start_proxy, client):
    async def big_headers(reader, writer):
        fields = b"".join(b"X-Big-%d: %s\r\n" % (i, b"v" * 1000) for i in range(100))
        writer.write(b"HTTP/1.1 200 OK\r\n" + fields + b"Content-Length: 2\r\n\r\nok")
        await writer.drain()

    async with RawUpstream(big_headers) as upstream:
        proxy = await proxy_for(start_proxy, upstream)
        async with client.get(proxy.url + "/x", headers={"Origin": ORIGIN}) as resp:
            assert resp.status == 200
            assert resp.headers["X-Big-99"] == "v" * 1000
            assert len(resp.headers["Access-Control-Expose-Headers"].split(", ")) == 100
        await assert_still_serving(client, proxy)


async def test_a_response_head_over_256_kib_is_a_readable_502(start_proxy, client):
    """Chromium fails a head over 256 KiB with ERR_RESPONSE_HEADERS_TOO_BIG, which a page
    cannot read: the proxy answers a 502 the page can read, saying why."""

    async def huge_head(reader, writer):
        fields = b"".join(b"X-Big-%d: %s\r\n" % (i, b"v" * 1000) for i in range(600))
        writer.write(b"HTTP/1.1 200 OK\r\n" + fields + b"Content-Length: 2\r\n\r\nok")
        await writer.drain()

    async with RawUpstream(huge_head) as upstream:
        proxy = await proxy_for(start_proxy, upstream)
        async with client.get(proxy.url + "/x", headers={"Origin": ORIGIN}) as resp:
            assert resp.status == 502
            assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN
            body = await resp.json()
        assert body["error"] == "upstream response head too large"
        assert "the response head exceeds 256 KiB" in body["detail"]
        await assert_still_serving(client, proxy)


async def test_a_header_line_over_64_kib_is_a_readable_502(start_proxy, client):
    async def huge_header(reader, writer):
        writer.write(b"HTTP/1.1 200 OK\r\nX-Huge: " + b"v" * 100_000 + b"\r\n\r\n")
        await writer.drain()

    async with RawUpstream(huge_header) as upstream:
        proxy = await proxy_for(start_proxy, upstream)
        async with client.get(proxy.url + "/x") as resp:
            assert resp.status == 502
            assert (await resp.json())["error"] == "upstream sent an invalid response"
        await assert_still_serving(client, proxy)


async def test_slowloris_client_is_dropped_and_others_are_served(aiohttp_server):
    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="fine")

    app = web.Application()
    app.router.add_get("/ok", ok)
    upstream = await aiohttp_server(app)
    settings = Settings(routes=(Route("/", str(upstream.make_url("")).rstrip("/")),))
    import io

    running = await server.start(
        settings, AccessLog("info", io.StringIO()), port=0, header_timeout=0.5
    )
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", running.port)
        request = b"GET /ok HTTP/1.1\r\nHost: localhost\r\nX-Slow: "
        dropped = False
        async with aiohttp.ClientSession() as client:
            for byte in request:
                writer.write(bytes([byte]))
                try:
                    await writer.drain()
                except ConnectionError:
                    dropped = True
                    break
                # another client is served normally while the slow one trickles
                async with client.get(f"http://127.0.0.1:{running.port}/ok") as resp:
                    assert await resp.text() == "fine"
                if reader.at_eof():
                    dropped = True
                    break
                await asyncio.sleep(0.05)  # the slow client under test: one byte at a time
            if not dropped:
                assert await asyncio.wait_for(reader.read(), 5) == b""
        writer.close()
    finally:
        await running.stop()


async def test_websocket_upstream_that_vanishes_closes_the_browser_side(start_proxy, client):
    connected = asyncio.Event()
    sockets: list[web.WebSocketResponse] = []

    async def ws(request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        sockets.append(socket)
        connected.set()
        request.transport.abort()  # the upstream process dies
        return socket

    async def ok(request: web.Request) -> web.Response:
        return web.Response(text="fine")

    app = web.Application()
    app.router.add_get("/ws", ws)
    app.router.add_get("/ok", ok)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        proxy = await proxy_for(start_proxy, f"http://127.0.0.1:{port}")
        async with client.ws_connect(proxy.url + "/ws", origin=ORIGIN) as browser:
            message = await asyncio.wait_for(browser.receive(), 10)
            assert message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
            assert browser.close_code == 1011
        await assert_still_serving(client, proxy)
    finally:
        await runner.cleanup()


async def test_content_length_beside_chunked_is_dropped_not_obeyed(start_proxy, client):
    """RFC 9112 §6.3: with both, the chunked framing counts; the stray length must not cut
    the body short on the browser's side."""

    async def both_framings(reader, writer):
        body = b"x" * 100
        writer.write(
            b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nTransfer-Encoding: chunked\r\n\r\n"
            + b"%x\r\n%b\r\n0\r\n\r\n" % (len(body), body)
        )
        await writer.drain()

    async with RawUpstream(both_framings) as upstream:
        proxy = await proxy_for(start_proxy, upstream)
        async with client.get(proxy.url + "/x") as resp:
            assert resp.status == 200
            assert "Content-Length" not in resp.headers
            assert await resp.read() == b"x" * 100
        await assert_still_serving(client, proxy)


@pytest.mark.parametrize("size", [10, 1_000_000], ids=["small body", "streamed body"])
async def test_a_latin1_header_value_keeps_its_letters(start_proxy, client, size):
    """A value that is not UTF-8 arrives as the same letters in UTF-8, whichever way the
    response is written (whole, or streamed by aiohttp), never with characters dropped."""

    async def latin1_filename(reader, writer):
        writer.write(
            b'HTTP/1.1 200 OK\r\nContent-Disposition: attachment; filename="caf\xe9.pdf"\r\n'
            b"Content-Length: %d\r\n\r\n" % size + b"x" * size
        )
        await writer.drain()

    async with RawUpstream(latin1_filename) as upstream:
        proxy = await proxy_for(start_proxy, upstream)
        async with client.get(proxy.url + "/x") as resp:
            assert resp.headers["Content-Disposition"] == 'attachment; filename="café.pdf"'
            assert len(await resp.read()) == size

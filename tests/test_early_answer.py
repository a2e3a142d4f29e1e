"""Granted preflights answered straight from the parser (fastpath.py + Proxy.answer_at_once):
the same answers and log lines as before, in request order, on any connection state."""

from __future__ import annotations

import os
import re

import aiohttp
import pytest
from aiohttp import web

from corsproxy.http import fastpath
from tests.conftest import ORIGIN, cors_headers, raw_request

PREFLIGHT = {
    "Origin": ORIGIN,
    "Access-Control-Request-Method": "PUT",
    "Access-Control-Request-Headers": "content-type",
}


# The whole grant, as the usual path answers it (tests/test_proxy.py): nothing more, no less.
PREFLIGHT_GRANT = {
    "access-control-allow-origin": ORIGIN,
    "access-control-allow-credentials": "true",
    "access-control-allow-methods": {"put"},
    "access-control-allow-headers": {"content-type"},
    "access-control-max-age": "600",
    "vary": {"origin", "access-control-request-method", "access-control-request-headers"},
}


def counting_upstream(seen: list[str]) -> web.Application:
    async def answer(request: web.Request) -> web.Response:
        seen.append(f"{request.method} {request.path}")
        return web.Response(text=f"body of {request.path}")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    return app


async def proxy_with_upstream(aiohttp_server, start_proxy):
    seen: list[str] = []
    upstream = await aiohttp_server(counting_upstream(seen))
    proxy = await start_proxy(str(upstream.make_url("")).rstrip("/"))
    return proxy, seen


def raw(method: str, path: str, port: int, headers: dict[str, str], close: bool = False) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    if close:
        lines.append("Connection: close")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def statuses_and_bodies(data: bytes) -> list[str]:
    """`204` and `200 body of /a` for each response in a raw keep-alive stream, in order."""
    out = []
    for match in re.finditer(rb"HTTP/1\.1 (\d{3}) ", data):
        status = match[1].decode()
        body = re.match(rb"[^\r]*\r\n(?:[^\r]+\r\n)*\r\n(body of /\w)?", data[match.start() :])
        out.append(f"{status} {body[1].decode()}" if body and body[1] else status)
    return out


async def test_preflights_on_one_connection_are_answered_and_logged_each(
    aiohttp_server, start_proxy
):
    proxy, seen = await proxy_with_upstream(aiohttp_server, start_proxy)
    connector = aiohttp.TCPConnector(limit=1)  # every request on the same keep-alive socket
    async with aiohttp.ClientSession(connector=connector) as session:
        for _ in range(20):
            async with session.options(proxy.url + "/items", headers=PREFLIGHT) as resp:
                assert resp.status == 204
                assert cors_headers(resp.headers) == PREFLIGHT_GRANT
                assert resp.headers["Access-Control-Allow-Methods"] == "PUT"
                assert await resp.read() == b""
    assert seen == []
    lines = [line for line in proxy.log.splitlines() if line[13:].startswith("OPTIONS /items ")]
    assert len(lines) == 20
    assert all(f"origin={ORIGIN} preflight (" in line and " -> 204 " in line for line in lines)


async def test_pipelined_requests_are_answered_in_the_order_they_came(aiohttp_server, start_proxy):
    proxy, seen = await proxy_with_upstream(aiohttp_server, start_proxy)
    port = proxy.port
    data = b"".join(
        [
            raw("OPTIONS", "/first", port, PREFLIGHT),
            raw("GET", "/a", port, {"Origin": ORIGIN}),
            raw("OPTIONS", "/after-a-get", port, PREFLIGHT),
            raw("OPTIONS", "/next", port, PREFLIGHT),
            raw("GET", "/b", port, {"Origin": ORIGIN}, close=True),
        ]
    )
    answer = await raw_request(port, data)
    assert statuses_and_bodies(answer) == ["204", "200 body of /a", "204", "204", "200 body of /b"]
    assert seen == ["GET /a", "GET /b"]


async def test_a_preflight_with_a_body_or_asking_to_close_is_still_answered(
    aiohttp_server, start_proxy
):
    proxy, seen = await proxy_with_upstream(aiohttp_server, start_proxy)
    port = proxy.port
    with_body = raw("OPTIONS", "/x", port, {**PREFLIGHT, "Content-Length": "3"}) + b"abc"
    closing = raw("OPTIONS", "/y", port, PREFLIGHT, close=True)
    answer = await raw_request(port, with_body + closing)
    assert statuses_and_bodies(answer) == ["204", "204"]
    assert answer.count(f"Access-Control-Allow-Origin: {ORIGIN}".encode()) == 2
    assert seen == []


async def test_refused_and_unroutable_preflights_take_the_usual_way(aiohttp_server, start_proxy):
    proxy, _ = await proxy_with_upstream(aiohttp_server, start_proxy)
    port = proxy.port
    evil = raw("OPTIONS", "/x", port, {**PREFLIGHT, "Origin": "http://evil.test"})
    wrong_host = raw("OPTIONS", "/x", port, PREFLIGHT).replace(
        f"Host: 127.0.0.1:{port}".encode(), b"Host: attacker.example"
    )
    last = raw("OPTIONS", "/x", port, PREFLIGHT, close=True)
    answer = await raw_request(port, evil + wrong_host + last)
    assert statuses_and_bodies(answer) == ["403", "403", "204"]
    assert b"preflight refused" in answer
    assert b"host not allowed" in answer


async def test_the_early_answer_is_in_use_with_this_aiohttp(start_proxy):
    """fastpath.py reads a few RequestHandler attributes; without them it quietly steps aside.
    This says so loudly instead, should an aiohttp upgrade rename them."""
    if not fastpath.enabled(os.environ):
        pytest.skip("the fast path is switched off (CORSPROXY_FASTPATH=0)")
    proxy = await start_proxy("http://127.0.0.1:9")
    handler = proxy.running.runner.server()
    parser = getattr(handler, "_request_parser", None) or handler._parser
    assert parser._early is not None


async def test_an_idle_connection_is_still_closed_after_early_answers():
    """The keep-alive timer restarts after each early answer, as after aiohttp's own, and
    still closes a connection that then goes quiet."""
    import asyncio

    from corsproxy.config.model import Route, Settings
    from corsproxy.proxy.accesslog import AccessLog
    from corsproxy.serve import server

    settings = Settings(routes=(Route("/", "http://127.0.0.1:9"),))
    running = await server.start(settings, AccessLog("warning"), port=0, header_timeout=0.3)
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", running.port)
        for _ in range(3):
            writer.write(raw("OPTIONS", "/x", running.port, PREFLIGHT))
            head = await reader.readuntil(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 204 ")
        # Nothing more is sent: the proxy hangs up by itself (EOF), well before 10 s.
        assert await asyncio.wait_for(reader.read(), timeout=10) == b""
        writer.close()
    finally:
        await running.stop()


async def test_many_early_answers_then_pipelined_requests_all_get_answers(
    aiohttp_server, start_proxy
):
    """The parser counts requests in flight and stops at 32: early answers must count as done,
    or the requests after them would wait for the keep-alive timer."""
    proxy, seen = await proxy_with_upstream(aiohttp_server, start_proxy)
    port = proxy.port
    data = b"".join(raw("OPTIONS", f"/p{i}", port, PREFLIGHT) for i in range(40))
    data += raw("GET", "/a", port, {"Origin": ORIGIN})
    data += raw("GET", "/b", port, {"Origin": ORIGIN}, close=True)
    answer = await raw_request(port, data)
    assert statuses_and_bodies(answer) == ["204"] * 40 + ["200 body of /a", "200 body of /b"]
    assert seen == ["GET /a", "GET /b"]

"""The proxy is no hole: a hostile page (http://evil.test) reads nothing through it under the
default config, cannot open a WebSocket through it, and cannot reach it by DNS rebinding.
Each refusal has its twin that succeeds, so a test that could not fail would show.
"""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import FAILED, OpenPage, Proxies, Servers, unique

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

REQUESTS = {
    "simple GET": ("/api/items", {}),
    "credentialed GET": ("/whoami", {"credentials": "include"}),
    "preflighted PUT": ("/api/echo", {"method": "PUT", "headers": {"Authorization": "Bearer x"}}),
    # The backend itself grants '*' here: the proxy must not pass that grant on.
    "upstream grants '*'": ("/wrong/star-with-credentials", {}),
}


@pytest.mark.parametrize("kind", REQUESTS)
async def test_refused_origin_reads_nothing_through_the_proxy(
    servers: Servers, proxies: Proxies, open_page: OpenPage, kind: str
):
    """evil.test is not in the default allow_origins (localhost only): fetch() rejects, while
    the same request from a localhost page through the same proxy reads 200."""
    path, init = REQUESTS[kind]
    proxy = proxies["default"]
    evil = await open_page(servers.page("evil.test"))
    friend = await open_page(servers.page())

    assert await evil.fetch(proxy.url() + path, **init) == FAILED
    assert (await friend.fetch(proxy.url() + path, **init))["status"] == 200


async def test_upstreams_own_wildcard_is_withdrawn_for_a_refused_origin(
    servers: Servers, proxies: Proxies, open_page: OpenPage
):
    """The 'before' of the last row above: directly, the backend's `*` lets evil.test read."""
    evil = await open_page(servers.page("evil.test"))
    path = unique("/wrong/star-with-credentials")

    assert (await evil.fetch(servers.backend() + path))["status"] == 200
    assert await evil.fetch(proxies["default"].url() + path) == FAILED
    [line] = await proxies["default"].logged("GET", path)
    assert "refused" in line and "removed: Access-Control-Allow-Origin" in line, line


async def test_refused_origins_preflight_gets_403(
    servers: Servers, proxies: Proxies, open_page: OpenPage
):
    """The proxy answers the refused preflight itself (403, nothing granted): no DELETE."""
    evil = await open_page(servers.page("evil.test"))
    proxy = proxies["default"]
    path = unique("/api/echo")

    assert await evil.fetch(proxy.url() + path, method="DELETE") == FAILED
    [preflight] = await proxy.logged("OPTIONS", path)
    assert "preflight refused" in preflight and preflight.split(" -> ")[-1].startswith("403 ")


async def test_refused_origin_cannot_open_a_websocket(
    servers: Servers, proxies: Proxies, open_page: OpenPage
):
    """Browsers apply no CORS to WebSockets: the backend alone lets evil.test in; the proxy
    answers the upgrade with 403 (the page sees an error, never `open`); a friend gets echoes."""
    echo = "([url, text]) => websocketEcho(url, text)"
    evil = await open_page(servers.page("evil.test"))
    friend = await open_page(servers.page())
    proxy = proxies["default"]

    direct = await evil.js(echo, [f"ws://localhost:{servers.backend_port}/ws", "hi"])
    assert direct == ["open", "message hi", "close 1000"]
    assert await evil.js(echo, [f"ws://localhost:{proxy.port}/ws", "hi"]) == [
        "error",
        "close 1006",
    ]
    assert await friend.js(echo, [f"ws://localhost:{proxy.port}/ws", "hi"]) == [
        "open",
        "message hi",
        "close 1000",
    ]


async def test_dns_rebinding_page_gets_403(servers: Servers, proxies: Proxies, open_page: OpenPage):
    """After DNS rebinding, a page of http://evil.test:PORT talks to 127.0.0.1:PORT as its own
    origin: no CORS at all, only `Host: evil.test:PORT` gives it away. (Chromium's Private
    Network Access already stops a public page's plain-http request to loopback; the guard must
    hold without it, so here the page is loaded from the rebound name itself.)"""
    backend = await open_page(f"http://evil.test:{servers.backend_port}", "/secret")
    assert (await backend.fetch("/secret"))["body"] == "the intranet's secret"

    proxy = proxies["default"]
    through = await open_page(proxy.url("evil.test"), "/secret")
    answer = await through.fetch("/secret")
    assert answer["status"] == 403
    assert json.loads(answer["body"])["error"] == "host not allowed"
    assert "secret" not in await through.js("document.body.innerText")

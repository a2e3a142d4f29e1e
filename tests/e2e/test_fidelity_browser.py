"""What a real frontend does besides GET JSON, judged by Chromium: a cookie login, redirects,
Server-Sent Events and WebSockets through the proxy (issue 3, in the browser suite).

Each case has its twin that fails: the same request straight to the backend, or through a
proxy with the one rewrite switched off (cookies.domain / cookies.secure / redirects: keep).
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import pytest

from tests.e2e.conftest import (
    DIRECT,
    FAILED,
    LAN_HOST,
    OpenPage,
    Proxies,
    Servers,
    Site,
)
from tests.e2e.servers import BACKEND_NAME

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

LOGIN = {"method": "POST", "credentials": "include"}
INCLUDE = {"credentials": "include"}


def stored(cookies: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """The browser's cookie jar, as the fields that matter here."""
    fields = ("name", "domain", "path", "secure", "httpOnly", "sameSite")
    return [tuple(cookie[field] for field in fields) for cookie in cookies]


# ---- cookies ---------------------------------------------------------------------------------


async def test_staging_login_cookie_lands_on_localhost(
    servers: Servers, proxies: Proxies, open_page: OpenPage, context: Any
):
    """A staging API's login cookie (Domain=api.backend.test; Secure; HttpOnly; SameSite=None)
    through the zero-config proxy, page on http://localhost:P, proxy on http://localhost:Q:
    Domain is dropped so the cookie lands on the proxy's host; Secure and SameSite=None stay
    (localhost is a secure context even over plain http). Chromium stores it and sends it back
    on the next credentialed request. The twins: directly, CORS blocks the login; through a
    proxy that keeps Domain, Chromium refuses a cookie for a domain that is not localhost's."""
    tab = await open_page(servers.page())
    proxy, kept = proxies["default"], proxies["cookie Domain kept"]

    direct = f"http://{BACKEND_NAME}:{servers.backend_port}"
    assert await tab.fetch(direct + "/login/staging", **LOGIN) == FAILED
    _, refused = await tab.fetch_json(kept.url() + "/login/staging", **LOGIN)
    assert refused["logged_in"] and await context.cookies() == []
    assert await tab.fetch_json(kept.url() + "/whoami", **INCLUDE) == (200, {"cookie": None})

    _, session = await tab.fetch_json(proxy.url() + "/login/staging", **LOGIN)
    assert stored(await context.cookies()) == [("sid", "localhost", "/", True, True, "None")]
    _, seen = await tab.fetch_json(proxy.url() + "/whoami", **INCLUDE)
    assert seen == {"cookie": f"sid={session['token']}"}
    [line] = await proxy.logged("POST", "/login/staging")
    assert f"cookie sid: Domain={BACKEND_NAME} dropped" in line, line
    assert "Secure dropped" not in line, line


async def test_lan_host_cookie_loses_secure_and_becomes_lax(
    servers: Servers, proxies: Proxies, open_page: OpenPage, context: Any
):
    """The dev machine opened from another device by its LAN name: the page on
    http://devbox.test:P and the proxy on http://devbox.test:Q, plain http, not localhost.

    The same host on two ports is one *site* (a site ignores the port), as it is in real life
    when a phone opens http://devbox.lan:5173 and the app calls http://devbox.lan:8080. (Two
    names such as app.test and proxy.test would be two sites, where no Lax cookie ever goes
    with fetch(); that is the case SameSite=None; Secure over https exists for.)

    Chromium refuses a Secure cookie set over plain http on a non-loopback host, and
    SameSite=None without Secure. `secure: auto` drops Secure here and turns SameSite=None into
    Lax: the cookie is stored without Secure, and sent with the same-site credentialed fetch.
    The twin, `secure: keep`: Chromium stores nothing, so the next request carries no cookie."""
    tab = await open_page(servers.page(LAN_HOST))
    proxy, kept = proxies["lan"], proxies["lan, Secure kept"]

    direct = servers.backend(LAN_HOST)
    assert await tab.fetch(direct + "/login/staging", **LOGIN) == FAILED
    _, refused = await tab.fetch_json(kept.url(LAN_HOST) + "/login/staging", **LOGIN)
    assert refused["logged_in"] and await context.cookies() == []
    assert await tab.fetch_json(kept.url(LAN_HOST) + "/whoami", **INCLUDE) == (
        200,
        {"cookie": None},
    )

    _, session = await tab.fetch_json(proxy.url(LAN_HOST) + "/login/staging", **LOGIN)
    assert stored(await context.cookies()) == [("sid", LAN_HOST, "/", False, True, "Lax")]
    _, seen = await tab.fetch_json(proxy.url(LAN_HOST) + "/whoami", **INCLUDE)
    assert seen == {"cookie": f"sid={session['token']}"}
    [line] = await proxy.logged("POST", "/login/staging")
    assert "Secure dropped" in line and "SameSite=None -> Lax" in line, line


# ---- redirects ---------------------------------------------------------------------------

REDIRECTS = {
    # status: (fetch init, what the final endpoint saw: method, body)
    302: ({}, ("GET", "")),
    # 303 turns a POST into a GET without its body.
    303: (
        {"method": "POST", "body": "form=1", "headers": {"Content-Type": "text/plain"}},
        ("GET", ""),
    ),
    # 307 keeps the method and the body.
    307: (
        {"method": "POST", "body": "payload", "headers": {"Content-Type": "text/plain"}},
        ("POST", "payload"),
    ),
}


@pytest.mark.parametrize("status", REDIRECTS)
async def test_redirect_to_the_backends_own_url_is_followed_through_the_proxy(
    site: Site, open_page: OpenPage, status: int
):
    """The backend redirects to its own absolute URL (built from the Host it was sent); the
    proxy points the Location at itself, as the browser addressed it, so fetch() follows the
    redirect through the proxy: response.url is the proxy's, the body the final endpoint's."""
    tab = await open_page(site.page)
    init, (method, body) = REDIRECTS[status]
    follow = "([url, init]) => follow(url, init)"

    assert await tab.js(follow, [f"{site.backend}/redirect/{status}", init]) == FAILED
    answer = await tab.js(follow, [f"{site.proxy}/redirect/{status}", init])

    landed = f"/redirect/landed?from={status}"
    assert (answer["status"], answer["url"], answer["redirected"]) == (
        200,
        site.proxy + landed,
        True,
    )
    seen = json.loads(answer["body"])
    assert (seen["method"], seen["body"], seen["path"]) == (method, body, landed)


@pytest.mark.parametrize("status", REDIRECTS)
async def test_redirect_left_pointing_at_the_backend_fails(
    servers: Servers, proxies: Proxies, open_page: OpenPage, status: int
):
    """The twin: with `redirects: keep` the browser follows the Location to the backend's own
    origin, which has no CORS, and fetch() rejects."""
    tab = await open_page(servers.page())
    init, _ = REDIRECTS[status]
    url = f"{proxies['redirects kept'].url()}/redirect/{status}"

    assert await tab.js("([url, init]) => follow(url, init)", [url, init]) == FAILED


# ---- Server-Sent Events -------------------------------------------------------------------


def _release(servers: Servers, stream: str, count: int) -> None:
    """Acknowledge every event of a stream from Python, so the backend ends it."""
    for n in range(1, count):
        url = f"{servers.backend('127.0.0.1')}/ack?stream={stream}&n={n}"
        DIRECT.open(url, data=b"").close()


async def test_event_source_gets_each_event_before_the_next_is_produced(
    site: Site, servers: Servers, open_page: OpenPage
):
    """new EventSource(proxy + "/events", {withCredentials: true}): the backend writes event
    n+1 only after the page has POSTed /ack?n=n through the proxy. A proxy that held the
    stream back would leave the page waiting for event 1 (the page gives up after 10 s and
    says "timeout"). Each event says which acks the backend had when it produced it."""
    tab = await open_page(site.page)
    stream = uuid.uuid4().hex[:12]
    listen = "([url, ack]) => eventStream(url, ack)"

    direct = f"{site.backend}/events?stream={stream}-direct"
    try:
        assert await tab.js(listen, [direct, f"{site.backend}/ack?stream={stream}-direct"]) == {
            "events": [],
            "end": "error",
        }
    finally:
        await asyncio.to_thread(_release, servers, f"{stream}-direct", 3)

    url, ack = f"{site.proxy}/events?stream={stream}", f"{site.proxy}/ack?stream={stream}"
    assert await tab.js(listen, [url, ack]) == {
        "events": [
            {"id": "1", "n": 1, "acked_before": []},
            {"id": "2", "n": 2, "acked_before": [1]},
            {"id": "3", "n": 3, "acked_before": [1, 2]},
        ],
        "end": "done",
    }


# ---- WebSocket ---------------------------------------------------------------------------


def _closed(servers: Servers, session: str) -> dict[str, Any]:
    """How the backend saw session end (it answers once the session has ended)."""
    with DIRECT.open(f"{servers.backend('127.0.0.1')}/__ws_closed?id={session}") as answer:
        return json.load(answer)


def _ws(base: str) -> str:
    return "ws" + base.removeprefix("http")


async def test_websocket_relays_text_binary_and_the_pages_close(
    site: Site, servers: Servers, open_page: OpenPage
):
    """Subprotocol negotiated end to end (the page offers chat.v2 and chat.v1, the backend
    takes chat.v1), a text and a binary frame echoed, and the page's close code 4000 with its
    reason 'bye' reaching the backend. Directly the backend gives the same events: WebSocket
    has no CORS, so the direct twin is not a failure but the reference the proxy must match."""
    tab = await open_page(site.page)
    options = {
        "protocols": ["chat.v2", "chat.v1"],
        "send": ["hello", [0, 1, 2, 254, 255]],
        "close": [4000, "bye"],
    }
    expected = [
        "open chat.v1",
        "text hello",
        "binary 0,1,2,254,255",
        # The close event shows the backend's answer: code echoed, no reason of its own.
        "close 4000  clean=true",
    ]
    for base in (site.backend, site.proxy):
        session = uuid.uuid4().hex[:12]
        url = f"{_ws(base)}/ws/session?id={session}"
        events = await tab.js("([url, options]) => websocketSession(url, options)", [url, options])
        assert events == expected, base
        backend_saw = await asyncio.to_thread(_closed, servers, session)
        assert backend_saw == {"protocol": "chat.v1", "code": 4000, "reason": "bye"}, base


async def test_websocket_relays_the_backends_close_code_and_reason(site: Site, open_page: OpenPage):
    """The backend closes with 4001 'server says bye'; the page's onclose sees both."""
    tab = await open_page(site.page)
    options = {"protocols": ["chat.v1"], "send": ["hi", "close me"]}
    expected = ["open chat.v1", "text hi", "close 4001 server says bye clean=true"]
    for base in (site.backend, site.proxy):
        url = f"{_ws(base)}/ws/session?id={uuid.uuid4().hex[:12]}"
        events = await tab.js("([url, options]) => websocketSession(url, options)", [url, options])
        assert events == expected, base

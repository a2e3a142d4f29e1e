"""Cookies the browser will keep (SPEC "Cookies the browser will keep"; issue 17), in Chromium
and in Firefox ESR: the login that Vite's two URLs break, and the cookie verdicts checked
against what each browser really does.

A page opened as http://127.0.0.1:P calls the proxy at http://localhost:Q: two sites, so the
backend's `SameSite=Lax` login cookie is refused by both browsers. With the default config
(`samesite: auto`) the proxy makes it `SameSite=None; Secure; Partitioned`, which both keep and
send back. The twin: the same proxy with `samesite: keep` logs nobody in.
"""

from __future__ import annotations

import json
import urllib.parse
from typing import Any

import pytest
import pytest_asyncio

from corsproxy.cors.cookies import Where, verdict
from tests.e2e.conftest import E2E, Proxies, Servers, unique
from tests.e2e.firefox import Firefox

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

LOGIN = {"method": "POST", "credentials": "include"}
INCLUDE = {"credentials": "include"}
DEVBOX = "devbox.test"  # a LAN name: plain http there is not a secure context


@pytest.fixture(scope="module")
def cookie_proxies(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The zero-config proxy and its `samesite: keep` twin."""
    upstream = servers.backend("127.0.0.1")
    configs = {
        "default": {"upstream": upstream},
        "samesite keep": {"routes": [{"prefix": "/", "upstream": upstream,
                                      "cookies": {"samesite": "keep"}}]},
    }  # fmt: skip
    started = Proxies(tmp_path_factory.mktemp("cookie-proxies"), configs)
    yield started
    started.stop_all()


class ChromiumPage:
    """A page in a fresh Chromium context (its own cookie jar), with the same small API as
    tests/e2e/firefox.py, plus the Set-Cookie headers Chromium received."""

    def __init__(self, context: Any, page: Any) -> None:
        self.context, self.page = context, page
        self.responses: list[Any] = []
        page.on("response", lambda response: self.responses.append(response))

    async def received(self) -> list[str]:
        """Every Set-Cookie value the browser received, in order."""
        values = []
        for response in self.responses:
            for header in await response.headers_array():
                if header["name"].lower() == "set-cookie":
                    values.append(header["value"])
        return values

    async def fetch(self, url: str, **init: Any) -> dict[str, Any]:
        return await self.page.evaluate("([url, init]) => call(url, init)", [url, init])


async def chromium_page(browser: Any, url: str) -> ChromiumPage:
    context = await browser.new_context()
    await context.add_init_script(path=E2E / "static" / "helpers.js")
    page = await context.new_page()
    await page.goto(url)
    return ChromiumPage(context, page)


@pytest_asyncio.fixture(loop_scope="session")
async def fresh_firefox(firefox: Firefox) -> Firefox:
    await firefox.reset()
    return firefox


async def login_then_whoami(tab: Any, proxy: str, path: str = "/login") -> tuple[dict, dict]:
    login = await tab.fetch(proxy + path, **LOGIN)
    assert login.get("status") == 200, login
    seen = await tab.fetch(proxy + "/whoami", **INCLUDE)
    assert seen.get("status") == 200, seen
    return json.loads(login["body"]), json.loads(seen["body"])


# ---- the login from http://127.0.0.1 to http://localhost ------------------------------------


async def test_cross_site_login_works_out_of_the_box_in_chromium(
    servers: Servers, cookie_proxies: Proxies, browser: Any
):
    tab = await chromium_page(browser, servers.page("127.0.0.1"))
    proxy, path = cookie_proxies["default"], unique("/login")
    session, seen = await login_then_whoami(tab, proxy.url(), path)
    assert seen == {"cookie": f"session={session['token']}"}
    assert await tab.received() == [
        f"session={session['token']}; Path=/; HttpOnly; Secure; SameSite=None; Partitioned"
    ]
    [line] = await proxy.logged("POST", path)
    assert "cookie session: SameSite=Lax -> None; Secure (the page http://127.0.0.1:" in line
    assert "refused by safari (Secure over plain http" in line, line

    # The twin: samesite keep passes the Lax cookie on, and Chromium refuses it.
    twin = await chromium_page(browser, servers.page("127.0.0.1"))
    path = unique("/login")
    _, anonymous = await login_then_whoami(twin, cookie_proxies["samesite keep"].url(), path)
    assert anonymous == {"cookie": None}
    [line] = await cookie_proxies["samesite keep"].logged("POST", path)
    assert "cookie session: refused by chromium, firefox, safari (SameSite=Lax on a " in line
    await tab.context.close()
    await twin.context.close()


async def test_cross_site_login_works_out_of_the_box_in_firefox(
    servers: Servers, cookie_proxies: Proxies, fresh_firefox: Firefox
):
    await fresh_firefox.open(servers.page("127.0.0.1"))
    session, seen = await login_then_whoami(fresh_firefox, cookie_proxies["default"].url())
    assert seen == {"cookie": f"session={session['token']}"}
    [cookie] = await fresh_firefox.cookies()
    assert (cookie["name"], cookie["host"], cookie["secure"], cookie["partitionKey"]) == (
        "session",
        "localhost",
        True,
        # Total Cookie Protection: kept for this page only (for an IP address Firefox keys
        # the partition by the port too).
        f"(http,127.0.0.1,{servers.page_ports[0]})",
    )

    await fresh_firefox.reset()
    await fresh_firefox.open(servers.page("127.0.0.1"))
    _, anonymous = await login_then_whoami(fresh_firefox, cookie_proxies["samesite keep"].url())
    assert anonymous == {"cookie": None}


async def test_partitioned_login_is_not_seen_from_localhost(
    servers: Servers, cookie_proxies: Proxies, browser: Any
):
    """docs/cookies.md: a login made from 127.0.0.1:P is not seen from localhost:P (the
    partition is the page's site), in one browser profile."""
    tab = await chromium_page(browser, servers.page("127.0.0.1"))
    proxy = cookie_proxies["default"].url()
    await login_then_whoami(tab, proxy)
    other = await tab.context.new_page()
    await other.goto(servers.page("localhost"))
    seen = await other.evaluate("([url, init]) => call(url, init)", [proxy + "/whoami", INCLUDE])
    assert json.loads(seen["body"]) == {"cookie": None}
    await tab.context.close()


# ---- a same-site page gets the cookie exactly as the upstream sent it ------------------------


async def test_same_site_cookie_reaches_chromium_exactly_as_sent(
    servers: Servers, cookie_proxies: Proxies, browser: Any
):
    tab = await chromium_page(browser, servers.page("localhost"))
    proxy, path = cookie_proxies["default"], unique("/login")
    session, seen = await login_then_whoami(tab, proxy.url(), path)
    sent = f"session={session['token']}; Path=/; HttpOnly; SameSite=Lax"  # servers.login()
    assert await tab.received() == [sent]
    assert seen == {"cookie": f"session={session['token']}"}
    [line] = await proxy.logged("POST", path)
    assert "cookie" not in line, line
    await tab.context.close()


async def test_same_site_cookie_reaches_firefox_as_sent(
    servers: Servers, cookie_proxies: Proxies, fresh_firefox: Firefox
):
    await fresh_firefox.open(servers.page("localhost"))
    session, seen = await login_then_whoami(fresh_firefox, cookie_proxies["default"].url())
    assert seen == {"cookie": f"session={session['token']}"}
    [cookie] = await fresh_firefox.cookies()
    assert (cookie["secure"], cookie["httpOnly"], cookie["partitionKey"]) == (False, True, "")


# ---- the verdicts against the browsers --------------------------------------------------------

# (page host, host the page calls, Set-Cookie as the browser receives it). The page calls the
# backend's /set-cookie directly (it grants CORS itself), so nothing rewrites the cookie.
AGREEMENT = [
    ("localhost", "localhost", "sid=1; SameSite=Lax"),
    ("127.0.0.1", "localhost", "sid=1; SameSite=Lax"),
    ("127.0.0.1", "localhost", "sid=1; SameSite=Strict"),
    ("127.0.0.1", "localhost", "sid=1"),
    ("127.0.0.1", "localhost", "sid=1; Secure; SameSite=None"),
    ("127.0.0.1", "localhost", "sid=1; Secure; SameSite=None; Partitioned"),
    ("localhost", "127.0.0.1", "sid=1; Secure; SameSite=None; Partitioned"),
    ("localhost", "localhost", "sid=1; SameSite=None"),
    ("127.0.0.1", "localhost", "sid=1; SameSite=None"),
    ("localhost", "localhost", "sid=1; Secure"),
    ("127.0.0.1", "127.0.0.1", "sid=1; Secure"),
    (DEVBOX, DEVBOX, "sid=1; Secure"),
    (DEVBOX, DEVBOX, "sid=1; SameSite=Lax"),
    (DEVBOX, DEVBOX, "__Host-sid=1; Path=/"),
    ("localhost", "localhost", "__Host-sid=1; Secure; Path=/"),
    ("localhost", "localhost", "__Host-sid=1; Secure; Path=/api"),
    ("localhost", "localhost", "__host-sid=1; Path=/"),
    ("localhost", "localhost", "__Secure-sid=1"),
    ("localhost", "localhost", "__Secure-sid=1; Secure"),
    ("localhost", "localhost", "sid=1; Domain=api.example.com"),
    ("localhost", "localhost", "sid=1; Domain=localhost"),
    ("localhost", "localhost", "sid=1; Partitioned"),
    ("localhost", "localhost", "sid=1; Secure; Partitioned"),
    ("app.test", "proxy.test", "sid=1; SameSite=None"),
]


def _named(index: int, cookie: str) -> tuple[str, str]:
    """The row's cookie under a name of its own (prefix kept): rows never see each other."""
    name = cookie.split("=", 1)[0] + f"r{index}"
    return name, name + "=" + cookie.split("=", 1)[1]


async def _observed(tab: Any, url: str, cookie: str, name: str) -> bool:
    """Whether the browser sends the cookie back after receiving it."""
    answer = await tab.fetch(f"{url}/set-cookie?c={urllib.parse.quote(cookie)}", **INCLUDE)
    assert answer.get("status") == 200, answer
    seen = json.loads((await tab.fetch(url + "/set-cookie", **INCLUDE))["body"])["cookie"]
    return any(part.split("=", 1)[0] == name for part in (seen or "").split("; "))


async def _agreement(engine: str, servers: Servers, open_page: Any) -> list[tuple]:
    """Each row where the verdict and the browser differ (sent back or not)."""
    wrong = []
    for index, (page_host, host, cookie) in enumerate(AGREEMENT):
        name, named = _named(index, cookie)
        tab = await open_page(servers.page(page_host))
        sent = await _observed(tab, servers.backend(host), named, name)
        where = Where(servers.page(page_host), "http", f"{host}:{servers.backend_port}")
        said = verdict(named, where).get(engine)
        if said.sent != sent:
            wrong.append((page_host, host, cookie, f"{engine} sent={sent}", said.reason or "kept"))
    return wrong


async def test_verdicts_agree_with_chromium(servers: Servers, browser: Any):
    contexts = []

    async def open_page(url: str) -> ChromiumPage:
        contexts.append(tab := await chromium_page(browser, url))
        return tab

    try:
        assert await _agreement("chromium", servers, open_page) == []
    finally:
        for tab in contexts:
            await tab.context.close()


async def test_verdicts_agree_with_firefox(servers: Servers, fresh_firefox: Firefox):
    async def open_page(url: str) -> Firefox:
        await fresh_firefox.open(url)
        return fresh_firefox

    assert await _agreement("firefox", servers, open_page) == []

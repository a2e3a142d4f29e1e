"""Backends that check where requests come from: the log's hint, and the fix it names.

The backend does what Go 1.25's http.CrossOriginProtection.Check does (src/net/http/csrf.go):
unsafe methods are refused when Sec-Fetch-Site is present and is not same-origin or none, or,
without Sec-Fetch-Site, when Origin is present and its host[:port] is not the Host header.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
from aiohttp import web

from corsproxy.proxy.hints import origin_check_hint
from tests.conftest import ORIGIN


def cross_origin_protection(request: web.Request) -> str | None:
    """Why Go's CrossOriginProtection refuses the request, or None when it passes."""
    if request.method in ("GET", "HEAD", "OPTIONS"):
        return None
    site = request.headers.get("Sec-Fetch-Site", "")
    if site in ("same-origin", "none"):
        return None
    if site:
        return "cross-origin request detected from Sec-Fetch-Site header"
    origin = request.headers.get("Origin", "")
    if not origin or urlsplit(origin).netloc == request.host:
        return None
    return "cross-origin request detected, and/or browser is out of date"


def go_backend() -> web.Application:
    async def handler(request: web.Request) -> web.Response:
        refused = cross_origin_protection(request)
        if refused is not None:
            return web.Response(status=403, text=refused + "\n")
        return web.json_response({"saved": True, "origin": request.headers.get("Origin")})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    return app


# What Chromium sends on a cross-site fetch() POST (and an older browser: no Sec-Fetch-*).
BROWSER = {"Origin": ORIGIN, "Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "cors"}
OLD_BROWSER = {"Origin": ORIGIN}
HINT = (
    "a 403 to a POST from an allowed page looks like the backend's origin check "
    "(Django CSRF, Spring Security, Rails, Go's http.CrossOriginProtection); "
    "routes[0].origin_header: upstream presents the backend's own origin"
)


@pytest.mark.parametrize("headers", [BROWSER, OLD_BROWSER], ids=["sec-fetch-site", "origin only"])
async def test_origin_check_403_gets_the_hint_and_origin_header_upstream_passes(
    aiohttp_server, start_proxy, client, headers
):
    upstream = await aiohttp_server(go_backend())
    base = str(upstream.make_url("")).rstrip("/")
    kept = await start_proxy(base)
    async with client.post(kept.url + "/items", headers=headers, data=b"{}") as resp:
        assert resp.status == 403
        assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN  # readable by the page
    [line] = kept.log.splitlines()
    assert HINT in line and " -> 403 " in line, line

    fixed = await start_proxy(base, origin_header="upstream")
    async with client.post(fixed.url + "/items", headers=headers, data=b"{}") as resp:
        assert resp.status == 200
        assert await resp.json() == {"saved": True, "origin": base}
    assert "origin check" not in fixed.log


async def test_no_hint_for_a_refused_page_or_a_safe_method(aiohttp_server, start_proxy, client):
    """A refused page's request reaches the backend untouched (its check still stops it), and
    the log says nothing about origin_header; a GET's 403 is not an origin check's."""
    upstream = await aiohttp_server(go_backend())
    proxy = await start_proxy(str(upstream.make_url("")).rstrip("/"), origin_header="upstream")
    evil = {"Origin": "http://evil.example", "Sec-Fetch-Site": "cross-site"}
    async with client.post(proxy.url + "/items", headers=evil, data=b"{}") as resp:
        assert resp.status == 403
    assert "origin check" not in proxy.log


HINT_ROWS = [
    ("a POST refused with 403 from an allowed page gets the hint", "POST", 403, True, "keep", True),
    ("a DELETE likewise", "DELETE", 403, True, "keep", True),
    ("a GET's 403 is not an origin check", "GET", 403, True, "keep", False),
    ("a 401 is a login question, not an origin check", "POST", 401, True, "keep", False),
    ("a refused page gets no hint", "POST", 403, False, "keep", False),
    ("origin_header upstream already presents the backend's origin", "POST", 403, True,
     "upstream", False),
    ("origin_header strip sends no Origin: no hint", "PUT", 403, True, "strip", False),
]  # fmt: skip


@pytest.mark.parametrize(
    "method,status,allowed,mode,hinted", [r[1:] for r in HINT_ROWS], ids=[r[0] for r in HINT_ROWS]
)
def test_origin_check_hint(method, status, allowed, mode, hinted):
    assert (origin_check_hint(method, status, allowed, mode, 2) is not None) == hinted

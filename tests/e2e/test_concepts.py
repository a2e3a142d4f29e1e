"""Each CORS concept and header, before and after: the page's request fails against the
backend directly (JavaScript gets a TypeError) and succeeds through corsproxy.

Most tests run twice (the `site` fixture): from http://localhost (zero config) and from the
cross-site http://app.test page to the proxy addressed as http://proxy.test.
"""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import FAILED, OpenPage, Proxies, Servers, Site, unique

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]


async def test_simple_get_is_readable_only_through_the_proxy(site: Site, open_page: OpenPage):
    """Origin and Access-Control-Allow-Origin: a simple GET, no preflight."""
    tab = await open_page(site.page)
    path = unique("/api/items")

    assert await tab.fetch(site.backend + path) == FAILED
    status, body = await tab.fetch_json(site.proxy + path)

    assert (status, body) == (200, ["alpha", "beta", "gamma"])
    await site.log.logged("GET", path)  # a preflight would have been logged before it
    assert site.log.requests("OPTIONS", path) == []  # a simple request sends none


async def test_the_backend_sees_the_pages_origin(site: Site, open_page: OpenPage):
    """Origin: Chromium sends it on a cross-origin request; the proxy forwards it unchanged."""
    tab = await open_page(site.page)

    assert await tab.fetch(site.backend + "/api/echo") == FAILED
    _, seen = await tab.fetch_json(site.proxy + "/api/echo")

    assert seen["origin"] == site.page


async def test_json_post_is_preflighted_and_answered_by_the_proxy(site: Site, open_page: OpenPage):
    """Access-Control-Request-Method/-Headers asked, Access-Control-Allow-Methods/-Headers
    granted: Content-Type application/json is not safelisted, so Chromium preflights."""
    tab = await open_page(site.page)
    path = unique("/api/echo")
    init = {
        "method": "POST",
        "headers": {"Content-Type": "application/json", "X-Custom": "yes"},
        "body": json.dumps({"name": "Ada"}),
    }

    assert await tab.fetch(site.backend + path, **init) == FAILED
    status, seen = await tab.fetch_json(site.proxy + path, **init)

    assert status == 200
    assert (seen["method"], seen["content_type"], seen["x_custom"]) == (
        "POST",
        "application/json",
        "yes",
    )
    assert json.loads(seen["body"]) == {"name": "Ada"}
    [preflight] = await site.log.logged("OPTIONS", path)  # answered by the proxy itself
    assert " preflight (origin allowed by " in preflight and " -> 204 " in preflight


@pytest.mark.parametrize("method", ["PUT", "DELETE"])
async def test_put_and_delete_with_authorization(site: Site, open_page: OpenPage, method: str):
    """A non-safelisted method and the Authorization header, granted by the proxy's preflight.
    (Fetch says `*` in Access-Control-Allow-Headers never covers Authorization, but Chromium
    156 still lets it without credentials; the credentialed test below catches a `*`.)"""
    tab = await open_page(site.page)
    init = {"method": method, "headers": {"Authorization": "Bearer t0ken"}}

    assert await tab.fetch(site.backend + "/api/echo", **init) == FAILED
    status, seen = await tab.fetch_json(site.proxy + "/api/echo", **init)

    assert (status, seen["method"], seen["authorization"]) == (200, method, "Bearer t0ken")


async def test_credentialed_preflight_is_granted_by_name(site: Site, open_page: OpenPage):
    """Under credentials a `*` in Access-Control-Allow-Methods/-Headers is a literal name, not
    a wildcard: a credentialed PUT with a custom header passes only because the proxy echoes
    `PUT` and `x-custom` by name (and Access-Control-Allow-Credentials: true on both)."""
    tab = await open_page(site.page)
    init = {"method": "PUT", "credentials": "include", "headers": {"X-Custom": "c"}, "body": "b"}

    assert await tab.fetch(site.backend + "/api/echo", **init) == FAILED
    status, seen = await tab.fetch_json(site.proxy + "/api/echo", **init)

    assert (status, seen["method"], seen["x_custom"], seen["body"]) == (200, "PUT", "c", "b")


async def test_lowercase_patch_reaches_the_backend(site: Site, open_page: OpenPage):
    """fetch() upper-cases only DELETE, GET, HEAD, OPTIONS, POST and PUT: `patch` stays
    lowercase on the wire and is preflighted as `patch` (Access-Control-Allow-Methods must
    name it in that case). The backend's own aiohttp parser upper-cases what it receives, so
    the case it arrived in is not checked here."""
    tab = await open_page(site.page)
    init = {"method": "patch", "headers": {"Content-Type": "application/json"}, "body": "{}"}

    assert await tab.fetch(site.backend + "/api/echo", **init) == FAILED
    status, seen = await tab.fetch_json(site.proxy + "/api/echo", **init)

    assert (status, seen["method"].lower()) == (200, "patch")


async def test_custom_response_header_is_readable_through_the_proxy(
    site: Site, open_page: OpenPage
):
    """Access-Control-Expose-Headers: X-Total-Count is not safelisted; the default
    `expose_headers: "*"` lists it by name, so JavaScript reads it."""
    tab = await open_page(site.page)

    assert await tab.fetch(site.backend + "/api/items") == FAILED
    exposed = await tab.fetch(site.proxy + "/api/items")

    assert exposed["headers"]["x-total-count"] == "3"


async def test_custom_response_header_is_unreadable_when_not_exposed(
    servers: Servers, proxies: Proxies, open_page: OpenPage
):
    """The twin: `expose_headers: [X-Request-Id]` leaves X-Total-Count out, and JavaScript
    reads the response but not that header."""
    tab = await open_page(servers.page())

    listed = await tab.fetch(proxies["expose a list"].url() + "/api/items")

    assert (listed["status"], listed["body"]) == (200, '["alpha", "beta", "gamma"]')
    assert listed["headers"]["x-request-id"] == "req-1"
    assert "x-total-count" not in listed["headers"]


async def test_credentialed_login_cookie_is_sent_back(
    servers: Servers, proxies: Proxies, open_page: OpenPage
):
    """Access-Control-Allow-Credentials: with `credentials: 'include'` the login's Set-Cookie is
    stored and sent back on the next credentialed request. Same-site (localhost page, localhost
    proxy): over plain http a cross-site cookie would need SameSite=None; Secure."""
    tab = await open_page(servers.page())
    include = {"credentials": "include"}
    login = {"method": "POST", "credentials": "include"}
    proxy = proxies["default"].url()

    assert await tab.fetch(servers.backend() + "/login", **login) == FAILED
    assert await tab.fetch(servers.backend() + "/whoami", **include) == FAILED

    _, session = await tab.fetch_json(proxy + "/login", **login)
    _, seen = await tab.fetch_json(proxy + "/whoami", **include)
    assert seen == {"cookie": f"session={session['token']}"}
    _, anonymous = await tab.fetch_json(proxy + "/whoami")  # credentials 'same-origin': none
    assert anonymous == {"cookie": None}

    # The twin: the same proxy with allow_credentials: false, so the browser blocks the
    # credentialed request (the cookie it would carry is there).
    assert await tab.fetch(proxies["no credentials"].url() + "/whoami", **include) == FAILED


async def test_preflight_is_cached_for_max_age(
    servers: Servers, proxies: Proxies, open_page: OpenPage
):
    """Access-Control-Max-Age: the same preflighted request twice sends one preflight under
    the default (600 s) and two with max_age 0. Counted in the proxy's access log."""
    tab = await open_page(servers.page())
    init = {"method": "PUT", "headers": {"X-Custom": "1"}, "body": "x"}

    assert await tab.fetch(servers.backend() + unique("/api/echo"), **init) == FAILED

    for name, preflights in (("default", 1), ("max_age 0", 2)):
        proxy = proxies[name]
        path = unique("/api/echo")
        for _ in range(2):
            status, _ = await tab.fetch_json(proxy.url() + path, **init)
            assert status == 200
        # Both PUTs logged, so any preflight for the second one is logged before it.
        await proxy.logged("PUT", path, count=2)
        assert len(proxy.requests("OPTIONS", path)) == preflights, name


async def test_vary_origin_keeps_a_cached_answer_from_another_origin(
    servers: Servers, proxies: Proxies, open_page: OpenPage
):
    """Vary: the backend reflects the Origin on a cacheable response but forgets Vary: Origin.
    Two origins of one site share the HTTP cache: directly, the second page gets the first
    page's cached Access-Control-Allow-Origin and is blocked; through the proxy (which merges
    Vary: Origin) Chromium fetches again and both pages read the answer."""
    first = await open_page(servers.page())
    second = await open_page(servers.page(second=True))

    direct = unique("/wrong/reflect-without-vary")
    assert (await first.fetch(servers.backend() + direct))["status"] == 200
    assert await second.fetch(servers.backend() + direct) == FAILED
    assert servers.hits(direct) == 1  # the second page was served from the cache

    through = unique("/wrong/reflect-without-vary")
    proxy = proxies["default"].url()
    _, one = await first.fetch_json(proxy + through)
    _, two = await second.fetch_json(proxy + through)
    assert (one["origin"], two["origin"]) == (servers.page(), servers.page(second=True))
    assert servers.hits(through) == 2

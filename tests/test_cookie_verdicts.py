"""Table tests for cors/cookies.py (will each browser keep the cookie?) and cors/sites.py.

Each row: the Set-Cookie as the browser receives it, the page's origin, how the browser
reached the proxy, and for chromium, firefox and safari either "kept" or the start of the
reason it is refused. The rows marked (browser) are also run in Chromium and Firefox by
tests/e2e/test_cookie_login.py::test_verdicts_agree_with_the_browsers.
"""

from __future__ import annotations

import pytest

from corsproxy.cors.cookies import Where, parse_set_cookie, verdict
from corsproxy.cors.sites import is_public_suffix, registrable_domain, site_of_origin

PAGE_127 = "http://127.0.0.1:5173"
PAGE_LOCAL = "http://localhost:5173"
LOCAL = ("http", "localhost:8080")
IP = ("http", "127.0.0.1:8080")
LAN = ("http", "devbox.test:8080")
TLS = ("https", "localhost:8443")
KEPT = "kept"

# (id, cookie, page, (scheme, host), chromium, firefox, safari)
ROWS = [
    ("a same-site Lax login cookie is kept everywhere",
     "sid=1; Path=/; HttpOnly; SameSite=Lax", PAGE_LOCAL, LOCAL, KEPT, KEPT, KEPT),
    ("a Lax cookie from a cross-site response is refused everywhere",
     "sid=1; SameSite=Lax", PAGE_127, LOCAL,
     "SameSite=Lax on a cross-site response", "SameSite=Lax on a cross-site response",
     "SameSite=Lax on a cross-site response"),
    ("a Strict cookie likewise", "sid=1; SameSite=Strict", PAGE_127, LOCAL,
     "SameSite=Strict on", "SameSite=Strict on", "SameSite=Strict on"),
    ("no SameSite is Lax in Chromium and None in Firefox, cross-site",
     "sid=1", PAGE_127, LOCAL, "no SameSite, so Lax", KEPT,
     "Safari blocks third-party cookies"),
    ("an unpartitioned third-party None; Secure cookie is refused by Chromium",
     "sid=1; Secure; SameSite=None", PAGE_127, LOCAL,
     "a third-party cookie without Partitioned", KEPT, "Secure over plain http"),
    ("what samesite auto makes of it is kept by Chromium and Firefox",
     "sid=1; Secure; SameSite=None; Partitioned", PAGE_127, LOCAL, KEPT, KEPT,
     "Secure over plain http, which Safari refuses even on localhost"),
    ("over https the partitioned cookie is kept by Chromium and Firefox, blocked by Safari",
     "sid=1; Secure; SameSite=None; Partitioned", PAGE_127, TLS, KEPT, KEPT,
     "Safari blocks third-party cookies"),
    ("over https an unpartitioned third-party cookie is blocked by Safari",
     "sid=1; Secure; SameSite=None", PAGE_127, TLS,
     "a third-party cookie without Partitioned", KEPT, "Safari blocks third-party cookies"),
    ("SameSite=None without Secure is refused by Chromium and Firefox",
     "sid=1; SameSite=None", PAGE_LOCAL, LOCAL,
     "SameSite=None without Secure", "SameSite=None without Secure", KEPT),
    ("Secure on http://localhost is kept by Chromium and Firefox, not Safari",
     "sid=1; Secure", PAGE_LOCAL, LOCAL, KEPT, KEPT, "Secure over plain http"),
    ("Secure on http://127.0.0.1 likewise", "sid=1; Secure", "http://127.0.0.1:5173", IP,
     KEPT, KEPT, "Secure over plain http"),
    ("Secure over plain http on a LAN name is refused everywhere",
     "sid=1; Secure", "http://devbox.test:5173", LAN,
     "Secure over plain http on devbox.test", "Secure over plain http on devbox.test",
     "Secure over plain http"),
    ("a __Host- cookie without Secure is refused",
     "__Host-sid=1; Path=/", "http://devbox.test:5173", LAN,
     "a __Host- cookie needs Secure", "a __Host- cookie needs Secure",
     "a __Host- cookie needs Secure"),
    ("a __Host- cookie with Secure and Path=/ is kept on localhost",
     "__Host-sid=1; Secure; Path=/", PAGE_LOCAL, LOCAL, KEPT, KEPT, "Secure over plain http"),
    ("a __Host- cookie needs Path=/", "__Host-sid=1; Secure; Path=/api", PAGE_LOCAL, LOCAL,
     "a __Host- cookie needs Path=/", "a __Host- cookie needs Path=/",
     "Secure over plain http"),
    ("a __Host- cookie may not have a Domain",
     "__Host-sid=1; Secure; Path=/; Domain=localhost", PAGE_LOCAL, TLS,
     "a __Host- cookie may not have a Domain", "a __Host- cookie may not have a Domain",
     "a __Host- cookie may not have a Domain"),
    ("the prefix is matched without regard to case", "__host-sid=1; Path=/", PAGE_LOCAL, LOCAL,
     "a __Host- cookie needs Secure", "a __Host- cookie needs Secure",
     "a __Host- cookie needs Secure"),
    ("a __Secure- cookie without Secure is refused", "__Secure-sid=1", PAGE_LOCAL, LOCAL,
     "a __Secure- cookie needs Secure", "a __Secure- cookie needs Secure",
     "a __Secure- cookie needs Secure"),
    ("a __Secure- cookie with Secure is kept on localhost", "__Secure-sid=1; Secure",
     PAGE_LOCAL, LOCAL, KEPT, KEPT, "Secure over plain http"),
    ("a Domain of another site is refused", "sid=1; Domain=api.example.com", PAGE_LOCAL, LOCAL,
     "Domain=api.example.com does not match the host localhost",
     "Domain=api.example.com does not match", "Domain=api.example.com does not match"),
    ("a Domain equal to the host is kept", "sid=1; Domain=localhost", PAGE_LOCAL, LOCAL,
     KEPT, KEPT, KEPT),
    ("a parent Domain of the host is kept", "sid=1; Domain=.example.test",
     "http://app.example.test:5173", ("http", "api.example.test:8080"), KEPT, KEPT, KEPT),
    ("a Domain that is a public suffix is refused", "sid=1; Domain=co.uk",
     "https://app.example.co.uk", ("https", "api.example.co.uk"),
     "Domain=co.uk does not match", "Domain=co.uk does not match",
     "Domain=co.uk does not match"),
    ("an IP host matches no parent Domain", "sid=1; Domain=0.0.1", "http://127.0.0.1:5173", IP,
     "Domain=0.0.1 does not match", "Domain=0.0.1 does not match",
     "Domain=0.0.1 does not match"),
    ("Partitioned without Secure is refused by Chromium and Safari; Firefox ESR ignores it",
     "sid=1; Partitioned", PAGE_LOCAL, LOCAL,
     "Partitioned without Secure", KEPT, "Partitioned without Secure"),
    ("a null page is another site than any", "sid=1; SameSite=Lax", "null", LOCAL,
     "SameSite=Lax on a cross-site response (the page's site null",
     "SameSite=Lax on a cross-site response", "SameSite=Lax on a cross-site response"),
    ("no page is the proxy's own page: same-site", "sid=1; SameSite=Strict", None, LOCAL,
     KEPT, KEPT, KEPT),
    ("http and https of one host are two sites",
     "sid=1; SameSite=Lax", "http://localhost:5173", TLS,
     "SameSite=Lax on a cross-site response", "SameSite=Lax on a cross-site response",
     "SameSite=Lax on a cross-site response"),
    ("two ports of one host are one site", "sid=1; SameSite=Strict", "http://localhost:3000",
     LOCAL, KEPT, KEPT, KEPT),
    ("two subdomains of one .test name are one site", "sid=1; SameSite=Lax",
     "http://app.shop.test:5173", ("http", "api.shop.test:8080"), KEPT, KEPT, KEPT),
    ("an unknown SameSite value counts as none", "sid=1; SameSite=Loose", PAGE_127, LOCAL,
     "no SameSite, so Lax", KEPT, "Safari blocks third-party cookies"),
]  # fmt: skip


def _expect(got, wanted: str) -> None:
    if wanted == KEPT:
        assert (got.stored, got.sent, got.refused, got.reason) == (True, True, False, "")
    else:
        assert (got.stored, got.sent, got.refused) == (False, False, True), got
        assert got.reason.startswith(wanted), got.reason


@pytest.mark.parametrize(
    "cookie,page,proxy,chromium,firefox,safari", [r[1:] for r in ROWS], ids=[r[0] for r in ROWS]
)
def test_verdict(cookie, page, proxy, chromium, firefox, safari):
    found = verdict(cookie, Where(page, *proxy))
    for browser, wanted in (("chromium", chromium), ("firefox", firefox), ("safari", safari)):
        _expect(found.get(browser), wanted)


def test_a_cross_site_cookie_is_kept_in_the_page_sites_partition():
    found = verdict("sid=1; Secure; SameSite=None; Partitioned", Where(PAGE_127, *LOCAL))
    assert found.cross_site and found.page_site == "http://127.0.0.1"
    assert found.get("chromium").partition == "http://127.0.0.1"
    assert found.get("firefox").partition == "http://127.0.0.1"  # Total Cookie Protection
    same = verdict("sid=1; Secure; SameSite=None", Where(PAGE_LOCAL, *LOCAL))
    assert [b.partition for b in same.browsers] == [None, None, None]


@pytest.mark.parametrize(
    "cookie",
    ["sid=; Max-Age=0", "sid=; Expires=Thu, 01 Jan 1970 00:00:00 GMT"],
    ids=["Max-Age=0", "Expires in the past"],
)
def test_a_deletion_is_not_a_refusal(cookie):
    found = verdict(cookie, Where(PAGE_LOCAL, *LOCAL), now=1_800_000_000)
    assert found.deletes and found.refusals() == [] and found.summary() == ""
    assert all(not b.stored and b.reason.startswith("it deletes") for b in found.browsers)


def test_a_refused_deletion_is_a_refusal():
    found = verdict("sid=; Max-Age=0; Secure", Where(PAGE_LOCAL, *LOCAL))
    assert found.refusals() == [
        ("safari", "Secure over plain http, which Safari refuses even on localhost")
    ]


def test_summary_groups_browsers_by_reason_and_as_dict_is_plain_data():
    found = verdict("sid=1; SameSite=Lax", Where(PAGE_127, *LOCAL))
    assert found.summary() == (
        "refused by chromium, firefox, safari (SameSite=Lax on a cross-site response "
        "(the page's site http://127.0.0.1 is not http://localhost))"
    )
    data = found.as_dict()
    assert data["name"] == "sid" and data["cross_site"] is True
    assert data["browsers"][0] == {
        "browser": "chromium",
        "stored": False,
        "sent": False,
        "reason": "SameSite=Lax on a cross-site response "
        "(the page's site http://127.0.0.1 is not http://localhost)",
        "refused": True,
        "partition": None,
    }


def test_parse_set_cookie_takes_the_last_of_each_attribute():
    cookie = parse_set_cookie("a=b=c; SameSite=Lax; samesite=none; DOMAIN=.Example.test; secure")
    assert (cookie.name, cookie.samesite, cookie.domain, cookie.secure) == (
        "a",
        "none",
        "example.test",
        True,
    )


SITE_ROWS = [
    ("localhost is its own site", "localhost", "localhost"),
    ("an IPv4 address is its own site", "127.0.0.1", "127.0.0.1"),
    ("an IPv6 address is its own site", "[::1]", "[::1]"),
    ("a .localhost name keeps two labels", "app.localhost", "app.localhost"),
    ("a subdomain belongs to its parent", "api.example.com", "example.com"),
    ("a name under co.uk keeps three labels", "api.example.co.uk", "example.co.uk"),
    ("a github.io page is its own site", "me.github.io", "me.github.io"),
    ("a one-label LAN name is its own site", "devbox", "devbox"),
    ("a trailing dot and case are ignored", "API.Example.COM.", "example.com"),
]


@pytest.mark.parametrize("host,domain", [r[1:] for r in SITE_ROWS], ids=[r[0] for r in SITE_ROWS])
def test_registrable_domain(host, domain):
    assert registrable_domain(host) == domain


def test_sites_of_origins_and_public_suffixes():
    assert site_of_origin("http://127.0.0.1:5173") == "http://127.0.0.1"
    assert site_of_origin("https://a.b.example.com:8443") == "https://example.com"
    assert site_of_origin("null") is None
    assert [is_public_suffix(d) for d in ("com", "co.uk", "localhost", "example.com")] == [
        True,
        True,
        False,
        False,
    ]

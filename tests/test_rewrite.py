"""Table tests for Set-Cookie and Location rewriting."""

from __future__ import annotations

import pytest

from corsproxy.config.model import Cookies
from corsproxy.proxy.rewrite import (
    BrowserSide,
    RouteMap,
    response_headers,
    rewrite_cookie,
    rewrite_location,
)

LOCAL = BrowserSide("http", "localhost:8080")
LAN = BrowserSide("http", "devbox.lan:8080")
TLS = BrowserSide("https", "devbox.lan:8443")
ROOT = RouteMap("http://localhost:8000", "", False)
API = RouteMap("http://localhost:8000", "/api", True)
STAGING = RouteMap("https://staging.example.com/base", "/stg", True)
ROUTES = (API, STAGING, ROOT)

LOGIN = "sid=abc; Domain=backend.example; Path=/; Secure; HttpOnly; SameSite=None"
COOKIE_ROWS = [
    (
        "defaults on localhost drop only the Domain",
        LOGIN,
        Cookies(),
        LOCAL,
        ROOT,
        "sid=abc; Path=/; HttpOnly; Secure; SameSite=None",
        ["cookie sid: Domain=backend.example dropped"],
    ),
    (
        "defaults on a LAN host over http drop Secure and turn None into Lax",
        LOGIN,
        Cookies(),
        LAN,
        ROOT,
        "sid=abc; Path=/; HttpOnly; SameSite=Lax",
        [
            "cookie sid: Domain=backend.example dropped, Secure dropped (the browser reached the "
            "proxy over plain http), SameSite=None -> Lax (None needs Secure)"
        ],
    ),
    (
        "https keeps Secure and SameSite=None",
        LOGIN,
        Cookies(),
        TLS,
        ROOT,
        "sid=abc; Path=/; HttpOnly; Secure; SameSite=None",
        ["cookie sid: Domain=backend.example dropped"],
    ),
    (
        "secure keep keeps Secure even on a LAN host",
        LOGIN,
        Cookies(secure="keep"),
        LAN,
        ROOT,
        "sid=abc; Path=/; HttpOnly; Secure; SameSite=None",
        ["cookie sid: Domain=backend.example dropped"],
    ),
    (
        "secure strip drops it everywhere",
        LOGIN,
        Cookies(secure="strip"),
        LOCAL,
        ROOT,
        "sid=abc; Path=/; HttpOnly; SameSite=Lax",
        [
            "cookie sid: Domain=backend.example dropped, Secure dropped (the browser reached the "
            "proxy over plain http), SameSite=None -> Lax (None needs Secure)"
        ],
    ),
    (
        "domain keep leaves it",
        "a=1; Domain=x.example",
        Cookies(domain="keep"),
        LOCAL,
        ROOT,
        "a=1; Domain=x.example",
        [],
    ),
    (
        "a configured domain replaces it",
        "a=1; Domain=x.example",
        Cookies(domain="app.test"),
        LOCAL,
        ROOT,
        "a=1; Domain=app.test",
        ["cookie a: Domain=x.example -> app.test"],
    ),
    (
        "a configured domain is added",
        "a=1",
        Cookies(domain="app.test"),
        LOCAL,
        ROOT,
        "a=1; Domain=app.test",
        ["cookie a: Domain=app.test set"],
    ),
    (
        "samesite lax is forced",
        "a=1; SameSite=Strict",
        Cookies(samesite="lax"),
        LOCAL,
        ROOT,
        "a=1; SameSite=Lax",
        ["cookie a: SameSite=Strict -> Lax"],
    ),
    (
        "samesite none adds Secure where the browser accepts it",
        "a=1",
        Cookies(samesite="none"),
        LOCAL,
        ROOT,
        "a=1; Secure; SameSite=None",
        ["cookie a: SameSite=(none) -> None, Secure added (SameSite=None needs it)"],
    ),
    (
        "samesite none on a LAN host over http becomes Lax",
        "a=1",
        Cookies(samesite="none"),
        LAN,
        ROOT,
        "a=1; SameSite=Lax",
        ["cookie a: SameSite=(none) -> None, SameSite=None -> Lax (None needs Secure)"],
    ),
    (
        "strip_prefix puts the prefix on Path",
        "a=1; Path=/users",
        Cookies(),
        LOCAL,
        API,
        "a=1; Path=/api/users",
        ["cookie a: Path=/users -> /api/users"],
    ),
    (
        "strip_prefix turns Path=/ into the prefix",
        "a=1; Path=/",
        Cookies(),
        LOCAL,
        API,
        "a=1; Path=/api",
        ["cookie a: Path=/ -> /api"],
    ),
    ("a plain cookie is untouched", "theme=dark", Cookies(), LOCAL, ROOT, "theme=dark", []),
    (
        "an Expires date with a comma is kept",
        "a=1; Expires=Wed, 21 Oct 2026 07:28:00 GMT",
        Cookies(),
        LOCAL,
        ROOT,
        "a=1; Expires=Wed, 21 Oct 2026 07:28:00 GMT",
        [],
    ),
]


@pytest.mark.parametrize(
    "value,rules,browser,route,expected,notes",
    [r[1:] for r in COOKIE_ROWS],
    ids=[r[0] for r in COOKIE_ROWS],
)
def test_rewrite_cookie(value, rules, browser, route, expected, notes):
    assert rewrite_cookie(value, rules, browser, route) == (expected, notes)


LOCATION_ROWS = [
    (
        "absolute upstream URL comes back to the proxy",
        "http://localhost:8000/login?next=/a",
        ROOT,
        "http://localhost:8080/login?next=/a",
    ),
    (
        "absolute URL of a stripped route gets its prefix",
        "http://localhost:8000/users/1",
        API,
        "http://localhost:8080/api/users/1",
    ),
    ("scheme-relative URL comes back", "//localhost:8000/x", API, "http://localhost:8080/api/x"),
    ("root-relative with strip_prefix gets the prefix", "/users", API, "/api/users"),
    ("root-relative without strip_prefix is already right", "/users", ROOT, None),
    (
        "the upstream root alone maps to the prefix",
        "http://localhost:8000",
        API,
        "http://localhost:8080/api",
    ),
    (
        "another route's upstream maps to that route",
        "https://staging.example.com/base/x",
        API,
        "http://localhost:8080/stg/x",
    ),
    (
        "outside another route's base path is left alone",
        "https://staging.example.com/other",
        API,
        None,
    ),
    ("a base-path lookalike is left alone", "https://staging.example.com/basement", API, None),
    ("upper-case host still matches", "http://LOCALHOST:8000/x", ROOT, "http://localhost:8080/x"),
    ("a foreign host is left alone", "https://accounts.example.org/login", ROOT, None),
    ("a relative reference is left alone", "next/page", API, None),
]


@pytest.mark.parametrize(
    "value,route,expected", [r[1:] for r in LOCATION_ROWS], ids=[r[0] for r in LOCATION_ROWS]
)
def test_rewrite_location(value, route, expected):
    assert rewrite_location(value, LOCAL, route, ROUTES) == expected


def test_every_set_cookie_stays_its_own_field():
    headers = [("Set-Cookie", "a=1; Domain=x"), ("Set-Cookie", "b=2"), ("X", "y")]
    out, notes = response_headers(headers, 200, Cookies(), "rewrite", LOCAL, ROOT, ROUTES)
    assert out == [("Set-Cookie", "a=1"), ("Set-Cookie", "b=2"), ("X", "y")]
    assert notes == ["cookie a: Domain=x dropped"]


@pytest.mark.parametrize(
    "status,redirects,rewritten",
    [
        (302, "rewrite", True),
        (303, "rewrite", True),
        (307, "rewrite", True),
        (201, "rewrite", True),
        (200, "rewrite", False),
        (302, "keep", False),
    ],
    ids=[
        "302 rewritten",
        "303 rewritten",
        "307 rewritten",
        "201 rewritten",
        "200 Content-Location untouched",
        "redirects keep leaves it",
    ],
)
def test_location_only_on_201_and_3xx(status, redirects, rewritten):
    headers = [("Location", "http://localhost:8000/next")]
    out, _ = response_headers(headers, status, Cookies(), redirects, LOCAL, ROOT, ROUTES)
    assert out[0][1] == (
        "http://localhost:8080/next" if rewritten else "http://localhost:8000/next"
    )


def test_foreign_redirect_is_logged():
    headers = [("Location", "https://sso.example.org/")]
    _, notes = response_headers(headers, 302, Cookies(), "rewrite", LOCAL, ROOT, ROUTES)
    assert notes == ["Location left alone (not a configured upstream): https://sso.example.org/"]


PAGE_127 = "http://127.0.0.1:5173"
AUTO_ROWS = [
    (
        "a cross-site page's Lax cookie becomes None, Secure and Partitioned",
        "session=x; Path=/; HttpOnly; SameSite=Lax",
        Cookies(),
        PAGE_127,
        LOCAL,
        "session=x; Path=/; HttpOnly; Secure; SameSite=None; Partitioned",
        [
            "cookie session: SameSite=Lax -> None; Secure (the page http://127.0.0.1:5173 is "
            "cross-site), Partitioned added (a third-party cookie for the page)"
        ],
    ),
    (
        "a cross-site page's cookie without SameSite likewise",
        "session=x",
        Cookies(),
        "http://app.test:5173",
        TLS,
        "session=x; Secure; SameSite=None; Partitioned",
        [
            "cookie session: SameSite=(none) -> None; Secure (the page http://app.test:5173 is "
            "cross-site), Partitioned added (a third-party cookie for the page)"
        ],
    ),
    (
        "a cross-site None; Secure cookie only gains Partitioned",
        "session=x; Secure; SameSite=None",
        Cookies(),
        PAGE_127,
        LOCAL,
        "session=x; Secure; SameSite=None; Partitioned",
        ["cookie session: Partitioned added (a third-party cookie for the page)"],
    ),
    (
        "an already partitioned cross-site cookie is left as sent",
        "session=x; Secure; SameSite=None; Partitioned",
        Cookies(),
        PAGE_127,
        LOCAL,
        "session=x; Secure; SameSite=None; Partitioned",
        [],
    ),
    (
        "a same-site page's cookie is left exactly as sent",
        "session=x; path=/; httponly; samesite=lax",
        Cookies(),
        "http://localhost:5173",
        LOCAL,
        "session=x; path=/; httponly; samesite=lax",
        [],
    ),
    (
        "no page (no Origin, or a refused one): left as sent",
        "session=x; SameSite=Strict",
        Cookies(),
        None,
        LOCAL,
        "session=x; SameSite=Strict",
        [],
    ),
    (
        "over plain http on a LAN name a cross-site cookie is kept, and why is said",
        "session=x; SameSite=Lax",
        Cookies(),
        "http://app.test:5173",
        LAN,
        "session=x; SameSite=Lax",
        [
            "cookie session: SameSite=Lax kept although the page http://app.test:5173 is "
            "cross-site: SameSite=None needs Secure, which the browser refuses over plain http "
            "on devbox.lan (serve the proxy over https, or open the page on the proxy's site)"
        ],
    ),
    (
        "secure strip keeps a cross-site cookie as it is, and says why",
        "session=x; SameSite=Lax",
        Cookies(secure="strip"),
        PAGE_127,
        LOCAL,
        "session=x; SameSite=Lax",
        [
            "cookie session: SameSite=Lax kept although the page http://127.0.0.1:5173 is "
            "cross-site: SameSite=None needs Secure, which the browser refuses over plain http "
            "on localhost (serve the proxy over https, or open the page on the proxy's site)"
        ],
    ),
    (
        "samesite keep leaves a cross-site cookie alone",
        "session=x; SameSite=Lax",
        Cookies(samesite="keep"),
        PAGE_127,
        LOCAL,
        "session=x; SameSite=Lax",
        [],
    ),
    (
        "Partitioned goes when Secure goes",
        "session=x; Secure; SameSite=None; Partitioned",
        Cookies(),
        "http://devbox.lan:5173",
        LAN,
        "session=x; SameSite=Lax",
        [
            "cookie session: Secure dropped (the browser reached the proxy over plain http), "
            "SameSite=None -> Lax (None needs Secure), Partitioned dropped (it needs Secure)"
        ],
    ),
    (
        "a __Host- cookie that loses Secure is reported",
        "__Host-sid=x; Path=/; Secure",
        Cookies(),
        "http://devbox.lan:5173",
        LAN,
        "__Host-sid=x; Path=/",
        [
            "cookie __Host-sid: Secure dropped (the browser reached the proxy over plain http), "
            "browsers refuse a __Host- cookie without Secure"
        ],
    ),
]


@pytest.mark.parametrize(
    "value,rules,page,browser,expected,notes",
    [r[1:] for r in AUTO_ROWS],
    ids=[r[0] for r in AUTO_ROWS],
)
def test_samesite_auto(value, rules, page, browser, expected, notes):
    assert rewrite_cookie(value, rules, browser, ROOT, page) == (expected, notes)


def test_the_log_says_which_browser_refuses_a_cookie_and_why():
    headers = [("Set-Cookie", "session=x; SameSite=Lax"), ("Set-Cookie", "theme=dark")]
    out, notes = response_headers(
        headers, 200, Cookies(), "rewrite", LOCAL, ROOT, ROUTES, page=PAGE_127
    )
    assert out[0] == ("Set-Cookie", "session=x; Secure; SameSite=None; Partitioned")
    safari = "refused by safari (Secure over plain http, which Safari refuses even on localhost)"
    assert [note for note in notes if "refused" in note] == [
        f"cookie session: {safari}",
        f"cookie theme: {safari}",
    ]


def test_a_same_site_page_gets_no_cookie_notes():
    headers = [("Set-Cookie", "session=x; Path=/; HttpOnly; SameSite=Lax")]
    out, notes = response_headers(
        headers, 200, Cookies(), "rewrite", LOCAL, ROOT, ROUTES, page="http://localhost:5173"
    )
    assert (out, notes) == (headers, [])

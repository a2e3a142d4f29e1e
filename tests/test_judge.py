"""Table tests for judge.py and fetchspec.py: the browser's CORS checks on plain data.
Each row compares the whole list of finding names, so an extra or missing finding fails."""

from __future__ import annotations

import pytest

from corsproxy.cors import judge
from corsproxy.cors.findings import FINDINGS, MDN_ERRORS, Finding

O = "http://localhost:5173"
API = "http://127.0.0.1:8000"
OTHER = "http://127.0.0.1:9000"
ACAO = "Access-Control-Allow-Origin"
ACAC = "Access-Control-Allow-Credentials"
ACAM = "Access-Control-Allow-Methods"
ACAH = "Access-Control-Allow-Headers"
ACEH = "Access-Control-Expose-Headers"
VARY = ("Vary", "Origin")


def names(findings: list[Finding] | tuple[Finding, ...]) -> list[str]:
    return [f.name for f in findings]


def row(id_: str, *values: object) -> object:
    return pytest.param(*values, id=id_)


CORS_ROWS = [
    row("exact origin without credentials passes", O, False, [(ACAO, O), VARY], []),
    row("wildcard without credentials passes", O, False, [(ACAO, "*")], []),
    row("header names are matched case-insensitively", O, False, [(ACAO.upper(), "*")], []),
    row(
        "wildcard origin with credentials is refused",
        O,
        True,
        [(ACAO, "*")],
        ["CORSNotSupportingCredentials"],
    ),
    row(
        "wildcard with credentials is refused even with allow-credentials",
        O,
        True,
        [(ACAO, "*"), (ACAC, "true")],
        ["CORSNotSupportingCredentials"],
    ),
    row(
        "no allow-origin header is missing",
        O,
        False,
        [("Content-Type", "text/plain")],
        ["CORSMissingAllowOrigin"],
    ),
    row(
        "allow-credentials alone does not grant the origin",
        O,
        True,
        [(ACAC, "true")],
        ["CORSMissingAllowOrigin"],
    ),
    row(
        "another origin does not match",
        O,
        False,
        [(ACAO, "http://localhost:3000")],
        ["CORSAllowOriginNotMatchingOrigin"],
    ),
    row(
        "a trailing slash does not match",
        O,
        False,
        [(ACAO, O + "/")],
        ["CORSAllowOriginNotMatchingOrigin"],
    ),
    row(
        "null does not match a real origin",
        O,
        False,
        [(ACAO, "null")],
        ["CORSAllowOriginNotMatchingOrigin"],
    ),
    row("null matches a redirect-tainted origin", "null", False, [(ACAO, "null"), VARY], []),
    row(
        "two allow-origin headers are refused",
        O,
        False,
        [(ACAO, O), (ACAO, O)],
        ["CORSMultipleAllowOriginNotAllowed"],
    ),
    row(
        "a list of origins is refused",
        O,
        False,
        [(ACAO, f"{O}, {API}")],
        ["CORSMultipleAllowOriginNotAllowed"],
    ),
    row(
        "two wildcards are refused",
        O,
        False,
        [(ACAO, "*"), (ACAO, "*")],
        ["CORSMultipleAllowOriginNotAllowed"],
    ),
    row(
        "a bare host name is not an origin",
        O,
        False,
        [(ACAO, "example.com")],
        ["CORSInvalidAllowOrigin"],
    ),
    row(
        "an http URL without a host is not an origin",
        O,
        False,
        [(ACAO, "http://")],
        ["CORSInvalidAllowOrigin"],
    ),
    row(
        "an empty allow-origin is not an origin", O, False, [(ACAO, "")], ["CORSInvalidAllowOrigin"]
    ),
    row(
        "credentials without allow-credentials fail",
        O,
        True,
        [(ACAO, O), VARY],
        ["CORSMissingAllowCredentials"],
    ),
    row(
        "allow-credentials True with a capital fails",
        O,
        True,
        [(ACAO, O), (ACAC, "True"), VARY],
        ["CORSMissingAllowCredentials"],
    ),
    row(
        "allow-credentials sent twice fails",
        O,
        True,
        [(ACAO, O), (ACAC, "true"), (ACAC, "true"), VARY],
        ["CORSMissingAllowCredentials"],
    ),
    row(
        "exact origin with allow-credentials true passes",
        O,
        True,
        [(ACAO, O), (ACAC, "true"), VARY],
        [],
    ),
    row(
        "an echoed origin without Vary gets a note",
        O,
        False,
        [(ACAO, O)],
        ["CORSMissingVaryOrigin"],
    ),
    row(
        "a credentialed echo without Vary gets a note",
        O,
        True,
        [(ACAO, O), (ACAC, "true")],
        ["CORSMissingVaryOrigin"],
    ),
    row(
        "Origin inside a longer Vary counts", O, False, [(ACAO, O), ("Vary", "Accept, origin")], []
    ),
    row("Vary star counts", O, False, [(ACAO, O), ("Vary", "*")], []),
]


@pytest.mark.parametrize(("origin", "credentials", "headers", "expected"), CORS_ROWS)
def test_check_cors(origin: str, credentials: bool, headers: list, expected: list[str]) -> None:
    found = judge.check_cors(origin, credentials, headers)
    assert names(found) == expected
    assert [f.fatal for f in found] == [name != "CORSMissingVaryOrigin" for name in expected]


PREFLIGHT_NEED_ROWS = [
    row("plain GET needs no preflight", "GET", [], False, "GET", ()),
    row("lowercase get is normalized and simple", "get", [], False, "GET", ()),
    row("HEAD needs no preflight", "head", [("Accept", "text/html")], False, "HEAD", ()),
    row(
        "POST with a form content type is simple",
        "POST",
        [("Content-Type", "application/x-www-form-urlencoded")],
        False,
        "POST",
        (),
    ),
    row(
        "text/plain with a charset is simple",
        "POST",
        [("Content-Type", "text/plain; charset=utf-8")],
        False,
        "POST",
        (),
    ),
    row(
        "content type is parsed as a MIME type",
        "POST",
        [("content-type", " Multipart/Form-Data ; boundary=x")],
        False,
        "POST",
        (),
    ),
    row(
        "a JSON content type needs a preflight",
        "POST",
        [("Content-Type", "application/json")],
        True,
        "POST",
        ("content-type",),
    ),
    row(
        "a content type that is not a MIME type needs a preflight",
        "POST",
        [("Content-Type", "text")],
        True,
        "POST",
        ("content-type",),
    ),
    row(
        "a content type with an unsafe byte needs a preflight",
        "POST",
        [("Content-Type", 'text/plain; a="("')],
        True,
        "POST",
        ("content-type",),
    ),
    row("PUT needs a preflight", "PUT", [], True, "PUT", ()),
    row("lowercase put is uppercased", "put", [], True, "PUT", ()),
    row("lowercase patch stays lowercase", "patch", [], True, "patch", ()),
    row("DELETE needs a preflight", "delete", [], True, "DELETE", ()),
    row(
        "a custom header needs a preflight and is lowercased",
        "GET",
        [("X-Api-Key", "k")],
        True,
        "GET",
        ("x-api-key",),
    ),
    row(
        "unsafe names are sorted and unique",
        "GET",
        [("X-B", "1"), ("X-A", "1"), ("x-a", "2")],
        True,
        "GET",
        ("x-a", "x-b"),
    ),
    row(
        "authorization always needs a preflight",
        "GET",
        [("Authorization", "Bearer t")],
        True,
        "GET",
        ("authorization",),
    ),
    row(
        "a language tag list is simple",
        "GET",
        [("Accept-Language", "en-US,en;q=0.9")],
        False,
        "GET",
        (),
    ),
    row(
        "a language value with a slash needs a preflight",
        "GET",
        [("Content-Language", "en/US")],
        True,
        "GET",
        ("content-language",),
    ),
    row(
        "a value of 128 bytes is still safelisted", "GET", [("Accept", "a" * 128)], False, "GET", ()
    ),
    row(
        "a value over 128 bytes needs a preflight",
        "GET",
        [("Accept", "a" * 129)],
        True,
        "GET",
        ("accept",),
    ),
    row(
        "safelisted values of 1024 bytes in total are simple",
        "GET",
        [("Accept", "a" * 128)] * 8,
        False,
        "GET",
        (),
    ),
    row(
        "safelisted values over 1024 bytes in total need a preflight",
        "GET",
        [("Accept", "a" * 120)] * 5 + [("Content-Language", "b" * 120)] * 4,
        True,
        "GET",
        ("accept", "content-language"),
    ),
    row("a single byte range is safelisted", "GET", [("Range", "bytes=0-99")], False, "GET", ()),
    row(
        "a suffix byte range needs a preflight",
        "GET",
        [("Range", "bytes=-500")],
        True,
        "GET",
        ("range",),
    ),
    row(
        "forbidden headers are the browser's and not counted",
        "GET",
        [("Cookie", "a=1"), ("Accept-Encoding", "br")],
        False,
        "GET",
        (),
    ),
]


@pytest.mark.parametrize(
    ("method", "headers", "needed", "normalized", "unsafe"), PREFLIGHT_NEED_ROWS
)
def test_needs_preflight(
    method: str, headers: list, needed: bool, normalized: str, unsafe: tuple
) -> None:
    need = judge.needs_preflight(method, headers)
    assert (need.needed, need.method, need.unsafe_headers) == (needed, normalized, unsafe)
    assert need.reason


def test_needs_preflight_value_and_reasons() -> None:
    need = judge.needs_preflight(
        "patch", [("X-Api-Key", "k"), ("Content-Type", "application/json"), ("Cookie", "a")]
    )
    assert need.request_headers_value == "content-type,x-api-key"
    assert need.ignored_headers == ("cookie",)
    assert "patch is sent as written" in need.reason and "application/json" in need.reason


@pytest.mark.parametrize(
    "method",
    [
        row("TRACE is refused by fetch", "TRACE"),
        row("connect in any case is refused", "connect"),
        row("a method with a space is not a token", "GET X"),
    ],
)
def test_needs_preflight_refuses_what_fetch_refuses(method: str) -> None:
    with pytest.raises(ValueError):
        judge.needs_preflight(method, [])


OK = [(ACAO, O)]
OK_CRED = [(ACAO, O), (ACAC, "true")]

PREFLIGHT_ROWS = [
    row(
        "a preflight granting the method passes",
        False,
        "PUT",
        (),
        204,
        OK + [(ACAM, "PUT")],
        False,
        [],
    ),
    row(
        "a 200 preflight passes too",
        False,
        "DELETE",
        (),
        200,
        OK + [(ACAM, "GET, DELETE")],
        False,
        [],
    ),
    row(
        "a safelisted method needs no Allow-Methods",
        False,
        "POST",
        ("content-type",),
        204,
        OK + [(ACAH, "Content-Type")],
        False,
        [],
    ),
    row(
        "a method wildcard covers any method without credentials",
        False,
        "PUT",
        (),
        204,
        OK + [(ACAM, "*")],
        False,
        [],
    ),
    row(
        "a 404 preflight did not succeed",
        False,
        "PUT",
        (),
        404,
        OK + [(ACAM, "PUT")],
        False,
        ["CORSPreflightDidNotSucceed"],
    ),
    row(
        "a 500 preflight did not succeed",
        False,
        "PUT",
        (),
        500,
        OK + [(ACAM, "PUT")],
        False,
        ["CORSPreflightDidNotSucceed"],
    ),
    row(
        "a bare 404 preflight fails its origin check first, then its status",
        False,
        "PUT",
        (),
        404,
        [],
        False,
        ["CORSMissingAllowOrigin", "CORSPreflightDidNotSucceed"],
    ),
    row(
        "a preflight without allow-origin is missing it",
        False,
        "PUT",
        (),
        204,
        [(ACAM, "PUT")],
        False,
        ["CORSMissingAllowOrigin"],
    ),
    row(
        "a preflight with a wildcard origin and credentials is refused",
        True,
        "PUT",
        (),
        204,
        [(ACAO, "*"), (ACAC, "true"), (ACAM, "PUT")],
        False,
        ["CORSNotSupportingCredentials"],
    ),
    row(
        "a credentialed preflight needs allow-credentials",
        True,
        "PUT",
        (),
        204,
        OK + [(ACAM, "PUT")],
        False,
        ["CORSMissingAllowCredentials"],
    ),
    row(
        "a redirected preflight is not allowed",
        False,
        "PUT",
        (),
        301,
        [("Location", "/x")],
        True,
        ["CORSExternalRedirectNotAllowed"],
    ),
    row(
        "a 307 preflight redirect is not allowed",
        False,
        "PUT",
        (),
        307,
        OK,
        True,
        ["CORSExternalRedirectNotAllowed"],
    ),
    row(
        "a method that is not listed is not found",
        False,
        "PUT",
        (),
        204,
        OK + [(ACAM, "GET, POST")],
        False,
        ["CORSMethodNotFound"],
    ),
    row(
        "no Allow-Methods at all finds no method",
        False,
        "DELETE",
        (),
        204,
        OK,
        False,
        ["CORSMethodNotFound"],
    ),
    row(
        "lowercase patch granted as PATCH is not a match",
        False,
        "patch",
        (),
        204,
        OK + [(ACAM, "PATCH")],
        False,
        ["CORSMethodNotFound"],
    ),
    row(
        "lowercase patch granted as patch passes",
        False,
        "patch",
        (),
        204,
        OK + [(ACAM, "patch")],
        False,
        [],
    ),
    row(
        "a method wildcard does not count with credentials",
        True,
        "PUT",
        (),
        204,
        OK_CRED + [(ACAM, "*")],
        False,
        ["CORSMethodNotFound"],
    ),
    row(
        "methods separated by a space are invalid",
        False,
        "PUT",
        (),
        204,
        OK + [(ACAM, "GET PUT")],
        False,
        ["CORSInvalidAllowMethod"],
    ),
    row(
        "methods separated by a semicolon are invalid",
        False,
        "PUT",
        (),
        204,
        OK + [(ACAM, "GET;PUT")],
        False,
        ["CORSInvalidAllowMethod"],
    ),
    row(
        "empty list elements are allowed",
        False,
        "PUT",
        (),
        204,
        OK + [(ACAM, "PUT,, GET,")],
        False,
        [],
    ),
    row(
        "header names separated by a space are invalid",
        False,
        "PUT",
        ("x-a",),
        204,
        OK + [(ACAM, "PUT"), (ACAH, "X-A X-B")],
        False,
        ["CORSInvalidAllowHeader"],
    ),
    row(
        "a header name with a slash is invalid",
        False,
        "GET",
        ("x-a",),
        204,
        OK + [(ACAH, "x/a")],
        False,
        ["CORSInvalidAllowHeader"],
    ),
    row(
        "both lists invalid are both reported",
        False,
        "PUT",
        ("x-a",),
        204,
        OK + [(ACAM, "P UT"), (ACAH, "x(a)")],
        False,
        ["CORSInvalidAllowMethod", "CORSInvalidAllowHeader"],
    ),
    row(
        "a requested header that is not listed is missing",
        False,
        "GET",
        ("x-api-key",),
        204,
        OK + [(ACAH, "Content-Type")],
        False,
        ["CORSMissingAllowHeaderFromPreflight"],
    ),
    row(
        "header names compare case-insensitively",
        False,
        "GET",
        ("x-api-key",),
        204,
        OK + [(ACAH, "X-API-Key")],
        False,
        [],
    ),
    row(
        "two missing headers give two findings",
        False,
        "GET",
        ("x-a", "x-b"),
        204,
        OK,
        False,
        ["CORSMissingAllowHeaderFromPreflight", "CORSMissingAllowHeaderFromPreflight"],
    ),
    row(
        "a header wildcard covers custom names without credentials",
        False,
        "GET",
        ("x-a", "x-b"),
        204,
        OK + [(ACAH, "*")],
        False,
        [],
    ),
    row(
        "a header wildcard does not count with credentials",
        True,
        "GET",
        ("x-a",),
        204,
        OK_CRED + [(ACAH, "*")],
        False,
        ["CORSMissingAllowHeaderFromPreflight"],
    ),
    row(
        "the header wildcard does not cover Authorization (a warning: engines allow it)",
        False,
        "GET",
        ("authorization",),
        204,
        OK + [(ACAH, "*")],
        False,
        ["CORSWildcardDoesNotCoverAuthorization"],
    ),
    row(
        "the wildcard covers the others but not Authorization",
        False,
        "GET",
        ("authorization", "x-a"),
        204,
        OK + [(ACAH, "*")],
        False,
        ["CORSWildcardDoesNotCoverAuthorization"],
    ),
    row(
        "a wildcard plus Authorization by name passes",
        False,
        "GET",
        ("authorization", "x-a"),
        204,
        OK + [(ACAH, "*, Authorization")],
        False,
        [],
    ),
    row(
        "a method and a header both missing are both reported",
        False,
        "PUT",
        ("x-a",),
        204,
        OK + [(ACAM, "GET")],
        False,
        ["CORSMethodNotFound", "CORSMissingAllowHeaderFromPreflight"],
    ),
    row(
        "a max-age above 7200 gets a note",
        False,
        "PUT",
        (),
        204,
        OK + [(ACAM, "PUT"), ("Access-Control-Max-Age", "86400")],
        False,
        ["CORSMaxAgeCapped"],
    ),
    row(
        "a max-age of 10000 gets a note too",
        False,
        "GET",
        ("x-a",),
        204,
        OK + [(ACAH, "x-a"), ("Access-Control-Max-Age", "10000")],
        False,
        ["CORSMaxAgeCapped"],
    ),
    row(
        "a max-age of 7200 is honoured",
        False,
        "PUT",
        (),
        204,
        OK + [(ACAM, "PUT"), ("Access-Control-Max-Age", "7200")],
        False,
        [],
    ),
]


@pytest.mark.parametrize(
    ("credentials", "method", "unsafe", "status", "headers", "redirected", "expected"),
    PREFLIGHT_ROWS,
)
def test_check_preflight(
    credentials: bool,
    method: str,
    unsafe: tuple,
    status: int,
    headers: list,
    redirected: bool,
    expected: list[str],
) -> None:
    found = judge.check_preflight(O, credentials, method, unsafe, status, headers, redirected)
    assert names(found) == expected
    assert all(f.preflight for f in found)


def test_check_preflight_details_say_why() -> None:
    [patch] = judge.check_preflight(O, False, "patch", (), 204, OK + [(ACAM, "PATCH")])
    assert "case-sensitive" in patch.detail and patch.method == "patch"
    [star] = judge.check_preflight(O, True, "GET", ("x-a",), 204, OK_CRED + [(ACAH, "*")])
    assert "only without credentials" in star.detail and star.header == "x-a"
    [bad] = judge.check_preflight(O, False, "PUT", (), 204, OK + [(ACAM, "GET, P UT")])
    assert bad.value == "P UT"


def test_wildcard_and_authorization_is_a_warning_not_a_block() -> None:
    """Chromium 150 and Firefox 140 allow it (tests/e2e): the verdict is what browsers do."""
    [warning] = judge.check_preflight(O, False, "GET", ("authorization",), 204, OK + [(ACAH, "*")])
    assert not warning.fatal and "expected to enforce" in warning.detail


ENGINE_NAME_ROWS = [
    pytest.param(
        judge.check_cors(O, False, [(ACAO, "localhost")])[0],
        ("CORSInvalidAllowOrigin", "CORSAllowOriginNotMatchingOrigin"),
        id="an Allow-Origin that is no origin is a mismatch to Firefox",
    ),
    pytest.param(
        judge.check_preflight(O, False, "PUT", (), 301, [("Location", "/x")], True)[0],
        ("CORSExternalRedirectNotAllowed", "CORSMissingAllowOrigin"),
        id="a redirected preflight without Allow-Origin: Firefox names the missing header",
    ),
    pytest.param(
        judge.check_preflight(O, False, "PUT", (), 307, OK + [("Location", "/x")], True)[0],
        ("CORSExternalRedirectNotAllowed", "CORSExternalRedirectNotAllowed"),
        id="a redirected preflight with Allow-Origin: both name the redirect",
    ),
    pytest.param(
        judge.check_redirect(
            O, [API], 302, [(ACAO, O), ("Location", "http://u:p@x.test/")], "GET"
        ).findings[0],
        ("CORSRedirectContainsCredentials", "CORSDidNotSucceed"),
        id="a redirect to user:password@ is a plain network error to Firefox",
    ),
]


@pytest.mark.parametrize(("finding", "expected"), ENGINE_NAME_ROWS)
def test_engines_name_some_failures_differently(finding: Finding, expected: tuple) -> None:
    assert (finding.name_in("chromium"), finding.name_in("firefox")) == expected


READABLE_ROWS = [
    row(
        "safelisted names are readable without exposing",
        False,
        [("Content-Type", "a"), ("Cache-Control", "b"), ("X-Total", "1")],
        ("cache-control", "content-type"),
        ("x-total",),
        ["CORSHeaderNotExposed"],
    ),
    row(
        "listed names become readable",
        False,
        [("Content-Type", "a"), ("X-Total", "1"), (ACEH, "x-total")],
        ("content-type", "x-total"),
        ("access-control-expose-headers",),
        [],
    ),
    row(
        "the wildcard exposes all but Set-Cookie without credentials, which is no note",
        False,
        [("ETag", "e"), ("Set-Cookie", "a=b"), (ACEH, "*")],
        ("access-control-expose-headers", "etag"),
        ("set-cookie",),
        [],
    ),
    row(
        "the wildcard exposes nothing extra with credentials",
        True,
        [("ETag", "e"), (ACEH, "*")],
        (),
        ("access-control-expose-headers", "etag"),
        ["CORSHeaderNotExposed"],
    ),
    row(
        "Set-Cookie is never readable even when listed, and no note says to expose it",
        True,
        [("Set-Cookie", "a=b"), (ACEH, "Set-Cookie")],
        (),
        ("access-control-expose-headers", "set-cookie"),
        [],
    ),
    row(
        "date and server alone make no note",
        False,
        [("Date", "d"), ("Server", "s"), ("Content-Length", "0")],
        ("content-length",),
        ("date", "server"),
        [],
    ),
    row(
        "an unparsable expose list exposes nothing",
        False,
        [("X-A", "1"), (ACEH, "X-A X-B")],
        (),
        ("access-control-expose-headers", "x-a"),
        ["CORSHeaderNotExposed"],
    ),
]


@pytest.mark.parametrize(("credentials", "headers", "readable", "hidden", "notes"), READABLE_ROWS)
def test_readable_headers(
    credentials: bool, headers: list, readable: tuple, hidden: tuple, notes: list[str]
) -> None:
    result = judge.readable_headers(credentials, headers)
    assert (result.readable, result.hidden, names(result.notes)) == (readable, hidden, notes)
    assert not any(f.fatal for f in result.notes)


REDIRECT_ROWS = [
    row(
        "a redirect on the same server is followed",
        [f"{API}/x"],
        302,
        [("Location", "/y")],
        "GET",
        [],
        f"{API}/y",
        "GET",
        (),
        False,
    ),
    row(
        "a cross-origin redirect taints the origin and drops Authorization",
        [f"{API}/x"],
        307,
        [("Location", f"{OTHER}/y")],
        "PUT",
        [],
        f"{OTHER}/y",
        "PUT",
        ("authorization",),
        True,
    ),
    row(
        "a 303 turns PUT into GET without its body",
        [f"{API}/x"],
        303,
        [("Location", "/y")],
        "PUT",
        [],
        f"{API}/y",
        "GET",
        ("content-encoding", "content-language", "content-location", "content-type"),
        False,
    ),
    row(
        "a 302 turns POST into GET",
        [f"{API}/x"],
        302,
        [("Location", "/y")],
        "POST",
        [],
        f"{API}/y",
        "GET",
        ("content-encoding", "content-language", "content-location", "content-type"),
        False,
    ),
    row(
        "a 308 keeps POST and its body",
        [f"{API}/x"],
        308,
        [("Location", "/y")],
        "POST",
        [],
        f"{API}/y",
        "POST",
        (),
        False,
    ),
    row(
        "a 200 with a Location is not a redirect",
        [f"{API}/x"],
        200,
        [("Location", "/y")],
        "GET",
        [],
        None,
        "GET",
        (),
        False,
    ),
    row(
        "a 302 without a Location is not followed",
        [f"{API}/x"],
        302,
        [],
        "GET",
        [],
        None,
        "GET",
        (),
        False,
    ),
    row(
        "a redirect to a URL with credentials is refused",
        [f"{API}/x"],
        302,
        [("Location", "http://u:p@127.0.0.1:9000/y")],
        "GET",
        ["CORSRedirectContainsCredentials"],
        None,
        "GET",
        (),
        False,
    ),
    row(
        "credentials are refused even toward the page's origin once cross-origin",
        [f"{API}/x"],
        302,
        [("Location", "http://u@localhost:5173/y")],
        "GET",
        ["CORSRedirectContainsCredentials"],
        None,
        "GET",
        (),
        False,
    ),
    row(
        "a redirect to ftp is a network error (ERR_UNSAFE_REDIRECT)",
        [f"{API}/x"],
        302,
        [("Location", "ftp://x/y")],
        "GET",
        ["CORSDidNotSucceed"],
        None,
        "GET",
        (),
        False,
    ),
    row(
        "a redirect to a data URL is a network error (ERR_UNSAFE_REDIRECT)",
        [f"{API}/x"],
        301,
        [("Location", "data:,hi")],
        "GET",
        ["CORSDidNotSucceed"],
        None,
        "GET",
        (),
        False,
    ),
    row(
        "twenty redirects are the limit",
        [f"{API}/{i}" for i in range(21)],
        302,
        [("Location", "/y")],
        "GET",
        ["CORSDidNotSucceed"],
        None,
        "GET",
        (),
        False,
    ),
    row(
        "two Location headers fail",
        [f"{API}/x"],
        302,
        [("Location", "/a"), ("Location", "/b")],
        "GET",
        ["CORSDidNotSucceed"],
        None,
        "GET",
        (),
        False,
    ),
    row(
        "a Location with a bad port fails",
        [f"{API}/x"],
        302,
        [("Location", "http://127.0.0.1:99999/")],
        "GET",
        ["CORSDidNotSucceed"],
        None,
        "GET",
        (),
        False,
    ),
]


@pytest.mark.parametrize(
    (
        "url_list",
        "status",
        "headers",
        "method",
        "expected",
        "location",
        "next_method",
        "drop",
        "tainted",
    ),
    REDIRECT_ROWS,
)
def test_check_redirect(
    url_list: list,
    status: int,
    headers: list,
    method: str,
    expected: list,
    location: str | None,
    next_method: str,
    drop: tuple,
    tainted: bool,
) -> None:
    step = judge.check_redirect(O, url_list, status, headers, method)
    assert names(step.findings) == expected
    assert (step.location, step.method, step.drop_headers, step.tainted) == (
        location,
        next_method,
        drop,
        tainted,
    )


ORIGIN_ROWS = [
    row("the default port is dropped", "http://LocalHost:80/a?b", "http://localhost"),
    row("https keeps a non-default port", "https://example.com:8443/", "https://example.com:8443"),
    row("an IPv6 host keeps its brackets", "http://[::1]:8080/", "http://[::1]:8080"),
    row("a file URL has an opaque origin", "file:///etc/hosts", "null"),
]


@pytest.mark.parametrize(("url", "expected"), ORIGIN_ROWS)
def test_url_origin(url: str, expected: str) -> None:
    assert judge.url_origin(url) == expected


TAINT_ROWS = [
    row("no redirect keeps the origin", [f"{API}/a"], O),
    row("a redirect within one server keeps the origin", [f"{API}/a", f"{API}/b"], O),
    row("a redirect between two other origins taints it", [f"{API}/a", f"{OTHER}/b"], "null"),
    row("a redirect from the page's own origin does not taint it", [f"{O}/a", f"{API}/b"], O),
    row("a redirect back to the page's origin taints it", [f"{API}/a", f"{O}/b"], "null"),
]


@pytest.mark.parametrize(("url_list", "expected"), TAINT_ROWS)
def test_serialized_origin(url_list: list[str], expected: str) -> None:
    assert judge.serialized_origin(O, url_list) == expected


MESSAGE_ROWS = [
    row(
        "the missing origin sentence is Chromium's",
        Finding("CORSMissingAllowOrigin", True, ""),
        None,
        "Access to fetch at 'http://127.0.0.1:8000/api' from origin 'http://localhost:5173' has been blocked by"
        " CORS policy: No 'Access-Control-Allow-Origin' header is present on the requested resource.",
    ),
    row(
        "an origin check on the preflight gets Chromium's preflight clause",
        Finding("CORSNotSupportingCredentials", True, "", preflight=True),
        None,
        "Access to fetch at 'http://127.0.0.1:8000/api' from origin 'http://localhost:5173' has been blocked by"
        " CORS policy: Response to preflight request doesn't pass access control check: The value of the"
        " 'Access-Control-Allow-Origin' header in the response must not be the wildcard '*' when the request's"
        " credentials mode is 'include'.",
    ),
    row(
        "a redirected request names where it started",
        Finding("CORSAllowOriginNotMatchingOrigin", True, "", value="http://x"),
        "http://127.0.0.1:7000/start",
        "Access to fetch at 'http://127.0.0.1:8000/api' (redirected from 'http://127.0.0.1:7000/start') from"
        " origin 'http://localhost:5173' has been blocked by CORS policy: The 'Access-Control-Allow-Origin' header"
        " has a value 'http://x' that is not equal to the supplied origin. Have the server send the header with a"
        " valid value.",
    ),
    row(
        "the method sentence names the method",
        Finding("CORSMethodNotFound", True, "", method="patch", preflight=True),
        None,
        "Access to fetch at 'http://127.0.0.1:8000/api' from origin 'http://localhost:5173' has been blocked by"
        " CORS policy: Method patch is not allowed by Access-Control-Allow-Methods in preflight response.",
    ),
    row(
        "a network failure reads like Chromium's console",
        Finding("CORSDidNotSucceed", True, "", "ERR_EMPTY_RESPONSE", method="GET"),
        None,
        "GET http://127.0.0.1:8000/api net::ERR_EMPTY_RESPONSE",
    ),
    row("a note has no Chromium sentence", Finding("CORSMissingVaryOrigin", False, ""), None, ""),
]


@pytest.mark.parametrize(("finding", "redirected_from", "expected"), MESSAGE_ROWS)
def test_message(finding: Finding, redirected_from: str | None, expected: str) -> None:
    assert finding.message(f"{API}/api", O, redirected_from) == expected


def test_short_message_drops_chromium_opening() -> None:
    finding = Finding(
        "CORSMissingAllowHeaderFromPreflight", True, "", header="x-api-key", preflight=True
    )
    assert finding.short_message(f"{API}/api", O) == (
        "Request header field x-api-key is not allowed by Access-Control-Allow-Headers in preflight response."
    )


MDN_NAMED = [
    "CORSMissingAllowOrigin",
    "CORSAllowOriginNotMatchingOrigin",
    "CORSMultipleAllowOriginNotAllowed",
    "CORSNotSupportingCredentials",
    "CORSMissingAllowCredentials",
    "CORSPreflightDidNotSucceed",
    "CORSMethodNotFound",
    "CORSInvalidAllowMethod",
    "CORSInvalidAllowHeader",
    "CORSMissingAllowHeaderFromPreflight",
    "CORSExternalRedirectNotAllowed",
    "CORSDidNotSucceed",
    "CORSRequestNotHttp",
]


def test_catalog_names_mdn_pages_and_marks_derived_names() -> None:
    assert {n for n, info in FINDINGS.items() if not info.derived} == set(MDN_NAMED)
    for name, info in FINDINGS.items():
        assert info.name == name and info.fix and info.explanation
        if info.derived:
            assert "corsproxy's own name" in info.explanation
        else:
            assert info.mdn_url == MDN_ERRORS + name


URL_ROWS = [
    pytest.param("ftp://localhost/file", ["CORSRequestNotHttp"], id="an ftp URL is not http"),
    pytest.param("file:///etc/hosts", ["CORSRequestNotHttp"], id="a file URL is not http"),
    pytest.param("data:,hi", ["CORSRequestNotHttp"], id="a data URL is not http"),
    pytest.param("http://localhost:8000/", [], id="an http URL is fetched"),
    pytest.param("HTTPS://localhost/", [], id="an https URL in capitals is fetched"),
]


@pytest.mark.parametrize(("url", "expected"), URL_ROWS)
def test_check_request_url(url: str, expected: list[str]) -> None:
    assert [f.name for f in judge.check_request_url(url)] == expected


def test_every_finding_is_tested_at_least_twice() -> None:
    counted: dict[str, int] = {}
    tables = [
        (CORS_ROWS, -1),
        (PREFLIGHT_ROWS, -1),
        (READABLE_ROWS, -1),
        (REDIRECT_ROWS, 4),
        (URL_ROWS, -1),
    ]
    for rows, index in tables:
        for param in rows:
            for name in param.values[index]:
                counted[name] = counted.get(name, 0) + 1
    # Local Network Access has its own table (test_local_network_access, below).
    counted["CORSLocalNetworkAccessDenied"] = len(LNA_ROWS)
    assert {name: n for name, n in counted.items() if n < 2} == {}
    assert set(FINDINGS) == set(counted)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param([], (), id="no Access-Control-Request-Headers asks for nothing"),
        pytest.param(
            [("Access-Control-Request-Headers", "X-A,x-b")], ("x-a", "x-b"), id="one line"
        ),
        pytest.param(
            [("Access-Control-Request-Headers", ""), ("access-control-request-headers", "x-a")],
            ("x-a",),
            id="an empty first line does not hide the second",
        ),
        pytest.param(
            [
                ("Access-Control-Request-Headers", "x-a, "),
                ("Access-Control-Request-Headers", "x-b"),
            ],
            ("x-a", "x-b"),
            id="two lines are one comma-joined list",
        ),
    ],
)
def test_requested_headers(headers: list, expected: tuple) -> None:
    assert judge.requested_headers(headers) == expected


LNA_ROWS = [
    pytest.param("http://192.168.1.20:5173", "local", "loopback", True, id="LAN page to loopback"),
    pytest.param("http://8.8.8.8", "public", "local", True, id="public page to the LAN"),
    pytest.param("https://192.168.1.20", "local", "loopback", False, id="secure page: a prompt"),
]


@pytest.mark.parametrize(("origin", "page", "target", "fatal"), LNA_ROWS)
def test_local_network_access(origin: str, page, target, fatal: bool) -> None:
    from corsproxy.cors import localnet

    found = localnet.check_local_network(origin, page, target, "http://localhost:8080/")
    assert found is not None and (found.name, found.fatal, found.only) == (
        "CORSLocalNetworkAccessDenied",
        fatal,
        ("chromium",),
    )
    assert localnet.check_local_network(origin, target, target, "http://x/") is None

"""Table tests for origin matching: every allowed form, every lookalike refused."""

from __future__ import annotations

import pytest

from corsproxy.cors.origins import OriginMatcher, compile_allow_entry, parse_origin

LOCALHOST_ROWS = [
    ("localhost with a port is allowed", "http://localhost:5173", True),
    ("localhost without a port is allowed", "http://localhost", True),
    ("https localhost is allowed", "https://localhost:8443", True),
    ("a .localhost subdomain is allowed", "http://app.localhost:3000", True),
    ("127.0.0.1 is allowed", "http://127.0.0.1:8000", True),
    ("[::1] is allowed", "http://[::1]:5173", True),
    ("127.0.0.2 is refused", "http://127.0.0.2:5173", False),
    ("0.0.0.0 is refused", "http://0.0.0.0:5173", False),
    ("localhost with a trailing dot is refused", "http://localhost.:5173", False),
    ("lookalike host is refused", "http://localhost.evil.example", False),
    ("hyphenated lookalike is refused", "http://evil-localhost:5173", False),
    ("userinfo trick is refused", "http://localhost@evil.example", False),
    ("port-shaped label is refused", "http://localhost:5173.evil.example", False),
    ("trailing slash is refused", "http://localhost:5173/", False),
    ("a path is refused", "http://localhost:5173/app", False),
    ("a trailing space is refused", "http://localhost:5173 ", False),
    ("a leading space is refused", " http://localhost:5173", False),
    ("a trailing newline is refused", "http://localhost:5173\n", False),
    (
        "two origins in one header are refused",
        "http://localhost:5173, http://localhost:3000",
        False,
    ),
    ("two origins without space are refused", "http://localhost:5173,http://localhost:3000", False),
    ("uppercase scheme is refused (browsers send lowercase)", "HTTP://localhost:5173", False),
    ("uppercase host is refused (browsers send lowercase)", "http://LOCALHOST:5173", False),
    ("another scheme is refused", "ftp://localhost", False),
    ("file-like origin is refused", "file://", False),
    ("null is refused unless named", "null", False),
    ("empty is refused", "", False),
    ("port out of range is refused", "http://localhost:70000", False),
    ("port zero is refused", "http://localhost:0", False),
    ("localhost suffix without a dot is refused", "http://evillocalhost", False),
    ("a query is refused", "http://localhost:5173?x", False),
]


@pytest.mark.parametrize(
    "origin,allowed", [r[1:] for r in LOCALHOST_ROWS], ids=[r[0] for r in LOCALHOST_ROWS]
)
def test_localhost_keyword(origin, allowed):
    assert (OriginMatcher(("localhost",)).match(origin) is not None) is allowed


OTHER_ROWS = [
    ("star allows any site", ("*",), "https://site.example", "*"),
    ("star does not allow null", ("*",), "null", None),
    ("star does not allow garbage", ("*",), "not an origin", None),
    (
        "exact origin is allowed",
        ("https://app.example.com",),
        "https://app.example.com",
        "https://app.example.com",
    ),
    (
        "exact origin with another port is refused",
        ("https://app.example.com",),
        "https://app.example.com:8443",
        None,
    ),
    (
        "exact origin with another scheme is refused",
        ("https://app.example.com",),
        "http://app.example.com",
        None,
    ),
    (
        "exact entry written in capitals still matches",
        ("https://App.Example.com",),
        "https://app.example.com",
        "https://App.Example.com",
    ),
    (
        "wildcard allows one label",
        ("https://*.example.com",),
        "https://a.example.com",
        "https://*.example.com",
    ),
    (
        "wildcard allows several labels",
        ("https://*.example.com",),
        "https://a.b.example.com",
        "https://*.example.com",
    ),
    ("wildcard refuses the bare domain", ("https://*.example.com",), "https://example.com", None),
    (
        "wildcard refuses a lookalike suffix",
        ("https://*.example.com",),
        "https://evilexample.com",
        None,
    ),
    ("wildcard refuses another scheme", ("https://*.example.com",), "http://a.example.com", None),
    (
        "wildcard with port needs that port",
        ("https://*.example.com:8443",),
        "https://a.example.com:8443",
        "https://*.example.com:8443",
    ),
    (
        "wildcard with port refuses no port",
        ("https://*.example.com:8443",),
        "https://a.example.com",
        None,
    ),
    (
        "regex matches the whole origin",
        (r"regex:^https://.*\.dev$",),
        "https://app.dev",
        r"regex:^https://.*\.dev$",
    ),
    (
        "regex without anchors still needs a full match",
        (r"regex:https://[a-z]+\.dev",),
        "https://app.dev.evil.example",
        None,
    ),
    (
        "regex cannot be fooled by a trailing newline",
        (r"regex:^https://.*\.dev$",),
        "https://app.dev\n",
        None,
    ),
    ("null allowed when named", ("null",), "null", "null"),
    ("first matching entry is reported", ("localhost", "*"), "http://localhost:1", "*"),
]


@pytest.mark.parametrize(
    "entries,origin,entry", [r[1:] for r in OTHER_ROWS], ids=[r[0] for r in OTHER_ROWS]
)
def test_entries(entries, origin, entry):
    found = OriginMatcher(entries).match(origin)
    assert (found.entry if found else None) == entry


BAD_ENTRIES = [
    (
        "trailing slash",
        "http://localhost:5173/",
        "an origin has no path or trailing slash (browsers never send one); "
        "did you mean 'http://localhost:5173'?",
    ),
    (
        "a path",
        "https://app.example.com/app",
        "an origin has no path or trailing slash (browsers never send one); "
        "did you mean 'https://app.example.com'?",
    ),
    (
        "no scheme",
        "app.example.com",
        "an origin is scheme://host[:port], e.g. 'http://localhost:5173', "
        "or one of '*', 'localhost', 'null', 'regex:...'; did you mean 'https://app.example.com'?",
    ),
    (
        "no scheme on a local host",
        "localhost:5173",
        "an origin is scheme://host[:port], e.g. 'http://localhost:5173', "
        "or one of '*', 'localhost', 'null', 'regex:...'; did you mean 'http://localhost:5173'?",
    ),
    (
        "userinfo",
        "http://me@app.example.com",
        "an origin has no user name or password; did you mean 'http://app.example.com'?",
    ),
    (
        "star in the middle",
        "https://app.*.com",
        "'*' is allowed only as the first label, as in 'https://*.example.com'",
    ),
    (
        "bad regex",
        "regex:(",
        "invalid regular expression: missing ), unterminated subpattern at position 0",
    ),
    (
        "surrounding spaces",
        " http://localhost",
        "an origin has no surrounding spaces; did you mean 'http://localhost'?",
    ),
    (
        "bad port",
        "http://localhost:99999",
        "expected an origin such as 'https://app.example.com:8443'",
    ),
]


@pytest.mark.parametrize(
    "entry,message", [r[1:] for r in BAD_ENTRIES], ids=[r[0] for r in BAD_ENTRIES]
)
def test_bad_entries_are_refused_with_a_reason(entry, message):
    with pytest.raises(ValueError) as caught:
        compile_allow_entry(entry)
    assert str(caught.value) == message


def test_parse_origin_splits_scheme_host_port():
    parsed = parse_origin("https://[::1]:8443")
    assert (parsed.scheme, parsed.host, parsed.port) == ("https", "[::1]", 8443)

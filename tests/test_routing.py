"""Table tests for routing: longest prefix on segment boundaries; URLs only from config."""

from __future__ import annotations

import pytest

from corsproxy.config.model import Route
from corsproxy.proxy.routing import RouteTable, origin_form

TABLE = RouteTable(
    (
        Route("/", "http://localhost:3000"),
        Route("/api", "http://localhost:8000"),
        Route("/api/v2", "https://staging.example.com/base", strip_prefix=True),
    )
)
ROWS = [
    ("root goes to the / route", "/", "http://localhost:3000/"),
    ("the prefix itself matches", "/api", "http://localhost:8000/api"),
    ("below the prefix matches", "/api/users?x=1", "http://localhost:8000/api/users?x=1"),
    ("a longer word is not the prefix", "/apix", "http://localhost:3000/apix"),
    ("the longest prefix wins", "/api/v2/users", "https://staging.example.com/base/users"),
    ("strip_prefix leaves / for the prefix itself", "/api/v2", "https://staging.example.com/base/"),
    ("strip_prefix keeps the query", "/api/v2?q=1", "https://staging.example.com/base/?q=1"),
    ("an empty query is kept", "/api?", "http://localhost:8000/api?"),
    (
        "percent-encoding is kept byte for byte",
        "/api/%7E%2F?a=%20",
        "http://localhost:8000/api/%7E%2F?a=%20",
    ),
    (
        "a scheme-relative path stays a path",
        "//evil.example/x",
        "http://localhost:3000//evil.example/x",
    ),
    (
        "an embedded URL stays a path",
        "/http://evil.example/",
        "http://localhost:3000/http://evil.example/",
    ),
    (
        "an absolute-form target keeps only its path",
        "http://evil.example/api/x",
        "http://localhost:8000/api/x",
    ),
    (
        "an absolute-form target without a path goes to /",
        "http://evil.example",
        "http://localhost:3000/",
    ),
]


@pytest.mark.parametrize("raw,url", [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_match(raw, url):
    target = TABLE.match(raw)
    assert target is not None and target.url == url


def test_no_route_without_a_root():
    table = RouteTable((Route("/api", "http://localhost:8000"),))
    assert table.match("/apix") is None
    assert table.match("/") is None
    assert table.prefixes == ("/api",)


@pytest.mark.parametrize(
    "raw",
    ["evil.example:443", "*", ""],
    ids=["authority form has no path", "asterisk form has no path", "empty target has no path"],
)
def test_targets_without_a_path(raw):
    assert origin_form(raw) is None

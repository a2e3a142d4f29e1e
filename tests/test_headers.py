"""Table tests for the header rules of each direction."""

from __future__ import annotations

import pytest

from corsproxy.proxy.headers import for_client, for_upstream
from corsproxy.proxy.hostguard import HostGuard

UP = dict(host="backend:8000", client_host="localhost:8080", client_ip="127.0.0.1", scheme="http")
UPSTREAM_ROWS = [
    (
        "hop-by-hop headers are dropped",
        [
            ("Connection", "keep-alive"),
            ("Keep-Alive", "5"),
            ("TE", "trailers"),
            ("Transfer-Encoding", "chunked"),
            ("Upgrade", "h2c"),
            ("Proxy-Connection", "x"),
            ("Proxy-Authorization", "Basic x"),
            ("Accept", "*/*"),
        ],
        {},
        [("Accept", "*/*")],
    ),
    (
        "headers named in Connection are dropped",
        [("Connection", "X-Hop, close"), ("X-Hop", "1"), ("X-Stay", "2")],
        {},
        [("X-Stay", "2")],
    ),
    (
        "the browser's Host becomes X-Forwarded-Host",
        [("Host", "localhost:8080"), ("X-Forwarded-Host", "forged")],
        {},
        [],
    ),
    ("X-Forwarded-For is appended to", [("X-Forwarded-For", "10.0.0.1")], {}, []),
    ("Expect is handled by the proxy itself", [("Expect", "100-continue")], {}, []),
    (
        "origin keep passes Origin, Referer and Sec-Fetch-*",
        [
            ("Origin", "http://localhost:5173"),
            ("Referer", "http://localhost:5173/app"),
            ("Sec-Fetch-Site", "cross-site"),
        ],
        {"origin": "http://localhost:5173", "origin_mode": "keep"},
        [
            ("Origin", "http://localhost:5173"),
            ("Referer", "http://localhost:5173/app"),
            ("Sec-Fetch-Site", "cross-site"),
        ],
    ),
    (
        "origin strip drops Origin, Referer and Sec-Fetch-*",
        [
            ("Origin", "http://localhost:5173"),
            ("Referer", "http://localhost:5173/app"),
            ("Sec-Fetch-Site", "cross-site"),
            ("Sec-Fetch-Mode", "cors"),
            ("Sec-Fetch-Dest", "empty"),
        ],
        {"origin": "http://localhost:5173", "origin_mode": "strip"},
        [],
    ),
    (
        "origin upstream sends the upstream's origin and Referer path",
        [("Origin", "http://localhost:5173"), ("Referer", "http://localhost:5173/app?x=1")],
        {
            "origin": "http://localhost:5173",
            "origin_mode": "upstream",
            "upstream_origin": "https://staging.example.com",
        },
        [
            ("Origin", "https://staging.example.com"),
            ("Referer", "https://staging.example.com/app?x=1"),
        ],
    ),
]


@pytest.mark.parametrize(
    "given,options,kept", [r[1:] for r in UPSTREAM_ROWS], ids=[r[0] for r in UPSTREAM_ROWS]
)
def test_for_upstream(given, options, kept):
    out = for_upstream(given, **{**UP, **options})
    forwarded = [h for h in given if h[0].lower() == "x-forwarded-for"]
    xff = f"{forwarded[0][1]}, 127.0.0.1" if forwarded else "127.0.0.1"
    assert out == kept + [
        ("Host", "backend:8000"),
        ("X-Forwarded-For", xff),
        ("X-Forwarded-Host", "localhost:8080"),
        ("X-Forwarded-Proto", "http"),
    ]


def test_for_client_drops_hop_by_hop_and_connection_named():
    given = [
        ("Connection", "x-trace"),
        ("X-Trace", "1"),
        ("Transfer-Encoding", "chunked"),
        ("Content-Encoding", "gzip"),
        ("Set-Cookie", "a=1"),
        ("Set-Cookie", "b=2"),
    ]
    assert for_client(given) == [
        ("Content-Encoding", "gzip"),
        ("Set-Cookie", "a=1"),
        ("Set-Cookie", "b=2"),
    ]


HOST_ROWS = [
    ("localhost with a port", "localhost:8080", True),
    ("127.0.0.1", "127.0.0.1", True),
    ("[::1] with a port", "[::1]:8080", True),
    ("a .localhost name", "app.localhost:8080", True),
    ("an allowed host", "api.docker:8080", True),
    ("an upper-case localhost", "LOCALHOST:8080", True),
    ("a foreign name (DNS rebinding)", "evil.example", False),
    ("a lookalike", "localhost.evil.example:8080", False),
    ("a LAN address not listed", "192.168.1.20:8080", False),
    ("no Host at all", None, False),
]


@pytest.mark.parametrize("host,allowed", [r[1:] for r in HOST_ROWS], ids=[r[0] for r in HOST_ROWS])
def test_host_guard(host, allowed):
    assert HostGuard("127.0.0.1", ("api.docker",)).allows(host) is allowed

"""The inspector's pure parts: the ring (store.py), preflight pairing, records, previews, HAR."""

from __future__ import annotations

import gc
import json
import tracemalloc
from typing import Any

import pytest

from corsproxy.config.model import Cors
from corsproxy.cors import policy
from corsproxy.cors.alone import judge_upstream, unreachable
from corsproxy.inspector import har
from corsproxy.inspector.preview import Preview, text_like
from corsproxy.inspector.record import to_json
from corsproxy.inspector.store import Pairing, Store, link
from corsproxy.proxy.accesslog import Entry
from corsproxy.proxy.gateway import GatewayError
from corsproxy.proxy.upstreamalone import for_the_log

ORIGIN = "http://localhost:5173"
RULE = policy.compile_policy(Cors()).default


def entry(
    method: str = "GET",
    path: str = "/api/items",
    origin: str | None = ORIGIN,
    *,
    asked: str | None = None,
    at: float = 1000.0,
    status: int = 200,
    upstream: list[tuple[str, str]] | None = None,
) -> Entry:
    """An Entry as Proxy.handle() leaves it: a preflight when `asked` names a method."""
    decision = policy.decide(RULE, method, origin, asked)
    raw = [(b"Host", b"localhost:8080")]
    if origin:
        raw.append((b"Origin", origin.encode()))
    if asked:
        raw.append((b"Access-Control-Request-Method", asked.encode()))
    made = Entry(method, path, origin, "", [], status, decision.verdict, cors=decision)
    made.route, made.time, made.request_headers = "/", at, tuple(raw)
    if decision.verdict is policy.Verdict.PREFLIGHT:
        made.to_browser = decision.headers
    elif upstream is not None:
        made.upstream_url = "http://127.0.0.1:8000" + path
        made.to_upstream = [("Host", "127.0.0.1:8000")]
        made.from_upstream = upstream
        made.to_browser = policy.finish(decision, upstream).headers
        if origin:
            made.alone = judge_upstream(origin, False, True, upstream)
    return made


# ---- the ring --------------------------------------------------------------------------------


def test_the_ring_keeps_the_last_keep_exchanges() -> None:
    store = Store(keep=3)
    for n in range(5):
        store.add(entry(path=f"/n/{n}"))
    assert [e.path for e in store.ring] == ["/n/2", "/n/3", "/n/4"]
    assert [r["id"] for r in store.since(0)] == [3, 4, 5]
    assert [r["id"] for r in store.since(4)] == [5]
    assert store.find(1) is None and store.find(5) is not None


def test_subscribers_get_each_exchange_once_and_can_stop() -> None:
    store = Store(keep=10)
    seen: list[tuple[str, Any]] = []
    stop = store.subscribe(seen.append)
    store.add(entry())
    store.clear()
    stop()
    store.add(entry())
    assert [kind for kind, _ in seen] == ["exchange", "clear"]
    assert seen[0][1]["id"] == 1
    assert list(store.ring) and store.ring[0].id == 2


def test_no_json_is_made_while_no_one_listens(monkeypatch: pytest.MonkeyPatch) -> None:
    made = []
    monkeypatch.setattr("corsproxy.inspector.store.to_json", lambda *a: made.append(a) or {})
    store = Store(keep=10)
    store.add(entry())
    assert made == []


def test_a_full_ring_forgets_what_it_drops() -> None:
    """Memory is bounded by keep: the exchanges that fall out are freed."""
    store = Store(keep=20)
    gc.collect()
    tracemalloc.start()
    for _ in range(220):
        store.add(entry(upstream=[("X-Big", "x" * 100_000)]))
    gc.collect()
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert len(store.ring) == 20
    assert held < 3_000_000  # 20 kept of 100 kB each; 220 kept would be 22 MB


# ---- pairing ---------------------------------------------------------------------------------


def records(*entries: Entry) -> list[dict[str, Any]]:
    out = []
    for n, made in enumerate(entries, start=1):
        made.id = n
        out.append(to_json(made, "http"))
    return out


PAIRING = [
    (
        "a preflight pairs with the request that follows",
        [entry("OPTIONS", asked="POST"), entry("POST")],
        {1: 2, 2: 1},
    ),
    (
        "the method asked for must match (case-insensitively)",
        [entry("OPTIONS", asked="patch"), entry("PUT"), entry("PATCH")],
        {1: 3, 3: 1},
    ),
    (
        "another path does not pair",
        [entry("OPTIONS", "/a", asked="POST"), entry("POST", "/b")],
        {},
    ),
    (
        "another origin does not pair",
        [entry("OPTIONS", asked="POST"), entry("POST", origin="http://localhost:3000")],
        {},
    ),
    (
        "a request after the preflight's max-age does not pair",
        [entry("OPTIONS", asked="POST", at=1000), entry("POST", at=1000 + 601)],
        {},
    ),
    (
        "within max-age it pairs even when not right after",
        [entry("OPTIONS", asked="POST", at=1000), entry("GET", at=1001), entry("POST", at=1500)],
        {1: 3, 3: 1},
    ),
    (
        "one preflight pairs with one request only",
        [entry("OPTIONS", asked="POST"), entry("POST"), entry("POST")],
        {1: 2, 2: 1},
    ),
    (
        "two preflights for one URL pair in order",
        [
            entry("OPTIONS", asked="POST"),
            entry("OPTIONS", asked="POST"),
            entry("POST"),
            entry("POST"),
        ],
        {1: 3, 3: 1, 2: 4, 4: 2},
    ),
    (
        "a refused preflight pairs with nothing (the browser stops there)",
        [
            entry("OPTIONS", origin="http://evil.test", asked="POST"),
            entry("POST", origin="http://evil.test"),
        ],
        {},
    ),
    (
        "a request without an origin pairs with nothing",
        [entry("OPTIONS", asked="POST"), entry("POST", origin=None)],
        {},
    ),
]


@pytest.mark.parametrize(
    ("entries", "pairs"), [r[1:] for r in PAIRING], ids=[r[0] for r in PAIRING]
)
def test_pairing(entries: list[Entry], pairs: dict[int, int]) -> None:
    linked = link(records(*entries))
    assert {r["id"]: r["pair"] for r in linked if r["pair"] is not None} == pairs


def test_a_stream_pairs_what_arrives_with_what_came_before() -> None:
    first, second = records(entry("OPTIONS", asked="DELETE"), entry("DELETE"))
    pairing = Pairing()
    link([first], pairing)
    assert pairing.feed(second) == 1 and second["pair"] == 1


def test_a_flood_of_unanswered_preflights_stays_bounded() -> None:
    pairing = Pairing()
    for n in range(10_000):
        made = entry("OPTIONS", f"/p/{n}", asked="POST")
        made.id = n
        pairing.feed(to_json(made, "http"))
    assert sum(len(q) for q in pairing._open.values()) <= 4096


# ---- records ---------------------------------------------------------------------------------


def test_an_allowed_exchange_has_every_field_the_spec_lists() -> None:
    made = entry(upstream=[("Content-Type", "application/json")])
    made.id = 7
    record = json.loads(json.dumps(to_json(made, "http")))
    for key in (
        "id",
        "time",
        "method",
        "path",
        "route",
        "origin",
        "status",
        "duration_ms",
        "decision",
        "reason",
        "without_proxy",
        "corrections",
        "request_headers",
        "upstream_request_headers",
        "upstream_response_headers",
        "response_headers",
        "cookies",
        "pair",
    ):
        assert key in record, key
    assert record["decision"] == "allowed"
    assert record["reason"] == "origin allowed by 'localhost'"
    assert record["url"] == "http://localhost:8080/api/items"
    assert record["request_headers"] == [["Host", "localhost:8080"], ["Origin", ORIGIN]]
    finding = record["without_proxy"]["findings"][0]
    assert record["without_proxy"]["verdict"] == "blocked"
    assert finding["name"] == "CORSMissingAllowOrigin"
    assert finding["chromium"] == (
        "Access to fetch at 'http://127.0.0.1:8000/api/items' from origin "
        "'http://localhost:5173' has been blocked by CORS policy: No 'Access-Control-Allow-Origin'"
        " header is present on the requested resource."
    )
    assert finding["mdn"].endswith("/CORSMissingAllowOrigin") and finding["fix"]


def test_a_preflight_the_proxy_answered_was_not_judged_without_it() -> None:
    record = to_json(entry("OPTIONS", asked="PUT"), "http")
    assert record["decision"] == "preflight"
    assert record["without_proxy"] is None
    assert record["upstream_request_headers"] is None
    assert record["preflight"] == {"method": "PUT", "headers": None, "max_age": 600}


def test_a_dead_upstream_is_an_error_the_browser_would_fail_with() -> None:
    made = entry()
    made.failure = GatewayError(502, "upstream unreachable", "connection refused on 127.0.0.1")
    record = to_json(made, "http")
    assert record["decision"] == "error"
    assert record["without_proxy"]["verdict"] == "blocked"
    finding = record["without_proxy"]["findings"][0]
    assert finding["name"] == "CORSDidNotSucceed"
    assert "net::ERR_CONNECTION_REFUSED" in finding["chromium"]


STAR = [("Access-Control-Allow-Origin", "*")]
STAR_CREDENTIALS = [*STAR, ("Access-Control-Allow-Credentials", "true")]
ECHO = [("Access-Control-Allow-Origin", ORIGIN), ("Access-Control-Allow-Credentials", "true")]
# (id, the upstream's CORS headers, cookie sent, the rule allows credentials, want)
WITHOUT_PROXY = [
    ("no CORS at all is blocked", [], False, True, ("blocked", "CORSMissingAllowOrigin", False)),
    (
        "a star passes when credentials are not allowed",
        STAR,
        False,
        False,
        ("allowed", None, False),
    ),
    (
        "a star blocks only a credentialed request, when credentials are allowed",
        STAR_CREDENTIALS,
        False,
        True,
        ("blocked", "CORSNotSupportingCredentials", True),
    ),
    (
        "a star blocks a request that carried cookies",
        STAR_CREDENTIALS,
        True,
        True,
        ("blocked", "CORSNotSupportingCredentials", False),
    ),
    (
        "an echoed origin with credentials passes",
        ECHO + [("Vary", "Origin")],
        True,
        True,
        ("allowed", None, False),
    ),
    (
        "an echoed origin without Vary passes with a note",
        ECHO,
        True,
        True,
        ("allowed", None, False),
    ),
]


@pytest.mark.parametrize(
    ("cors", "cookie", "credentials", "want"),
    [r[1:] for r in WITHOUT_PROXY],
    ids=[r[0] for r in WITHOUT_PROXY],
)
def test_without_the_proxy(cors: list, cookie: bool, credentials: bool, want: tuple) -> None:
    alone = judge_upstream(ORIGIN, cookie, credentials, cors)
    fatal = next((f.name for f in alone.findings if f.fatal), None)
    assert (alone.verdict, fatal, alone.credentialed_only) == want


def test_a_note_that_does_not_block_is_kept() -> None:
    alone = judge_upstream(ORIGIN, True, True, ECHO)
    assert [(f.name, f.fatal) for f in alone.findings] == [("CORSMissingVaryOrigin", False)]


def test_the_log_note_is_the_first_blocking_finding() -> None:
    star = [("Access-Control-Allow-Origin", "*"), ("Access-Control-Allow-Credentials", "true")]
    said = for_the_log(judge_upstream(ORIGIN, False, True, star))
    assert said is not None and said.full == (
        "upstream alone: CORSNotSupportingCredentials (Access-Control-Allow-Origin is '*' but the "
        "request includes credentials) for a credentialed request -> fixed"
    )
    assert (
        for_the_log(judge_upstream(ORIGIN, False, False, [("Access-Control-Allow-Origin", "*")]))
        is None
    )
    assert (
        unreachable("upstream timed out", "no response", "GET").findings[0].value == "ERR_TIMED_OUT"
    )


# ---- previews --------------------------------------------------------------------------------

TEXT_LIKE = [
    ("application/json", None, True),
    ("application/json; charset=utf-8", None, True),
    ("application/problem+json", None, True),
    ("text/plain", None, True),
    ("application/x-www-form-urlencoded", None, True),
    ("application/octet-stream", None, False),
    ("image/png", None, False),
    ("multipart/form-data; boundary=x", None, False),
    (None, None, False),
    ("application/json", "gzip", False),
    ("application/json", "identity", True),
]


@pytest.mark.parametrize(("kind", "encoding", "want"), TEXT_LIKE)
def test_text_like(kind: str | None, encoding: str | None, want: bool) -> None:
    assert text_like(kind, encoding) is want


def test_a_preview_keeps_only_its_limit_and_counts_the_rest() -> None:
    preview = Preview(10, "text/plain", declared=25)
    first = b"abcdef"
    for piece in (first, b"ghijklmno", b"pqrstuvwxy"):
        preview.feed(piece)
    assert preview.data == b"abcdefghij"
    assert preview.pieces[0] is first  # kept by reference, not copied
    assert (preview.size, preview.kept, preview.whole) == (25, 10, False)
    assert preview.to_json()["truncated"] is True


def test_a_small_body_is_kept_whole() -> None:
    preview = Preview(100, "application/json", declared=7)
    preview.feed(b'{"a":1}')
    assert preview.whole and preview.to_json() == {
        "content_type": "application/json",
        "text": '{"a":1}',
        "size": 7,
        "truncated": False,
    }


# ---- HAR -------------------------------------------------------------------------------------


def test_har_is_version_1_2_with_one_entry_per_exchange() -> None:
    made = entry(
        "POST", "/api/items?page=2&q=a%20b", upstream=[("Content-Type", "application/json")]
    )
    made.request_body = Preview(100, "application/json", 2)
    made.request_body.feed(b"{}")
    preflight = entry("OPTIONS", "/api/items?page=2&q=a%20b", asked="POST")
    document = json.loads(json.dumps(har.document(link(records(preflight, made)))))
    log = document["log"]
    assert log["version"] == "1.2" and log["creator"]["name"] == "corsproxy"
    assert [e["request"]["method"] for e in log["entries"]] == ["OPTIONS", "POST"]
    post = log["entries"][1]
    assert post["request"]["url"] == "http://localhost:8080/api/items?page=2&q=a%20b"
    assert post["request"]["queryString"] == [
        {"name": "page", "value": "2"},
        {"name": "q", "value": "a b"},
    ]
    assert post["request"]["postData"] == {"mimeType": "application/json", "text": "{}"}
    assert {"name": "Origin", "value": ORIGIN} in post["request"]["headers"]
    assert post["response"]["status"] == 200 and post["response"]["statusText"] == "OK"
    assert {"name": "Access-Control-Allow-Origin", "value": ORIGIN} in post["response"]["headers"]
    assert post["_corsproxy"]["pair"] == 1 and post["_corsproxy"]["decision"] == "allowed"
    for required in ("startedDateTime", "time", "request", "response", "cache", "timings"):
        assert required in post
    for required in ("send", "wait", "receive"):
        assert post["timings"][required] >= 0


def test_har_file_names_sort_by_time() -> None:
    from datetime import datetime

    assert har.filename(datetime(2025, 3, 14, 15, 9, 26)) == "corsproxy-2025-03-14-150926.har"

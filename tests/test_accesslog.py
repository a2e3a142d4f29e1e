"""The access log as a person reads it: format_line() as a table, and the AccessLog around it
(the upstream-alone finding in full once per route, the clock, when to colour)."""

from __future__ import annotations

import io
import os
import re
import time

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from corsproxy.cors.policy import Verdict
from corsproxy.proxy.accesslog import (
    AccessLog,
    Entry,
    UpstreamAlone,
    format_line,
    wants_colour,
)

ORIGIN = "http://localhost:5173"
ALLOWED = "allowed (origin allowed by 'localhost')"
REFUSAL = "refused (origin 'http://evil.example' is not in cors.allow_origins (localhost))"
MISSING = UpstreamAlone("CORSMissingAllowOrigin", "no Access-Control-Allow-Origin header")
STAR = UpstreamAlone(
    "CORSNotSupportingCredentials",
    "Access-Control-Allow-Origin is '*' but the request includes credentials",
    " for a credentialed request",
)
GREEN, YELLOW, RED, RESET = "\x1b[32m", "\x1b[33m", "\x1b[31m", "\x1b[0m"


def entry(**fields) -> Entry:
    defaults = {"method": "GET", "path": "/users", "origin": ORIGIN, "status": 200}
    return Entry(**{**defaults, **fields})


LINES = [
    (
        "an allowed request the upstream alone would fail says the finding in full",
        entry(decision=ALLOWED, verdict=Verdict.ALLOWED, upstream_alone=MISSING),
        False,
        "14:03:07.412 GET /users origin=http://localhost:5173 allowed (origin allowed by "
        "'localhost'); upstream alone: CORSMissingAllowOrigin (no Access-Control-Allow-Origin "
        "header) -> fixed -> 200 1.2ms",
    ),
    (
        "said before on this route, the finding is its name, and still says it was fixed",
        entry(decision=ALLOWED, verdict=Verdict.ALLOWED, upstream_alone=MISSING),
        True,
        "14:03:07.412 GET /users origin=http://localhost:5173 allowed (origin allowed by "
        "'localhost'); upstream alone: CORSMissingAllowOrigin -> fixed -> 200 1.2ms",
    ),
    (
        "a finding only a credentialed request meets keeps saying so when short",
        entry(decision=ALLOWED, verdict=Verdict.ALLOWED, upstream_alone=STAR),
        True,
        "14:03:07.412 GET /users origin=http://localhost:5173 allowed (origin allowed by "
        "'localhost'); upstream alone: CORSNotSupportingCredentials for a credentialed request "
        "-> fixed -> 200 1.2ms",
    ),
    (
        "the finding comes before the corrections and the cookie notes",
        entry(
            decision=ALLOWED,
            verdict=Verdict.ALLOWED,
            upstream_alone=MISSING,
            notes=["fixed: Access-Control-Allow-Origin '*' -> 'http://localhost:5173'"],
        ),
        True,
        "14:03:07.412 GET /users origin=http://localhost:5173 allowed (origin allowed by "
        "'localhost'); upstream alone: CORSMissingAllowOrigin -> fixed; fixed: "
        "Access-Control-Allow-Origin '*' -> 'http://localhost:5173' -> 200 1.2ms",
    ),
    (
        "a refused origin's 200 says the browser blocks it, where the status is",
        entry(origin="http://evil.example", decision=REFUSAL, verdict=Verdict.REFUSED),
        False,
        f"14:03:07.412 GET /users origin=http://evil.example {REFUSAL} "
        "-> 200 (blocked in the browser: origin refused) 1.2ms",
    ),
    (
        "a refused preflight's 403 says the same",
        entry(
            method="OPTIONS",
            origin="http://evil.example",
            decision="preflight refused (origin 'http://evil.example' is not allowed)",
            verdict=Verdict.PREFLIGHT_REFUSED,
            status=403,
        ),
        False,
        "14:03:07.412 OPTIONS /users origin=http://evil.example preflight refused (origin "
        "'http://evil.example' is not allowed) -> 403 (blocked in the browser: origin refused) "
        "1.2ms",
    ),
    (
        "a granted preflight that lacks the method asked for is blocked in the browser",
        entry(
            method="OPTIONS",
            decision="preflight (origin allowed by 'localhost'; the browser will block it: "
            "method 'DELETE' is not in cors.allow_methods)",
            verdict=Verdict.PREFLIGHT,
            status=204,
        ),
        False,
        "14:03:07.412 OPTIONS /users origin=http://localhost:5173 preflight (origin allowed by "
        "'localhost'; the browser will block it: method 'DELETE' is not in cors.allow_methods) "
        "-> 204 (blocked in the browser: the preflight does not grant it) 1.2ms",
    ),
    (
        "a request without Origin is not CORS and has no verdict to add",
        entry(origin=None, decision="no-origin", verdict=Verdict.NOT_CORS),
        False,
        "14:03:07.412 GET /users no-origin -> 200 1.2ms",
    ),
    (
        "a request with no decision at all (CONNECT) has one space between its parts",
        entry(method="CONNECT", path="example.com:443", origin=None, status=405),
        False,
        "14:03:07.412 CONNECT example.com:443 -> 405 1.2ms",
    ),
    (
        "a C1 control in a header is shown escaped: a request must not drive the terminal",
        entry(
            origin="http://x\x9b31m.example",
            decision="refused (origin 'http://x\x9b31m.example' is not allowed)",
            verdict=Verdict.REFUSED,
        ),
        False,
        "14:03:07.412 GET /users origin=http://x\\x9b31m.example refused (origin "
        "'http://x\\x9b31m.example' is not allowed) -> 200 (blocked in the browser: origin "
        "refused) 1.2ms",
    ),
]


@pytest.mark.parametrize(
    ("entry", "short", "line"), [r[1:] for r in LINES], ids=[r[0] for r in LINES]
)
def test_a_line_reads(entry: Entry, short: bool, line: str) -> None:
    assert format_line(entry, 1.234, "14:03:07.412", short) == line + "\n"


COLOURS = [
    (
        "allowed and nothing to fix is green",
        entry(decision=ALLOWED, verdict=Verdict.ALLOWED),
        f"14:03:07.412 GET /users origin={ORIGIN} {GREEN}allowed{RESET} (origin allowed by "
        f"'localhost') {GREEN}-> 200{RESET} 1.2ms",
    ),
    (
        "a granted preflight is green",
        entry(
            method="OPTIONS",
            decision="preflight (origin allowed by 'localhost')",
            verdict=Verdict.PREFLIGHT,
            status=204,
        ),
        f"14:03:07.412 OPTIONS /users origin={ORIGIN} {GREEN}preflight{RESET} (origin allowed "
        f"by 'localhost') {GREEN}-> 204{RESET} 1.2ms",
    ),
    (
        "allowed because the proxy fixed the upstream's headers is yellow",
        entry(decision=ALLOWED, verdict=Verdict.ALLOWED, upstream_alone=MISSING),
        f"14:03:07.412 GET /users origin={ORIGIN} {YELLOW}allowed{RESET} (origin allowed by "
        f"'localhost'); upstream alone: CORSMissingAllowOrigin -> fixed {YELLOW}-> 200{RESET} "
        "1.2ms",
    ),
    (
        "a refused origin is red, blocked clause included",
        entry(origin="http://evil.example", decision=REFUSAL, verdict=Verdict.REFUSED),
        f"14:03:07.412 GET /users origin=http://evil.example {RED}refused{RESET}"
        f"{REFUSAL[len('refused') :]} {RED}-> 200 (blocked in the browser: origin refused)"
        f"{RESET} 1.2ms",
    ),
    (
        "a 502 is red even for an allowed origin",
        entry(
            decision=ALLOWED,
            verdict=Verdict.ALLOWED,
            status=502,
            notes=["upstream unreachable: connection refused"],
        ),
        f"14:03:07.412 GET /users origin={ORIGIN} {RED}allowed{RESET} (origin allowed by "
        f"'localhost'); upstream unreachable: connection refused {RED}-> 502{RESET} 1.2ms",
    ),
    (
        "a Host the guard refuses is red",
        entry(
            origin=None,
            decision="refused: Host 'evil.test' is not an allowed host",
            status=403,
        ),
        f"14:03:07.412 GET /users {RED}refused:{RESET} Host 'evil.test' is not an allowed host "
        f"{RED}-> 403{RESET} 1.2ms",
    ),
    (
        "a request without Origin has no colour",
        entry(origin=None, decision="no-origin", verdict=Verdict.NOT_CORS),
        "14:03:07.412 GET /users no-origin -> 200 1.2ms",
    ),
]


@pytest.mark.parametrize(("entry", "line"), [r[1:] for r in COLOURS], ids=[r[0] for r in COLOURS])
def test_on_a_terminal_the_verdict_is_coloured(entry: Entry, line: str) -> None:
    assert format_line(entry, 1.234, "14:03:07.412", True, colour=True) == line + "\n"


def test_at_debug_the_four_header_sets_follow_the_line_indented() -> None:
    browser = CIMultiDictProxy(CIMultiDict([("Host", "localhost:8080"), ("Origin", ORIGIN)]))
    sent = [("Host", "localhost:8000"), ("Origin", ORIGIN)]
    answer = [("Content-Type", "application/json")]
    out = [*answer, ("Access-Control-Allow-Origin", ORIGIN), ("Vary", "Origin")]
    line = format_line(
        entry(
            decision=ALLOWED,
            verdict=Verdict.ALLOWED,
            from_browser=browser,
            to_upstream=sent,
            from_upstream=answer,
            to_browser=out,
        ),
        1.234,
        "14:03:07.412",
        debug=True,
    )
    assert line.splitlines()[1:] == [
        "    from the browser:",
        "      Host: localhost:8080",
        "      Origin: http://localhost:5173",
        "    to the upstream:",
        "      Host: localhost:8000",
        "      Origin: http://localhost:5173",
        "    from the upstream:",
        "      Content-Type: application/json",
        "    to the browser:",
        "      Content-Type: application/json",
        "      Access-Control-Allow-Origin: http://localhost:5173",
        "      Vary: Origin",
    ]


def test_at_debug_a_preflight_says_nothing_went_upstream() -> None:
    line = format_line(
        entry(
            method="OPTIONS",
            verdict=Verdict.PREFLIGHT,
            from_browser=[("Origin", ORIGIN)],
            to_browser=[("Access-Control-Allow-Origin", ORIGIN)],
        ),
        1.0,
        "14:03:07.412",
        debug=True,
    )
    assert line.splitlines()[3:5] == [
        "    to the upstream: none (the proxy answered itself)",
        "    from the upstream: none (the proxy answered itself)",
    ]


def test_below_debug_no_header_is_written() -> None:
    line = format_line(entry(from_browser=[("Cookie", "sid=1")]), 1.0, "14:03:07.412")
    assert "\n" not in line[:-1] and "Cookie" not in line


def emitted(log: AccessLog, stream: io.StringIO) -> list[str]:
    log.flush()
    return [line.split(" ", 1)[1] for line in stream.getvalue().splitlines()]


def fixed_on(route: str, upstream_alone: UpstreamAlone = MISSING) -> Entry:
    return entry(
        decision=ALLOWED, verdict=Verdict.ALLOWED, upstream_alone=upstream_alone, route=route
    )


def test_a_finding_is_said_in_full_once_per_route_and_finding() -> None:
    stream = io.StringIO()
    log = AccessLog("info", stream)
    for e in (fixed_on("/"), fixed_on("/"), fixed_on("/api"), fixed_on("/", STAR), fixed_on("/")):
        log.emit(e, 1.0)
    said = [line.split("; ", 1)[1].rsplit(" -> 200", 1)[0] for line in emitted(log, stream)]
    assert said == [
        "upstream alone: CORSMissingAllowOrigin (no Access-Control-Allow-Origin header) -> fixed",
        "upstream alone: CORSMissingAllowOrigin -> fixed",
        "upstream alone: CORSMissingAllowOrigin (no Access-Control-Allow-Origin header) -> fixed",
        f"upstream alone: CORSNotSupportingCredentials ({STAR.detail}) for a credentialed "
        "request -> fixed",
        "upstream alone: CORSMissingAllowOrigin -> fixed",
    ]


def test_the_clock_is_the_local_time_the_request_arrived_to_the_millisecond() -> None:
    log = AccessLog("info", io.StringIO())
    when = 1_700_000_000.5
    expected = time.strftime("%H:%M:%S", time.localtime(when)) + ".500"
    assert log.clock(when) == expected
    assert log.clock(when + 0.0121) == expected[:-3] + "512"
    assert log.clock(when + 1) == time.strftime("%H:%M:%S", time.localtime(when + 1)) + ".500"


def test_each_emitted_line_starts_with_the_time() -> None:
    stream = io.StringIO()
    log = AccessLog("info", stream)
    log.emit(entry(decision=ALLOWED, verdict=Verdict.ALLOWED), 2.5)
    log.flush()
    assert re.fullmatch(
        r"[0-2]\d:[0-5]\d:[0-5]\d\.\d{3} GET /users origin=http://localhost:5173 allowed "
        r"\(origin allowed by 'localhost'\) -> 200 2\.5ms\n",
        stream.getvalue(),
    )


@pytest.fixture
def terminal():
    """Both ends of a pseudo-terminal: what a person's shell gives the proxy as stderr."""
    leader, follower = os.openpty()
    with open(follower, "w") as stream:
        yield stream
    os.close(leader)


@pytest.mark.parametrize(
    ("env", "colour"),
    [({}, True), ({"NO_COLOR": "1"}, False), ({"TERM": "dumb"}, False), ({"NO_COLOR": ""}, True)],
    ids=["a terminal", "NO_COLOR set", "a dumb terminal", "NO_COLOR empty counts as unset"],
)
def test_colour_only_on_a_terminal_without_no_color(terminal, env, colour) -> None:
    assert wants_colour(terminal, env) is colour


def test_no_colour_into_a_file_or_a_pipe(tmp_path) -> None:
    with open(tmp_path / "log", "w") as file:
        assert wants_colour(file, {}) is False
    read, write = os.pipe()
    with open(write, "w") as pipe:
        assert wants_colour(pipe, {}) is False
    os.close(read)

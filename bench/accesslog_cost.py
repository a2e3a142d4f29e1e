"""What one access-log line costs: emit() of typical entries to a file, flushes included.

    python bench/accesslog_cost.py [--lines 200000] [--rounds 5] [--colour] [--level debug]

The budget is 10 µs per line. Entries are built as the handler builds them (header sets
kept by reference); the cost of building them is measured apart and subtracted. Runs inside
an event loop, as the proxy does, so lines are batched as in production.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from multidict import CIMultiDict, CIMultiDictProxy  # noqa: E402

from corsproxy.cors.policy import Verdict  # noqa: E402
from corsproxy.proxy.accesslog import AccessLog, Entry, UpstreamAlone  # noqa: E402

ORIGIN = "http://localhost:5173"
BROWSER = CIMultiDictProxy(
    CIMultiDict(
        [
            ("Host", "localhost:8080"),
            ("Origin", ORIGIN),
            ("Accept", "application/json"),
            ("Cookie", "sid=abc123"),
            ("User-Agent", "Mozilla/5.0"),
        ]
    )
)
UPSTREAM_OUT = list(BROWSER.items())
UPSTREAM_IN = [("Content-Type", "application/json"), ("Content-Length", "27")]
TO_BROWSER = [
    *UPSTREAM_IN,
    ("Access-Control-Allow-Origin", ORIGIN),
    ("Access-Control-Allow-Credentials", "true"),
    ("Vary", "Origin"),
]
MISSING = UpstreamAlone("CORSMissingAllowOrigin", "no Access-Control-Allow-Origin header")
REFUSAL = (
    "refused (origin 'http://evil.example' is not in cors.allow_origins (localhost); "
    "add it there (or pass --allow-origin http://evil.example) to allow it)"
)


def makers() -> list[Callable[[], Entry]]:
    """A proxied GET the proxy fixed, a preflight answered locally, a refused origin."""

    def fixed() -> Entry:
        entry = Entry("GET", "/api/users?page=2", from_browser=BROWSER)
        entry.origin, entry.decision = ORIGIN, "allowed (origin allowed by 'localhost')"
        entry.verdict, entry.route, entry.upstream_alone = Verdict.ALLOWED, "/", MISSING
        entry.to_upstream, entry.from_upstream, entry.to_browser = (
            UPSTREAM_OUT,
            UPSTREAM_IN,
            TO_BROWSER,
        )
        entry.status = 200
        return entry

    def preflight() -> Entry:
        entry = Entry("OPTIONS", "/api/users", ORIGIN, "preflight (origin allowed by 'localhost')")
        entry.status, entry.verdict = 204, Verdict.PREFLIGHT
        entry.from_browser, entry.to_browser = BROWSER, TO_BROWSER
        return entry

    def refused() -> Entry:
        entry = Entry("GET", "/api/users", "http://evil.example", REFUSAL, from_browser=BROWSER)
        entry.verdict, entry.status = Verdict.REFUSED, 200
        entry.to_upstream, entry.from_upstream, entry.to_browser = (
            UPSTREAM_OUT,
            UPSTREAM_IN,
            UPSTREAM_IN,
        )
        return entry

    return [fixed, preflight, refused]


async def one_round(lines: int, level: str, colour: bool) -> float:
    """CPU µs per line (this process, user + system): emit() and its writes, less building the
    entries. CPU time rather than wall time, so other jobs on the machine move it less."""
    make = makers()
    with tempfile.TemporaryDirectory() as folder, open(os.path.join(folder, "log"), "w") as sink:
        log = AccessLog(level, sink, colour=colour)
        started = time.process_time()
        for i in range(lines):
            log.emit(make[i % 3](), 1.234)
        log.flush()
        spent = time.process_time() - started
    started = time.process_time()
    for i in range(lines):
        make[i % 3]()
    building = time.process_time() - started
    return (spent - building) / lines * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lines", type=int, default=200_000, help="lines per round")
    parser.add_argument("--rounds", type=int, default=5, help="rounds; the median is reported")
    parser.add_argument("--colour", action="store_true", help="as on a terminal")
    parser.add_argument("--level", default="info", help="info (default) or debug")
    options = parser.parse_args()
    costs = [
        asyncio.run(one_round(options.lines, options.level, options.colour))
        for _ in range(options.rounds)
    ]
    shown = ", ".join(f"{cost:.2f}" for cost in costs)
    print(f"{statistics.median(costs):.2f} µs per line (median; rounds: {shown})")
    return 0


if __name__ == "__main__":
    sys.exit(main())

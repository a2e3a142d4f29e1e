"""What a user feels: a page in headless Chromium calling an API through each CORS proxy.

usage: python bench/pageload.py [--rounds 5] [--validate] [--corsproxy-row FLAGS]...

A page on its own origin (http://localhost:PORT, bench/pageload.html) calls the upstream
through each target: nginx with the CORS config of bench/nginx_conf.py, corsproxy, the
minimal reference proxy, and cors-anywhere and local-cors-proxy when installed under
bench/.peers. Per target and round, in a fresh browser context: a burst of 100 calls (half
of them preflighted JSON POSTs), a waterfall of 30 calls each awaiting the previous, and
20 preflighted POSTs in turn with a cold and then a warm preflight cache. Before timing,
every target must give readable answers; rounds interleave the targets (order rotated),
and each target's time is divided by nginx's of the same round before taking medians.
--validate adds the reference proxy slowed by --delay-ms per request and checks that the
benchmark sees it slower by about that much on every request in a scenario's critical path.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import report
import targets
from report import Column
from targets import Target

from bench import Starter, command_output, corsproxy_rows, machine_line

HERE = Path(__file__).resolve().parent
CHROMIUM = os.environ.get("CORSPROXY_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = [  # as tests/e2e/conftest.py launches it
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-proxy-server",
]
COLUMNS = (
    Column("burst: 100 calls, 50 preflighted", "burst", "ms", "lower", "whole ms"),
    Column("waterfall: 30 calls in turn", "waterfall", "ms", "lower", "whole ms"),
    Column("20 preflighted POSTs, cold preflight cache", "cold", "ms", "lower", "whole ms"),
    Column("the same 20, warm preflight cache", "warm", "ms", "lower", "whole ms"),
)
# Requests on each scenario's critical path, which a proxy slowed by d ms per request
# delays by that many times d: the burst's 150 requests (100 calls, 50 preflights) share
# Chromium's six connections to one host, so at least 25 of them follow one another.
CRITICAL_PATH = {"burst": math.ceil(150 / 6), "waterfall": 30, "cold": 40, "warm": 20}
KINDS = ("nginx", "corsproxy", "reference", "cors-anywhere", "local-cors-proxy")
TOLERANCE = 0.25  # --validate passes when each measured delay is within 25 % of the expected


@dataclass(frozen=True, slots=True)
class PageSample:
    """One scenario through one target in one round, as the page measured it."""

    ms: float
    problems: list[str]


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--validate", action="store_true", help="add a deliberately slowed proxy")
    parser.add_argument("--delay-ms", type=float, default=50, help="its delay per request")
    parser.add_argument(
        "--corsproxy-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra argument for every corsproxy serve (repeatable)",
    )
    parser.add_argument(
        "--corsproxy-row",
        action="append",
        default=[],
        metavar="FLAGS",
        help="one more corsproxy row with these serve flags (repeatable), e.g. --https",
    )
    parser.add_argument(
        "--corsproxy-command",
        action="append",
        default=[],
        metavar="LABEL=COMMAND",
        help="one more corsproxy row run by COMMAND instead of `python -m corsproxy`",
    )
    parser.add_argument(
        "--inspector-open",
        action="store_true",
        help="one more corsproxy row with a subscriber on the inspector's event stream",
    )
    parser.add_argument(
        "--only",
        type=lambda text: set(text.split(",")),
        metavar="NAMES",
        help="start only these targets, e.g. nginx,reference (names: " + ", ".join(KINDS) + ")",
    )
    parser.add_argument("--peers", action="store_true", help="install nginx, wrk, Node peers")
    parser.add_argument("--json", type=Path, help="also write every sample to this file")
    return parser.parse_args()


@contextmanager
def page_server() -> Iterator[str]:
    """bench/pageload.html at http://localhost:PORT/, from a thread; yields the page's URL."""
    page = (HERE / "pageload.html").read_bytes()

    class Page(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(page)))
            self.end_headers()
            self.wfile.write(page)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://localhost:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def starters(workdir: Path, up: int, origin: str, options: argparse.Namespace) -> list[Starter]:
    """(kind, installed, start) per target, as --only and --validate ask."""
    found: list[Starter] = [
        ("nginx", bool(targets.nginx_binary()), lambda: targets.start_nginx_cors(workdir, up, "")),
        ("corsproxy", True, lambda: targets.start_corsproxy(workdir, up, options.corsproxy_arg)),
        *corsproxy_rows(workdir, up, options),
        ("reference", True, lambda: targets.start_reference(workdir, up, origin)),
        (
            "cors-anywhere",
            bool(targets.node_peer("cors-anywhere")),
            lambda: targets.start_cors_anywhere(workdir, up),
        ),
        (
            "local-cors-proxy",
            bool(targets.node_peer("local-cors-proxy")),
            lambda: targets.start_local_cors_proxy(workdir, up, origin),
        ),
    ]
    if options.only:  # a --corsproxy-row counts as corsproxy
        found = [s for s in found if s[0].split(" ")[0] in options.only]
    if options.validate:
        slowed = lambda: targets.start_reference(workdir, up, origin, options.delay_ms)  # noqa: E731
        found.append(("slowed reference", True, slowed))
    return found


def start_all(
    workdir: Path, origin: str, options: argparse.Namespace, started: list[Target]
) -> list[str]:
    """The upstream first, then every target installed, into started; lines for the skipped."""
    (workdir / "www").mkdir()
    workdir.chmod(0o755)
    upstream = targets.start_upstream(workdir)
    started.append(upstream)
    up = int(upstream.base.rsplit(":", 1)[1])
    skipped = []
    for kind, installed, start in starters(workdir, up, origin, options):
        if installed:
            started.append(start())
        else:
            skipped.append(f"skipped {kind}: not installed (python bench/bench.py --peers)")
    return skipped


class Browser:
    """One headless Chromium; each visit is a fresh context (no connection, no cache kept)."""

    def __init__(self) -> None:
        from playwright.sync_api import sync_playwright

        self._playwright = sync_playwright().start()
        self.chromium = self._playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=60_000
        )

    def visit(self, page_url: str, function: str, base: str) -> dict:
        """Open the page in a new context and return what function(base, tag) resolves to."""
        context = self.chromium.new_context(ignore_https_errors=True)  # corsproxy --https
        try:
            page = context.new_page()
            page.set_default_timeout(120_000)
            page.goto(page_url)
            tag = uuid.uuid4().hex[:10]
            return page.evaluate(f"([base, tag]) => {function}(base, tag)", [base, tag])
        finally:
            context.close()

    def close(self) -> None:
        self.chromium.close()
        self._playwright.stop()


def readable(
    browser: Browser, page_url: str, found: list[Target]
) -> tuple[list[Target], list[str]]:
    """The targets through which the page reads a GET and a preflighted POST, and the rest."""
    good, dropped = [], []
    for target in found:
        problems = browser.visit(page_url, "check", target.base)
        if problems:
            dropped.append(f"dropped {target.name}: " + "; ".join(problems))
        else:
            good.append(target)
    return good, dropped


def run_rounds(browser: Browser, page_url: str, found: list[Target], rounds: int) -> report.Rounds:
    """One untimed visit per target, then the rounds: every target once, order rotated."""
    for target in found:
        browser.visit(page_url, "pageload", target.base)
    results: report.Rounds = []
    for number in range(rounds):
        shift = number % len(found)
        round_: dict[str, dict[str, PageSample]] = {}
        for target in found[shift:] + found[:shift]:
            measured = browser.visit(page_url, "pageload", target.base)
            for scenario, figures in measured.items():
                sample = PageSample(figures["ms"], figures["problems"])
                round_.setdefault(scenario, {})[target.name] = sample
            shown = "  ".join(f"{k} {v['ms']:,.0f} ms" for k, v in measured.items())
            print(f"round {number + 1}/{rounds} {target.name:<36} {shown}", file=sys.stderr)
        results.append(round_)
    return results


def validation(rounds: report.Rounds, plain: str, slowed: str, delay_ms: float) -> tuple[str, bool]:
    """The slowed proxy against the same proxy unslowed: measured delay against expected."""
    lines = [
        f"| scenario | {plain} | {slowed} | measured delay (median of same-round "
        "differences) | expected: requests in turn × delay | measured ÷ expected |",
        "|---|---|---|---|---|---|",
    ]
    passed = True
    for column in COLUMNS:
        key = column.case
        pairs = [(r[key][plain].ms, r[key][slowed].ms) for r in rounds]
        delay = statistics.median(b - a for a, b in pairs)
        expected = CRITICAL_PATH[key] * delay_ms
        ratio = delay / expected
        passed &= abs(ratio - 1) <= TOLERANCE
        lines.append(
            f"| {column.title} | {statistics.median(a for a, _ in pairs):,.0f} ms"
            f" | {statistics.median(b for _, b in pairs):,.0f} ms | {delay:+,.0f} ms"
            f" | {CRITICAL_PATH[key]} × {delay_ms:g} = {expected:,.0f} ms | {ratio:.2f} |"
        )
    return "\n".join(lines), passed


def problem_lines(rounds: report.Rounds) -> list[str]:
    """Every answer the page could not read (or read wrong) while timing, by target."""
    seen: dict[str, list[str]] = {}
    for round_ in rounds:
        for samples in round_.values():
            for name, sample in samples.items():
                seen.setdefault(name, []).extend(sample.problems)
    return [
        f"{name}: {len(problems)} answers unreadable or wrong, e.g. {problems[0]}"
        for name, problems in seen.items()
        if problems
    ]


def notes_for(browser: Browser, found: list[Target], load: tuple[float, float]) -> list[str]:
    lines = [machine_line(), f"chromium: {browser.chromium.version} ({CHROMIUM}), headless"]
    if nginx := targets.nginx_binary():
        lines.append(f"nginx: {command_output([nginx, '-v'])}")
    for target in found:
        lines += target.notes
    lines.append(f"load average (1 min) {load[0]:.1f} at the start, {load[1]:.1f} at the end")
    return lines


def measure(workdir: Path, options: argparse.Namespace) -> tuple[report.Rounds, list, list]:
    """Start, check, visit, stop: the rounds, the names measured, the notes."""
    started: list[Target] = []
    with page_server() as page_url:
        origin = page_url.rstrip("/")
        browser = Browser()
        try:
            skipped = start_all(workdir, origin, options, started)
            found, dropped = readable(browser, page_url, started[1:])
            for line in skipped + dropped:
                print(line, file=sys.stderr)
            if not found:
                raise SystemExit("pageload: no target gave readable answers; nothing measured")
            load_before = os.getloadavg()[0]
            rounds = run_rounds(browser, page_url, found, options.rounds)
            notes = notes_for(browser, found, (load_before, os.getloadavg()[0]))
            notes += skipped + dropped
        finally:
            browser.close()
            for target in reversed(started):
                targets.stop_target(target)
    return rounds, [t.name for t in found], notes


def main() -> int:
    options = parse_args()
    begun = time.monotonic()
    if options.peers:
        targets.install_peers()
    if not os.access(CHROMIUM, os.X_OK):
        print(f"pageload: needs {CHROMIUM} (apt-get install -y chromium)", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="corsproxy-pageload-") as tmp:
        rounds, names, notes = measure(Path(tmp), options)
    slowed = next((n for n in names if n.startswith(report.REFERENCE + ",")), None)
    shown = [n for n in names if n != slowed]
    print(report.table(rounds, shown, COLUMNS))
    passed = not options.validate  # a validation run fails unless it could compare
    if slowed and report.REFERENCE in names:
        text, passed = validation(rounds, report.REFERENCE, slowed, options.delay_ms)
        verdict = "PASS" if passed else "FAIL"
        print(f"\nValidation: {verdict} (within {TOLERANCE:.0%} of the expected delay)\n")
        print(text)
    elif options.validate:
        print("\nValidation: FAIL (the reference proxy or its slowed copy was not measured)")
    notes += problem_lines(rounds) or ["every answer was readable and right"]
    minutes = (time.monotonic() - begun) / 60
    notes.append(f"{options.rounds} rounds, one visit per target each; took {minutes:.1f} min")
    print("\n" + "\n".join(f"- {line}" for line in notes))
    if options.json:
        raw = [{c: {n: asdict(s) for n, s in t.items()} for c, t in r.items()} for r in rounds]
        options.json.write_text(json.dumps({"names": names, "notes": notes, "rounds": raw}))
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())

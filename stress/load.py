"""Load: many concurrent keep-alive connections through the proxy (GET, POST with bodies,
preflights), every response checked; then the proxy's fds back to baseline and RSS steady.

usage: python stress/load.py [--connections 1000] [--seconds 60] [--warmup 10]
Needs wrk. Three wrk processes share the connections (1/2 GET, 1/4 POST, 1/4 preflight), each
running stress/check.lua, which checks status, CORS headers and body of every response.
Exit 0 when there were no socket errors, no unexpected responses, fds returned to their
baseline, RSS stayed within 20 % and the proxy logged no traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stress.harness import (  # noqa: E402
    HERE,
    ORIGIN,
    Proxy,
    Upstream,
    accept_queue,
    accepted_peers,
    raise_fd_limit,
    wait_until,
)

SPLIT = (("get", 2), ("post", 1), ("preflight", 1))  # shares of the connections
RSS_TOLERANCE = 0.20


@dataclass
class WrkRun:
    """One wrk process: its own counts plus what check.lua found wrong."""

    kind: str
    connections: int
    counts: dict[str, float]

    @property
    def socket_errors(self) -> int:
        return int(sum(self.counts[k] for k in ("connect", "read", "write", "timeout")))

    @property
    def unexpected(self) -> int:
        keys = ("bad_status", "bad_cors", "bad_body", "closed")
        return int(sum(self.counts[k] for k in keys))


@dataclass
class LoadReport:
    connections: int
    seconds: float
    runs: list[WrkRun]
    held_min: int
    held_max: int
    distinct_clients: int
    fds_baseline: int
    fds_peak: int
    fds_after: int
    settle_seconds: float | None
    rss_rest: int
    rss_before: int
    rss_peak: int
    rss_after: int
    accept_queue_max: int = 0
    event_loop: str = ""
    exit_code: int | None = None
    problems: list[str] = field(default_factory=list)

    @property
    def requests(self) -> int:
        return int(sum(run.counts["requests"] for run in self.runs))

    @property
    def socket_errors(self) -> int:
        return sum(run.socket_errors for run in self.runs)

    @property
    def unexpected(self) -> int:
        return sum(run.unexpected for run in self.runs)

    @property
    def rss_change(self) -> float:
        return (self.rss_after - self.rss_before) / self.rss_before

    def failures(self) -> list[str]:
        """Every broken promise, in words; empty when the run passed."""
        out = []
        if self.socket_errors:
            out.append(f"{self.socket_errors} socket errors")
        if self.unexpected:
            out.append(f"{self.unexpected} unexpected responses")
        if self.held_min < self.connections:
            out.append(f"only {self.held_min} of {self.connections} connections held at one time")
        if self.distinct_clients > self.connections:
            out.append(f"{self.distinct_clients - self.connections} connections were replaced")
        if self.settle_seconds is None:
            out.append(f"fds stayed at {self.fds_after}, baseline {self.fds_baseline}")
        if abs(self.rss_change) > RSS_TOLERANCE:
            out.append(
                f"RSS moved {self.rss_change:+.0%} ({self.rss_before}->{self.rss_after} KiB)"
            )
        if self.exit_code not in (None, 0):
            out.append(f"proxy exited {self.exit_code}")
        out += [f"proxy logged: {line}" for line in self.problems]
        return out


def split(connections: int) -> list[tuple[str, int]]:
    """Connections per kind of request, summing to `connections`."""
    total = sum(share for _, share in SPLIT)
    parts = [(kind, connections * share // total) for kind, share in SPLIT]
    parts[0] = (parts[0][0], parts[0][1] + connections - sum(n for _, n in parts))
    return [(kind, n) for kind, n in parts if n > 0]


def start_wrk(url: str, kind: str, connections: int, seconds: float) -> subprocess.Popen:
    command = ["wrk", "-t", "1", "-c", str(connections), "-d", f"{seconds:g}s"]
    command += ["--timeout", "30s", "-s", str(HERE / "check.lua"), url + "/"]
    env = {**os.environ, "KIND": kind, "ORIGIN": ORIGIN}
    return subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )


def parse_wrk(kind: str, connections: int, output: str) -> WrkRun:
    for line in output.splitlines():
        if line.startswith("check "):
            return WrkRun(kind, connections, json.loads(line[len("check ") :]))
    raise RuntimeError(f"wrk ({kind}) printed no check line:\n{output}")


def run_wrk_mix(proxy: Proxy, connections: int, seconds: float, watch: dict) -> list[WrkRun]:
    """Run the wrk processes side by side; sample held connections, fds, RSS once a second."""
    parts = split(connections)
    processes = [(kind, n, start_wrk(proxy.url, kind, n, seconds)) for kind, n in parts]
    started = time.monotonic()
    while any(p.poll() is None for _, _, p in processes):
        all_up = time.monotonic() - started > min(5.0, seconds / 3)
        _sample(proxy, watch, steady=all_up and all(p.poll() is None for _, _, p in processes))
        time.sleep(1.0)  # the sampling interval, not a synchronisation
    return [parse_wrk(kind, n, p.communicate()[0]) for kind, n, p in processes]


def _sample(proxy: Proxy, watch: dict, steady: bool) -> None:
    peers = accepted_peers(proxy.pid, proxy.port)
    watch["fds"] = max(watch.get("fds", 0), proxy.fds())
    watch["queued"] = max(watch.get("queued", 0), accept_queue(proxy.port))
    watch["rss"] = max(watch.get("rss", 0), proxy.rss())
    if steady:  # every connection up (wrk's own address probe is gone): what is held
        watch.setdefault("peers", set()).update(peers)
        watch["held_min"] = min(watch.get("held_min", len(peers)), len(peers))
        watch["held_max"] = max(watch.get("held_max", 0), len(peers))


def settle(proxy: Proxy, baseline: int, timeout: float) -> float | None:
    """Seconds until the proxy's fds are back at baseline, None if they never were."""
    started = time.monotonic()
    if wait_until(lambda: proxy.fds() <= baseline, timeout):
        return time.monotonic() - started
    return None


def run_load(
    connections: int = 1000,
    seconds: float = 60,
    warmup: float = 10,
    settle_timeout: float = 60,
    upstream_keepalive: float = 75,
    stdlib_loop: bool = False,
) -> LoadReport:
    """Warm up, measure fds and RSS at rest, run the mix, wait for fds to settle, compare."""
    raise_fd_limit()
    upstream = Upstream(keepalive=upstream_keepalive)
    proxy = Proxy(upstream.url, stdlib_loop)
    try:
        baseline, rss_rest = proxy.fds(), proxy.rss()
        if warmup > 0:
            run_wrk_mix(proxy, connections, warmup, {})
            settle(proxy, baseline, settle_timeout)
        rss_before = proxy.rss()
        watch: dict = {}
        runs = run_wrk_mix(proxy, connections, seconds, watch)
        settled = settle(proxy, baseline, settle_timeout)
        report = LoadReport(
            connections,
            seconds,
            runs,
            watch.get("held_min", 0),
            watch.get("held_max", 0),
            len(watch.get("peers", ())),
            baseline,
            watch.get("fds", 0),
            proxy.fds(),
            settled,
            rss_rest,
            rss_before,
            watch.get("rss", 0),
            proxy.rss(),
            watch.get("queued", 0),
            proxy.event_loop(),
        )
    finally:
        code = proxy.stop()
        upstream.stop()
    report.exit_code = code
    report.problems = proxy.problems()
    return report


def describe(report: LoadReport) -> str:
    lines = [
        f"load: {report.connections} keep-alive connections for {report.seconds:g} s, proxy on "
        f"{report.event_loop} (accepted and held at once: {report.held_min}-{report.held_max}; "
        f"distinct client connections over the run: {report.distinct_clients}; most waiting "
        f"in the accept queue: {report.accept_queue_max})",
    ]
    for run in report.runs:
        c = run.counts
        lines.append(
            f"  {run.kind:<9} {run.connections:>5} conn {int(c['requests']):>9} requests "
            f"{run.socket_errors} socket errors {run.unexpected} unexpected  "
            f"p50 {c['p50_ms']:.0f} ms p99 {c['p99_ms']:.0f} ms max {c['max_ms']:.0f} ms"
        )
        if run.socket_errors:
            kinds = ("connect", "read", "write", "timeout")
            lines.append(
                "            socket errors: " + ", ".join(f"{k} {int(c[k])}" for k in kinds)
            )
    settled = f"{report.settle_seconds:.1f} s" if report.settle_seconds is not None else "never"
    lines += [
        f"  total     {report.requests} requests ({report.requests / report.seconds:.0f}/s), "
        f"{report.socket_errors} socket errors, {report.unexpected} unexpected responses",
        f"  fds: baseline {report.fds_baseline}, peak {report.fds_peak}, after {report.fds_after}"
        f" (back to baseline after {settled})",
        f"  RSS: {report.rss_rest} KiB at rest, {report.rss_before} after warm-up, "
        f"peak {report.rss_peak}, after {report.rss_after} ({report.rss_change:+.1%})",
        f"  proxy exit {report.exit_code}, {len(report.problems)} traceback/problem lines",
    ]
    failures = report.failures()
    lines.append("PASS" if not failures else "FAIL: " + "; ".join(failures))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--warmup", type=float, default=10)
    parser.add_argument("--settle-timeout", type=float, default=60)
    parser.add_argument("--upstream-keepalive", type=float, default=75)
    parser.add_argument(
        "--stdlib-loop", action="store_true", help="run the proxy without uvloop even if installed"
    )
    options = parser.parse_args()
    if shutil.which("wrk") is None:
        print("load: needs wrk (apt-get install wrk)", file=sys.stderr)
        return 2
    report = run_load(
        options.connections,
        options.seconds,
        options.warmup,
        options.settle_timeout,
        options.upstream_keepalive,
        options.stdlib_loop,
    )
    print(describe(report))
    return 0 if not report.failures() else 1


if __name__ == "__main__":
    sys.exit(main())

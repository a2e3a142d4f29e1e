"""Soak: minutes of mixed traffic through the proxy while the upstream crashes and restarts,
with the proxy's memory and open fds sampled; the least-squares slope of each is the verdict.

usage: python stress/soak.py [--minutes 10] [--restart-every 60] [--sample-every 10]
Traffic (stress/traffic.py): GET, POST, preflights, SSE streams, WebSockets, 8 MiB downloads
and uploads, clients that hang up mid-request and mid-response. The upstream restarts
every --restart-every seconds, crashing (SIGKILL) and gracefully (SIGTERM) in turn, and is
back --down seconds after it is gone.
Every request must be answered correctly, or, when it overlaps a restart, answered with a
readable 502 (JSON, CORS headers) or cut off visibly (never a silently truncated body).
Exit 0 when nothing unexpected happened, fds returned to baseline and RSS did not trend up.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from stress.harness import Proxy, Upstream, raise_fd_limit, slope_per_minute  # noqa: E402
from stress.load import settle  # noqa: E402
from stress.traffic import KINDS, Outcome, get, timed  # noqa: E402

# A request that ends this long after the upstream came back may still have met a pooled
# connection to the crashed process, or started before the crash and been cut by it.
GRACE = 2.0
# KiB/min after warm-up: 2 MiB over 10 minutes, about 4 % of the proxy's RSS, and some three
# standard errors of the slope that sampling noise alone gives over a 10-minute soak.
MAX_RSS_SLOPE = 200.0
TREND_SECONDS = 300  # shorter runs report the slopes but are too short to judge a trend by


@dataclass(frozen=True, slots=True)
class Window:
    """The upstream was going or gone from `down` to `up` (monotonic seconds)."""

    down: float
    up: float
    crash: bool = True

    def overlaps(self, outcome: Outcome) -> bool:
        return outcome.started <= self.up + GRACE and outcome.ended >= self.down


@dataclass
class SoakReport:
    seconds: float
    warmup: float
    started: float
    outcomes: list[Outcome] = field(default_factory=list)
    windows: list[Window] = field(default_factory=list)
    samples: list[tuple[float, int, int]] = field(default_factory=list)  # (t, RSS KiB, fds)
    fds_baseline: int = 0
    settle_seconds: float | None = None
    rss_after: int = 0
    fds_after: int = 0
    exit_code: int | None = None
    problems: list[str] = field(default_factory=list)
    max_rss_slope: float = MAX_RSS_SLOPE

    def expected(self, outcome: Outcome) -> bool:
        """ok and our own hang-ups always; a 502 or a cut only if a restart explains it."""
        if outcome.result in ("ok", "hangup"):
            return True
        if outcome.result == "bad" or outcome.kind not in KINDS or not KINDS[outcome.kind][3]:
            return False
        return any(window.overlaps(outcome) for window in self.windows)

    def unexpected(self) -> list[Outcome]:
        return [outcome for outcome in self.outcomes if not self.expected(outcome)]

    def _steady(self) -> list[tuple[float, int, int]]:
        return [s for s in self.samples if s[0] >= self.warmup] or self.samples

    @property
    def rss_slope(self) -> tuple[float, float]:
        """KiB/min and its standard error, over the samples after the warm-up."""
        return slope_per_minute([(t, rss) for t, rss, _ in self._steady()])

    @property
    def fd_slope(self) -> tuple[float, float]:
        """fds/min and its standard error, over the samples after the warm-up."""
        return slope_per_minute([(t, fds) for t, _, fds in self._steady()])

    def failures(self) -> list[str]:
        out = []
        for outcome in self.unexpected()[:20]:
            at = outcome.started - self.started
            out.append(
                f"unexpected {outcome.kind} at {at:.1f} s: {outcome.result} {outcome.detail}"
            )
        if len(self.unexpected()) > 20:
            out.append(f"... {len(self.unexpected()) - 20} more unexpected outcomes")
        if self.settle_seconds is None:
            out.append(f"fds did not return to the baseline of {self.fds_baseline}")
        if self.seconds >= TREND_SECONDS and self.rss_slope[0] > self.max_rss_slope:
            out.append(f"RSS grows {self.rss_slope[0]:.0f} KiB/min (limit {self.max_rss_slope:g})")
        if self.exit_code not in (None, 0):
            out.append(f"proxy exited {self.exit_code}")
        return out + [f"proxy logged: {line}" for line in self.problems]


async def worker(
    kind: str, session: aiohttp.ClientSession, url: str, report: SoakReport, end: float
):
    action, _, pause, _ = KINDS[kind]
    while time.monotonic() < end:
        report.outcomes.append(await timed(kind, action, session, url))
        await asyncio.sleep(pause)  # pacing: a busy developer machine, not a benchmark


async def restarter(upstream: Upstream, report: SoakReport, every: float, down: float, end: float):
    """Restart the upstream every `every` s (first at half that), back `down` s after it is
    gone: crashes (SIGKILL) and graceful restarts (SIGTERM, as a reloader does) in turn."""
    next_at = report.started + every / 2
    while next_at + down < end:
        await asyncio.sleep(next_at - time.monotonic())
        crash = len(report.windows) % 2 == 0
        stopped = time.monotonic()
        await asyncio.to_thread(upstream.kill if crash else upstream.stop)
        await asyncio.sleep(down)  # the backend's own start-up time
        await asyncio.to_thread(upstream.start)
        report.windows.append(Window(stopped, time.monotonic(), crash))
        next_at += every


async def sampler(proxy: Proxy, report: SoakReport, every: float, end: float) -> None:
    while True:
        now = time.monotonic()
        report.samples.append((now - report.started, proxy.rss(), proxy.fds()))
        if now + every > end:
            return
        await asyncio.sleep(every)  # the sampling interval


async def drive(proxy: Proxy, upstream: Upstream, report: SoakReport, timing: dict[str, float]):
    """All the traffic, the restarts and the sampling until the end; then one normal request."""
    end = report.started + report.seconds
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(
        connector=connector, cookie_jar=aiohttp.DummyCookieJar()
    ) as session:
        tasks = [
            worker(kind, session, proxy.url, report, end)
            for kind, (_, workers, _, _) in KINDS.items()
            for _ in range(workers)
        ]
        tasks += [
            restarter(upstream, report, timing["restart_every"], timing["down"], end),
            sampler(proxy, report, timing["sample_every"], end),
        ]
        await asyncio.gather(*tasks)
        report.outcomes.append(await timed("final", get, session, proxy.url))


async def run_soak(
    seconds: float = 600,
    restart_every: float = 60,
    sample_every: float = 10,
    down: float = 1.0,
    upstream_keepalive: float = 5.0,
    settle_timeout: float = 60,
) -> SoakReport:
    """The whole soak; the proxy and upstream are child processes, stopped at the end."""
    raise_fd_limit()
    upstream = await asyncio.to_thread(Upstream, None, upstream_keepalive)
    proxy = await asyncio.to_thread(Proxy, upstream.url)
    report = SoakReport(seconds, min(60.0, seconds / 5), time.monotonic())
    report.fds_baseline = proxy.fds()
    try:
        timing = {"restart_every": restart_every, "down": down, "sample_every": sample_every}
        await drive(proxy, upstream, report, timing)
        report.settle_seconds = await asyncio.to_thread(
            settle, proxy, report.fds_baseline, settle_timeout
        )
        report.rss_after, report.fds_after = proxy.rss(), proxy.fds()
    finally:
        report.exit_code = await asyncio.to_thread(proxy.stop)
        await asyncio.to_thread(upstream.stop)
    report.problems = proxy.problems()
    return report


def describe(report: SoakReport) -> str:
    minutes = report.seconds / 60
    crashes = sum(window.crash for window in report.windows)
    lines = [
        f"soak: {minutes:g} min of mixed traffic, {len(report.windows)} upstream restarts "
        f"({crashes} crashes, {len(report.windows) - crashes} graceful)"
    ]
    lines.append(
        f"  {'kind':<20}{'requests':>9}{'ok':>8}{'502':>6}{'cut':>6}{'hangup':>8}{'bad':>5}"
    )
    for kind in [*KINDS, "final"]:
        counts = Counter(o.result for o in report.outcomes if o.kind == kind)
        lines.append(
            f"  {kind:<20}{sum(counts.values()):>9}{counts['ok']:>8}{counts['gateway']:>6}"
            f"{counts['aborted']:>6}{counts['hangup']:>8}{counts['bad']:>5}"
        )
    rss = [s[1] for s in report.samples]
    fds = [s[2] for s in report.samples]
    settled = f"{report.settle_seconds:.1f} s" if report.settle_seconds is not None else "never"
    lines += [
        f"  total {len(report.outcomes)} requests, {len(report.unexpected())} unexpected "
        "(every 502 and cut above overlapped an upstream restart)",
        f"  RSS KiB: first {rss[0]}, min {min(rss)}, max {max(rss)}, last {rss[-1]}; after "
        f"{report.rss_after}; slope {_slope(report.rss_slope, 'KiB/min')} (samples after "
        f"{report.warmup:g} s warm-up, {len(report._steady())} of {len(rss)})",
        f"  fds: baseline {report.fds_baseline}, min {min(fds)}, max {max(fds)}, after "
        f"{report.fds_after} (baseline again after {settled}); "
        f"slope {_slope(report.fd_slope, 'fds/min')}",
        f"  proxy exit {report.exit_code}, {len(report.problems)} traceback/problem lines",
    ]
    cuts = Counter(f"{o.kind}: {o.detail[:70]}" for o in report.outcomes if o.result == "aborted")
    lines += [f"  cut x{count}: {what}" for what, count in cuts.most_common(5)]
    failures = report.failures()
    lines.append("PASS" if not failures else "FAIL:\n  " + "\n  ".join(failures))
    return "\n".join(lines)


def _slope(slope: tuple[float, float], unit: str) -> str:
    return f"{slope[0]:+.1f} ± {slope[1]:.1f} {unit}"


def samples_csv(report: SoakReport) -> str:
    rows = ["seconds,rss_kib,fds"] + [f"{t:.1f},{rss},{fds}" for t, rss, fds in report.samples]
    return "\n".join(rows) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10)
    parser.add_argument("--restart-every", type=float, default=60, help="seconds")
    parser.add_argument("--sample-every", type=float, default=10, help="seconds")
    parser.add_argument("--down", type=float, default=1.0, help="seconds the upstream stays down")
    parser.add_argument("--upstream-keepalive", type=float, default=5.0, help="seconds")
    parser.add_argument("--max-rss-slope", type=float, default=MAX_RSS_SLOPE, help="KiB/min")
    parser.add_argument("--csv", type=Path, help="write the samples here")
    options = parser.parse_args()
    report = asyncio.run(
        run_soak(
            options.minutes * 60,
            options.restart_every,
            options.sample_every,
            options.down,
            options.upstream_keepalive,
        )
    )
    report.max_rss_slope = options.max_rss_slope
    print(describe(report))
    if options.csv:
        options.csv.write_text(samples_csv(report))
    return 0 if not report.failures() else 1


if __name__ == "__main__":
    sys.exit(main())

"""Reliability, CI-sized: the same runs as stress/load.py, stress/soak.py and stress/shutdown.py,
with small numbers. Each run starts the real `corsproxy serve` and an upstream as processes.

The full runs (1,000 connections for 60 s, a 10-minute soak) are one command each; see
docs/reliability.md for their figures.
"""

from __future__ import annotations

import shutil
from collections import Counter

import pytest

from corsproxy.serve.server import DRAIN_SECONDS
from stress import load, shutdown, soak
from stress.traffic import KINDS

pytestmark = pytest.mark.slow


@pytest.mark.skipif(shutil.which("wrk") is None, reason="needs wrk (apt-get install wrk)")
def test_200_keepalive_connections_for_5_s_no_errors_fds_back_rss_steady():
    # A short upstream keep-alive (as uvicorn's 5 s, gunicorn's 2 s) lets the proxy's pooled
    # upstream connections close soon after the run; the full run uses 75 s and waits longer.
    report = load.run_load(connections=200, seconds=5, warmup=2, upstream_keepalive=2)
    assert report.failures() == [], load.describe(report)
    assert report.held_min == 200
    assert {run.kind for run in report.runs} == {"get", "post", "preflight"}
    assert all(run.counts["checked"] > 0 for run in report.runs), load.describe(report)


def _uvloop_installed() -> bool:
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


@pytest.mark.skipif(
    shutil.which("wrk") is None or not _uvloop_installed(),
    reason="needs wrk, and uvloop (the proxy uses it when installed: the fast extra, Docker)",
)
def test_a_burst_of_1000_connections_is_accepted_while_the_proxy_is_busy():
    report = load.run_load(connections=1000, seconds=6, warmup=0, upstream_keepalive=2)
    assert report.held_min == 1000, load.describe(report)


async def test_mixed_traffic_survives_an_upstream_crash_and_a_graceful_restart():
    report = await soak.run_soak(seconds=16, restart_every=8, sample_every=2, upstream_keepalive=2)
    assert report.failures() == [], soak.describe(report)
    assert [window.crash for window in report.windows] == [True, False]
    ok = Counter(o.kind for o in report.outcomes if o.result in ("ok", "hangup"))
    assert set(ok) == {*KINDS, "final"}, soak.describe(report)
    assert len(report.samples) >= 5


async def test_sigterm_with_200_in_flight_all_complete_new_connections_refused_exit_0():
    report = await shutdown.run_shutdown(in_flight=200)
    assert report.failures(timing=False) == [], shutdown.describe(report)
    assert report.completed == 200


async def test_requests_held_past_the_grace_period_do_not_keep_the_proxy_up():
    # 2 s for the process to wind down after the grace (aiohttp alone took 5 s more).
    code, _, _ = await shutdown.run_past_grace(in_flight=3, wait=DRAIN_SECONDS + 2)
    assert code == 0  # None: still running after DRAIN_SECONDS + 2

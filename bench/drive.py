"""One wrk run against one target, with the target's CPU and memory read around it.

bench.py calls measure() for every (round, case, target); it returns a Sample whose
fields feed the table. wrk's own numbers come from bench.lua's done() line, not from
parsing its human-readable report.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import procstat

HERE = Path(__file__).resolve().parent
ORIGIN = "http://localhost:5173"
BIG_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Case:
    """One column's workload: `Case("get64", "/api/item", connections=64)`."""

    key: str
    path: str
    connections: int
    method: str = "GET"
    body_bytes: int = 0
    preflight: bool = False


CASES = (
    Case("get1", "/api/item", connections=1),
    Case("get64", "/api/item", connections=64),
    Case("preflight64", "/api/item", connections=64, method="OPTIONS", preflight=True),
    Case("post64", "/sink", connections=64, method="POST", body_bytes=1024),
    Case("download", "/big", connections=1),
)


@dataclass(frozen=True, slots=True)
class Sample:
    """What one run measured; rates are per second of wrk's own duration."""

    requests: int
    rps: float
    mb_per_s: float
    p50_ms: float
    p99_ms: float
    bad_status: int
    socket_errors: int
    cpu_us_per_request: float
    peak_kib: int
    growth_kib: int
    foreign_cpu: float  # cores' worth of CPU used by processes outside the benchmark


def wrk_command(url: str, case: Case, seconds: int) -> list[str]:
    headers = ["-H", f"Origin: {ORIGIN}"]
    if case.preflight:
        headers += ["-H", "Access-Control-Request-Method: PUT"]
        headers += ["-H", "Access-Control-Request-Headers: content-type"]
    threads = min(2, case.connections)
    timeout = "30s" if case.path == "/big" else "5s"
    return [
        "wrk",
        *("-t", str(threads), "-c", str(case.connections), "-d", f"{seconds}s"),
        *("--timeout", timeout, "-s", str(HERE / "bench.lua"), *headers, url),
    ]


def run_wrk(url: str, case: Case, seconds: int) -> dict[str, int]:
    env = {**os.environ, "BENCH_METHOD": case.method, "BENCH_BODY_BYTES": str(case.body_bytes)}
    done = subprocess.run(
        wrk_command(url, case, seconds), capture_output=True, text=True, env=env, check=False
    )
    for line in done.stdout.splitlines():
        if line.startswith("BENCH "):
            return json.loads(line[len("BENCH ") :])
    raise RuntimeError(f"wrk gave no result for {url}: {done.stdout}{done.stderr}")


def measure(pid: int, others: list[int], url: str, case: Case, seconds: int) -> Sample:
    """Run wrk once; pid is the target's root process, others the rest of the bench (upstream)."""
    peak_before = procstat.memory_kib(pid, "VmHWM")
    reset = case.path == "/big" and procstat.reset_peak(pid)
    rss_before = procstat.memory_kib(pid, "VmRSS")
    cpu_before = procstat.cpu_seconds(pid)
    ours_before = sum(procstat.cpu_seconds(other) for other in others)
    machine_before = procstat.MachineCpu.now()
    result = run_wrk(url, case, seconds)
    machine_after = procstat.MachineCpu.now()
    ours = sum(procstat.cpu_seconds(other) for other in others) - ours_before
    cpu = procstat.cpu_seconds(pid) - cpu_before
    peak_after = procstat.memory_kib(pid, "VmHWM")
    duration = result["duration_us"] / 1e6
    wrk_cpu = machine_after.children - machine_before.children
    foreign = machine_after.busy - machine_before.busy - cpu - ours - wrk_cpu
    requests = result["requests"]
    return Sample(
        requests=requests,
        rps=requests / duration,
        mb_per_s=result["bytes"] / duration / 1e6,
        p50_ms=result["p50_us"] / 1000,
        p99_ms=result["p99_us"] / 1000,
        bad_status=result["status"],
        socket_errors=sum(result[k] for k in ("connect", "read", "write", "timeout")),
        cpu_us_per_request=cpu * 1e6 / max(requests, 1),
        peak_kib=max(peak_before, peak_after),
        growth_kib=peak_after - rss_before if reset else -1,
        foreign_cpu=max(foreign, 0.0) / duration,
    )

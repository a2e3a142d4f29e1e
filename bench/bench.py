"""Requests/s and p50/p99 latency for a small GET, through corsproxy and direct, side by side.

usage: python bench/bench.py [--seconds 10] [--rounds 3] [--connections 1,64]
Needs wrk (Debian: apt-get install wrk). Starts the upstream and the proxy as their own
processes on free ports; targets are interleaved round by round and the medians reported.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ORIGIN = "http://localhost:5173"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(args: list[str], ready: str) -> subprocess.Popen:
    process = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    line = process.stdout.readline()
    if ready not in line:
        process.kill()
        raise SystemExit(f"could not start {args}: {line}{process.stdout.read()}")
    return process


def wrk(url: str, connections: int, seconds: int, preflight: bool) -> dict[str, float]:
    headers = ["-H", f"Origin: {ORIGIN}"]
    script = []
    if preflight:
        headers += ["-H", "Access-Control-Request-Method: PUT"]
        script = ["-s", str(HERE / "options.lua")]
    out = subprocess.run(
        [
            "wrk",
            "-t",
            "1" if connections == 1 else "2",
            "-c",
            str(connections),
            "-d",
            f"{seconds}s",
            "--latency",
            *headers,
            *script,
            url,
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": rps,
        "p50": _ms(re.search(r"50%\s+([\d.]+\w+)", out).group(1)),
        "p99": _ms(re.search(r"99%\s+([\d.]+\w+)", out).group(1)),
        "bad": float(errors.group(1)) if errors else 0.0,
    }


def _ms(text: str) -> float:
    value, unit = re.fullmatch(r"([\d.]+)(\w+)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", default="1,64")
    options = parser.parse_args()
    if shutil.which("wrk") is None:
        print("bench: needs wrk (apt-get install wrk)", file=sys.stderr)
        return 2
    up_port, proxy_port = free_port(), free_port()
    upstream = start([sys.executable, str(HERE / "upstream.py"), str(up_port)], "ready")
    corsproxy = [sys.executable, "-m", "corsproxy"]
    env_log = ["--log-level", os.environ.get("BENCH_LOG_LEVEL", "warning")]
    proxy = start(
        [*corsproxy, "serve", f"http://127.0.0.1:{up_port}", "--port", str(proxy_port), *env_log],
        "corsproxy:",
    )
    targets = {
        "direct": f"http://127.0.0.1:{up_port}/api/item",
        "corsproxy": f"http://127.0.0.1:{proxy_port}/api/item",
    }
    cases = [(c, False) for c in map(int, options.connections.split(","))]
    cases.append((64, True))
    results: dict[tuple, list[dict[str, float]]] = {}
    try:
        for _ in range(options.rounds):
            for connections, preflight in cases:
                for name, url in targets.items():
                    if preflight and name == "direct":
                        continue
                    key = (name, connections, preflight)
                    results.setdefault(key, []).append(
                        wrk(url, connections, options.seconds, preflight)
                    )
    finally:
        proxy.terminate()
        upstream.terminate()
    report(results, cases)
    return 0


def report(results: dict[tuple, list[dict[str, float]]], cases: list[tuple[int, bool]]) -> None:
    def median(key: tuple, field: str) -> float:
        return statistics.median(r[field] for r in results[key])

    print(f"{'case':<28}{'target':<11}{'req/s':>10}{'p50 ms':>9}{'p99 ms':>9}{'non-2xx':>9}")
    for connections, preflight in cases:
        label = f"{'preflight' if preflight else 'GET'} {connections} conn"
        for name in ("direct", "corsproxy"):
            key = (name, connections, preflight)
            if key not in results:
                continue
            print(
                f"{label:<28}{name:<11}{median(key, 'rps'):>10.0f}{median(key, 'p50'):>9.2f}"
                f"{median(key, 'p99'):>9.2f}{median(key, 'bad'):>9.0f}"
            )
        direct = ("direct", connections, preflight)
        if direct in results:
            ratio = median(("corsproxy", connections, preflight), "rps") / median(direct, "rps")
            print(f"{'':<28}{'ratio':<11}{ratio:>10.2f}  (proxy/direct req/s)")


if __name__ == "__main__":
    sys.exit(main())

"""Graceful shutdown under load: SIGTERM while requests are in flight (the upstream holds them
until after the signal); all must complete with 200, new connections must be refused during
the drain, and the proxy must exit 0 within its grace period (DRAIN_SECONDS).

usage: python stress/shutdown.py [--in-flight 200] [--past-grace]
--past-grace holds the requests past the grace period instead: the proxy must still exit
0 within DRAIN_SECONDS (the held requests are cut; there is nothing else it can do).
"""

from __future__ import annotations

import argparse
import asyncio
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from corsproxy.serve.server import DRAIN_SECONDS  # noqa: E402
from stress.harness import ORIGIN, Proxy, Upstream, raise_fd_limit, wait_until  # noqa: E402


@dataclass
class ShutdownReport:
    in_flight: int
    held: int = 0
    answers: list[str] = field(default_factory=list)
    stopping_logged: bool = False
    refused: bool = False
    accepted_after_stopping: int = 0
    still_held_when_refused: bool = False
    exit_code: int | None = None
    exit_seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def completed(self) -> int:
        return self.answers.count("200 released granted")

    def failures(self, timing: bool = True) -> list[str]:
        out = []
        if self.held != self.in_flight:
            out.append(f"only {self.held} of {self.in_flight} requests reached the upstream")
        if self.completed != self.in_flight:
            wrong = sorted({a for a in self.answers if a != "200 released granted"})
            out.append(f"{self.in_flight - self.completed} did not complete with 200: {wrong}")
        if not self.refused:
            out.append("new connections were still accepted after the signal")
        elif not self.still_held_when_refused:
            out.append("the refusal was not seen while the requests were still in flight")
        if self.exit_code != 0:
            out.append(f"exit status {self.exit_code}")
        if timing and self.exit_seconds > DRAIN_SECONDS:
            out.append(f"exited {self.exit_seconds:.2f} s after SIGTERM (grace {DRAIN_SECONDS:g})")
        return out + [f"proxy logged: {line}" for line in self.problems]


def connect_refused(port: int) -> bool:
    """True when a new TCP connection to the proxy is refused."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return False
    except ConnectionRefusedError:
        return True


async def one_held_request(session: aiohttp.ClientSession, url: str) -> str:
    """`200 released granted` when the request completed as it should."""
    try:
        async with session.get(url + "/hold", headers={"Origin": ORIGIN}) as response:
            body = await response.text()
            granted = response.headers.get("Access-Control-Allow-Origin") == ORIGIN
            return f"{response.status} {body} {'granted' if granted else 'not granted'}"
    except (aiohttp.ClientError, ConnectionError, TimeoutError) as exc:
        return f"failed: {exc!r}"


def watch_refusal(proxy: Proxy, report: ShutdownReport) -> None:
    """After the `stopping` line, connect until refused; count connections still accepted."""
    report.stopping_logged = wait_until(
        lambda: any("stopping" in line for line in proxy.output.lines), 5, every=0.01
    )

    def refused() -> bool:
        if connect_refused(proxy.port):
            return True
        report.accepted_after_stopping += 1
        return False

    report.refused = wait_until(refused, 5, every=0.01)


async def run_shutdown(in_flight: int = 200) -> ShutdownReport:
    raise_fd_limit()
    report = ShutdownReport(in_flight)
    upstream = await asyncio.to_thread(Upstream)
    proxy = await asyncio.to_thread(Proxy, upstream.url)
    try:
        await _signal_under_load(proxy, upstream, report)
    finally:
        upstream.stop()
        if proxy.child.process.poll() is None:
            proxy.child.process.kill()
            proxy.wait()
    report.problems = proxy.problems()
    return report


async def _signal_under_load(proxy: Proxy, upstream: Upstream, report: ShutdownReport) -> None:
    timeout = aiohttp.ClientTimeout(total=60)
    connector = aiohttp.TCPConnector(limit=0)
    async with (
        aiohttp.ClientSession(connector=connector, timeout=timeout) as clients,
        aiohttp.ClientSession(timeout=timeout) as control,
    ):
        pending = [
            asyncio.ensure_future(one_held_request(clients, proxy.url))
            for _ in range(report.in_flight)
        ]
        async with control.get(f"{upstream.url}/control/held?n={report.in_flight}") as held:
            report.held = (await held.json())["held"]
        signalled = proxy.signal()
        await asyncio.to_thread(watch_refusal, proxy, report)
        report.still_held_when_refused = not any(task.done() for task in pending)
        async with control.post(f"{upstream.url}/control/release") as released:
            await released.read()
        report.answers = list(await asyncio.gather(*pending))
    report.exit_code = await asyncio.to_thread(proxy.wait, DRAIN_SECONDS + 10)
    report.exit_seconds = time.monotonic() - signalled


async def run_past_grace(
    in_flight: int = 3, wait: float = DRAIN_SECONDS + 10
) -> tuple[int | None, float, list[str]]:
    """SIGTERM with requests the upstream never releases: (exit status or None if it was
    still running after `wait` s, seconds until it exited or was given up on, answers)."""
    upstream = await asyncio.to_thread(Upstream)
    proxy = await asyncio.to_thread(Proxy, upstream.url)
    try:
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as clients:
            pending = [one_held_request(clients, proxy.url) for _ in range(in_flight)]
            gathered = asyncio.gather(*pending)
            async with aiohttp.ClientSession() as control:
                async with control.get(f"{upstream.url}/control/held?n={in_flight}") as held:
                    await held.read()
            signalled = proxy.signal()
            code = await asyncio.to_thread(_wait_or_kill, proxy, wait)
            seconds = time.monotonic() - signalled
            answers = await gathered
    finally:
        upstream.kill()  # it still holds the requests: no graceful stop to wait for
        if proxy.child.process.poll() is None:
            proxy.child.process.kill()
            proxy.wait()
    return code, seconds, answers


def _wait_or_kill(proxy: Proxy, wait: float) -> int | None:
    try:
        return proxy.wait(wait)
    except subprocess.TimeoutExpired:
        proxy.child.process.kill()
        proxy.wait()
        return None


def describe(report: ShutdownReport) -> str:
    lines = [
        f"shutdown: SIGTERM with {report.held} requests in flight (held by the upstream)",
        f"  completed with 200 and the CORS grant: {report.completed} of {report.in_flight}",
        f"  new connections refused during the drain: {'yes' if report.refused else 'NO'} "
        f"({report.accepted_after_stopping} accepted between the stopping line and the close; "
        f"requests still in flight then: {'yes' if report.still_held_when_refused else 'no'})",
        f"  exit status {report.exit_code}, {report.exit_seconds:.2f} s after SIGTERM "
        f"(grace {DRAIN_SECONDS:g} s); {len(report.problems)} traceback/problem lines",
    ]
    failures = report.failures()
    lines.append("PASS" if not failures else "FAIL: " + "; ".join(failures))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--in-flight", type=int, default=200)
    parser.add_argument("--past-grace", action="store_true")
    options = parser.parse_args()
    if options.past_grace:
        code, seconds, answers = asyncio.run(run_past_grace())
        ok = code == 0 and seconds <= DRAIN_SECONDS + 1
        print(f"past grace: exit {code} {seconds:.2f} s after SIGTERM (grace {DRAIN_SECONDS:g} s)")
        print(f"  held requests got: {sorted(set(answers))}")
        print("PASS" if ok else "FAIL: the proxy outlived its grace period")
        return 0 if ok else 1
    report = asyncio.run(run_shutdown(options.in_flight))
    print(describe(report))
    return 0 if not report.failures() else 1


if __name__ == "__main__":
    sys.exit(main())

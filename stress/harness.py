"""Processes and measurements shared by the reliability runs: the proxy and upstream as child
processes, their output drained, /proc figures (open fds, VmRSS, held connections), a slope.

The proxy is the real `corsproxy serve` (tests/proc.py starts it); nothing here imports it.
"""

from __future__ import annotations

import math
import os
import re
import resource
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `python stress/x.py` puts only stress/ on the path
    sys.path.insert(0, str(ROOT))

from tests.proc import ProxyProcess  # noqa: E402

HERE = Path(__file__).resolve().parent
ORIGIN = "http://localhost:5173"
# Lines that mean the proxy itself broke: never expected, whatever the upstream did.
PROBLEM = re.compile(
    r"Traceback|Error handling request|Unhandled exception|exception was never retrieved"
    r"|Unclosed|ResourceWarning|Task was destroyed"
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def raise_fd_limit() -> int:
    """Lift this process's soft open-files limit to the hard one (children inherit it)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


class Drain:
    """Read a child's output in a thread, so a full pipe never blocks it; keep every line."""

    def __init__(self, stream) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._run, args=(stream,), daemon=True)
        self._thread.start()

    def _run(self, stream) -> None:
        for line in stream:
            self.lines.append(line.rstrip("\n"))

    def join(self, timeout: float = 10) -> list[str]:
        self._thread.join(timeout)
        return self.lines


def fd_count(pid: int) -> int:
    """Open descriptors, not counting those on /dev/null: libuv (uvloop) opens a reserve one
    there the first time it is busy, for its EMFILE handling; it holds no connection."""
    count = 0
    for name in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{name}")
        except OSError:  # closed while we looked
            continue
        count += target != "/dev/null"
    return count


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise KeyError("VmRSS")


def without_uvloop() -> dict[str, str]:
    """Environment for a child that must run on the stdlib event loop even where uvloop is
    installed: a module named uvloop that fails to import shadows the real one."""
    shim = Path(tempfile.gettempdir()) / "corsproxy-stress-no-uvloop"
    shim.mkdir(exist_ok=True)
    (shim / "uvloop.py").write_text('raise ImportError("stdlib event loop asked for")\n')
    return {"PYTHONPATH": os.pathsep.join(filter(None, [str(shim), os.environ.get("PYTHONPATH")]))}


class Proxy:
    """`corsproxy serve UPSTREAM --port N --log-level warning` with its output drained."""

    def __init__(self, upstream: str, stdlib_loop: bool = False) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = ["serve", upstream, "--port", str(self.port), "--log-level", "warning"]
        self.child = ProxyProcess(args, env=without_uvloop() if stdlib_loop else None)
        self.banner = self.child.banner
        self.output = Drain(self.child.process.stdout)

    @property
    def pid(self) -> int:
        return self.child.pid

    def fds(self) -> int:
        return fd_count(self.pid)

    def event_loop(self) -> str:
        """`uvloop` when the proxy runs on it (it does when installed), else `asyncio`."""
        with open(f"/proc/{self.pid}/maps") as maps:
            return "uvloop" if "uvloop" in maps.read() else "asyncio"

    def rss(self) -> int:
        return rss_kib(self.pid)

    def signal(self, sig: int = signal.SIGTERM) -> float:
        """Send a signal; returns the monotonic time it was sent."""
        self.child.process.send_signal(sig)
        return time.monotonic()

    def wait(self, timeout: float = 15) -> int:
        code = self.child.process.wait(timeout)
        self.output.join()
        return code

    def stop(self, timeout: float = 15) -> int:
        if self.child.process.poll() is None:
            self.signal()
        try:
            return self.wait(timeout)
        except subprocess.TimeoutExpired:
            self.child.process.kill()
            self.wait()
            raise

    def problems(self) -> list[str]:
        """Output lines that show the proxy itself failing (tracebacks, unclosed resources)."""
        return [line for line in self.output.lines if PROBLEM.search(line)]


class Upstream:
    """stress/upstream.py in a child process, on a fixed port so that it can be restarted."""

    def __init__(self, port: int | None = None, keepalive: float = 75.0) -> None:
        self.port = port or free_port()
        self.keepalive = keepalive
        self.url = f"http://127.0.0.1:{self.port}"
        self.process: subprocess.Popen | None = None
        self.output: Drain | None = None
        self.start()

    def start(self) -> None:
        command = [sys.executable, str(HERE / "upstream.py"), "--port", str(self.port)]
        command += ["--keepalive", str(self.keepalive)]
        self.process = subprocess.Popen(
            command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
        line = self.process.stdout.readline()
        if not line.startswith("ready"):
            rest = self.process.communicate(timeout=10)[0]
            raise RuntimeError(f"upstream did not start: {line}{rest}")
        self.output = Drain(self.process.stdout)

    def kill(self) -> None:
        """Crash it (SIGKILL): no goodbye to open connections, as a crashing backend does."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
            self.output.join()

    def stop(self) -> None:
        """Stop it gracefully (SIGTERM: in-flight requests finish), as a backend restart does."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
            self.output.join()


def wait_until(condition: Callable[[], bool], timeout: float, every: float = 0.2) -> bool:
    """Poll a condition until it holds or the deadline passes; True if it held."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(every)


def _tcp_rows() -> list[list[str]]:
    rows: list[list[str]] = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            with open(table) as lines:
                rows += [line.split() for line in list(lines)[1:]]
        except FileNotFoundError:
            continue
    return rows


def _port(address: str) -> int:
    return int(address.rsplit(":", 1)[1], 16)


def socket_inodes(pid: int) -> set[str]:
    """The inodes of the sockets process `pid` holds open."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except FileNotFoundError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    return inodes


def accepted_peers(pid: int, port: int) -> set[int]:
    """Client ports of the connections process `pid` has accepted on `port` and holds open
    (connections still waiting in the kernel's accept queue are not counted)."""
    inodes = socket_inodes(pid)
    return {
        _port(row[2])
        for row in _tcp_rows()
        if row[3] == "01" and _port(row[1]) == port and row[9] in inodes
    }


def accept_queue(port: int) -> int:
    """Connections the kernel has established on listening `port` that are not yet accepted."""
    for row in _tcp_rows():
        if row[3] == "0A" and _port(row[1]) == port:
            return int(row[4].split(":")[1], 16)
    return 0


def slope_per_minute(samples: Sequence[tuple[float, float]]) -> tuple[float, float]:
    """Least-squares slope of (seconds, value) samples and its standard error, per minute."""
    n = len(samples)
    if n < 3:
        return 0.0, math.inf
    mean_t = sum(t for t, _ in samples) / n
    mean_v = sum(v for _, v in samples) / n
    spread = sum((t - mean_t) ** 2 for t, _ in samples)
    if spread == 0:
        return 0.0, math.inf
    slope = sum((t - mean_t) * (v - mean_v) for t, v in samples) / spread
    residual = sum((v - mean_v - slope * (t - mean_t)) ** 2 for t, v in samples)
    error = math.sqrt(residual / (n - 2) / spread)
    return slope * 60.0, error * 60.0

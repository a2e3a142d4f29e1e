"""Run the real `corsproxy` command as its own process, for tests that need one."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Sequence


def corsproxy_command() -> list[str]:
    """The installed console script when there is one, else `python -m corsproxy`."""
    script = shutil.which("corsproxy", path=os.path.dirname(sys.executable))
    return [script] if script else [sys.executable, "-m", "corsproxy"]


class ProxyProcess:
    """`corsproxy serve ...` in a child process; ready once it printed its start-up line."""

    def __init__(
        self,
        args: Sequence[str],
        env: dict[str, str] | None = None,
        command: Sequence[str] | None = None,  # instead of `corsproxy`, e.g. [python, -c, ...]
        cwd: str | os.PathLike[str] | None = None,
    ) -> None:
        full_env = {**os.environ, **(env or {})}
        self.process = subprocess.Popen(
            list(command or corsproxy_command()) + list(args),
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=full_env,
            cwd=cwd,
        )
        self.banner = self.process.stdout.readline().strip()
        self.notes: list[str] = []  # start-up lines inspector_line() passed over
        if not self.banner.startswith("corsproxy: http"):
            rest = self.process.communicate(timeout=10)[0]
            raise RuntimeError(f"corsproxy did not start: {self.banner}\n{rest}")

    def inspector_line(self) -> str:
        """The line after the banner (and the https notes, kept in .notes):
        `inspector: http://localhost:PORT/__corsproxy/?token=...`
        (none comes with --no-inspector: do not call this then, it would wait for ever)."""
        line = self.process.stdout.readline().strip()
        while line.startswith("corsproxy: ") and "inspector" not in line:  # https notes first
            self.notes.append(line)
            line = self.process.stdout.readline().strip()
        if not line.startswith("inspector: "):
            raise RuntimeError(f"no inspector line after the banner: {line!r}")
        return line

    @property
    def pid(self) -> int:
        return self.process.pid

    def status(self, field: str) -> int:
        """A kB figure from /proc/PID/status, e.g. VmHWM (peak resident memory)."""
        with open(f"/proc/{self.pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
        raise KeyError(field)

    def wait(self, timeout: float = 10) -> tuple[int, str]:
        """Wait for the process to exit by itself; returns (exit status, remaining output)."""
        output = self.process.communicate(timeout=timeout)[0]
        return self.process.returncode, output

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> tuple[int, str]:
        """Send a signal, wait for the exit; returns (exit status, remaining output)."""
        if self.process.poll() is None:
            self.process.send_signal(sig)
        output = self.process.communicate(timeout=timeout)[0]
        return self.process.returncode, output

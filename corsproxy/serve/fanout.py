"""A reload with `listen.workers` > 1: the parent validates once, each worker switches, the
parent prints once every worker has.

workers.py gives each worker a control pipe. The parent writes each reload's Outcome to it
(pickled, length-prefixed: the validated Settings and the words); the worker applies it with
Running.apply() (serve/child.py) and answers `reloaded GEN` on its ready pipe; the parent
prints the reload's lines once all have answered (or after ACK_SECONDS, whatever then). The
settings are sent rather than each worker reading the file itself: it would load whatever the
file says a moment later, perhaps half-written, and the workers could end up with different
configs.
"""

from __future__ import annotations

import os
import pickle
import struct
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from corsproxy.config.model import Settings
from corsproxy.proxy.accesslog import AccessLog
from corsproxy.proxy.handler import Proxy
from corsproxy.serve.reload import Outcome, Reloader, attempt, carry_out

ACK_SECONDS = 2.0  # the parent prints the reload's lines by then, every worker switched or not
_LENGTH = struct.Struct("!I")


def encode(generation: int, outcome: Outcome) -> bytes:
    """One message: parent to worker, over a pipe only they share."""
    body = pickle.dumps((generation, outcome), protocol=pickle.HIGHEST_PROTOCOL)
    return _LENGTH.pack(len(body)) + body


class Decoder:
    """Whole messages out of the bytes a pipe gives, in whatever pieces."""

    def __init__(self) -> None:
        self._buffer = bytearray()

    def feed(self, data: bytes) -> list[tuple[int, Outcome]]:
        self._buffer += data
        found = []
        while len(self._buffer) >= _LENGTH.size:
            (length,) = _LENGTH.unpack_from(self._buffer)
            if len(self._buffer) < _LENGTH.size + length:
                break
            body = bytes(self._buffer[_LENGTH.size : _LENGTH.size + length])
            del self._buffer[: _LENGTH.size + length]
            found.append(pickle.loads(body))  # noqa: S301 - from our own parent, over our pipe
        return found


@dataclass
class Outbox:
    """Bytes for one worker's control pipe (non-blocking): a worker that is slow to read must
    not stall the parent, so what does not fit waits for the pipe to take it."""

    fd: int
    pending: bytearray = field(default_factory=bytearray)

    def send(self, data: bytes) -> None:
        self.pending += data
        self.flush()

    def flush(self) -> None:
        while self.pending:
            try:
                written = os.write(self.fd, self.pending)
            except BlockingIOError:
                return
            except OSError:  # the worker is gone; the parent learns it from its ready pipe
                self.pending.clear()
                return
            del self.pending[:written]


@dataclass
class Pending:
    """A reload sent to the workers: who has yet to answer, and the lines to print then."""

    generation: int
    waiting: set[int]
    lines: list[str]
    deadline: float = field(default_factory=lambda: time.monotonic() + ACK_SECONDS)

    def answered(self, pid: int, generation: int | None) -> None:
        """A worker switched to `generation`, or (None) is gone."""
        if generation is None or generation >= self.generation:
            self.waiting.discard(pid)

    @property
    def done(self) -> bool:
        return not self.waiting or time.monotonic() >= self.deadline


class Reloads:
    """The parent's side: poll the file when due, validate once, send the settings to every
    worker, print the lines once they all have switched (workers.py's Supervisor asks)."""

    def __init__(
        self, reloader: Reloader, log: AccessLog, reloaded: Callable[[Settings], None]
    ) -> None:
        self.reloader, self.log, self.reloaded = reloader, log, reloaded
        self.generation = 0  # reloads sent to the workers
        self.pending: Pending | None = None  # the last one, until every worker switched
        self.poll_at = time.monotonic()

    def deadlines(self, controls: Mapping[int, Outbox], stopping: bool) -> list[float]:
        found = []
        if self.reloader.watching and not stopping:
            found.append(self.poll_at)
        if self.pending is not None:
            found.append(self.pending.deadline)
        if any(control.pending for control in controls.values()):
            found.append(time.monotonic() + 0.05)  # a full control pipe: try again soon
        return found

    def turn(self, controls: Mapping[int, Outbox], stopping: bool) -> None:
        """After each wake-up: pass on what waits for a control pipe; poll when due; print a
        reload's lines once every worker has switched to it."""
        for control in controls.values():
            control.flush()
        if self.reloader.watching and not stopping and time.monotonic() >= self.poll_at:
            self._attempt(self.reloader.poll, controls)
            self.poll_at = time.monotonic() + self.reloader.delay
        if self.pending is not None and self.pending.done:
            for line in self.pending.lines:
                self.log.message(line)
            self.pending = None

    def asked(self, controls: Mapping[int, Outbox]) -> None:
        """SIGHUP: reload now, watching or not."""
        self._attempt(self.reloader.reload, controls)

    def answered(self, pid: int, generation: int | None) -> None:
        if self.pending is not None:
            self.pending.answered(pid, generation)

    def _attempt(self, look: Callable[[], Outcome | None], controls: Mapping[int, Outbox]) -> None:
        outcome = attempt(self.reloader, look)
        if outcome is None:
            return
        lines: list[str] = []
        carry_out(self.reloader, outcome, lambda o: self._send(o, controls), lines.append)
        if self.pending is not None:
            self.pending.lines += lines  # printed once every worker has switched
        else:
            for line in lines:
                self.log.message(line)

    def _send(self, outcome: Outcome, controls: Mapping[int, Outbox]) -> None:
        """The whole proxy is built here first, as each worker will build it; then sent (a
        refused reload too: each worker's inspector marks it)."""
        if outcome.settings is not None and outcome.switch:
            Proxy(outcome.settings, self.log)
            self.reloaded(outcome.settings)
            self.log.set_level(outcome.settings.log_level)
        self.generation += 1
        message = encode(self.generation, outcome)
        for control in controls.values():
            control.send(message)
        waiting = {pid for pid, control in controls.items() if control.fd >= 0}
        lines = self.pending.lines if self.pending is not None else []
        self.pending = Pending(self.generation, waiting, lines)

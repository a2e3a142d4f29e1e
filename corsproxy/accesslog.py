"""The one access-log line per request: what was asked, what CORS decided, what was fixed.

proxy.handle() builds an Entry as the request travels and calls emit() once at the end.
Lines are collected in memory and written to stderr in one write a few times a second (and
at shutdown): a write per line, or a stdlib logging record per request, would cost more than
the rest of the proxy's own work on a small GET.
"""

from __future__ import annotations

import asyncio
import sys
from dataclasses import dataclass, field
from typing import TextIO

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}
FLUSH_SECONDS = 0.1
FLUSH_BYTES = 64 * 1024


@dataclass(slots=True)
class Entry:
    """What one request did, filled in along the way."""

    method: str
    path: str
    origin: str | None = None
    decision: str = ""
    notes: list[str] = field(default_factory=list)
    status: int = 0


class AccessLog:
    """Writes entries at info level; at warning and above only failures (403, 5xx) are written."""

    def __init__(self, level: str = "info", stream: TextIO | None = None) -> None:
        self.level = LEVELS[level]
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = self.level <= LEVELS["info"]
        self._pending: list[str] = []
        self._size = 0
        self._timer: asyncio.TimerHandle | None = None

    def emit(self, entry: Entry, millis: float) -> None:
        """Queue one line, e.g. `GET /api origin=http://localhost:5173 allowed ... -> 200 1.2ms`."""
        if not self.enabled:
            failed = entry.status >= 500 or entry.status == 403
            if not (failed and self.level <= LEVELS["warning"]):
                return
        head = f"{entry.method} {entry.path}"
        if entry.origin is not None:
            head += f" origin={entry.origin}"
        if entry.decision:
            head += " " + entry.decision
        notes = "".join("; " + note for note in entry.notes) if entry.notes else ""
        line = f"{head}{notes} -> {entry.status} {millis:.1f}ms\n"
        self._pending.append(line)
        self._size += len(line)
        if self._size >= FLUSH_BYTES:
            self.flush()
        elif self._timer is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                self.flush()
            else:
                self._timer = loop.call_later(FLUSH_SECONDS, self.flush)

    def flush(self) -> None:
        """Write the queued lines at once; a closed or broken stderr must not break serving."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if not self._pending:
            return
        text = "".join(self._pending)
        self._pending.clear()
        self._size = 0
        try:
            self.stream.write(text)
            self.stream.flush()
        except (OSError, ValueError):
            pass

    def message(self, text: str) -> None:
        """A line that is not about one request (start-up, warnings): written at once."""
        self.flush()
        try:
            self.stream.write(text + "\n")
            self.stream.flush()
        except (OSError, ValueError):
            pass

"""The one access-log line per request: what was asked, what CORS decided, what was fixed.

proxy.handle() builds an Entry as the request travels and calls emit() once at the end.
Written straight to stderr: a stdlib logging record per request costs more than the rest
of the proxy's own work on a small GET.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import TextIO

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}


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
    """Writes entries at info level; at warning and above only failures are written."""

    def __init__(self, level: str = "info", stream: TextIO | None = None) -> None:
        self.level = LEVELS[level]
        self.stream = stream if stream is not None else sys.stderr

    @property
    def enabled(self) -> bool:
        return self.level <= LEVELS["info"]

    def emit(self, entry: Entry, millis: float) -> None:
        """Write one line, e.g. `GET /api origin=http://localhost:5173 allowed ... -> 200 1.2ms`."""
        failed = entry.status >= 500 or entry.status == 403
        if self.level > LEVELS["info"] and not (failed and self.level <= LEVELS["warning"]):
            return
        head = f"{entry.method} {entry.path}"
        if entry.origin is not None:
            head += f" origin={entry.origin}"
        if entry.decision:
            head += " " + entry.decision
        notes = "".join("; " + note for note in entry.notes)
        line = f"{head}{notes} -> {entry.status} {millis:.1f}ms\n"
        try:
            self.stream.write(line)
        except (OSError, ValueError):  # a closed or broken stderr must not break serving
            pass

    def message(self, text: str) -> None:
        """A line that is not about one request (start-up, warnings)."""
        try:
            self.stream.write(text + "\n")
        except (OSError, ValueError):
            pass

"""The one access-log line per request: what was asked, what CORS decided, what was fixed.

proxy.handle() builds an Entry as the request travels and calls emit() once at the end.
Lines are collected in memory and written to stderr in one write a few times a second (and
at shutdown): a write per line, or a stdlib logging record per request, would cost more than
the rest of the proxy's own work on a small GET. With listen.workers > 1 every worker writes to
the same stderr, so a batch goes out in pieces that a pipe keeps whole (see pieces()).
"""

from __future__ import annotations

import asyncio
import select
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from corsproxy.cors.alone import WithoutProxy
    from corsproxy.cors.policy import Decision
    from corsproxy.inspector.record import Preview
    from corsproxy.proxy.gateway import GatewayError

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}
FLUSH_SECONDS = 0.1
FLUSH_BYTES = 64 * 1024
# A write of at most this many bytes to a pipe is never interleaved with another process's.
PIPE_BUF = getattr(select, "PIPE_BUF", 512)  # 512 is the least POSIX allows


@dataclass(slots=True)
class Entry:
    """What one request did, filled in along the way; the log line and the inspector read it."""

    method: str
    path: str
    origin: str | None = None
    decision: str = ""
    notes: list[str] = field(default_factory=list)
    status: int = 0
    # The rest is what the inspector shows besides (inspector/record.py): references to what the
    # proxy builds anyway, never copies; None where the exchange did not get that far.
    cors: Decision | None = None
    route: str | None = None  # the matched prefix
    alone: WithoutProxy | None = None  # the upstream's own headers, as the browser would judge them
    failure: GatewayError | None = None  # the upstream gave no answer
    request_headers: Sequence[tuple[bytes, bytes]] = ()  # as the browser sent them
    upstream_url: str | None = None
    upstream_request_headers: Sequence[tuple[str, str]] | None = None
    upstream_response_headers: Sequence[tuple[str, str]] | None = None
    response_headers: Sequence[tuple[str, str]] | None = None
    request_body: Preview | None = None
    response_body: Preview | None = None
    cookies: Sequence[Any] = ()  # one verdict per Set-Cookie
    id: int = 0
    time: float = 0.0  # time.time() when it arrived
    started: float = 0.0  # time.perf_counter() then
    upstream_ms: float | None = None  # until the upstream's response head arrived
    duration_ms: float = 0.0
    replay_of: int | None = None
    worker: int | None = None  # the process that served it, with listen.workers > 1


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
        lines, self._pending, self._size = self._pending, [], 0
        encoding = getattr(self.stream, "encoding", None) or "utf-8"
        try:
            for piece in pieces(lines, PIPE_BUF, encoding):
                self.stream.write(piece)
                self.stream.flush()  # one write() per piece, each ending on a line end
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


def pieces(lines: list[str], limit: int, encoding: str = "utf-8") -> list[str]:
    """Consecutive lines joined into pieces of at most `limit` encoded bytes; a line longer than
    that is a piece of its own. Written one piece per write() to a pipe that other processes
    write to as well, no line (but such a long one) can have another's bytes in its middle."""
    out: list[str] = []
    piece: list[str] = []
    size = 0
    for line in lines:
        # Characters the encoding lacks counted as sys.stderr writes them (backslashreplace).
        length = len(line) if line.isascii() else len(line.encode(encoding, "backslashreplace"))
        if piece and size + length > limit:
            out.append("".join(piece))
            piece, size = [], 0
        piece.append(line)
        size += length
    if piece:
        out.append("".join(piece))
    return out

"""The one access-log line per request: when, what was asked, what CORS decided, what was fixed.

proxy.handle() builds an Entry as the request travels and calls emit() once at the end;
format_line() (pure) turns it into text. Lines are collected in memory and written to stderr
in one write a few times a second (and at shutdown): a write per line, or a stdlib logging
record per request, would cost more than the rest of the proxy's own work on a small GET.
With listen.workers > 1 every worker writes to the same stderr, so a batch goes out in pieces
that a pipe keeps whole (see pieces()).
"""

from __future__ import annotations

import asyncio
import os
import select
import sys
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import Enum
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from corsproxy.cors.alone import WithoutProxy
    from corsproxy.cors.cookies import CookieVerdict
    from corsproxy.cors.policy import Decision
    from corsproxy.inspector.preview import Preview
    from corsproxy.proxy.gateway import GatewayError

from corsproxy.cors.policy import WILL_BLOCK, Verdict

LEVELS = {"debug": 10, "info": 20, "warning": 30, "error": 40}
FLUSH_SECONDS = 0.1
FLUSH_BYTES = 64 * 1024
# A write of at most this many bytes to a pipe is never interleaved with another process's.
PIPE_BUF = getattr(select, "PIPE_BUF", 512)  # 512 is the least POSIX allows
SAID_KEPT = 4096  # (route, finding) pairs already said in full; forgotten all at once when full

# A header set as the handler already holds it: a multidict, or a list of (name, value).
HeaderSet = Mapping[str, str] | Iterable[tuple[str, str]]


@dataclass(frozen=True, slots=True)
class UpstreamAlone:
    """A blocking finding on the upstream's own CORS headers, which the proxy corrected.

    Said in full the first time a route shows it; after that the name is enough. Both texts
    are made once: the handler keeps one UpstreamAlone per upstream answer it has judged.
    """

    name: str  # as browsers and MDN name it: CORSMissingAllowOrigin
    detail: str  # no Access-Control-Allow-Origin header
    when: str = ""  # " for a credentialed request" when only such a request would fail
    full: str = field(init=False, compare=False)
    short: str = field(init=False, compare=False)

    def __post_init__(self) -> None:
        full = f"upstream alone: {self.name} ({self.detail}){self.when} -> fixed"
        object.__setattr__(self, "full", full)
        object.__setattr__(self, "short", f"upstream alone: {self.name}{self.when} -> fixed")


@dataclass(slots=True)
class Entry:
    """What one request did, filled in along the way: the log line, the inspector and its HAR
    read this one record.

    The header sets are the handler's own objects, kept by reference (never copied): only
    `--log-level debug` and the inspector read them, after the response has gone.
    """

    method: str
    path: str
    origin: str | None = None
    decision: str = ""
    notes: list[str] = field(default_factory=list)
    status: int = 0
    verdict: Verdict | None = None
    upstream_alone: UpstreamAlone | None = None
    route: str | None = None  # the matched prefix: a finding is said in full once per route
    from_browser: HeaderSet | None = None
    to_upstream: HeaderSet | None = None
    from_upstream: HeaderSet | None = None
    to_browser: HeaderSet | None = None
    # What the inspector shows besides (inspector/record.py); None where the exchange did
    # not get that far.
    cors: Decision | None = None
    alone: WithoutProxy | None = None  # the upstream's own headers, as the browser would judge them
    failure: GatewayError | None = None  # the upstream gave no answer
    request_headers: Sequence[tuple[bytes, bytes]] = ()  # as the browser sent them, raw
    upstream_url: str | None = None
    request_body: Preview | None = None
    response_body: Preview | None = None
    cookies: Sequence[CookieVerdict] = ()  # one verdict per Set-Cookie, for the inspector
    id: int = 0
    time: float = 0.0  # time.time() when it arrived
    started: float = 0.0  # time.perf_counter() then
    upstream_ms: float | None = None  # until the upstream's response head arrived
    duration_ms: float = 0.0
    replay_of: int | None = None
    worker: int | None = None  # the process that served it, with listen.workers > 1


class Kind(Enum):
    """The verdict a person scans the log for, and its colour on a terminal."""

    PLAIN = ""  # no Origin: not a CORS request
    ALLOWED = "\x1b[32m"  # green: the browser lets the page read it
    FIXED = "\x1b[33m"  # yellow: allowed because the proxy corrected the upstream's headers
    REFUSED = "\x1b[31m"  # red: the browser will block it, or the proxy refused it
    FAILED = "\x1b[31m"  # red: a 5xx


RESET = "\x1b[0m"
# C0 controls, DEL and C1 controls shown as \xNN: a request must not drive the terminal.
_CONTROLS = {c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0))}
_HEADERS = (
    ("from the browser", "from_browser"),
    ("to the upstream", "to_upstream"),
    ("from the upstream", "from_upstream"),
    ("to the browser", "to_browser"),
)


def kind_of(entry: Entry) -> Kind:
    if entry.status >= 500:
        return Kind.FAILED
    verdict = entry.verdict
    if verdict is Verdict.REFUSED or verdict is Verdict.PREFLIGHT_REFUSED:
        return Kind.REFUSED
    if verdict is Verdict.ALLOWED:
        return Kind.FIXED if entry.upstream_alone is not None else Kind.ALLOWED
    if verdict is Verdict.PREFLIGHT:
        return Kind.REFUSED if WILL_BLOCK in entry.decision else Kind.ALLOWED
    return Kind.REFUSED if entry.status == 403 else Kind.PLAIN


def blocked(entry: Entry) -> str:
    """` (blocked in the browser: ...)` after the status of a request the page cannot read."""
    verdict = entry.verdict
    if verdict is Verdict.REFUSED or verdict is Verdict.PREFLIGHT_REFUSED:
        return " (blocked in the browser: origin refused)"
    if verdict is Verdict.PREFLIGHT and WILL_BLOCK in entry.decision:
        return " (blocked in the browser: the preflight does not grant it)"
    return ""


def format_line(
    entry: Entry,
    millis: float,
    clock: str,
    short_finding: bool = False,
    colour: bool = False,
    debug: bool = False,
) -> str:
    """`14:03:07.412 GET /api origin=http://localhost:5173 allowed (...) -> 200 1.2ms`, plus
    the four header sets under it at debug. `clock` is when the request arrived (local time).

    Written for the common case first: every proxied request pays for this line.
    """
    if entry.origin is None:
        head = f"{clock} {entry.method} {entry.path}"
    else:
        head = f"{clock} {entry.method} {entry.path} origin={entry.origin}"
    tail = entry.decision
    found = entry.upstream_alone
    if found is not None:
        tail = f"{tail}; {found.short if short_finding else found.full}"
    if entry.notes:
        tail += "".join(["; " + note for note in entry.notes])
    verdict = entry.verdict
    status = f"-> {entry.status}"
    if verdict is not Verdict.ALLOWED and verdict is not None:
        status += blocked(entry)
    line = f"{head} {tail} {status} {millis:.1f}ms" if tail else f"{head} {status} {millis:.1f}ms"
    # Both HTTP parsers (aiohttp's and wire.py) refuse C0 controls but HTAB, and DEL (RFC 9110
    # §5.5), so an ASCII line is safe as it is; isascii() is the cheap test of that.
    if colour or not line.isascii():
        line = _careful(entry, head, tail, status, f" {millis:.1f}ms", colour)
    if debug:
        line += "".join(_header_block(title, getattr(entry, key), entry) for title, key in _HEADERS)
    return line + "\n"


def _careful(entry: Entry, head: str, tail: str, status: str, took: str, colour: bool) -> str:
    """The line with what the request brought made harmless (a control character must not
    drive the terminal) and, on a terminal, the verdict and the status coloured."""
    head, tail = _safe(head), _safe(tail)
    paint = kind_of(entry).value if colour else ""
    if paint:
        status = f"{paint}{status}{RESET}"
        word = entry.verdict.value if entry.verdict is not None else tail.split(" ", 1)[0]
        if word and tail.startswith(word):
            tail = f"{paint}{word}{RESET}{tail[len(word) :]}"
    return f"{head} {tail} {status}{took}" if tail else f"{head} {status}{took}"


def _header_block(title: str, headers: HeaderSet | None, entry: Entry) -> str:
    """One header set, a line per field, indented under its title; why, when there is none."""
    if headers is None:
        if "upstream" not in title:
            return f"\n    {title}: not recorded"
        if entry.to_upstream is None:
            return f"\n    {title}: none (the proxy answered itself)"
        return f"\n    {title}: none (no answer)"
    pairs = headers.items() if isinstance(headers, Mapping) else headers
    lines = "".join(f"\n      {_safe(name)}: {_safe(value)}" for name, value in pairs)
    return f"\n    {title}:{lines}"


def _safe(text: str) -> str:
    """C1 controls (U+0080-U+009F, such as CSI) that non-ASCII text may carry, escaped."""
    return text if text.isascii() else text.translate(_CONTROLS)


def wants_colour(stream: TextIO, env: Mapping[str, str]) -> bool:
    """Colour only on a terminal, and never with NO_COLOR (https://no-color.org) or TERM=dumb."""
    if env.get("NO_COLOR") or env.get("TERM") == "dumb":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # no isatty(), or already closed
        return False


class AccessLog:
    """Writes entries at info level; at warning and above only failures (403, 5xx) are written;
    at debug each line carries the exchange's four header sets."""

    def __init__(
        self, level: str = "info", stream: TextIO | None = None, colour: bool | None = None
    ) -> None:
        self.stream = stream if stream is not None else sys.stderr
        self.set_level(level)
        self.colour = wants_colour(self.stream, os.environ) if colour is None else colour
        self._pending: list[str] = []
        self._size = 0
        self._timer: asyncio.TimerHandle | None = None
        self._said: set[tuple[str | None, str, str]] = set()
        self._second = self._millis = -1
        self._hms = self._stamp = ""

    def set_level(self, level: str) -> None:
        """At start, and when a reload changes log_level."""
        self.level = LEVELS[level]
        self.enabled = self.level <= LEVELS["info"]
        self.debug = self.level <= LEVELS["debug"]  # the header sets under each line

    def emit(self, entry: Entry, millis: float) -> None:
        """Queue one line for a finished request that took `millis`."""
        if not self.enabled:
            failed = entry.status >= 500 or entry.status == 403
            if not (failed and self.level <= LEVELS["warning"]):
                return
        short = False
        found = entry.upstream_alone
        if found is not None:
            key = (entry.route, found.name, found.when)
            short = key in self._said
            if not short:
                if len(self._said) >= SAID_KEPT:
                    self._said.clear()
                self._said.add(key)
        line = format_line(
            entry, millis, self.clock(time.time() - millis / 1000), short, self.colour, self.debug
        )
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

    def clock(self, when: float) -> str:
        """`14:03:07.412`, local time; made once per millisecond, the H:M:S once a second."""
        millis = int(when * 1000)
        if millis != self._millis:
            second, part = divmod(millis, 1000)
            if second != self._second:
                self._second, self._hms = second, time.strftime("%H:%M:%S", time.localtime(second))
            self._millis, self._stamp = millis, f"{self._hms}.{part:03d}"
        return self._stamp

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

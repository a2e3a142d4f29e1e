"""What the proxy calls while a request travels, so that the inspector can keep the exchange.

Proxy.handle() calls begin() and finish(); forward() taps the request body and asks for a
response preview. Each call only stores references to what the proxy built anyway, and a body
is seen only up to `inspector.body_preview` bytes, as it streams past: nothing is buffered.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from corsproxy.inspector.preview import Preview, text_like
from corsproxy.inspector.store import Store

if TYPE_CHECKING:
    from aiohttp import web
    from aiohttp.http import RawRequestMessage

    from corsproxy.http.connection import Body
    from corsproxy.proxy.accesslog import Entry

# A replay is marked by this header, named in Connection so that the proxy drops it like any
# hop-by-hop header (RFC 9110 §7.6.1) and the upstream never sees it. Its value is the id of
# the exchange replayed and a key derived from the token, so no one else can mark a request.
REPLAY_HEADER = "X-Corsproxy-Replay"
_REPLAY_LOWER = REPLAY_HEADER.lower().encode()


class Recorder:
    """Fills the inspector's part of each Entry and keeps the finished ones in `store`."""

    def __init__(self, store: Store, body_preview: int, token: str) -> None:
        self.store = store
        self.body_preview = body_preview
        self.replay_key = hmac.new(token.encode(), b"replay", hashlib.sha256).hexdigest()[:32]
        self.worker: int | None = None  # the pid, with listen.workers > 1

    def begin(self, request: web.BaseRequest, entry: Entry) -> None:
        entry.time = time.time()
        entry.started = time.perf_counter()
        entry.request_headers = request.raw_headers
        if REPLAY_HEADER in request.headers:
            entry.replay_of = self._replayed(request.headers.get(REPLAY_HEADER, ""))
            if entry.replay_of is not None:  # the marker is the replay's, not the exchange's
                entry.request_headers = _unmarked(request.raw_headers)

    def early(self, message: RawRequestMessage, entry: Entry, started: float) -> None:
        """A preflight answered straight from the parser (Proxy.answer_at_once)."""
        entry.time = time.time()
        entry.started = started
        entry.request_headers = message.raw_headers
        self.finish(entry, (time.perf_counter() - started) * 1000)

    def finish(self, entry: Entry, millis: float) -> None:
        """Keep an exchange of the app (Proxy.handle() leaves out the proxy's own pages: what
        classify() calls Kind.INTERNAL, whatever form the request line took)."""
        entry.duration_ms = millis
        entry.worker = self.worker
        self.store.add(entry)

    def tap(self, entry: Entry, content_type: str | None, length: int | None, body: Any) -> Any:
        """The request body as the upstream pool reads it, its first bytes kept as they pass."""
        if not self.body_preview or not text_like(content_type):
            return body
        preview = entry.request_body = Preview(self.body_preview, content_type or "", length)
        return _Tap(body, preview)

    def preview(self, entry: Entry, headers: Sequence[tuple[str, str]]) -> Preview | None:
        """A Preview to feed with the response body when it is text-like, else None."""
        if not self.body_preview:
            return None
        kind = encoding = length = None
        for name, value in headers:  # one pass: this runs for every forwarded response
            lower = name.lower()
            if lower == "content-type":
                kind = value
            elif lower == "content-encoding":
                encoding = value
            elif lower == "content-length":
                length = value
        if not text_like(kind, encoding):
            return None
        declared = int(length) if length and length.isdigit() else None
        entry.response_body = Preview(self.body_preview, kind or "", declared)
        return entry.response_body

    def replay_marker(self, exchange_id: int) -> str:
        return f"{exchange_id} {self.replay_key}"

    def _replayed(self, value: str) -> int | None:
        number, _, key = value.strip().partition(" ")
        if number.isdigit() and hmac.compare_digest(key.encode(), self.replay_key.encode()):
            return int(number)
        return None


def _unmarked(raw: Sequence[tuple[bytes, bytes]]) -> tuple[tuple[bytes, bytes], ...]:
    out = []
    for name, value in raw:
        lower = name.lower()
        if lower == _REPLAY_LOWER:
            continue
        if lower == b"connection":
            tokens = [t.strip() for t in value.split(b",")]
            value = b", ".join(t for t in tokens if t and t.lower() != _REPLAY_LOWER)
            if not value:
                continue
        out.append((name, value))
    return tuple(out)


class _Tap:
    """An aiohttp StreamReader as http/client.py reads it, feeding a Preview on the way."""

    __slots__ = ("_body", "_preview")

    def __init__(self, body: Body, preview: Preview) -> None:
        self._body = body
        self._preview = preview

    def is_eof(self) -> bool:
        return self._body.is_eof()

    def read_nowait(self, n: int = -1) -> bytes:
        data = self._body.read_nowait(n)
        self._preview.feed(data)
        return data

    async def read(self, n: int = -1) -> bytes:
        data = await self._body.read(n)
        self._preview.feed(data)
        return data

    async def readany(self) -> bytes:
        data = await self._body.readany()
        self._preview.feed(data)
        return data


def worker_id() -> int:
    return os.getpid()

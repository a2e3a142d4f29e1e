"""The first bytes of a body, kept for the inspector while the body streams past untouched.

Kept apart from record.py so the access log's Entry can name a Preview without importing the
inspector's JSON building (which reads Entry).
"""

from __future__ import annotations

from typing import Any

_TEXT_TYPES = (
    "application/json",
    "application/x-www-form-urlencoded",
    "application/xml",
    "application/javascript",
    "application/graphql",
    "application/x-ndjson",
)


def text_like(content_type: str | None, content_encoding: str | None = None) -> bool:
    """JSON, text, form and XML bodies are kept for the page; binary and compressed are not."""
    if not content_type or (content_encoding and content_encoding.strip().lower() != "identity"):
        return False
    kind = content_type.split(";", 1)[0].strip().lower()
    return (
        kind.startswith("text/")
        or kind in _TEXT_TYPES
        or kind.endswith(("+json", "+xml"))
        or kind == "text"
    )


class Preview:
    """The first `limit` bytes of a body, fed as it streams past; the rest is only counted.

    A piece that fits is kept by reference (no copy); only the piece that crosses the limit is
    sliced. `declared` is the Content-Length when there was one.
    """

    __slots__ = ("limit", "declared", "content_type", "pieces", "kept", "size")

    def __init__(self, limit: int, content_type: str, declared: int | None = None) -> None:
        self.limit = limit
        self.declared = declared
        self.content_type = content_type
        self.pieces: list[bytes] = []
        self.kept = 0
        self.size = 0

    def feed(self, data: bytes) -> None:
        self.size += len(data)
        room = self.limit - self.kept
        if room > 0 and data:
            piece = data if len(data) <= room else data[:room]
            self.pieces.append(piece)
            self.kept += len(piece)

    @property
    def data(self) -> bytes:
        return b"".join(self.pieces)

    @property
    def whole(self) -> bool:
        """Every byte of the body is kept (so a replay can send it again)."""
        return self.kept == self.size and (self.declared is None or self.declared == self.size)

    def to_json(self) -> dict[str, Any]:
        return {
            "content_type": self.content_type,
            "text": self.data.decode("utf-8", "replace"),
            "size": self.size,
            "truncated": not self.whole,
        }

"""HTTP/1.1 wire format for the upstream side, as pure functions on bytes (RFC 9112).

upstream.py moves the bytes; this module builds the request head, parses the response head,
decides how the response body is framed, and decodes chunked bodies. Nothing here does I/O,
so every rule is tested table-driven in tests/test_http1.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from http import HTTPStatus

MAX_LINE = 64 * 1024  # browsers accept far longer header lines than the usual 8 KiB
MAX_HEAD = 1024 * 1024  # a response head longer than this is refused, not buffered forever

_STATUS_LINE = re.compile(rb"HTTP/1\.([01]) ([1-9][0-9]{2})(?: ([^\x00-\x08\x0a-\x1f\x7f]*))?")
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_BAD_VALUE = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_BAD_HEADER_TEXT = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")
_HEX = re.compile(rb"[0-9A-Fa-f]{1,16}")
# A whole block of field lines, each `token:value CRLF` with no control character but HTAB.
_FIELD_BLOCK = re.compile(rb"(?:[!#$%&'*+\-.^_`|~0-9A-Za-z]+:[^\x00-\x08\x0a-\x1f\x7f]*\r\n)*")
_FRAMING_FIELDS = frozenset({"transfer-encoding", "content-length", "connection"})

Headers = list[tuple[str, str]]


class InvalidResponse(Exception):
    """The upstream's bytes are not an HTTP/1.x response; the message says what is wrong."""


class Framing(Enum):
    """How the end of a response body is found (RFC 9112 §6.3)."""

    NONE = "none"  # HEAD, 1xx, 204, 304: no body at all
    LENGTH = "length"  # Content-Length bytes
    CHUNKED = "chunked"  # Transfer-Encoding: chunked
    UNTIL_CLOSE = "until-close"  # everything until the upstream closes the connection


@dataclass(slots=True)  # not frozen: a frozen dataclass is slower to build, once per response
class ResponseHead:
    """A parsed status line and header block, as text (see _decoded for the encoding)."""

    version: int  # minor version: 0 or 1
    status: int
    reason: str
    headers: Headers
    framing: Framing
    length: int | None  # the body length when framing is LENGTH
    keep_alive: bool  # the connection may carry another request after this response


def request_head(method: str, target: str, headers: Headers) -> bytes:
    """`METHOD target HTTP/1.1` and the header lines, ready to write.

    The values came from aiohttp's parser (UTF-8 with surrogate escapes), so encoding them the
    same way sends the browser's bytes on unchanged. Control characters cannot arrive from the
    browser, but any header the proxy adds is checked too: no request splitting, ever.
    """
    return _head(f"{method} {target} HTTP/1.1", headers, "request")


_REASONS = {status.value: status.phrase for status in HTTPStatus}


def response_head(status: int, reason: str | None, headers: Headers) -> bytes:
    """`HTTP/1.1 status reason` and the header lines, ready to write to the browser.

    reason None gives the standard phrase. Upstream values were checked by
    parse_response_head and the proxy's own come from validated config, but the block is
    checked once more: no response splitting, ever.
    """
    if reason is None:
        reason = _REASONS.get(status, "")
    return _head(f"HTTP/1.1 {status} {reason}", headers, "response")


def _head(first_line: str, headers: Headers, kind: str) -> bytes:
    """The first line and the header lines as bytes; ValueError on any control character.

    The check runs on the lines joined by spaces, so a CR LF hidden in a name or value is
    caught (it would split the message), and it runs once for the whole head.
    """
    lines = [first_line]
    lines.extend(f"{name}: {value}" for name, value in headers)
    if _BAD_HEADER_TEXT.search(" ".join(lines)):
        raise ValueError(f"control character in a {kind} header")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("utf-8", "surrogateescape")


def find_head_end(buffer: bytes | bytearray, start: int = 0) -> int:
    """Index just past the blank line ending the head, or -1 while it is incomplete.

    Raises InvalidResponse as soon as the bytes cannot be an HTTP/1.x response, or the head
    has grown past MAX_HEAD, so a wrong protocol fails at once rather than at the timeout.
    """
    if len(buffer) >= 5 and not buffer.startswith(b"HTTP/"):
        raise InvalidResponse(f"not an HTTP response: starts with {bytes(buffer[:16])!r}")
    end = buffer.find(b"\r\n\r\n", max(start - 3, 0))
    if end >= 0:
        return end + 4
    if len(buffer) > MAX_HEAD:
        raise InvalidResponse(f"response head longer than {MAX_HEAD // 1024} KiB")
    return -1


def parse_response_head(head: bytes, request_method: str) -> ResponseHead:
    """Parse the head (up to and including its blank line) of the answer to request_method.

    The whole field block is checked by one regular expression and decoded in one go: a
    line-by-line parse cost more than the rest of the proxy's work on a small response.
    The line-by-line loop runs only to word the error when the block is bad.
    """
    status_end = head.find(b"\r\n")
    match = _STATUS_LINE.fullmatch(head, 0, status_end)
    if match is None:
        raise InvalidResponse(f"bad status line {_show(head[:status_end])}")
    version = int(match[1])
    status = int(match[2])
    reason = _text(match[3] or b"")
    block = head[status_end + 2 : -2]  # the field lines, each with its CRLF
    if _FIELD_BLOCK.fullmatch(block) is None or (
        len(block) > MAX_LINE and max(map(len, block.split(b"\r\n"))) > MAX_LINE
    ):
        raise _bad_field(block.split(b"\r\n")[:-1])
    headers: Headers = []
    framing_fields: list[tuple[str, str]] = []
    for line in _decoded(block).split("\r\n")[:-1]:
        name, _, value = line.partition(":")
        value = value.strip(" \t")
        headers.append((name, value))
        lower = name.lower()
        if lower in _FRAMING_FIELDS:
            framing_fields.append((lower, value))
    framing, length, reusable = _framing(request_method, status, framing_fields)
    if version == 0 and framing is Framing.CHUNKED:
        reusable = False  # RFC 9112 §6.1: Transfer-Encoding in HTTP/1.0 is faulty framing
    keep_alive = reusable and _persistent(version, framing_fields)
    return ResponseHead(version, status, reason, headers, framing, length, keep_alive)


def _decoded(block: bytes) -> str:
    """Field lines as text: UTF-8, and a line that is not valid UTF-8 read as Latin-1.

    aiohttp's server writes header text as UTF-8 and silently drops what cannot be encoded,
    so a Latin-1 `filename="caf\xe9.pdf"` would lose its é; read as Latin-1 it arrives as
    the UTF-8 é instead (what browsers make of either).
    """
    try:
        return block.decode("utf-8")
    except UnicodeDecodeError:
        lines = block.split(b"\r\n")
        return "\r\n".join(_text(line) for line in lines)


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _bad_field(lines: list[bytes]) -> InvalidResponse:
    """What is wrong with the first bad field line, in words."""
    for line in lines:
        if len(line) > MAX_LINE:
            return InvalidResponse(f"header line longer than {MAX_LINE // 1024} KiB")
        colon = line.find(b":")
        name = line[:colon]
        if colon <= 0 or _TOKEN.fullmatch(name) is None:
            return InvalidResponse(f"bad header line {_show(line)}")
        if _BAD_VALUE.search(line, colon + 1):
            return InvalidResponse(f"control character in header {_show(name)}")
    return InvalidResponse("bad header block")


def _framing(
    method: str, status: int, fields: list[tuple[str, str]]
) -> tuple[Framing, int | None, bool]:
    """RFC 9112 §6.3: (framing, length, whether the framing allows reusing the connection).

    `fields` holds the Transfer-Encoding, Content-Length and Connection fields, names lowered.
    """
    if status == 101:  # the connection now speaks another protocol
        return Framing.NONE, None, False
    if method == "HEAD" or status < 200 or status in (204, 304):
        return Framing.NONE, None, True
    coding_values: str | None = None
    length_values: str | None = None
    for lower, value in fields:
        if lower == "content-length":
            length_values = value if length_values is None else f"{length_values},{value}"
        elif lower == "transfer-encoding":
            coding_values = value if coding_values is None else f"{coding_values},{value}"
    codings = [c.strip().lower() for c in (coding_values or "").split(",") if c.strip()]
    if codings:
        # With both, Transfer-Encoding wins and the connection must not be reused (§6.3 3).
        if codings[-1] == "chunked":
            return Framing.CHUNKED, None, length_values is None
        return Framing.UNTIL_CLOSE, None, False
    if length_values is not None:
        if length_values.isdigit() and length_values.isascii():  # the usual single value
            return Framing.LENGTH, int(length_values), True
        lengths = [v.strip() for v in length_values.split(",")]
        if len(set(lengths)) != 1 or not lengths[0].isdigit() or not lengths[0].isascii():
            raise InvalidResponse(f"bad Content-Length {', '.join(lengths)!r}")
        return Framing.LENGTH, int(lengths[0]), True
    return Framing.UNTIL_CLOSE, None, False


def _persistent(version: int, fields: list[tuple[str, str]]) -> bool:
    if not any(lower == "connection" for lower, _ in fields):
        return version == 1  # HTTP/1.1 stays open unless told otherwise; 1.0 closes
    tokens = {
        token.strip().lower()
        for lower, value in fields
        if lower == "connection"
        for token in value.split(",")
    }
    if version == 0:
        return "keep-alive" in tokens
    return "close" not in tokens


def _show(raw: bytes) -> str:
    text = repr(raw[:60])[1:]
    return text if len(raw) <= 60 else text[:-1] + "...'"


class ChunkedDecoder:
    """Turns a chunked body into its data, a piece at a time, in constant memory.

    feed() consumes what it can from the front of the buffer and returns the data found;
    `done` turns true after the last chunk and its trailer section (trailers are dropped:
    aiohttp's server has no way to send them on, and browsers ignore them).
    """

    __slots__ = ("done", "_left", "_state")

    def __init__(self) -> None:
        self.done = False
        self._left = 0  # data bytes still due in the current chunk
        self._state = "size"  # size -> data -> crlf -> size ... -> trailer

    def ready(self, buffer: bytearray) -> bool:
        """Whether feed() can make progress on this buffer (else: wait for more bytes)."""
        return self._state == "data" or b"\r\n" in buffer or len(buffer) > MAX_LINE

    def feed(self, buffer: bytearray) -> list[bytes]:
        out: list[bytes] = []
        while buffer and not self.done:
            if self._state == "data":
                take = min(self._left, len(buffer))
                out.append(bytes(memoryview(buffer)[:take]))  # one copy, not two
                del buffer[:take]
                self._left -= take
                if self._left == 0:
                    self._state = "crlf"
                continue
            end = buffer.find(b"\r\n")
            if end < 0:
                if len(buffer) > MAX_LINE:
                    raise InvalidResponse("chunk size line too long")
                break
            line = bytes(buffer[:end])
            del buffer[: end + 2]
            if self._state == "crlf":
                if line:
                    raise InvalidResponse("chunk data longer than its size")
                self._state = "size"
            elif self._state == "size":
                size = line.split(b";", 1)[0].strip(b" \t")
                if _HEX.fullmatch(size) is None:
                    raise InvalidResponse(f"bad chunk size {_show(line)}")
                self._left = int(size, 16)
                self._state = "data" if self._left else "trailer"
            elif not line:  # the blank line that ends the trailer section
                self.done = True
        return out

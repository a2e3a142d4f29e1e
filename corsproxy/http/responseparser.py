"""Upstream responses read by llhttp (through httptools: the parser of uvicorn, and of Node).

llhttp checks every byte of the status line, the header block and a chunked body. What it
leaves to its user is decided here: the request's method (the answer to HEAD has no body),
which heads are interim, whether the connection may carry the next request, and the limits
browsers apply. Nothing here does I/O, so every rule is tested table-driven in
tests/test_http1.py.
"""

from __future__ import annotations

import contextlib
import re

import httptools

from corsproxy.http.wire import (
    MAX_HEAD,
    MAX_LINE,
    Framing,
    HeadTooLarge,
    InvalidResponse,
    ResponseHead,
)

_BAD_REASON = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_FRAMING_FIELDS = frozenset({b"transfer-encoding", b"content-length", b"connection"})


class ResponseParser:
    """One upstream response, fed as it arrives; llhttp checks every byte of it.

    After each feed(): `head` once the final head is complete (interim 1xx heads are read and
    skipped; `interim` is the last one), the body's data so far from take(), `done` once the
    body ended, and `beyond` when bytes came after that end: the upstream is out of step and
    the connection must not carry another request. A body that lasts until the connection
    closes never gets `done`: the caller sees the close. feed() raises InvalidResponse, in
    words, at the first byte that cannot belong to the response.
    """

    __slots__ = (
        "head",
        "interim",
        "done",
        "beyond",
        "received",
        "buffered",
        "_body",
        "_head_request",
        "_llhttp",
        "fed",
        "_start",
        "_reason",
        "_names",
        "_values",
        "_seen",
        "_held",
        "_merged",
    )

    def __init__(self, method: str) -> None:
        self.head: ResponseHead | None = None
        self.interim: ResponseHead | None = None
        self.done = False
        self.beyond = False
        self.received = 0  # body bytes so far
        self.buffered = 0  # body bytes not taken yet
        self._body: list[bytes] = []
        self._head_request = method == "HEAD"
        self.fed = 0  # bytes fed before the final head was complete
        self._start = b""  # the response's first bytes, quoted in errors
        self._reason = b""
        self._names: list[bytes] = []
        self._values: list[bytes] = []
        self._seen: list[bytes] = []  # the head's bytes so far (see _hold)
        self._held: bytearray | None = None
        self._merged = False
        self._llhttp = _llhttp(self)

    def close(self) -> None:
        """Break the reference cycle with llhttp, which holds this object's callbacks: without
        it every response (and all it read) would wait for the garbage collector instead of
        being freed as soon as the exchange ends. Nothing may be fed after this."""
        with contextlib.suppress(AttributeError):
            del self._llhttp

    def feed(self, data: bytes) -> None:
        """Parse the next bytes from the upstream."""
        if not data:
            return
        if self.done:
            self.beyond = True
            return
        if self.head is None:
            if self._held is not None:
                self._held += data
                self._parse_held()
                return
            if not self.fed:
                if data[:1] != b"H":  # llhttp would also take RTSP/ and ICE/
                    raise InvalidResponse(f"not an HTTP response: starts with {_show(data[:16])}")
                self._start = data[:80]
            self.fed += len(data)
            self._seen.append(data)
        try:
            self._llhttp.feed_data(data)
        except httptools.HttpParserUpgrade:
            self.beyond = True  # a 101: what follows is another protocol (never reused)
        except httptools.HttpParserError as exc:
            self._failed(exc)
        if self.head is None and self.fed > MAX_HEAD and self._held is None:
            raise _too_large()

    def take(self) -> list[bytes]:
        """The body's data that arrived since the last call, in pieces as they came."""
        body = self._body
        if body:
            self._body = []
            self.buffered = 0
        return body

    def _failed(self, exc: httptools.HttpParserError) -> None:
        cause = exc.__context__
        if isinstance(exc, httptools.HttpParserCallbackError) and isinstance(
            cause, InvalidResponse
        ):
            raise cause from None
        if self.done:
            self.beyond = True  # what followed the response is not a response
            return
        reason = str(exc)
        if self.head is None and "Content-Length" in reason and not self._merged:
            self._hold()
            return
        status_line = isinstance(exc, httptools.HttpParserInvalidStatusError)
        raise _worded(reason, self._start, status_line) from None

    def _hold(self) -> None:
        """llhttp refuses a repeated Content-Length; browsers take equal repeats, and RFC 9110
        §8.6 allows either. The head is held until complete, its lengths merged into one
        field (or refused when they differ), and parsed anew."""
        self._held = bytearray(b"".join(self._seen))
        self._seen = []
        self._parse_held()

    def _parse_held(self) -> None:
        held = self._held
        assert held is not None
        end = held.find(b"\r\n\r\n")
        if end < 0:
            if len(held) > MAX_HEAD:
                raise _too_large()
            return
        data = _merged_lengths(bytes(held[: end + 4])) + held[end + 4 :]
        self._held = None
        self._merged = True
        self.fed = 0
        self._llhttp = _llhttp(self)
        self.feed(bytes(data))

    # llhttp's callbacks, called by these names from inside feed()

    def on_message_begin(self) -> None:
        if self.done:
            self.beyond = True
        self._reason = b""
        self._names = []
        self._values = []

    def on_status(self, reason: bytes) -> None:
        self._reason += reason  # a reason split across two arrivals comes in two calls

    def on_header(self, name: bytes, value: bytes) -> None:
        self._names.append(name)
        self._values.append(value)

    def on_headers_complete(self) -> None:
        llhttp = self._llhttp
        version = llhttp.get_http_version()
        status = llhttp.get_status_code()
        if version not in ("1.1", "1.0"):
            raise InvalidResponse(f"not an HTTP/1.x response: HTTP/{version}")
        if status < 100:
            raise InvalidResponse(f"bad status line: status {status:03d}")
        head = _head_of(
            int(version[2]), status, self._reason, self._names, self._values, self._head_request
        )
        if status < 200 and status != 101:
            self.interim = head  # 100 Continue, 103 Early Hints: the final head follows
            return
        self.head = head
        self._seen = []
        self.done = head.framing is Framing.NONE

    def on_body(self, body: bytes) -> None:
        if self.done:  # the answer to HEAD has no body, whatever its head says
            self.beyond = True
            return
        self._body.append(body)
        self.buffered += len(body)
        self.received += len(body)

    def on_message_complete(self) -> None:
        if self.head is not None:
            self.done = True


def parse_response_head(head: bytes, request_method: str) -> ResponseHead:
    """The head (up to and including its blank line) of the answer to request_method; an
    interim head (1xx) when that is all there is."""
    parser = ResponseParser(request_method)
    parser.feed(head)
    found = parser.head or parser.interim
    if found is None:
        raise InvalidResponse("the response head is incomplete")
    return found


def _llhttp(protocol: ResponseParser) -> httptools.HttpResponseParser:
    parser = httptools.HttpResponseParser(protocol)
    # Two things RFC 9112 allows and llhttp's strict default refuses.
    parser.set_dangerous_leniencies(
        # §6.3: Transfer-Encoding wins over a Content-Length next to it (and _framing then
        # closes the connection after the response).
        lenient_chunked_length=True,
        # §7.1.1: whitespace (BWS) between a chunk's size and its extension's ";".
        lenient_spaces_after_chunk_size=True,
    )
    return parser


def _head_of(
    minor: int,
    status: int,
    reason: bytes,
    names: list[bytes],
    values: list[bytes],
    head_request: bool,
) -> ResponseHead:
    """The head as text, the limits checked, with the framing and reuse that follow from it.

    Names and values are joined and decoded in one go: line by line, this was the most
    expensive part of reading a small response. llhttp refuses a CR or LF inside either.
    """
    if reason != b"OK" and _BAD_REASON.search(reason):
        raise InvalidResponse("control character in the status line")
    joined = b"\n".join(names)
    size = len(reason) + len(joined) + sum(map(len, values)) + 4 * len(names)
    if size > MAX_HEAD:
        raise _too_large()
    if values and max(map(len, values)) + max(map(len, names)) + 2 > MAX_LINE:
        if any(
            len(name) + len(value) + 2 > MAX_LINE for name, value in zip(names, values, strict=True)
        ):
            raise InvalidResponse(f"header line longer than {MAX_LINE // 1024} KiB")
    lowered = joined.lower().split(b"\n") if names else []
    fields = [
        (lower, v) for lower, v in zip(lowered, values, strict=True) if lower in _FRAMING_FIELDS
    ]
    framing, length, keep_alive = _framing(head_request, status, minor, fields)
    headers = (
        list(zip(joined.decode("latin-1").split("\n"), _values(values), strict=True))
        if names
        else []
    )
    return ResponseHead(minor, status, _text(reason), headers, framing, length, keep_alive)


def _values(values: list[bytes]) -> list[str]:
    """Values as text: UTF-8, or Latin-1 when not (see _text). llhttp has stripped the
    whitespace before a value, not the whitespace after it."""
    try:
        text = b"\n".join(values).decode("utf-8")
    except UnicodeDecodeError:
        text = "\n".join(map(_text, values))
    if " \n" in text or "\t\n" in text or text.endswith((" ", "\t")):
        return [value.rstrip(" \t") for value in text.split("\n")]
    return text.split("\n")


def _text(raw: bytes) -> str:
    """UTF-8, or Latin-1 when it is not: aiohttp's server writes header text as UTF-8 and
    drops what cannot be encoded, so a Latin-1 `filename="caf\xe9.pdf"` would lose its é; read
    as Latin-1 it arrives as the UTF-8 é instead (what browsers make of either)."""
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


def _framing(
    head_request: bool, status: int, minor: int, fields: list[tuple[bytes, bytes]]
) -> tuple[Framing, int | None, bool]:
    """RFC 9112 §6.3: (framing, length, whether the connection may carry the next request).

    `fields` holds the Transfer-Encoding, Content-Length and Connection fields, names lowered;
    llhttp has checked them (a Content-Length is one number) and frames the body the same way.
    """
    length: bytes | None = None
    codings = connection = b""
    for lower, value in fields:
        if lower == b"content-length":
            length = value
        elif lower == b"transfer-encoding":
            codings += b"," + value
        else:
            connection += b"," + value
    persistent = _persistent(minor, connection)
    if status == 101:  # the connection now speaks another protocol
        return Framing.NONE, None, False
    if head_request or status < 200 or status in (204, 304):
        return Framing.NONE, None, persistent
    if codings:
        listed = [c.strip(b" \t").lower() for c in codings.split(b",") if c.strip(b" \t")]
        # With both, Transfer-Encoding wins and the connection must not be reused (§6.3 3);
        # in HTTP/1.0, Transfer-Encoding is faulty framing (§6.1).
        if listed and listed[-1] == b"chunked":
            return Framing.CHUNKED, None, persistent and length is None and minor == 1
        if listed:
            return Framing.UNTIL_CLOSE, None, False
    if length is not None:
        return Framing.LENGTH, int(length), persistent
    return Framing.UNTIL_CLOSE, None, False


def _persistent(minor: int, connection: bytes) -> bool:
    """Whether the Connection tokens (each after a comma) let the connection stay open."""
    if not connection:
        return minor == 1  # HTTP/1.1 stays open unless told otherwise; 1.0 closes
    tokens = set(map(bytes.strip, connection.lower().split(b",")))
    if minor == 0:
        return b"keep-alive" in tokens
    return b"close" not in tokens


def _merged_lengths(head: bytes) -> bytes:
    """The head with its Content-Length fields made one, or InvalidResponse if they differ."""
    kept: list[bytes] = []
    values: list[bytes] = []
    at = -1
    for line in head[:-4].split(b"\r\n"):
        name, colon, value = line.partition(b":")
        if colon and name.lower() == b"content-length":
            values.extend(v.strip(b" \t") for v in value.split(b","))
            if at < 0:
                at = len(kept)
                kept.append(b"")
        else:
            kept.append(line)
    if len(set(values)) != 1 or not values[0].isdigit():
        shown = ", ".join(v.decode("latin-1") for v in values)
        raise InvalidResponse(f"bad Content-Length {shown!r}")
    kept[at] = b"Content-Length: " + values[0]
    return b"\r\n".join(kept) + b"\r\n\r\n"


# llhttp's reasons, said for people; the reason itself follows in brackets.
_WORDS = {
    "Invalid header value char": "control character in a header value",
    "Invalid header token": "bad header name",
    "Invalid header field char": "bad header line",
    "Unexpected whitespace after header value": "folded header line (obs-fold)",
    "Missing expected CR after header value": "bare LF in a header line",
    "Missing expected LF after header value": "bare CR in a header line",
    "Invalid character in chunk size": "bad chunk size",
    "Chunk size overflow": "bad chunk size",
    "Invalid character in chunk extensions": "bad chunk extension",
    "Expected LF after chunk data": "chunk data longer than its size",
    "Missing expected CR after chunk data": "no CRLF after chunk data",
}
_STATUS_LINE_WORDS = ("version", "dot", "response line", "status")


def _worded(reason: str, start: bytes, status_line: bool) -> InvalidResponse:
    if reason.startswith("Expected HTTP/"):
        return InvalidResponse(f"not an HTTP response: starts with {_show(start[:16])}")
    if status_line or any(word in reason for word in _STATUS_LINE_WORDS):
        first_line = start.split(b"\r\n", 1)[0]
        return InvalidResponse(f"bad status line {_show(first_line)} ({reason})")
    return InvalidResponse(f"{_WORDS.get(reason, 'invalid response')} ({reason})")


def _too_large() -> HeadTooLarge:
    return HeadTooLarge(f"response head longer than {MAX_HEAD // 1024} KiB")


def _show(raw: bytes) -> str:
    text = repr(raw[:60])[1:]
    return text if len(raw) <= 60 else text[:-1] + "...'"

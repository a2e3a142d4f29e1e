"""HTTP/1.1 heads (RFC 9112): written here, and the types a parsed response head has.

client.py moves the bytes; responseparser.py reads the upstream's responses with llhttp.
The writers refuse control characters in any name or value: no request or response
splitting, whatever a header rule or an upstream tried. Tested in tests/test_http1.py.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum
from http import HTTPStatus

MAX_LINE = 64 * 1024  # browsers accept far longer header lines than the usual 8 KiB
# Chromium fails a response whose head is longer with ERR_RESPONSE_HEADERS_TOO_BIG
# (kMaxHeaderBufSize, net/http/http_stream_parser.cc); Firefox allows a little more.
MAX_HEAD = 256 * 1024

_BAD_HEADER_TEXT = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")

Headers = list[tuple[str, str]]


class InvalidResponse(Exception):
    """The upstream's bytes are not an HTTP/1.x response; the message says what is wrong."""


class HeadTooLarge(InvalidResponse):
    """The response head is longer than browsers accept (MAX_HEAD)."""


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

"""A complete HTTP/1.1 response written as one block of bytes, for aiohttp's server.

aiohttp's web.Response builds a header multidict, fills in Date, Server and Content-Length,
serialises them and then writes; for a preflight answer or a small proxied body that was
a third of the proxy's own CPU per request. The proxy already holds its header list, so it
serialises that once (wire.response_head) and hands aiohttp an object that, like any
StreamResponse, has prepare() and write_eof(): aiohttp's request loop needs nothing more.

Used only when the browser's connection is plain HTTP/1.1 keep-alive; anything else
(HTTP/1.0, `Connection: close`) goes through web.Response as before.
"""

from __future__ import annotations

import time
from email.utils import formatdate

from aiohttp import web
from aiohttp.http import HttpVersion11

from corsproxy.http import wire


class RawResponse:
    """Status and ready-made bytes; aiohttp calls prepare() and write_eof() as for its own."""

    __slots__ = ("status", "data")

    keep_alive = True  # only built for HTTP/1.1 keep-alive requests (see usable())

    def __init__(self, status: int, data: bytes) -> None:
        self.status = status
        self.data = data

    async def prepare(self, request: web.BaseRequest) -> None:
        transport = request.transport
        if transport is None or transport.is_closing():
            raise ConnectionResetError("the browser hung up before the response")
        transport.write(self.data)

    async def write_eof(self, data: bytes = b"") -> None:
        """Everything went out in prepare()."""


def usable(request: web.BaseRequest) -> bool:
    """True when the connection stays open after this response: HTTP/1.1, no `close`."""
    return request.version == HttpVersion11 and request.keep_alive


def build(status: int, reason: str | None, headers: wire.Headers, body: bytes = b"") -> RawResponse:
    """The response with a Content-Length of its own (not for 1xx/204/304) and a Date."""
    fields = [(n, v) for n, v in headers if n.lower() != "content-length"]
    if status >= 200 and status not in (204, 304):
        fields.append(("Content-Length", str(len(body))))
    if not any(n.lower() == "date" for n, _ in fields):
        fields.append(("Date", http_date()))
    return RawResponse(status, wire.response_head(status, reason, fields) + body)


_date_second = 0
_date_text = ""


def http_date() -> str:
    """The Date value (RFC 9110 §5.6.7), formatted once per second."""
    global _date_second, _date_text
    now = int(time.time())
    if now != _date_second:
        _date_second, _date_text = now, formatdate(now, usegmt=True)
    return _date_text

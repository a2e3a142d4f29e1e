"""The HTTP/1.1 server the proxy runs on: aiohttp's, with request bodies left compressed and
methods that aiohttp's fast parser refuses (lowercase `patch`) still accepted.

server.start() builds a ProxyServer instead of a plain web.Server; nothing else changes.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMethod
from aiohttp.http_parser import HttpRequestParserPy
from aiohttp.web_protocol import RequestHandler, RequestPayloadError


class _FallbackParser:
    """llhttp (C) first; on a method it refuses, aiohttp's Python parser for that connection.

    fetch(url, {method: "patch"}) sends `patch` as typed: a valid token (RFC 9110 §9.1), but
    llhttp only knows upper-case methods and answers 400 before the proxy could forward it.
    The Python parser accepts any token (and upper-cases it, as aiohttp's client does anyway).
    """

    def __init__(self, fast: Any, handler: RequestHandler, read_bufsize: int) -> None:
        self._current = fast
        self._handler = handler
        self._read_bufsize = read_bufsize
        self._fallen_back = False

    def feed_data(self, data: bytes) -> Any:
        try:
            return self._current.feed_data(data)
        except BadHttpMethod:
            if self._fallen_back:
                raise
            # llhttp fails on the method's first byte, before anything of this chunk was
            # handed on, so the whole chunk is parsed again by the lenient parser.
            self._fallen_back = True
            self._current = HttpRequestParserPy(
                self._handler,
                self._handler._loop,
                self._read_bufsize,
                payload_exception=RequestPayloadError,
                auto_decompress=False,
            )
            return self._current.feed_data(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._current, name)


class ProxyServer(web.Server):
    """web.Server whose connections keep request bodies as sent and accept any method token."""

    def __init__(self, handler: Any, **kwargs: Any) -> None:
        # auto_decompress=False: a gzip-encoded upload must reach the upstream as it was sent,
        # with its Content-Encoding, not inflated by the proxy.
        super().__init__(handler, auto_decompress=False, **kwargs)

    def __call__(self) -> RequestHandler:
        handler = super().__call__()
        handler._parser = _FallbackParser(handler._parser, handler, handler._read_bufsize)
        return handler

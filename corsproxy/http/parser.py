"""The HTTP/1.1 server the proxy runs on: aiohttp's, with request bodies left compressed and
methods that aiohttp's fast parser refuses (lowercase `patch`) still accepted, case kept.

serve/server.py builds a ProxyServer instead of a plain web.Server; when the fast path is on
(http/fastpath.py), parsed requests pass it first, so granted preflights are answered at once.
"""

from __future__ import annotations

from typing import Any

from aiohttp import web

from corsproxy.http import aiohttp_private as private
from corsproxy.http.fastpath import EarlyAnswers


class _FallbackParser:
    """llhttp (C) first; on a method it refuses, aiohttp's Python parser for that connection.

    fetch(url, {method: "patch"}) sends `patch` as typed: a valid token (RFC 9110 §9.1), but
    llhttp only knows upper-case methods and answers 400 before the proxy could forward it.
    """

    def __init__(self, fast: Any, handler: private.RequestHandler, early: Any) -> None:
        self._current = fast
        self._handler = handler
        self._fallen_back = False
        self._early: EarlyAnswers | None = early

    def feed_data(self, data: bytes) -> Any:
        try:
            parsed = self._current.feed_data(data)
        except private.BAD_METHOD:
            lenient = None if self._fallen_back else private.case_keeping_parser(self._handler)
            if lenient is None:
                raise
            # llhttp fails on the method's first byte, before anything of this chunk was
            # handed on, so the whole chunk is parsed again by the lenient parser.
            self._fallen_back = True
            self._current = lenient
            parsed = self._current.feed_data(data)
        if self._early is not None and parsed[0]:
            return self._early.answer_leading(self._current, *parsed)
        return parsed

    def __getattr__(self, name: str) -> Any:
        return getattr(self._current, name)


class ProxyServer(web.Server):
    """web.Server whose connections keep request bodies as sent and accept any method token."""

    def __init__(self, handler: Any, answer: Any = None, **kwargs: Any) -> None:
        # auto_decompress=False: a gzip-encoded upload must reach the upstream as it was sent,
        # with its Content-Encoding, not inflated by the proxy.
        super().__init__(handler, auto_decompress=False, **kwargs)
        self._answer = answer

    def __call__(self) -> private.RequestHandler:
        handler = super().__call__()
        early = None
        if self._answer is not None and private.handler_state_known(handler):
            early = EarlyAnswers(handler, self._answer)
        private.swap_parser(handler, lambda parser: _FallbackParser(parser, handler, early))
        return handler

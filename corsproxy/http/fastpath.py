"""The HTTP/1.1 server the proxy runs on: aiohttp's, with request bodies left compressed,
methods that aiohttp's fast parser refuses (lowercase `patch`) still accepted, and granted
preflights answered as soon as they are parsed.

server.start() builds a ProxyServer instead of a plain web.Server; nothing else changes.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.http import HttpVersion11, RawRequestMessage
from aiohttp.http_exceptions import BadHttpMethod
from aiohttp.http_parser import HttpRequestParserPy
from aiohttp.streams import EMPTY_PAYLOAD
from aiohttp.web_protocol import RequestHandler, RequestPayloadError

# Answers a parsed request at once (bytes), or None to hand it to the handler as usual.
AnswerAtOnce = Callable[[RawRequestMessage], "bytes | None"]
WRITE_BUFFER_LIMIT = 64 * 1024  # answers waiting for the browser to read, at most
# The RequestHandler state the early answer reads and keeps up to date. Checked per
# connection: on an aiohttp without them, every request takes the usual way.
_HANDLER_STATE = (
    "_waiter",
    "_messages",
    "_force_close",
    "_close",
    "_keepalive_handle",
    "_max_msg_queue_size",
    "_keepalive_timeout",
    "_next_keepalive_close_time",
    "_process_keepalive",
)


class _FallbackParser:
    """llhttp (C) first; on a method it refuses, aiohttp's Python parser for that connection.

    fetch(url, {method: "patch"}) sends `patch` as typed: a valid token (RFC 9110 §9.1), but
    llhttp only knows upper-case methods and answers 400 before the proxy could forward it.
    The Python parser accepts any token (and upper-cases it, which is how it goes upstream).
    """

    def __init__(
        self,
        fast: Any,
        handler: RequestHandler,
        read_bufsize: int,
        answer: AnswerAtOnce | None = None,
    ) -> None:
        self._current = fast
        self._handler = handler
        self._read_bufsize = read_bufsize
        self._fallen_back = False
        known = all(hasattr(handler, name) for name in _HANDLER_STATE)
        self._answer = answer if known else None

    def feed_data(self, data: bytes) -> Any:
        try:
            parsed = self._current.feed_data(data)
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
            parsed = self._current.feed_data(data)
        if self._answer is not None and parsed[0]:
            return self._answer_leading(*parsed)
        return parsed

    def _answer_leading(self, messages: list, upgraded: bool, tail: bytes) -> tuple:
        """Answer the requests at the front that can be answered at once; the rest go on.

        Only while the handler is idle (nothing queued or in progress on this connection), so
        the responses leave in the order the requests came; the first request that needs
        the handler stops it, and everything after that waits its turn there as usual.
        """
        handler = self._handler
        waiter = handler._waiter
        transport = handler.transport
        if (
            waiter is None
            or waiter.done()
            or handler._messages
            or handler._force_close
            or handler._close
            or transport is None
            or transport.is_closing()
        ):
            return messages, upgraded, tail
        answered_any = False
        while True:
            answered = self._answer_each(messages, transport)
            answered_any = answered_any or answered > 0
            if answered < len(messages) or len(messages) < handler._max_msg_queue_size:
                break
            # The parser stops at its queue limit and keeps the rest of the bytes: with all
            # of those answered, it may go on (as aiohttp's own loop does once it catches up).
            messages, upgraded, tail = self._current.feed_data(b"")
            if not messages:
                break
        if not answered_any:
            return messages, upgraded, tail
        # As aiohttp does after each keep-alive response: the idle timer restarts from now.
        loop = handler._loop
        close_time = loop.time() + handler._keepalive_timeout
        handler._next_keepalive_close_time = close_time
        if handler._keepalive_handle is None:
            handler._keepalive_handle = loop.call_at(close_time, handler._process_keepalive)
        return messages[answered:], upgraded, tail

    def _answer_each(self, messages: list, transport: Any) -> int:
        """Write the answers of the leading requests that have one; how many were answered."""
        answered = 0
        consumed = getattr(self._current, "message_consumed", None)
        for message, payload in messages:
            if (
                payload is not EMPTY_PAYLOAD
                or message.version != HttpVersion11
                or message.should_close
                or message.upgrade
                # A client that pipelines and never reads: let aiohttp's flow control act.
                or transport.get_write_buffer_size() > WRITE_BUFFER_LIMIT
            ):
                break
            answer = self._answer(message)  # type: ignore[misc]
            if answer is None:
                break
            transport.write(answer)
            answered += 1
            if consumed is not None:
                consumed()  # the parser counts requests in flight; this one is done
        return answered

    def __getattr__(self, name: str) -> Any:
        return getattr(self._current, name)


class ProxyServer(web.Server):
    """web.Server whose connections keep request bodies as sent and accept any method token."""

    def __init__(self, handler: Any, answer: AnswerAtOnce | None = None, **kwargs: Any) -> None:
        # auto_decompress=False: a gzip-encoded upload must reach the upstream as it was sent,
        # with its Content-Encoding, not inflated by the proxy.
        super().__init__(handler, auto_decompress=False, **kwargs)
        self._answer = answer

    def __call__(self) -> RequestHandler:
        handler = super().__call__()
        handler._parser = _FallbackParser(
            handler._parser, handler, handler._read_bufsize, self._answer
        )
        return handler

"""The fast path: granted preflights answered as soon as they are parsed, and small answers
written as ready-made bytes (http/rawresponse.py). Off with CORSPROXY_FASTPATH=0.

Preflights are most of a page's requests that never reach the upstream; answering them before
aiohttp builds a request, a task and a response halves their cost. What to answer is asked of
Proxy.answer_at_once(), which classifies the request exactly as handle() does.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from corsproxy.http import aiohttp_private as private

# Answers a parsed request at once (bytes), or None to hand it to the handler as usual.
AnswerAtOnce = Callable[[private.RawRequestMessage], "bytes | None"]
WRITE_BUFFER_LIMIT = 64 * 1024  # answers waiting for the browser to read, at most
SWITCH = "CORSPROXY_FASTPATH"


def enabled(env: Mapping[str, str]) -> bool:
    """On unless CORSPROXY_FASTPATH is 0, false, no or off (CI runs the proxy tests both ways)."""
    return env.get(SWITCH, "1").strip().lower() not in ("0", "false", "no", "off")


class EarlyAnswers:
    """Per connection: answers the parsed requests at the front that can be answered at once."""

    def __init__(self, handler: private.RequestHandler, answer: AnswerAtOnce) -> None:
        self._handler: Any = handler  # private state, see aiohttp_private.HANDLER_STATE
        self._answer = answer

    def answer_leading(self, parser: Any, messages: list, upgraded: bool, tail: bytes) -> tuple:
        """Only while the handler is idle (nothing queued or in progress on this connection), so
        the responses leave in the order the requests came; the first request that needs the
        handler stops it, and everything after that waits its turn there as usual."""
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
        # The parser's limit of requests in flight (aiohttp 3.14.2+; none before).
        limit = getattr(handler, "_max_msg_queue_size", None)
        while True:
            answered = self._answer_each(parser, messages, transport)
            answered_any = answered_any or answered > 0
            if answered < len(messages) or limit is None or len(messages) < limit:
                break
            # The parser stops at its queue limit and keeps the rest of the bytes: with all
            # of those answered, it may go on (as aiohttp's own loop does once it catches up).
            messages, upgraded, tail = parser.feed_data(b"")
            if not messages:
                break
        if answered_any:
            self._restart_keepalive()
            return messages[answered:], upgraded, tail
        return messages, upgraded, tail

    def _restart_keepalive(self) -> None:
        """As aiohttp does after each keep-alive response: the idle timer restarts from now."""
        handler = self._handler
        loop = handler._loop
        close_time = loop.time() + handler._keepalive_timeout
        handler._next_keepalive_close_time = close_time
        if handler._keepalive_handle is None:
            handler._keepalive_handle = loop.call_at(close_time, handler._process_keepalive)

    def _answer_each(self, parser: Any, messages: list, transport: Any) -> int:
        """Write the answers of the leading requests that have one; how many were answered."""
        answered = 0
        consumed = getattr(parser, "message_consumed", None)
        for message, payload in messages:
            if (
                payload is not private.EMPTY_PAYLOAD
                or message.version != private.HttpVersion11
                or message.should_close
                or message.upgrade
                # A client that pipelines and never reads: let aiohttp's flow control act.
                or transport.get_write_buffer_size() > WRITE_BUFFER_LIMIT
            ):
                break
            answer = self._answer(message)
            if answer is None:
                break
            transport.write(answer)
            answered += 1
            if consumed is not None:
                consumed()  # the parser counts requests in flight; this one is done
        return answered

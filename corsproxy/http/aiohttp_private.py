"""Every private aiohttp name corsproxy relies on, in one place, each guarded.

aiohttp gives no public hook into its HTTP/1.1 server's parser, and the two things that need
one (methods in any case, early preflight answers) are worth it. Each name below was checked on
aiohttp 3.11.9 to 3.14.5; pyproject allows 3.14.4+ (below it aiohttp never times out
a client that trickles its request head), and CI runs the fast tests on 3.14.4; when a future
aiohttp lacks one, the feature that needs it steps aside and requests take the usual way.
"""

from __future__ import annotations

import importlib
from typing import Any

from aiohttp.http import HttpVersion11, RawRequestMessage
from aiohttp.web_protocol import RequestHandler, RequestPayloadError  # public module

try:  # public module; BadHttpMethod since 3.11.9 (before that a BadStatusLine)
    from aiohttp.http_exceptions import BadHttpMethod as _BadHttpMethod
except ImportError:  # pragma: no cover - older aiohttp
    _BadHttpMethod = None  # type: ignore[assignment,misc]

try:  # private: the pure-Python request parser (llhttp's fallback); 3.11.9 - 3.14.5
    from aiohttp.http_parser import HttpRequestParserPy as _ParserPy
except ImportError:  # pragma: no cover
    _ParserPy = None  # type: ignore[assignment,misc]

# private: the marker for "this request has no body"; 3.11.9 - 3.14.5
EMPTY_PAYLOAD: object = getattr(importlib.import_module("aiohttp.streams"), "EMPTY_PAYLOAD", None)


# Subclasses of BadHttpMethod the fallback catches; an empty tuple catches nothing.
BAD_METHOD: tuple[type[Exception], ...] = () if _BadHttpMethod is None else (_BadHttpMethod,)

# The RequestHandler attribute holding its parser: `_request_parser` in 3.11, `_parser` in
# 3.12 - 3.14, `_request_parser` again on aiohttp's master branch.
_PARSER_ATTRIBUTES = ("_request_parser", "_parser")

# The RequestHandler state the early answer reads and keeps up to date (3.11.9 - 3.14.5);
# `_max_msg_queue_size` too where it exists (3.14.2+), read with getattr.
HANDLER_STATE = (
    "_waiter",
    "_messages",
    "_force_close",
    "_close",
    "_keepalive_handle",
    "_keepalive_timeout",
    "_next_keepalive_close_time",
    "_process_keepalive",
    "_loop",
)

__all__ = [
    "BAD_METHOD",
    "EMPTY_PAYLOAD",
    "HANDLER_STATE",
    "HttpVersion11",
    "RawRequestMessage",
    "RequestHandler",
    "case_keeping_parser",
    "handler_state_known",
    "swap_parser",
]


def swap_parser(handler: RequestHandler, wrap: Any) -> bool:
    """Replace the handler's parser with wrap(parser); False when this aiohttp has none."""
    for name in _PARSER_ATTRIBUTES:
        parser = getattr(handler, name, None)
        if parser is not None:
            setattr(handler, name, wrap(parser))
            return True
    return False


def handler_state_known(handler: RequestHandler) -> bool:
    """Every private attribute the early answer touches exists on this handler."""
    return all(hasattr(handler, name) for name in HANDLER_STATE)


def case_keeping_parser(handler: RequestHandler) -> Any | None:
    """aiohttp's Python request parser, keeping the method as sent (it upper-cases it;
    methods are case-sensitive, RFC 9110 §9.1); None when this aiohttp has none."""
    if _ParserPy is None or not hasattr(handler, "_loop"):
        return None

    class CaseKeeping(_ParserPy):
        def parse_message(self, lines: list[bytes]) -> RawRequestMessage:
            message = super().parse_message(lines)
            sent = lines[0].split(b" ", 1)[0].decode("ascii", "surrogateescape")
            return message._replace(method=sent)

    return CaseKeeping(
        handler,
        handler._loop,
        getattr(handler, "_read_bufsize", 2**16),  # 3.11 passes read_bufsize straight on
        payload_exception=RequestPayloadError,
        auto_decompress=False,
    )

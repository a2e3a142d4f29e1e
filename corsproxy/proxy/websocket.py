"""WebSocket upgrades: accepted from allowed origins only, then relayed frame by frame.

proxy.handle() hands an upgrade here after the CORS decision, with the headers to send and
the upstream WebSocket client (http/wsclient.py). Browsers apply no CORS to WebSockets, so
the Origin check below is the only thing keeping a hostile page out.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import WSMsgType, web

from corsproxy.cors import policy
from corsproxy.http import errors
from corsproxy.http.rawresponse import RawResponse
from corsproxy.http.wsclient import WebSocketClient
from corsproxy.proxy.accesslog import Entry
from corsproxy.proxy.routing import Target

# aiohttp negotiates these itself on each side of the relay.
_HANDSHAKE = frozenset(
    {
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-extensions",
        "sec-websocket-protocol",
    }
)

# The proxy's answer when the upstream WebSocket cannot be opened (gateway.explain's words).
Fail = Callable[[BaseException], Awaitable[web.StreamResponse | RawResponse]]


async def relay(
    request: web.BaseRequest,
    target: Target,
    decision: policy.Decision,
    entry: Entry,
    *,
    upstream_client: WebSocketClient,
    headers: list[tuple[str, str]],
    fail: Fail,
) -> web.StreamResponse | RawResponse:
    """Open the upstream WebSocket first, then accept the browser's, then pump both ways."""
    if decision.verdict is policy.Verdict.REFUSED:
        entry.status = 403
        return web.Response(status=403, text=f"corsproxy: WebSocket refused: {decision.reason}\n")
    protocols = [
        p.strip()
        for value in request.headers.getall("Sec-WebSocket-Protocol", ())
        for p in value.split(",")
        if p.strip()
    ]
    route = target.route.route
    try:
        upstream = await upstream_client.connect(
            target.url,
            [(k, v) for k, v in headers if k.lower() not in _HANDSHAKE],
            protocols,
            verify=route.verify_tls,
            timeout=route.timeout,
        )
    except (errors.UpstreamError, TimeoutError) as exc:
        return await fail(exc)
    browser = web.WebSocketResponse(
        protocols=(upstream.protocol,) if upstream.protocol else (),
        autoping=False,
        autoclose=False,
        max_msg_size=0,
    )
    await browser.prepare(request)
    entry.status = 101
    try:
        await _pump_both(browser, upstream)
    finally:
        await upstream.close()
        await browser.close()
    entry.notes.append(f"websocket closed ({browser.close_code})")
    return browser


async def _pump_both(browser: web.WebSocketResponse, upstream: aiohttp.ClientWebSocketResponse):
    """Relay until either side closes, then close the other with the same code and reason.

    Both sides run with autoclose off, and the closing is done here after the other pump has
    stopped: no two tasks ever read one socket, and the side that closed waits for our reply,
    so its code and reason reach the other side intact.
    """
    pumps = [
        asyncio.ensure_future(_pump(browser, upstream)),
        asyncio.ensure_future(_pump(upstream, browser)),
    ]
    ending: _Ending | None = None
    try:
        done, _ = await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        ending = next(iter(done)).result()
    finally:
        for task in pumps:
            task.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)
    await ending.sink.close(code=ending.code, message=ending.reason)
    if ending.answer:
        await ending.source.close(code=ending.code)


@dataclass(frozen=True, slots=True)
class _Ending:
    """How one side ended: the close to pass on, and whether that side awaits our reply."""

    source: Any
    sink: Any
    code: int
    reason: bytes
    answer: bool


async def _pump(source, sink) -> _Ending:
    """Copy frames from source to sink until source closes or vanishes."""
    while True:
        message = await source.receive()
        kind = message.type
        if kind is WSMsgType.TEXT:
            await sink.send_str(message.data)
        elif kind is WSMsgType.BINARY:
            await sink.send_bytes(message.data)
        elif kind is WSMsgType.PING:
            await sink.ping(message.data)
        elif kind is WSMsgType.PONG:
            await sink.pong(message.data)
        elif kind is WSMsgType.CLOSE:
            return _Ending(source, sink, message.data, (message.extra or "").encode(), True)
        else:  # CLOSING, CLOSED, ERROR: the source vanished without a close frame of its own
            # 1006 is never sent on the wire (RFC 6455 §7.4.1): say 1011, "unexpected condition".
            return _Ending(source, sink, 1011, b"the other side vanished", False)

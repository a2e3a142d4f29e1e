"""WebSocket upgrades: accepted from allowed origins only, then relayed frame by frame.

proxy.handle() hands an upgrade here after the CORS decision. Browsers apply no CORS to
WebSockets, so the Origin check below is the only thing keeping a hostile page out.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import aiohttp
from aiohttp import WSMsgType, web
from multidict import CIMultiDict
from yarl import URL

from corsproxy import policy
from corsproxy.accesslog import Entry
from corsproxy.routing import Target

if TYPE_CHECKING:
    from corsproxy.proxy import Proxy

# aiohttp negotiates these itself on each side of the relay.
_HANDSHAKE = frozenset(
    {
        "sec-websocket-key",
        "sec-websocket-version",
        "sec-websocket-extensions",
        "sec-websocket-protocol",
    }
)


async def relay(
    proxy: Proxy, request: web.BaseRequest, target: Target, decision: policy.Decision, entry: Entry
) -> web.StreamResponse:
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
    sent = [
        (k, v)
        for k, v in proxy.upstream_headers(request, target, decision)
        if k.lower() not in _HANDSHAKE
    ]
    options = proxy.upstream_options[id(target.route.route)]
    try:
        async with asyncio.timeout(target.route.route.timeout):
            upstream = await proxy.session.ws_connect(
                URL(target.url, encoded=True),
                headers=CIMultiDict(sent),
                protocols=protocols,
                autoping=False,
                autoclose=False,
                ssl=options.ssl,
                max_msg_size=0,
            )
    except aiohttp.WSServerHandshakeError as exc:
        entry.notes.append(f"upstream refused the WebSocket upgrade: {exc.status}")
        return proxy.cors_json(
            entry,
            502,
            {
                "error": "upstream refused the WebSocket upgrade",
                "upstream": target.route.route.upstream,
                "detail": f"status {exc.status}",
            },
            decision,
        )
    except (aiohttp.ClientError, TimeoutError, OSError) as exc:
        return await proxy.gateway_error(exc, target, decision, entry)
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
    """Relay until either side closes, then close the other with the same code and reason."""
    to_upstream = asyncio.ensure_future(_pump(browser, upstream))
    to_browser = asyncio.ensure_future(_pump(upstream, browser))
    try:
        await asyncio.wait({to_upstream, to_browser}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (to_upstream, to_browser):
            task.cancel()
        await asyncio.gather(to_upstream, to_browser, return_exceptions=True)


async def _pump(source, sink) -> None:
    """Copy frames from source to sink; a close frame is passed on with its code and reason."""
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
            # Pass the close on first, then answer it: with autoclose off, the side that
            # closed waits for our reply, so its code and reason reach the other side intact.
            await sink.close(code=message.data, message=(message.extra or "").encode())
            await source.close(code=message.data)
            return
        else:  # CLOSING, CLOSED, ERROR: the source vanished without a close frame of its own
            # 1006 is never sent on the wire (RFC 6455 §7.4.1): say 1011, "unexpected condition".
            await sink.close(code=1011, message=b"the other side vanished")
            return

"""A small, restartable upstream for the reliability runs: every kind of traffic the soak mixes.

usage: python stress/upstream.py [--port N] [--keepalive SECONDS]
Prints `ready PORT` once listening. Endpoints (all answer without CORS headers of their own):
  GET  /item               small JSON               POST /echo    body length and sha256
  GET  /sse?events=N&gap=S Server-Sent Events       GET  /ws      WebSocket echo
  GET  /download?size=N    deterministic bytes      POST /upload  streamed, counted, hashed
  GET  /hold               held until /control/release (for the shutdown run)
  GET  /control/held?n=N   answers once N requests are held;  POST /control/release
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import signal

from aiohttp import WSMsgType, web

CHUNK = 64 * 1024
# 64 KiB of every byte value: downloads and uploads are this block repeated, so both ends can
# check a body's length and digest without holding it.
PATTERN = bytes(range(256)) * (CHUNK // 256)
DOWNLOAD_SIZE = 8 * 1024 * 1024
ITEM = b'{"id": 1, "name": "corsproxy", "ok": true}'
HELD = web.AppKey("held", dict)


def pattern_digest(size: int) -> str:
    """The sha256 of `size` bytes of PATTERN repeated: what /download sends."""
    digest = hashlib.sha256()
    for start in range(0, size, CHUNK):
        digest.update(PATTERN[: min(CHUNK, size - start)])
    return digest.hexdigest()


async def item(request: web.Request) -> web.Response:
    return web.Response(body=ITEM, content_type="application/json")


async def _consume(request: web.Request) -> dict[str, object]:
    digest, length = hashlib.sha256(), 0
    async for chunk in request.content.iter_any():
        digest.update(chunk)
        length += len(chunk)
    return {"length": length, "sha256": digest.hexdigest()}


async def echo(request: web.Request) -> web.Response:
    summary = await _consume(request)
    return web.Response(
        body=json.dumps(summary).encode(),
        content_type="application/json",
        headers={"X-Body-Length": str(summary["length"])},
    )


async def sse(request: web.Request) -> web.StreamResponse:
    events = int(request.query.get("events", "10"))
    gap = float(request.query.get("gap", "0.05"))
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
    await response.prepare(request)
    for number in range(events):
        await response.write(f"id: {number}\ndata: event {number}\n\n".encode())
        await asyncio.sleep(gap)  # the pace a real event source sets
    await response.write_eof()
    return response


async def websocket(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    async for message in ws:
        if message.type is WSMsgType.TEXT:
            await ws.send_str(message.data)
        elif message.type is WSMsgType.BINARY:
            await ws.send_bytes(message.data)
    return ws


async def download(request: web.Request) -> web.StreamResponse:
    size = int(request.query.get("size", str(DOWNLOAD_SIZE)))
    response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    response.content_length = size
    await response.prepare(request)
    for start in range(0, size, CHUNK):
        await response.write(PATTERN[: min(CHUNK, size - start)])
    await response.write_eof()
    return response


async def upload(request: web.Request) -> web.Response:
    return web.json_response(await _consume(request))


async def hold(request: web.Request) -> web.Response:
    state = request.app[HELD]
    state["count"] += 1
    state["changed"].set()
    await state["release"].wait()
    return web.Response(text="released")


async def held(request: web.Request) -> web.Response:
    """Answer once at least n requests are parked in /hold (a condition, not a sleep)."""
    state, wanted = request.app[HELD], int(request.query.get("n", "1"))
    while state["count"] < wanted:
        state["changed"].clear()
        await state["changed"].wait()
    return web.json_response({"held": state["count"]})


async def release(request: web.Request) -> web.Response:
    request.app[HELD]["release"].set()
    return web.json_response({"released": request.app[HELD]["count"]})


def build_app() -> web.Application:
    app = web.Application(client_max_size=1024**4)
    app[HELD] = {"count": 0, "changed": asyncio.Event(), "release": asyncio.Event()}
    app.router.add_get("/item", item)
    app.router.add_post("/echo", echo)
    app.router.add_get("/sse", sse)
    app.router.add_get("/ws", websocket)
    app.router.add_get("/download", download)
    app.router.add_post("/upload", upload)
    app.router.add_get("/hold", hold)
    app.router.add_get("/control/held", held)
    app.router.add_post("/control/release", release)
    return app


async def serve(port: int, keepalive: float) -> None:
    """Serve until SIGTERM, then shut down as a backend being restarted does: stop accepting,
    let in-flight requests finish (up to 5 s), close WebSockets with 1001 (going away)."""
    runner = web.AppRunner(
        build_app(), access_log=None, keepalive_timeout=keepalive, shutdown_timeout=5
    )
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", port, backlog=4096, reuse_address=True)
    await site.start()
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    print(f"ready {site._server.sockets[0].getsockname()[1]}", flush=True)  # type: ignore[union-attr]
    await stop.wait()
    await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--keepalive", type=float, default=75.0, help="idle keep-alive, s")
    options = parser.parse_args()
    try:
        import uvloop
    except ImportError:
        asyncio.run(serve(options.port, options.keepalive))
    else:
        uvloop.run(serve(options.port, options.keepalive))


if __name__ == "__main__":
    main()

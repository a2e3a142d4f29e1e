"""The fallback upstream when nginx is not installed: the same three paths, no CORS.

usage: python bench/upstream.py PORT
/api/item answers a small JSON (a preflight gets a bare 204), /sink reads and drops a POST
body, /big streams 64 MiB. Slower than nginx, so bench.py says when it is in use.
"""

from __future__ import annotations

import asyncio
import sys

from aiohttp import web

ITEM = b'{"id": 1, "name": "corsproxy", "ok": true}'
CHUNK = bytes(range(256)) * 4096  # 1 MiB
BIG_CHUNKS = 64


async def big(request: web.BaseRequest) -> web.StreamResponse:
    response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    response.content_length = len(CHUNK) * BIG_CHUNKS
    await response.prepare(request)
    for _ in range(BIG_CHUNKS):
        await response.write(CHUNK)
    await response.write_eof()
    return response


async def handle(request: web.BaseRequest) -> web.StreamResponse:
    if request.path == "/big":
        return await big(request)
    if request.can_read_body:
        await request.read()
    if request.method == "OPTIONS":
        return web.Response(status=204)
    body = b'{"ok": true}' if request.path == "/sink" else ITEM
    return web.Response(body=body, content_type="application/json")


async def main(port: int) -> None:
    runner = web.ServerRunner(web.Server(handle), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    try:
        import uvloop
    except ImportError:
        asyncio.run(main(int(sys.argv[1])))
    else:
        uvloop.run(main(int(sys.argv[1])))

"""A tiny, fast upstream for the benchmark: 200 with a small JSON body on every path."""

from __future__ import annotations

import asyncio
import sys

from aiohttp import web

BODY = b'{"id": 1, "name": "corsproxy", "ok": true}'


async def handle(request: web.BaseRequest) -> web.Response:
    if request.can_read_body:
        await request.read()
    return web.Response(body=BODY, content_type="application/json")


async def main(port: int) -> None:
    runner = web.ServerRunner(web.Server(handle), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    try:
        import uvloop

        uvloop.run(main(int(sys.argv[1])))
    except ImportError:
        asyncio.run(main(int(sys.argv[1])))

"""A minimal aiohttp + uvloop streaming reverse proxy: the benchmarks' reference, nothing more.

usage: python bench/reference_proxy.py UPSTREAM PORT [--origin O] [--delay-ms N]

It is what "a plain proxy with a fixed CORS grant" costs, so that corsproxy's own work can
be stated as a ratio within one run: bodies streamed both ways, hop-by-hop headers dropped,
one fixed Access-Control-Allow-Origin, preflights answered here. No origin checks, no
routing, no logging: never use it for anything else. --delay-ms sleeps before every answer
(the page-load benchmark's validation run: a proxy known to be slower by that much).
"""

from __future__ import annotations

import argparse
import asyncio

import aiohttp
from aiohttp import web

HOP = {"connection", "keep-alive", "transfer-encoding", "te", "trailer", "upgrade", "host"}


def make_handler(session: aiohttp.ClientSession, upstream: str, origin: str, delay: float):
    grant = {"Access-Control-Allow-Origin": origin, "Access-Control-Allow-Credentials": "true"}
    grant["Vary"] = "Origin"
    preflight = {
        **grant,
        "Access-Control-Allow-Methods": "GET, HEAD, POST, PUT, PATCH, DELETE",
        "Access-Control-Allow-Headers": "content-type, authorization",
        "Access-Control-Max-Age": "600",
    }

    async def handle(request: web.BaseRequest) -> web.StreamResponse:
        if delay:
            await asyncio.sleep(delay)
        if request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers:
            return web.Response(status=204, headers=preflight)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in HOP}
        async with session.request(
            request.method,
            upstream + request.path_qs,
            headers=headers,
            data=request.content if request.body_exists else None,
            allow_redirects=False,
        ) as answer:
            out = {k: v for k, v in answer.headers.items() if k.lower() not in HOP}
            response = web.StreamResponse(status=answer.status, headers={**out, **grant})
            await response.prepare(request)
            async for chunk in answer.content.iter_any():
                await response.write(chunk)
            await response.write_eof()
            return response

    return handle


async def serve(upstream: str, port: int, origin: str, delay: float) -> None:
    connector = aiohttp.TCPConnector(limit=0)  # no cap on upstream connections
    session = aiohttp.ClientSession(connector=connector, auto_decompress=False)
    server = web.Server(make_handler(session, upstream.rstrip("/"), origin, delay))
    runner = web.ServerRunner(server, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port, backlog=1024).start()
    print(f"reference proxy: http://127.0.0.1:{port} -> {upstream}", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("upstream")
    parser.add_argument("port", type=int)
    parser.add_argument("--origin", default="http://localhost:5173")
    parser.add_argument("--delay-ms", type=float, default=0.0)
    options = parser.parse_args()
    main = serve(options.upstream, options.port, options.origin, options.delay_ms / 1000)
    try:
        import uvloop
    except ImportError:  # bench.py's notes say so: the reference is then on asyncio's loop
        asyncio.run(main)
    else:
        uvloop.run(main)

"""The servers the browser talks to: a backend with no CORS at all, and the page server.

Run as a child process by conftest.py: `python servers.py backend` or `python servers.py pages`.
Each binds port 0 itself (no race for a free port) and prints one line, `ready PORT [PORT...]`.
The backend is started with AIOHTTP_NO_EXTENSIONS=1: aiohttp's C parser rejects a lowercase
method such as `patch`, which a real backend (and the Fetch standard) accepts.
"""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import json
import secrets
import sys
from collections import Counter
from pathlib import Path

from aiohttp import WSMsgType, web

STATIC = Path(__file__).with_name("static")
# Deterministic bodies the page can rebuild byte for byte: byte i is i % 251 (a prime, so
# the pattern never lines up with a power-of-two chunk boundary).
DOWNLOAD_SIZE = 20 * 1024 * 1024
GZIP_TEXT = "corsproxy gzip check\n" * 2000
OTHER_ORIGIN = "http://other.example"


def pattern(size: int) -> bytes:
    """The bytes `pattern(size)` in the page builds: byte i is i % 251."""
    block = bytes(range(251))
    return block * (size // 251) + block[: size % 251]


# ---- the backend: plain handlers, not one Access-Control-* header of its own ----------------


async def items(request: web.Request) -> web.Response:
    """A list whose total count is in a custom header, as paginated APIs do."""
    headers = {"X-Total-Count": "3", "X-Request-Id": "req-1"}
    return web.json_response(["alpha", "beta", "gamma"], headers=headers)


async def echo(request: web.Request) -> web.Response:
    """Any method (case kept): what arrived, so the page can see what the backend saw."""
    seen = {name.lower(): value for name, value in request.headers.items()}
    body = {
        "method": request.method,
        "path": request.path_qs,
        "origin": seen.get("origin"),
        "authorization": seen.get("authorization"),
        "content_type": seen.get("content-type"),
        "x_custom": seen.get("x-custom"),
        "body": await request.text(),
    }
    return web.json_response(body)


async def login(request: web.Request) -> web.Response:
    token = secrets.token_hex(8)
    response = web.json_response({"logged_in": True, "token": token})
    response.headers["Set-Cookie"] = f"session={token}; Path=/; HttpOnly; SameSite=Lax"
    return response


async def whoami(request: web.Request) -> web.Response:
    """Echoes the Cookie header it received (None when the browser sent none)."""
    return web.json_response({"cookie": request.headers.get("Cookie")})


async def fail(request: web.Request) -> web.Response:
    return web.json_response({"error": "database on fire"}, status=500)


async def gzipped(request: web.Request) -> web.Response:
    headers = {"Content-Encoding": "gzip", "Content-Type": "text/plain; charset=utf-8"}
    return web.Response(body=gzip.compress(GZIP_TEXT.encode()), headers=headers)


async def download(request: web.Request) -> web.StreamResponse:
    body: bytes = request.app[DOWNLOAD_BODY]
    response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
    response.content_length = len(body)
    await response.prepare(request)
    try:
        for start in range(0, len(body), 1 << 20):
            await response.write(body[start : start + (1 << 20)])
    except ConnectionResetError:
        pass  # the browser blocked the response (CORS) and hung up: expected in direct twins
    return response


async def upload(request: web.Request) -> web.Response:
    digest, size = hashlib.sha256(), 0
    async for chunk in request.content.iter_chunked(1 << 16):
        digest.update(chunk)
        size += len(chunk)
    return web.json_response({"size": size, "sha256": digest.hexdigest()})


async def wrong_cors(request: web.Request) -> web.Response:
    """Endpoints that do CORS, but wrongly: what a half-configured backend sends."""
    origin = request.headers.get("Origin", "")
    kind = request.match_info["kind"]
    headers: list[tuple[str, str]] = {
        # A wildcard is forbidden on a credentialed request (Fetch, CORS check step 3).
        "star-with-credentials": [
            ("Access-Control-Allow-Origin", "*"),
            ("Access-Control-Allow-Credentials", "true"),
        ],
        "other-origin": [
            ("Access-Control-Allow-Origin", OTHER_ORIGIN),
            ("Access-Control-Allow-Credentials", "true"),
        ],
        # Two fields combine into "a, b", which never equals an origin.
        "two-values": [
            ("Access-Control-Allow-Origin", origin),
            ("Access-Control-Allow-Origin", OTHER_ORIGIN),
            ("Access-Control-Allow-Credentials", "true"),
        ],
        # Reflects the origin but forgets Vary: Origin on a cacheable response.
        "reflect-without-vary": [
            ("Access-Control-Allow-Origin", origin),
            ("Cache-Control", "max-age=600"),
        ],
    }[kind]
    request.app[HITS][request.path_qs] += 1
    response = web.json_response({"kind": kind, "origin": origin})
    for name, value in headers:
        response.headers.add(name, value)
    return response


async def hits(request: web.Request) -> web.Response:
    """How often a path (with query) of /wrong/ was served: ?path=/wrong/...?id=x."""
    return web.json_response({"hits": request.app[HITS][request.query["path"]]})


async def secret(request: web.Request) -> web.Response:
    return web.Response(text="the intranet's secret")


async def websocket_echo(request: web.Request) -> web.WebSocketResponse:
    socket = web.WebSocketResponse()
    await socket.prepare(request)
    async for message in socket:
        if message.type is WSMsgType.TEXT:
            await socket.send_str(message.data)
        elif message.type is WSMsgType.BINARY:
            await socket.send_bytes(message.data)
    return socket


DOWNLOAD_BODY = web.AppKey("download_body", bytes)
HITS = web.AppKey("hits", Counter)


def backend_app() -> web.Application:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[DOWNLOAD_BODY] = pattern(DOWNLOAD_SIZE)
    app[HITS] = Counter()
    app.router.add_get("/api/items", items)
    app.router.add_route("*", "/api/echo", echo)
    app.router.add_post("/login", login)
    app.router.add_get("/whoami", whoami)
    app.router.add_get("/error/500", fail)
    app.router.add_get("/gzip", gzipped)
    app.router.add_get("/download", download)
    app.router.add_post("/upload", upload)
    app.router.add_get("/wrong/{kind}", wrong_cors)
    app.router.add_get("/__hits", hits)
    app.router.add_get("/secret", secret)
    app.router.add_get("/ws", websocket_echo)
    return app


# ---- the page server: the same harmless page on every origin that points at it -------------


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-store"})


async def no_icon(request: web.Request) -> web.Response:
    return web.Response(status=204)


def pages_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/", index)
    app.router.add_get("/favicon.ico", no_icon)
    return app


async def serve(app: web.Application, count: int) -> None:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    ports = []
    for _ in range(count):
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        ports.append(site._server.sockets[0].getsockname()[1])  # type: ignore[union-attr]
    print("ready", *ports, flush=True)
    # Serve until the parent closes our stdin (or kills us): no orphan outlives a crashed run.
    loop = asyncio.get_running_loop()
    await loop.run_in_executor(None, sys.stdin.read)
    await runner.cleanup()


def main(argv: list[str]) -> None:
    kind = argv[1]
    if kind == "backend":
        asyncio.run(serve(backend_app(), 1))
    elif kind == "pages":
        asyncio.run(serve(pages_app(), 2))  # two ports: two origins of the same site
    else:
        raise SystemExit(f"usage: {argv[0]} backend|pages; got {json.dumps(kind)}")


if __name__ == "__main__":
    main(sys.argv)

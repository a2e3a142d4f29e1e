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
from collections import Counter, defaultdict
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


async def set_cookie(request: web.Request) -> web.Response:
    """/set-cookie?c=VALUE answers with `Set-Cookie: VALUE`, whatever it is; any call answers
    with the Cookie header it received. It grants CORS with credentials to any origin itself,
    so a page calls it directly and sees what its browser does with a cookie as sent (the
    cookie verdict tests). At the root, so a cookie without Path belongs to every path."""
    response = web.json_response({"cookie": request.headers.get("Cookie")})
    if "c" in request.query:
        response.headers["Set-Cookie"] = request.query["c"]
    response.headers["Access-Control-Allow-Origin"] = request.headers.get("Origin", "*")
    response.headers["Access-Control-Allow-Credentials"] = "true"
    response.headers["Vary"] = "Origin"
    return response


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


# ---- fidelity: a backend login, redirects, Server-Sent Events, WebSocket sessions ----------

# The name the backend believes it has (a staging API behind its own DNS name): its login
# cookie is scoped to it, as such backends do.
BACKEND_NAME = "api.backend.test"


async def staging_login(request: web.Request) -> web.Response:
    """A login as a remote HTTPS staging API sends it: the cookie is scoped to the backend's own
    name, Secure, SameSite=None (so that its cross-site frontend gets it), HttpOnly."""
    token = secrets.token_hex(8)
    response = web.json_response({"logged_in": True, "token": token})
    response.headers["Set-Cookie"] = (
        f"sid={token}; Domain={BACKEND_NAME}; Path=/; Secure; HttpOnly; SameSite=None"
    )
    return response


async def redirect(request: web.Request) -> web.Response:
    """/redirect/302 etc.: to the backend's own absolute URL, built from the Host it was sent
    (as Django's build_absolute_uri() or Spring's ServletUriComponentsBuilder do)."""
    status = int(request.match_info["status"])
    location = f"http://{request.host}/redirect/landed?from={status}"
    return web.Response(status=status, headers={"Location": location})


async def landed(request: web.Request) -> web.Response:
    """Where the redirects lead: what arrived here."""
    body = {
        "method": request.method,
        "path": request.path_qs,
        "content_type": request.headers.get("Content-Type"),
        "body": await request.text(),
    }
    return web.json_response(body)


async def events(request: web.Request) -> web.StreamResponse:
    """Server-Sent Events, one at a time: event n+1 is produced only after the page POSTed
    /ack?stream=S&n=n. A proxy that buffered the stream would deadlock the page and this."""
    stream, count = request.query["stream"], int(request.query.get("count", "3"))
    acks = request.app[ACKS]
    response = web.StreamResponse(
        headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"}
    )
    await response.prepare(request)
    try:
        for n in range(1, count + 1):
            acked = [k for k in range(1, n) if acks[stream, k].is_set()]
            data = json.dumps({"n": n, "acked_before": acked})
            await response.write(f"id: {n}\nevent: tick\ndata: {data}\n\n".encode())
            if n < count:
                # A guard, not a synchronisation: the page's own timeout fires well before.
                await asyncio.wait_for(acks[stream, n].wait(), 60)
        await response.write(b"event: done\ndata: bye\n\n")
    except (ConnectionError, TimeoutError):
        pass  # the browser gave up (a CORS failure in the direct twin, or a timeout)
    return response


async def ack(request: web.Request) -> web.Response:
    request.app[ACKS][request.query["stream"], int(request.query["n"])].set()
    return web.json_response({"acked": int(request.query["n"])})


async def websocket_session(request: web.Request) -> web.WebSocketResponse:
    """Echoes text and binary frames; `close me` makes it close with 4001 and a reason; the code
    and reason of a close the page starts are recorded under ?id= for /__ws_closed."""
    socket = web.WebSocketResponse(protocols=("chat.v1",), autoclose=False)
    await socket.prepare(request)
    record = {"protocol": socket.ws_protocol, "code": None, "reason": None}
    while True:
        message = await socket.receive()
        if message.type is WSMsgType.TEXT and message.data == "close me":
            await socket.close(code=4001, message=b"server says bye")
            record["code"] = socket.close_code
            break
        if message.type is WSMsgType.TEXT:
            await socket.send_str(message.data)
        elif message.type is WSMsgType.BINARY:
            await socket.send_bytes(message.data)
        elif message.type is WSMsgType.CLOSE:  # the page closed: record, then answer
            record["code"], record["reason"] = message.data, message.extra
            await socket.close(code=message.data)
            break
        else:  # CLOSING, CLOSED, ERROR
            break
    request.app[WS_CLOSED][request.query["id"]] = record
    request.app[WS_CLOSED_EVENTS][request.query["id"]].set()
    return socket


async def websocket_closed(request: web.Request) -> web.Response:
    """How the session ?id= ended on the backend's side; waits until it has."""
    name = request.query["id"]
    await asyncio.wait_for(request.app[WS_CLOSED_EVENTS][name].wait(), 30)
    return web.json_response(request.app[WS_CLOSED][name])


# ---- CORS done by the backend itself, case by case: right, or wrong in one way --------------

# Each case: (preflight answer, actual answer), each (status, headers). In the values,
# {origin} is the request's Origin, {method} and {headers} its Access-Control-Request-Method
# and -Headers, {elsewhere} the backend under another origin (127.0.0.1 for localhost, and back).
# A header whose value comes out empty is not sent.
Answer = tuple[int, list[tuple[str, str]]]
REFLECT = [
    ("Access-Control-Allow-Origin", "{origin}"),
    ("Access-Control-Allow-Credentials", "true"),
    ("Vary", "Origin"),
]
GRANT = [
    *REFLECT,
    ("Access-Control-Allow-Methods", "{method}"),
    ("Access-Control-Allow-Headers", "{headers}"),
]


def _grant(**replaced: str | None) -> list[tuple[str, str]]:
    """GRANT with some headers replaced (name in snake case, e.g. allow_methods="GET") or
    left out (None)."""
    named = {f"access_control_{key}": value for key, value in replaced.items()}
    out = []
    for name, value in GRANT:
        key = name.lower().replace("-", "_")
        if key in named:
            if named[key] is not None:
                out.append((name, named[key]))  # type: ignore[arg-type]
        else:
            out.append((name, value))
    return out


OK: Answer = (200, REFLECT)
GRANTED: Answer = (204, GRANT)
CORS_CASES: dict[str, tuple[Answer, Answer]] = {
    # Right.
    "reflect": (GRANTED, OK),
    "star": (
        (
            204,
            [
                ("Access-Control-Allow-Origin", "*"),
                ("Access-Control-Allow-Methods", "*"),
                ("Access-Control-Allow-Headers", "*"),
            ],
        ),
        (200, [("Access-Control-Allow-Origin", "*")]),
    ),
    # The actual response's CORS check.
    "no-credentials": (GRANTED, (200, [("Access-Control-Allow-Origin", "{origin}")])),
    "credentials-uppercase": (
        GRANTED,
        (
            200,
            [
                ("Access-Control-Allow-Origin", "{origin}"),
                ("Access-Control-Allow-Credentials", "TRUE"),
            ],
        ),
    ),
    "trailing-slash": (GRANTED, (200, [("Access-Control-Allow-Origin", "{origin}/")])),
    "not-an-origin": (GRANTED, (200, [("Access-Control-Allow-Origin", "localhost")])),
    # Preflights.
    "preflight-404": ((404, []), OK),
    "preflight-405": ((405, [("Allow", "GET, POST")]), OK),
    "preflight-404-granted": ((404, GRANT), OK),
    "preflight-405-granted": ((405, GRANT), OK),
    "preflight-redirect": ((301, [("Location", "http://{host}/cors/reflect/")]), OK),
    "preflight-redirect-granted": (
        (307, [*GRANT, ("Location", "http://{host}/cors/reflect/")]),
        OK,
    ),
    "preflight-no-origin": ((204, _grant(allow_origin=None)), OK),
    "preflight-star-origin": ((204, _grant(allow_origin="*")), OK),
    "preflight-no-credentials": ((204, _grant(allow_credentials=None)), OK),
    "methods-get-post": ((204, _grant(allow_methods="GET, POST")), OK),
    "methods-star": ((204, _grant(allow_methods="*")), OK),
    "methods-uppercase": ((204, _grant(allow_methods="PATCH")), OK),
    "methods-semicolons": ((204, _grant(allow_methods="GET; PUT")), OK),
    "headers-content-type": ((204, _grant(allow_headers="content-type")), OK),
    "headers-star": ((204, _grant(allow_headers="*")), OK),
    "headers-semicolons": ((204, _grant(allow_headers="x-custom; content-type")), OK),
    # Redirects of the actual request (the 302 itself passes the CORS check).
    "redirect-elsewhere-bare": (GRANTED, (302, [*REFLECT, ("Location", "{elsewhere}/api/items")])),
    "redirect-elsewhere-star": (
        GRANTED,
        (302, [*REFLECT, ("Location", "{elsewhere}/cors/star")]),
    ),
    "redirect-elsewhere-reflect": (
        GRANTED,
        (302, [*REFLECT, ("Location", "{elsewhere}/cors/reflect")]),
    ),
    "redirect-without-cors": (GRANTED, (302, [("Location", "{elsewhere}/cors/star")])),
    "redirect-307-elsewhere-star": (
        GRANTED,
        (307, [*REFLECT, ("Location", "{elsewhere}/cors/star")]),
    ),
    "redirect-303-elsewhere-star": (
        GRANTED,
        (303, [*REFLECT, ("Location", "{elsewhere}/cors/star")]),
    ),
    "redirect-with-userinfo": (
        GRANTED,
        (302, [*REFLECT, ("Location", "http://user:secret@{elsewhere_authority}/cors/star")]),
    ),
    "redirect-307-elsewhere-bare": (
        GRANTED,
        (307, [*REFLECT, ("Location", "{elsewhere}/api/items")]),
    ),
    "redirect-elsewhere-other-origin": (
        GRANTED,
        (302, [*REFLECT, ("Location", "{elsewhere}/wrong/other-origin")]),
    ),
    "redirect-to-data": (GRANTED, (302, [*REFLECT, ("Location", "data:text/plain,hi")])),
    "redirect-two-locations": (
        GRANTED,
        (
            302,
            [
                *REFLECT,
                ("Location", "{elsewhere}/cors/star"),
                ("Location", "{elsewhere}/cors/reflect"),
            ],
        ),
    ),
    # More of the actual response's CORS check.
    "null-origin": (GRANTED, (200, [("Access-Control-Allow-Origin", "null")])),
    "uppercase-origin": (GRANTED, (200, [("Access-Control-Allow-Origin", "{origin_upper}")])),
    "credentials-twice": (
        GRANTED,
        (
            200,
            [
                ("Access-Control-Allow-Origin", "{origin}"),
                ("Access-Control-Allow-Credentials", "true"),
                ("Access-Control-Allow-Credentials", "true"),
            ],
        ),
    ),
    "expose-some": (
        GRANTED,
        (
            200,
            [
                *REFLECT,
                ("Access-Control-Expose-Headers", "X-Total-Count"),
                ("X-Total-Count", "3"),
                ("X-Hidden", "h"),
            ],
        ),
    ),
    "expose-star": (
        GRANTED,
        (
            200,
            [
                *REFLECT,
                ("Access-Control-Expose-Headers", "*"),
                ("X-Total-Count", "3"),
                ("X-Hidden", "h"),
            ],
        ),
    ),
    "max-age-a-day": ((204, [*GRANT, ("Access-Control-Max-Age", "86400")]), OK),
    "headers-star-and-authorization": ((204, _grant(allow_headers="*, authorization")), OK),
    # Engines (tests/e2e/test_doctor_agrees.py): where Chromium and Firefox may differ.
    "credentials-capitalized": (
        GRANTED,
        (
            200,
            [
                ("Access-Control-Allow-Origin", "{origin}"),
                ("Access-Control-Allow-Credentials", "True"),
            ],
        ),
    ),
    # Grants the page's origin but never `null`, as a backend with an allow-list does.
    "not-null": (
        (204, [(n, "{origin_not_null}" if v == "{origin}" else v) for n, v in GRANT]),
        (200, [(n, "{origin_not_null}" if v == "{origin}" else v) for n, v in REFLECT]),
    ),
    "redirect-elsewhere-not-null": (
        GRANTED,
        (302, [*REFLECT, ("Location", "{elsewhere}/cors/not-null")]),
    ),
    "redirect-307-elsewhere-not-null": (
        GRANTED,
        (307, [*REFLECT, ("Location", "{elsewhere}/cors/not-null")]),
    ),
    "methods-bad-token": ((204, _grant(allow_methods="GET, P(UT")), OK),
    "headers-bad-token": ((204, _grant(allow_headers="x-custom, x@y")), OK),
}


async def cors_case(request: web.Request) -> web.Response:
    """/cors/CASE, any method: CORS_CASES[CASE], the preflight answered by the backend itself."""
    preflight, actual = CORS_CASES[request.match_info["case"]]
    is_preflight = (
        request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers
    )
    status, template = preflight if is_preflight else actual
    host, port = request.host.rsplit(":", 1)
    other = "127.0.0.1" if host == "localhost" else "localhost"
    origin = request.headers.get("Origin", "")
    values = {
        "origin": origin,
        "method": request.headers.get("Access-Control-Request-Method", ""),
        "headers": request.headers.get("Access-Control-Request-Headers", ""),
        "host": request.host,
        "elsewhere": f"http://{other}:{port}",
        "elsewhere_authority": f"{other}:{port}",
        "origin_upper": request.headers.get("Origin", "").upper(),
        "origin_not_null": "" if origin == "null" else origin,
    }
    response = web.json_response({"case": request.match_info["case"]}, status=status)
    for name, value in template:
        value = value.format(**values)
        if value:
            response.headers.add(name, value)
    return response


DOWNLOAD_BODY = web.AppKey("download_body", bytes)
HITS = web.AppKey("hits", Counter)
ACKS = web.AppKey("acks", defaultdict)  # (stream, n) -> asyncio.Event
WS_CLOSED = web.AppKey("ws_closed", dict)  # session id -> {code, reason, protocol}
WS_CLOSED_EVENTS = web.AppKey("ws_closed_events", defaultdict)  # session id -> asyncio.Event


def backend_app() -> web.Application:
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[DOWNLOAD_BODY] = pattern(DOWNLOAD_SIZE)
    app[HITS] = Counter()
    app.router.add_get("/api/items", items)
    app.router.add_route("*", "/api/echo", echo)
    app.router.add_post("/login", login)
    app.router.add_get("/whoami", whoami)
    app.router.add_route("*", "/set-cookie", set_cookie)
    app.router.add_get("/error/500", fail)
    app.router.add_get("/gzip", gzipped)
    app.router.add_get("/download", download)
    app.router.add_post("/upload", upload)
    app.router.add_get("/wrong/{kind}", wrong_cors)
    app.router.add_get("/__hits", hits)
    app.router.add_get("/secret", secret)
    app.router.add_get("/ws", websocket_echo)
    app[ACKS] = defaultdict(asyncio.Event)
    app[WS_CLOSED] = {}
    app[WS_CLOSED_EVENTS] = defaultdict(asyncio.Event)
    app.router.add_post("/login/staging", staging_login)
    app.router.add_route("*", "/redirect/landed", landed)
    app.router.add_route("*", "/redirect/{status:3[0-9][0-9]}", redirect)
    app.router.add_get("/events", events)
    app.router.add_post("/ack", ack)
    app.router.add_get("/ws/session", websocket_session)
    app.router.add_get("/__ws_closed", websocket_closed)
    app.router.add_route("*", "/cors/{case}", cors_case)
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

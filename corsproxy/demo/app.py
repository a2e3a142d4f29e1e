"""`corsproxy demo`: a backend without CORS, the proxy in front of it, and a page that shows
both, on three ports of one process. cli.py calls run(); tests and scripts call start().

Ports: the page on N (default 8700), the proxy on N+1, the backend on N+2, all bound to
127.0.0.1 and addressed as http://localhost:PORT; a busy port is swapped for a free one.
`--port-base 0` takes three free ports. The page's findings come from /diagnose, which
runs probe.diagnose() on the card's request, so the page says what `corsproxy doctor` says.

The proxy's log, on the terminal, shows the page's own requests only: the diagnosis goes
through a twin of the proxy (the same settings, on a free port, with no log), so each card
does not show up twice, once as the page's fetch() and once as the demo asking on its behalf.
A twin rather than a marker the proxy would recognise: the proxy gains no way for a request
to keep itself out of the log, and the log needs no second kind of line.
"""

from __future__ import annotations

import asyncio
import errno
import io
import json
import re
import signal
import socket
import sys
import webbrowser
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field, replace
from importlib import resources
from typing import Any, TextIO, TypeVar

from aiohttp import web

from corsproxy.config.model import Cors, Listen, Route, Settings
from corsproxy.demo import backend as demo_backend
from corsproxy.doctor import probe
from corsproxy.proxy.accesslog import AccessLog
from corsproxy.serve import server

DEFAULT_PORT_BASE = 8700
HOST = "127.0.0.1"
ROLES = ("page", "proxy", "backend")
STATIC = ("index.html", "demo.css", "demo.js")
PORTS = web.AppKey("ports", dict[str, int])
INSPECTOR = web.AppKey("inspector", str)  # the proxy's inspector URL, token included
T = TypeVar("T")


def url(port: int) -> str:
    return f"http://localhost:{port}"


# ---- ports -------------------------------------------------------------------------------


def port_free(port: int) -> bool:
    """Nothing listens on 127.0.0.1:port nor on [::1]:port (the browser tries ::1 first)."""
    for family, host in ((socket.AF_INET, HOST), (socket.AF_INET6, "::1")):
        try:
            with socket.socket(family, socket.SOCK_STREAM) as probe:
                probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # ignore TIME_WAIT
                probe.bind((host, port))
        except OSError as error:
            if error.errno == errno.EADDRINUSE or family == socket.AF_INET:
                return False  # EADDRNOTAVAIL etc. on ::1 only means the host has no IPv6
    return True


def wanted_ports(port_base: int) -> dict[str, int]:
    """page N, proxy N+1, backend N+2; 0 for each when port_base is 0 (any free port)."""
    if port_base == 0:
        return dict.fromkeys(ROLES, 0)
    if not 1 <= port_base <= 65533:
        raise ValueError(f"--port-base must be 0 or 1-65533, got {port_base}")
    return {role: port_base + i for i, role in enumerate(ROLES)}


async def _bind(
    start_on: Callable[[int], Awaitable[tuple[T, int]]],
    role: str,
    port: int,
    moved: dict[str, tuple[int, int]],
) -> tuple[T, int]:
    """start_on(port) on the wanted port, or on a free one (noted in `moved`) if it is busy."""
    if port and port_free(port):
        try:
            return await start_on(port)
        except OSError as error:
            if error.errno != errno.EADDRINUSE:
                raise
    started = await start_on(0)
    if port:
        moved[role] = (port, started[1])
    return started


# ---- the page server ---------------------------------------------------------------------


def _static(name: str) -> bytes:
    return resources.files("corsproxy.demo").joinpath("static", name).read_bytes()


async def page_file(request: web.Request) -> web.StreamResponse:
    name = request.match_info.get("name") or "index.html"
    if name not in STATIC:
        raise web.HTTPNotFound()
    page = url(request.app[PORTS]["page"])
    if request.host != page.removeprefix("http://"):  # one origin, so the login cookie works
        raise web.HTTPFound(page + request.path_qs)
    kind = {"html": "text/html", "css": "text/css", "js": "text/javascript"}[name.split(".")[1]]
    headers = {"Cache-Control": "no-store"}
    return web.Response(body=_static(name), content_type=kind, charset="utf-8", headers=headers)


async def config(request: web.Request) -> web.Response:
    """Where the page finds the proxy and the backend, and the requests each card makes."""
    ports = request.app[PORTS]
    body: dict[str, object] = {role: url(ports[role]) for role in ROLES}
    body["cards"] = demo_backend.cards_json()
    body["inspector"] = request.app[INSPECTOR] if INSPECTOR in request.app else None
    return web.json_response(body, headers={"Cache-Control": "no-store"})


async def diagnose(request: web.Request) -> web.Response:
    """/diagnose?card=ID: `corsproxy doctor --json` for each of the card's requests, sent
    straight to the backend and through the proxy, from the page's origin."""
    card = demo_backend.CARDS_BY_ID.get(request.query.get("card", ""))
    if card is None:
        known = ", ".join(demo_backend.CARDS_BY_ID)
        return web.json_response({"error": f"unknown card; one of {known}"}, status=404)
    ports = request.app[PORTS]
    origin = url(ports["page"])
    # The proxied side asks the twin (see the module's docstring), and is shown as the proxy.
    twin = (f"localhost:{ports['twin']}", f"localhost:{ports['proxy']}")
    sides = {"direct": (url(ports["backend"]), None), "proxied": (url(ports["twin"]), twin)}
    try:
        result = {
            side: [await _doctor(base, origin, r, shown) for r in card.requests]
            for side, (base, shown) in sides.items()
        }
    except probe.DoctorError as error:
        return web.json_response({"error": f"corsproxy doctor: {error}"}, status=502)
    return web.json_response({"card": card.id, **result})


async def _doctor(
    base: str, origin: str, req: demo_backend.DemoRequest, shown: tuple[str, str] | None
) -> dict[str, Any]:
    report = await probe.diagnose(
        base + req.path, origin, req.method, req.headers, credentials=req.credentials
    )
    text = probe.render_json(report)
    if shown is not None:  # the twin's host:port (in URLs and Host) as the proxy's
        text = re.sub(re.escape(shown[0]) + r"(?![0-9])", shown[1], text)
    return json.loads(text)


def build_page_app(ports: dict[str, int], inspector: str | None = None) -> web.Application:
    app = web.Application()
    app[PORTS] = ports
    if inspector:
        app[INSPECTOR] = inspector
    app.router.add_get("/", page_file)
    app.router.add_get("/config.json", config)
    app.router.add_get("/diagnose", diagnose)
    app.router.add_get("/{name}", page_file)
    return app


# ---- the three servers together ----------------------------------------------------------


@dataclass
class Demo:
    """A started demo: demo.ports["page"], demo.page_url; `await demo.stop()` ends all three."""

    ports: dict[str, int]
    moved: dict[str, tuple[int, int]]  # role -> (the busy port, the one used instead)
    _stops: list[Any] = field(default_factory=list)
    inspector_url: str | None = None  # the proxy's inspector, token included

    @property
    def page_url(self) -> str:
        return url(self.ports["page"]) + "/"

    async def stop(self) -> None:
        """Page first, then the proxy (draining its requests), then the backend behind it."""
        for stop in reversed(self._stops):
            await stop()
        self._stops.clear()

    def banner(self) -> list[str]:
        """The lines run() prints: moved ports (one line), the page URL, what each port is."""
        notes = [
            f"port {self.moved[role][0]} is busy, so the {role} uses {self.moved[role][1]}"
            for role in ROLES
            if role in self.moved
        ]
        lines = ["corsproxy demo: " + "; ".join(notes)] if notes else []
        page, proxy, backend = (url(self.ports[role]) + "/" for role in ROLES)
        return lines + [
            f"corsproxy demo: open {page}",
            f"  page     {page:<24} the frontend (origin {page.rstrip('/')})",
            f"  proxy    {proxy:<24} corsproxy in front of the backend, default settings",
            f"  backend  {backend:<24} a small API that sends no CORS headers at all",
            *(
                [f"  inspector {self.inspector_url}", "           every request the proxy saw"]
                if self.inspector_url
                else []
            ),
            "Below, the proxy's log: one line per request the page sends through it.",
            "Press Ctrl-C to stop all three.",
        ]


async def _start_app(app: web.Application, port: int) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=2)
    await runner.setup()
    site = web.TCPSite(runner, HOST, port)
    try:
        await site.start()
    except BaseException:
        await runner.cleanup()
        raise
    return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]


def proxy_settings(backend_port: int, proxy_port: int) -> Settings:
    """The proxy exactly as `corsproxy serve http://127.0.0.1:BACKEND` would run it."""
    route = Route("/", f"http://{HOST}:{backend_port}")
    return Settings(listen=Listen(host=HOST, port=proxy_port), routes=(route,), cors=Cors())


async def start(port_base: int = DEFAULT_PORT_BASE, log_stream: TextIO | None = None) -> Demo:
    """Start backend, proxy and page server (in that order: each needs the one before)."""
    want = wanted_ports(port_base)
    demo = Demo(ports={}, moved={})
    try:
        backend = demo_backend.build_app()
        runner, demo.ports["backend"] = await _bind(
            lambda p: _start_app(backend, p), "backend", want["backend"], demo.moved
        )
        demo._stops.append(runner.cleanup)
        await _start_proxy(demo, want["proxy"], AccessLog("info", log_stream or sys.stderr))
        await _start_twin(demo)
        pages = build_page_app(demo.ports, demo.inspector_url)
        runner, demo.ports["page"] = await _bind(
            lambda p: _start_app(pages, p), "page", want["page"], demo.moved
        )
        demo._stops.append(runner.cleanup)
    except BaseException:
        await demo.stop()
        raise
    return demo


async def _start_proxy(demo: Demo, port: int, log: AccessLog) -> None:
    async def on(p: int) -> tuple[server.Running, int]:
        running = await server.start(proxy_settings(demo.ports["backend"], p), log, port=p)
        return running, running.port

    running, demo.ports["proxy"] = await _bind(on, "proxy", port, demo.moved)
    demo._stops.append(running.stop)
    if running.proxy.inspector is not None:
        demo.inspector_url = running.proxy.inspector.url


async def _start_twin(demo: Demo) -> None:
    """The proxy again, for the page's diagnosis only: same settings, a free port, no log."""
    settings = proxy_settings(demo.ports["backend"], 0)
    # Nor an inspector: the diagnosis is not one of the page's own requests.
    settings = replace(settings, inspector=replace(settings.inspector, enabled=False))
    running = await server.start(settings, AccessLog("error", io.StringIO()), port=0)
    demo.ports["twin"] = running.port
    demo._stops.append(running.stop)


async def serve(port_base: int, open_browser: bool) -> int:
    """Start, print where everything is, wait for SIGINT or SIGTERM, stop all three."""
    try:
        demo = await start(port_base)
    except OSError as error:
        print(f"corsproxy demo: cannot start: {error.strerror or error}", file=sys.stderr)
        return 2
    try:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):  # before the banner: it means "ready"
            loop.add_signal_handler(sig, stop.set)
        print("\n".join(demo.banner()), flush=True)
        if open_browser:
            loop.run_in_executor(None, webbrowser.open, demo.page_url)
        await stop.wait()
        print("corsproxy demo: stopping", flush=True)
    finally:
        await demo.stop()
    print("corsproxy demo: stopped", flush=True)
    return 0


def run(port_base: int | None, open_browser: bool) -> int:
    """The CLI entry: exit 0 after Ctrl-C or SIGTERM, 2 for a bad --port-base."""
    base = DEFAULT_PORT_BASE if port_base is None else port_base
    try:
        wanted_ports(base)
    except ValueError as error:
        print(f"corsproxy demo: {error}", file=sys.stderr)
        return 2
    return asyncio.run(serve(base, open_browser))

"""Running the proxy: bind, print where it listens, serve until SIGTERM/SIGINT, drain, exit 0.

cli.py runs serve_forever() (one process) or serve/workers.py (several); tests and the demo
call start() for a proxy on a free port.
aiohttp's low-level Server is used without a router: the proxy has one handler for all paths;
listener.py accepts the connections. With listen.workers > 1, workers.py runs start() in each
of several processes.
"""

from __future__ import annotations

import asyncio
import os
import signal
import ssl
import threading
import webbrowser
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, TypeVar

from aiohttp import web
from aiohttp.http import RawRequestMessage

from corsproxy.config.describe import source_line
from corsproxy.config.model import TLS, Settings
from corsproxy.http import fastpath
from corsproxy.http.parser import ProxyServer
from corsproxy.inspector import web as inspector_web
from corsproxy.proxy.accesslog import AccessLog
from corsproxy.proxy.handler import Answer, Proxy
from corsproxy.serve.listener import Listener
from corsproxy.serve.reload import Outcome, Reloader, Watch

if TYPE_CHECKING:
    from corsproxy.inspector.peers import Peers

DRAIN_SECONDS = 5.0
# A connection that has not sent a complete request head this long after connecting (or
# after its previous response) is closed: idle keep-alives, and slowloris clients that
# trickle their headers, never pin a socket for long. Browsers simply reconnect.
HEADER_TIMEOUT = 30.0
T = TypeVar("T")


class Current:
    """The proxy that new requests go to; Running.switch() replaces it after a reload. A request
    already handed to a proxy keeps it: handle() runs to the end on the proxy it started on,
    streams and WebSockets included."""

    __slots__ = ("proxy",)

    def __init__(self, proxy: Proxy) -> None:
        self.proxy = proxy

    def handle(self, request: web.BaseRequest) -> Awaitable[Answer]:
        return self.proxy.handle(request)

    def answer(self, message: RawRequestMessage) -> bytes | None:
        return self.proxy.answer_at_once(message)


@dataclass
class Running:
    """A started proxy: its real port (when port 0 was asked for) and how to stop it."""

    current: Current
    runner: web.ServerRunner
    listener: Listener
    port: int
    url: str

    @property
    def proxy(self) -> Proxy:
        """The proxy new requests go to."""
        return self.current.proxy

    def apply(self, outcome: Outcome) -> None:
        """A reload's outcome: switch to its settings (when they differ), then the inspector's
        marker. A failure to build the new proxy raises before anything has switched."""
        if outcome.settings is not None and outcome.switch:
            self.switch(outcome.settings)
        event = outcome.event()
        if event is not None and self.proxy.inspector is not None:
            self.proxy.inspector.reloaded(event)

    def switch(self, settings: Settings) -> None:
        """Serve `settings` from the next request on. The new Proxy is built whole first, then
        takes over the old one's upstream pool, WebSocket client and inspector (its list and
        token live on); idle connections to upstreams no longer configured are closed."""
        old = self.current.proxy
        new = Proxy(settings, old.log, old.inspector)
        new.pool, new.websockets, new.raw_responses = old.pool, old.websockets, old.raw_responses
        self.current.proxy = new
        old.log.set_level(settings.log_level)
        new.pool.keep_only(upstream_keys(new))
        if new.inspector is not None:
            new.inspector.routes = tuple(route.prefix for route in settings.routes)

    async def stop(self) -> None:
        """Stop accepting, let in-flight requests finish (up to DRAIN_SECONDS), close the pool."""
        self.listener.close()
        if self.proxy.inspector is not None:
            self.proxy.inspector.close()  # open event streams end now, not at the drain's end
        try:
            # aiohttp waits shutdown_timeout for the handlers and then as long again for the
            # ones it cancelled: bound the whole drain, whatever a stuck handler does.
            async with asyncio.timeout(DRAIN_SECONDS + 0.5):
                await self.runner.cleanup()
        except TimeoutError:
            pass
        await self.proxy.close()
        if self.proxy.inspector is not None and self.proxy.inspector.peers is not None:
            await self.proxy.inspector.peers.close()
        self.proxy.log.flush()


def _tls_context(settings: Settings) -> ssl.SSLContext | None:
    """The server side of TLS: the user's files, or for `auto` the local authority's leaf (issued
    here when run() has not resolved it already, as for tests that call start() directly)."""
    tls = settings.listen.tls
    if tls is None:
        return None
    if tls == "auto":
        tls = resolve_tls(settings)[0].listen.tls
        assert isinstance(tls, TLS)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(tls.cert, tls.key)
    return context


def resolve_tls(settings: Settings) -> tuple[Settings, list[str]]:
    """`listen.tls: auto` becomes the leaf's file, issued (or reissued) now, and the lines that
    say who signed it and how to trust it. Raises AuthorityError. Other settings pass as they are.
    """
    if settings.listen.tls != "auto":
        return settings, []
    from corsproxy.tls.leaf import leaf_for, start_notes  # loads cryptography: only for https

    listen = settings.listen
    leaf = leaf_for(listen.host, listen.allowed_hosts, os.environ)
    files = TLS(str(leaf.path), str(leaf.path))
    return replace(settings, listen=replace(listen, tls=files)), start_notes(leaf)


async def start(
    settings: Settings,
    log: AccessLog | None = None,
    port: int | None = None,
    header_timeout: float = HEADER_TIMEOUT,
    reuse_port: bool = False,
    ids: Callable[[], int] | None = None,
    peers: Peers | None = None,
) -> Running:
    """Start serving on settings.listen (or on `port`, 0 for a free one).

    reuse_port: other processes serve the same port too (SO_REUSEPORT), as listen.workers does;
    ids and peers then give the inspector one numbering and one list across them (workers.py).
    """
    proxy = Proxy(settings, log)
    await proxy.start()
    fast = fastpath.enabled(os.environ)
    proxy.raw_responses = fast
    current = Current(proxy)
    server = ProxyServer(
        current.handle,
        answer=current.answer if fast else None,
        handler_cancellation=True,
        access_log=None,
        keepalive_timeout=header_timeout,
    )
    runner = web.ServerRunner(server, shutdown_timeout=DRAIN_SECONDS, handle_signals=False)
    await runner.setup()
    host = settings.listen.host
    bind_port = settings.listen.port if port is None else port
    context = _tls_context(settings)
    try:
        listener = Listener(server, host, bind_port, context, reuse_port=reuse_port)
    except BaseException:
        await runner.cleanup()
        await proxy.close()
        raise
    real_port = listener.port
    proxy.inspector = inspector_web.build(settings, real_port, ids, peers)
    if peers is not None and proxy.inspector is not None:
        await peers.start(proxy.inspector.store, proxy.inspector.replay_here)
    return Running(current, runner, listener, real_port, listen_url(settings, real_port))


def upstream_keys(proxy: Proxy) -> set[tuple[str, str, int, bool]]:
    """The upstream pool's keys (scheme, host, port, verify) of the proxy's routes."""
    keys = set()
    for target in proxy.routes.routes:
        prepared = proxy.prepared[id(target.route)]
        keys.add((prepared.scheme, target.host, target.port, prepared.ssl))
    return keys


def listen_url(settings: Settings, port: int) -> str:
    """Where a browser reaches the proxy; on all interfaces (as in Docker), one it can open."""
    host = settings.listen.host
    shown = "localhost" if host in ("0.0.0.0", "::", "") else f"[{host}]" if ":" in host else host
    return f"{'https' if settings.listen.tls else 'http'}://{shown}:{port}"


def uvloop_running() -> bool:
    """The `fast` extra is installed and this event loop is uvloop's."""
    return type(asyncio.get_running_loop()).__module__.split(".")[0] == "uvloop"


def banner(running: Running) -> str:
    """`corsproxy: http://127.0.0.1:8080 -> http://localhost:8000 (origins: localhost)`."""
    return start_line(running.proxy.settings, running.url, uvloop_running())


def announce_inspector(log: AccessLog, url: str | None, open_it: bool) -> None:
    """The inspector line after the banner; with --open, the browser opens it (in a thread of
    its own: webbrowser may wait for the browser it starts)."""
    if url is not None:
        log.message(f"inspector: {url}")
    if open_it and url is None:
        log.message("corsproxy: warning: --open: the inspector is off; nothing to open")
    elif open_it:
        threading.Thread(target=webbrowser.open, args=(url,), daemon=True).start()


def start_line(settings: Settings, url: str, uvloop: bool, workers: int = 1) -> str:
    """The start-up line; the parenthesis ends in `; uvloop` when it is in use (the `fast`
    extra) and in `; N workers` when several processes serve the port."""
    routes = settings.routes
    if len(routes) == 1 and routes[0].prefix == "/":
        where = routes[0].upstream
    else:
        where = ", ".join(f"{r.prefix} {r.upstream}" for r in routes)
    extras = [", ".join(settings.cors.allow_origins)]
    if uvloop:
        extras.append("uvloop")
    if workers > 1:
        extras.append(f"{workers} workers")
    return f"corsproxy: {url} -> {where} (origins: {'; '.join(extras)})"


def raise_open_files_limit() -> str | None:
    """Lift the soft open-files limit to the hard one; a warning when it stays low.

    Each proxied connection holds two descriptors (browser side and upstream side).
    """
    try:
        import resource
    except ImportError:  # not on this platform
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    if soft < wanted:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
            soft = wanted
        except (ValueError, OSError):
            pass
    if soft < 4096:
        return (
            f"the open-files limit is {soft}, enough for about {soft // 2 - 20} connections at "
            "once; raise it (ulimit -n 65536) for load tests"
        )
    return None


async def serve_forever(
    settings: Settings,
    open_inspector: bool = False,
    reloader: Reloader | None = None,
    notes: Sequence[str] = (),
) -> None:
    """Serve until SIGTERM or SIGINT, then drain and return; reload on a save or SIGHUP.
    `notes` (who signed the https certificate) follow the start-up line."""
    log = AccessLog(settings.log_level)
    low_limit = raise_open_files_limit()
    # Signal handlers first: once the start-up line is out, SIGTERM must mean "drain".
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    running = await start(settings, log)
    watch = Watch(reloader, running.apply, log.message) if reloader else None
    if watch is not None:
        loop.add_signal_handler(signal.SIGHUP, watch.asked)
    log.message(banner(running))  # first: scripts and tests read it as "ready"
    for note in notes:  # who signed the https certificate, and how to trust it
        log.message(note)
    url = running.proxy.inspector.url if running.proxy.inspector else None
    announce_inspector(log, url, open_inspector)  # the inspector's URL, token included
    log.message(source_line(settings))
    if low_limit:
        log.message(f"corsproxy: warning: {low_limit}")
    for warning in settings.warnings:
        log.message(f"corsproxy: warning: {warning}")
    if watch is not None:
        watch.start()
    try:
        await stop.wait()
        log.message("corsproxy: stopping (draining in-flight requests)")
    finally:
        if watch is not None:
            watch.close()
        await running.stop()


def run_loop(main: Coroutine[object, object, T]) -> T:
    """Run `main` in a new event loop: uvloop's when installed, else asyncio's."""
    try:
        import uvloop
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)

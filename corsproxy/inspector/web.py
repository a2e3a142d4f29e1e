"""The inspector's URLs under /__corsproxy/: the page, the JSON API, the event stream, HAR.

Proxy._dispatch() hands every /__corsproxy/ request but health to Inspector.handle(), after
the Host guard and before any route or CORS rule: no inspector answer ever carries an
Access-Control-* header or grants a preflight. access.decide() rules on each request first.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import datetime
from importlib import resources
from typing import TYPE_CHECKING, Any

from aiohttp import web

from corsproxy.config.model import Settings
from corsproxy.inspector import access, har, replay
from corsproxy.inspector.capture import Recorder
from corsproxy.inspector.store import Event, Pairing, Record, Store, link

if TYPE_CHECKING:
    from corsproxy.inspector.peers import Peers
    from corsproxy.proxy.accesslog import Entry

STATIC = {
    "": ("index.html", "text/html"),
    "inspector.css": ("inspector.css", "text/css"),
    "inspector.js": ("inspector.js", "text/javascript"),
}
RELOADS_KEPT = 50  # config reloads kept for the list's markers
HEARTBEAT_SECONDS = 15.0  # an SSE comment line, so a vanished page is noticed
QUEUE_LIMIT = 10_000  # events waiting for a slow page; past it the stream ends and it resumes
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Cross-Origin-Opener-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
        "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
    ),
}
# access.HANDOFF: the cookie is set; this page then opens the inspector as its own origin.
HANDOFF_PAGE = (
    b'<!doctype html><meta charset="utf-8"><meta name="referrer" content="no-referrer">'
    b'<meta http-equiv="refresh" content="0; url=/__corsproxy/">'
    b'<title>corsproxy inspector</title><p>Opening the <a href="/__corsproxy/">inspector</a>...'
)
Handler = Callable[[web.BaseRequest, "Entry"], Awaitable[web.StreamResponse]]


def _static(name: str) -> bytes:
    return resources.files("corsproxy.inspector").joinpath("static", name).read_bytes()


def masked(raw_path: str) -> str:
    """The path as the access log may show it: a token in the query is never written out."""
    path, sep, query = raw_path.partition("?")
    if not sep or "token=" not in query:
        return raw_path
    parts = [("token=…" if p.startswith("token=") else p) for p in query.split("&")]
    return f"{path}?{'&'.join(parts)}"


class Inspector(Recorder):
    """The inspector of one proxy process: the recorder the Proxy feeds, and its web handler."""

    def __init__(
        self,
        store: Store,
        *,
        token: str,
        body_preview: int,
        address: replay.Address,
        routes: tuple[str, ...] = (),
        peers: Peers | None = None,
    ) -> None:
        super().__init__(store, body_preview, token)
        self.token = token
        self.address = address
        self.cookie = access.cookie_name(address.port)
        self.scheme = "https" if address.tls else "http"
        self.routes = routes
        self.peers = peers
        self.reloads: deque[dict[str, Any]] = deque(maxlen=RELOADS_KEPT)
        self._files: dict[str, bytes] = {}
        self._handlers: dict[tuple[str, str], Handler] = {
            ("GET", "api/exchanges"): self._exchanges,
            ("GET", "api/events"): self._events,
            ("GET", "api/har"): self._har,
            ("POST", "api/replay"): self._replay,
            ("POST", "api/clear"): self._clear,
        }

    @property
    def url(self) -> str:
        """The URL printed at start-up, token included."""
        return page_url(self.address, self.token)

    def reloaded(self, event: dict[str, Any]) -> None:
        """`event: reload` to every open page, and kept for pages opened later (serve/server.py
        calls it for each reload, applied or refused: {time, ok, message, details})."""
        self.reloads.append(event)
        self.store.publish(("reload", event))

    def close(self) -> None:
        """End the open event streams, so that a drain does not wait for them."""
        self.store.publish(("close", None))

    async def handle(self, request: web.BaseRequest, entry: Entry) -> web.StreamResponse:
        entry.path = masked(request.raw_path)
        entry.decision = "inspector"
        headers = request.headers
        decided = access.decide(
            access.Asked(
                request.raw_path,
                request.method,
                headers.get("Sec-Fetch-Site"),
                headers.get("Sec-Fetch-Mode"),
                headers.get("Sec-Fetch-Dest"),
                headers.get("Origin"),
                f"{self.scheme}://{headers.get('Host', '')}",
                headers.get("Authorization"),
                headers.get("Cookie"),
            ),
            self.token,
            self.cookie,
        )
        if decided.login:
            entry.status = decided.status
            cookie = access.login_cookie(self.cookie, self.token, self.scheme == "https")
            if decided is access.HANDOFF:
                return self._answer(200, HANDOFF_PAGE, "text/html", **{"Set-Cookie": cookie})
            extra = {"Location": access.PAGE, "Set-Cookie": cookie}
            return self._answer(303, b"", "text/plain", **extra)
        if not decided.granted:
            entry.status = 403
            entry.decision = "inspector: " + decided.reason.split(".", 1)[0]
            text = f"corsproxy inspector: {decided.reason}\n".encode()
            return self._answer(403, text, "text/plain")
        name = request.raw_path.partition("?")[0][len(access.PAGE) :]
        if name in STATIC:
            if request.method not in ("GET", "HEAD"):
                return self._status(entry, 405, "use GET")
            return self._file(entry, name)
        method = "GET" if request.method == "HEAD" else request.method
        handler = self._handlers.get((method, name))
        if handler is None:
            known = any(path == name for _, path in self._handlers)
            return self._status(entry, 405 if known else 404, "no such inspector URL")
        return await handler(request, entry)

    # ---- answers ---------------------------------------------------------------------------

    def _answer(self, status: int, body: bytes, kind: str, **extra: str) -> web.Response:
        headers = {**SECURITY_HEADERS, **extra}
        if body or status != 303:
            headers["Content-Type"] = f"{kind}; charset=utf-8"
        return web.Response(status=status, body=body, headers=headers)

    def _status(self, entry: Entry, status: int, text: str) -> web.Response:
        entry.status = status
        return self._answer(status, f"corsproxy inspector: {text}\n".encode(), "text/plain")

    def _json(self, entry: Entry, body: Any, status: int = 200, **extra: str) -> web.Response:
        entry.status = status
        data = json.dumps(body, ensure_ascii=False).encode()
        return self._answer(status, data, "application/json", **extra)

    def _file(self, entry: Entry, name: str) -> web.Response:
        file, kind = STATIC[name]
        if file not in self._files:
            self._files[file] = _static(file)
        entry.status = 200
        return self._answer(200, self._files[file], kind)

    # ---- the API ---------------------------------------------------------------------------

    async def records(self, after: int = 0) -> list[Record]:
        """This process's kept exchanges and, with workers, every other worker's, by id."""
        mine = self.store.since(after)
        if self.peers is None:
            return mine
        theirs = await self.peers.exchanges(after)
        return sorted(mine + theirs, key=lambda record: record["id"])

    async def _exchanges(self, request: web.BaseRequest, entry: Entry) -> web.Response:
        after = _since(request.query.get("since"))
        records = link(await self.records())
        body = {
            "exchanges": [r for r in records if r["id"] > after],
            "keep": self.store.keep,
            "routes": list(self.routes),
            "reloads": list(self.reloads),
        }
        return self._json(entry, body)

    async def _har(self, request: web.BaseRequest, entry: Entry) -> web.Response:
        name = har.filename(datetime.now())
        disposition = f'attachment; filename="{name}"'
        document = har.document(link(await self.records()))
        return self._json(entry, document, 200, **{"Content-Disposition": disposition})

    async def _clear(self, request: web.BaseRequest, entry: Entry) -> web.Response:
        self.store.clear()
        if self.peers is not None:
            await self.peers.clear()
        return self._json(entry, {"cleared": True})

    async def _replay(self, request: web.BaseRequest, entry: Entry) -> web.Response:
        try:
            asked = await request.json()
            exchange_id = int(asked["id"])
        except (ValueError, KeyError, TypeError):
            return self._json(entry, {"error": 'expected a JSON body {"id": N}'}, 400)
        try:
            status = await self.replay(exchange_id)
        except replay.NotReplayable as why:
            return self._json(entry, {"error": f"exchange {exchange_id}: {why}"}, 409)
        except (OSError, TimeoutError) as error:
            return self._json(entry, {"error": f"the replay failed: {error}"}, 502)
        if status is None:
            return self._json(entry, {"error": f"exchange {exchange_id} is no longer kept"}, 404)
        return self._json(entry, {"replayed": exchange_id, "status": status})

    async def replay(self, exchange_id: int) -> int | None:
        """Send a kept exchange again; its status, or None when no worker keeps it."""
        status = await self.replay_here(exchange_id)
        if status is None and self.peers is not None:
            return await self.peers.replay(exchange_id)
        return status

    async def replay_here(self, exchange_id: int) -> int | None:
        """replay() of an exchange this process keeps; None when it keeps no such one."""
        kept = self.store.find(exchange_id)
        if kept is None:
            return None
        data = replay.request_bytes(kept, self.replay_marker(exchange_id))
        return await replay.send(self.address, data)

    async def _events(self, request: web.BaseRequest, entry: Entry) -> web.StreamResponse:
        """Server-Sent Events: `event: exchange` per finished exchange, from now on, or from
        `?since=ID` (or the Last-Event-ID a reconnecting EventSource sends) on."""
        given = request.query.get("since") or request.headers.get("Last-Event-ID")
        after = _since(given) if given else None
        queue: asyncio.Queue[Event] = asyncio.Queue()
        overflow = asyncio.Event()

        def push(event: Event) -> None:
            if queue.qsize() >= QUEUE_LIMIT:
                overflow.set()
            else:
                queue.put_nowait(event)

        stops = [self.store.subscribe(push)]
        try:
            if self.peers is not None:  # before the head: the client may send requests then
                stops.append(await self.peers.follow(push))
            response = web.StreamResponse(headers={**SECURITY_HEADERS})
            response.content_type = "text/event-stream"
            entry.status = 200
            await response.prepare(request)
            backlog = link(await self.records())  # known before: for pairing and ?since=
            pairing = Pairing()
            link(backlog, pairing)
            seen = {record["id"] for record in backlog}
            older = [r for r in backlog if after is not None and r["id"] > after]
            await response.write(b"retry: 1000\n\n" + _sse([("exchange", r) for r in older]))
            await self._stream(response, queue, overflow, pairing, seen)
        finally:
            for stop in stops:
                stop()
        return response

    async def _stream(
        self,
        response: web.StreamResponse,
        queue: asyncio.Queue[Event],
        overflow: asyncio.Event,
        pairing: Pairing,
        seen: set[int],
    ) -> None:
        while not overflow.is_set():
            try:
                async with asyncio.timeout(HEARTBEAT_SECONDS):
                    events = [await queue.get()]
            except TimeoutError:
                await response.write(b": still here\n\n")
                continue
            while not queue.empty():
                events.append(queue.get_nowait())
            out: list[Event] = []
            for kind, data in events:
                if kind == "close":
                    await response.write(_sse(out))
                    return
                if kind == "exchange":
                    if data["id"] in seen:
                        continue
                    data = {**data}
                    pairing.feed(data)
                out.append((kind, data))
            await response.write(_sse(out))


def _sse(events: list[Event]) -> bytes:
    lines = []
    for kind, data in events:
        head = f"id: {data['id']}\n" if kind == "exchange" else ""
        lines.append(f"{head}event: {kind}\ndata: {json.dumps(data or {}, ensure_ascii=False)}\n\n")
    return "".join(lines).encode()


def _since(value: str | None) -> int:
    with contextlib.suppress(ValueError, TypeError):
        return max(int(value or 0), 0)
    return 0


def build(
    settings: Settings,
    port: int,
    ids: Callable[[], int] | None = None,
    peers: Peers | None = None,
) -> Inspector | None:
    """The inspector for a proxy listening on `port`, or None when inspector.enabled is false."""
    options = settings.inspector
    if not options.enabled:
        return None
    tls = settings.listen.tls is not None
    store = Store(options.keep, "https" if tls else "http", ids)
    inspector = Inspector(
        store,
        token=options.token or access.new_token(),
        body_preview=options.body_preview,
        address=replay.Address.of(settings.listen.host, port, tls),
        routes=tuple(route.prefix for route in settings.routes),
        peers=peers,
    )
    if peers is not None:
        inspector.worker = os.getpid()  # which worker served each exchange
    return inspector


def page_url(address: replay.Address, token: str) -> str:
    """`http://localhost:8080/__corsproxy/?token=...`: loopback shown as localhost."""
    host = "localhost" if address.host in ("127.0.0.1", "::1") else address.host
    host = f"[{host}]" if ":" in host else host
    scheme = "https" if address.tls else "http"
    return f"{scheme}://{host}:{address.port}{access.PAGE}?token={token}"


def printed_url(settings: Settings, port: int) -> str | None:
    """The inspector's URL for settings whose token is fixed (with_token), or None when off."""
    options = settings.inspector
    if not options.enabled or not options.token:
        return None
    address = replay.Address.of(settings.listen.host, port, settings.listen.tls is not None)
    return page_url(address, options.token)


def with_token(settings: Settings) -> Settings:
    """Settings whose inspector token is fixed: made once here, before any worker is forked,
    so that every worker accepts the one printed."""
    if not settings.inspector.enabled or settings.inspector.token:
        return settings
    return replace(settings, inspector=replace(settings.inspector, token=access.new_token()))

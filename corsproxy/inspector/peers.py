"""With listen.workers > 1: one inspector list made of every worker's exchanges.

Each worker keeps its own ring (store.py) and serves it to the others on a Unix socket in a
folder the parent made for them (mode 0700: this user only). The worker that answers a page
asks the others for theirs and merges by id; its event stream follows theirs too. Nothing is
sent anywhere while no page is open. Ids stay unique and in time order across workers without
any lock: microseconds since the parent started, the worker's slot in the low bits (ids()).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import web

from corsproxy.inspector.replay import NotReplayable
from corsproxy.inspector.store import Event, Record, Store

SLOT_BITS = 6  # up to 64 workers (config.checks.MAX_WORKERS)
ASK_SECONDS = 3.0  # a worker that does not answer this fast is left out of the list
RESCAN_SECONDS = 2.0  # how often an open event stream looks for replaced workers


def ids(slot: int, base: float) -> Callable[[], int]:
    """Unique across workers, increasing in each, in time order across them to the microsecond;
    below 2**53 (JavaScript's exact integers) for four years after `base`."""
    last = 0

    def next_id() -> int:
        nonlocal last
        tick = (int((time.time() - base) * 1_000_000) << SLOT_BITS) | slot
        last = max(tick, last + (1 << SLOT_BITS))
        return last

    return next_id


class Peers:
    """This worker's socket in `folder`, and the way to every other worker's."""

    def __init__(self, folder: str, slot: int) -> None:
        self.folder = Path(folder)
        self.path = self.folder / f"worker-{slot}.sock"
        self._runner: web.AppRunner | None = None

    async def start(self, store: Store, replay: Callable[[int], Awaitable[int | None]]) -> None:
        """Serve this worker's ring to the others."""
        app = web.Application()
        app.router.add_get("/exchanges", _exchanges(store))
        app.router.add_get("/events", _events(store))
        app.router.add_post("/clear", _clear(store))
        app.router.add_post("/replay", _replay(replay))
        self._runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await self._runner.setup()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()  # left by the worker this one replaces
        await web.UnixSite(self._runner, str(self.path)).start()

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
        with contextlib.suppress(FileNotFoundError):
            self.path.unlink()

    def others(self) -> list[Path]:
        return sorted(p for p in self.folder.glob("worker-*.sock") if p != self.path)

    async def _ask(self, path: Path, method: str, url: str, **options: Any) -> Any:
        connector = aiohttp.UnixConnector(path=str(path))
        timeout = aiohttp.ClientTimeout(total=ASK_SECONDS)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            async with session.request(method, "http://worker" + url, **options) as response:
                if response.status == 404:
                    return None
                response.raise_for_status()
                return await response.json()

    async def _all(self, method: str, url: str, **options: Any) -> list[Any]:
        asked = [self._ask(path, method, url, **options) for path in self.others()]
        answers = await asyncio.gather(*asked, return_exceptions=True)
        return [a for a in answers if a is not None and not isinstance(a, BaseException)]

    async def exchanges(self, after: int) -> list[Record]:
        return [r for answer in await self._all("GET", f"/exchanges?since={after}") for r in answer]

    async def clear(self) -> None:
        await self._all("POST", "/clear")

    async def replay(self, exchange_id: int) -> int | None:
        """Ask the worker that keeps the exchange to send it again: its status, or None."""
        for answer in await self._all("POST", f"/replay?id={exchange_id}"):
            if "not_replayable" in answer:
                raise NotReplayable(answer["not_replayable"])
            return int(answer["status"])
        return None

    async def follow(self, push: Callable[[Event], None]) -> Callable[[], None]:
        """push() every other worker's exchanges as they finish; returns, once each worker
        there is now streams to us (or ASK_SECONDS passed), the function that stops following:
        an exchange a worker finishes after that is never missed. Workers that start later (a
        replaced one) are followed too."""
        first: list[asyncio.Event] = []
        task = asyncio.ensure_future(self._follow(push, first))
        await asyncio.sleep(0)  # _follow has started its first round of streams
        waits = [asyncio.ensure_future(connected.wait()) for connected in first]
        if waits:
            await asyncio.wait(waits, timeout=ASK_SECONDS)
            for wait in waits:
                wait.cancel()

        def stop() -> None:
            task.cancel()

        return stop

    async def _follow(self, push: Callable[[Event], None], first: list[asyncio.Event]) -> None:
        streams: dict[Path, asyncio.Task[None]] = {}
        try:
            while True:
                for path in self.others():
                    if path not in streams or streams[path].done():
                        connected = asyncio.Event()
                        first.append(connected)  # read by follow() after the first round only
                        streams[path] = asyncio.ensure_future(_stream(path, push, connected))
                await asyncio.sleep(RESCAN_SECONDS)
        finally:
            for stream in streams.values():
                stream.cancel()


async def _stream(path: Path, push: Callable[[Event], None], connected: asyncio.Event) -> None:
    """One other worker's events, one JSON line each, until it goes away; `connected` is set
    once it answered (it subscribed us before its answer's head)."""
    connector = aiohttp.UnixConnector(path=str(path))
    timeout = aiohttp.ClientTimeout(total=None, sock_connect=ASK_SECONDS)
    with contextlib.suppress(aiohttp.ClientError, OSError, ValueError):
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            async with session.get("http://worker/events") as response:
                connected.set()
                async for line in response.content:
                    if line.strip():
                        kind, data = json.loads(line)
                        push((kind, data))


# ---- what a worker answers the others ----------------------------------------------------------


def _exchanges(store: Store) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        after = int(request.query.get("since", "0") or 0)
        return web.json_response(store.since(after))

    return handler


def _events(store: Store) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def handler(request: web.Request) -> web.StreamResponse:
        queue: asyncio.Queue[Event] = asyncio.Queue(maxsize=10_000)

        def push(event: Event) -> None:
            if event[0] in ("exchange", "clear", "close") and not queue.full():
                queue.put_nowait(event)

        stop = store.subscribe(push)
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        try:
            await response.prepare(request)
            while True:
                events = [await queue.get()]
                while not queue.empty():
                    events.append(queue.get_nowait())
                if any(kind == "close" for kind, _ in events):
                    break
                await response.write(b"".join(json.dumps(e).encode() + b"\n" for e in events))
        finally:
            stop()
        return response

    return handler


def _clear(store: Store) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        store.clear()
        return web.json_response({"cleared": True})

    return handler


def _replay(
    replay: Callable[[int], Awaitable[int | None]],
) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def handler(request: web.Request) -> web.Response:
        try:
            status = await replay(int(request.query["id"]))
        except NotReplayable as why:
            return web.json_response({"not_replayable": str(why)})
        if status is None:
            return web.json_response({"error": "not kept here"}, status=404)
        return web.json_response({"status": status})

    return handler


def make_folder() -> str:
    """The parent's folder for the workers' sockets: this user only."""
    folder = tempfile.mkdtemp(prefix="corsproxy-inspector-")
    os.chmod(folder, 0o700)
    return folder

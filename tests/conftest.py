"""Shared fixtures: a real proxy on a free port in front of real upstream servers."""

from __future__ import annotations

import asyncio
import io
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import replace

import aiohttp
import pytest

from corsproxy.config.model import Cors, Inspector, Listen, Route, Settings
from corsproxy.proxy.accesslog import AccessLog

ORIGIN = "http://localhost:5173"


class ProxyUnderTest:
    """A started proxy, its base URL and the access log it wrote."""

    def __init__(self, running, log: io.StringIO) -> None:
        self.running = running
        self._log = log
        self.url = f"http://127.0.0.1:{running.port}"
        self.port = running.port

    @property
    def log(self) -> str:
        """Everything the access log wrote so far (its queued lines flushed first)."""
        self.running.proxy.log.flush()
        return self._log.getvalue()


StartProxy = Callable[..., Awaitable[ProxyUnderTest]]


@pytest.fixture
async def start_proxy() -> AsyncIterator[StartProxy]:
    """start_proxy(upstream_url | routes=[Route...], cors=Cors(...), listen=Listen(...),
    log_level="debug", inspector=Inspector(...))."""
    from corsproxy.serve import server

    started = []

    async def go(
        upstream: str | None = None,
        *,
        routes: tuple[Route, ...] | None = None,
        cors: Cors | None = None,
        listen: Listen | None = None,
        log_level: str = "info",
        inspector: Inspector | None = None,
        **route_options,
    ) -> ProxyUnderTest:
        if routes is None:
            assert upstream is not None
            routes = (Route("/", upstream, **route_options),)
        settings = Settings(
            listen=listen or Listen(),
            routes=routes,
            cors=cors or Cors(),
            inspector=inspector or Inspector(),
        )
        stream = io.StringIO()
        running = await server.start(settings, AccessLog(log_level, stream), port=0)
        started.append(running)
        return ProxyUnderTest(running, stream)

    yield go
    for running in started:
        await running.stop()


@pytest.fixture
async def client() -> AsyncIterator[aiohttp.ClientSession]:
    """A client that behaves like a plain HTTP client: no cookies, nothing decompressed."""
    async with aiohttp.ClientSession(
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,
        skip_auto_headers=("User-Agent", "Accept-Encoding"),
    ) as session:
        yield session


def cors_headers(headers) -> dict[str, object]:
    """The whole set of Access-Control-* and Vary headers, list values split into sets.

    Comparing this dict as a whole makes an unexpected extra header (or a duplicate) fail.
    """
    out: dict[str, object] = {}
    for name in {k.lower() for k in headers.keys()}:
        if not (name.startswith("access-control-") or name == "vary"):
            continue
        values = headers.getall(name)
        if name in (
            "access-control-allow-origin",
            "access-control-allow-credentials",
            "access-control-max-age",
            "access-control-allow-private-network",
        ):
            out[name] = values[0] if len(values) == 1 else values
        else:
            parts = [p.strip() for v in values for p in v.split(",") if p.strip()]
            assert len(parts) == len({p.lower() for p in parts}), f"duplicate in {name}: {parts}"
            out[name] = {p.lower() for p in parts}
    return out


def free_port() -> int:
    """A port nothing listens on (for a dead upstream)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


async def raw_request(port: int, data: bytes) -> bytes:
    """Send raw bytes (ending in a request with `Connection: close`) and read to EOF."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()


__all__ = ["ORIGIN", "cors_headers", "free_port", "raw_request", "replace"]

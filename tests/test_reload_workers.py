"""Reloading with --workers 2, and the inspector's `event: reload`: real processes, real files."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket

import aiohttp
import pytest
from aiohttp import web

from tests.conftest import free_port
from tests.proc import ProxyProcess
from tests.test_reload import FAST_POLL, A, B, config, save
from tests.test_workers import pids_answering, read_until


@pytest.fixture
async def upstream(aiohttp_server) -> str:
    async def echo(request: web.Request) -> web.Response:
        return web.Response(text=request.path)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    return f"http://127.0.0.1:{(await aiohttp_server(app)).port}"


async def said(proxy: ProxyProcess, needle: str) -> list[str]:
    """The proxy's own lines up to `needle`, the access log's left out."""
    return [line for line in await read_until(proxy, needle) if not line[:1].isdigit()]


async def routes_of(port: int, pids: set[int]) -> dict[int, list[str]]:
    """Each worker's routes, as its health check says, until all of `pids` have answered."""
    seen: dict[int, list[str]] = {}
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as client:
        for _ in range(200):
            async with client.get(f"http://127.0.0.1:{port}/__corsproxy/health") as resp:
                body = await resp.json()
                seen[body["pid"]] = body["routes"]
            if pids <= set(seen):
                break
    return seen


@pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="needs SO_REUSEPORT")
async def test_with_two_workers_the_parent_prints_once_and_every_worker_switches(
    tmp_path, upstream
):
    path = tmp_path / "corsproxy.yaml"
    path.write_text(config(upstream))
    port = free_port()
    args = ["serve", "-c", str(path), "--port", str(port), "--workers", "2", "--no-inspector"]
    proxy = ProxyProcess(args, env=FAST_POLL)
    try:
        await read_until(proxy, "config: ")
        pids = await pids_answering(port, 2)
        save(
            path,
            config(
                upstream, f"{A}, {B}", f"routes:\n  - {{prefix: /auth, upstream: {upstream}}}\n"
            ),
        )
        lines = await said(proxy, "reloaded")
        assert lines == [
            f"corsproxy: reloaded {path}: route /auth added; "
            f"cors.allow_origins: [{A}] -> [{A}, {B}]"
        ]
        assert await routes_of(port, pids) == {pid: ["/auth", "/"] for pid in pids}
        save(path, "routes: [")
        lines = await said(proxy, "not valid YAML")
        assert lines[0] == (
            f"corsproxy: {path} not reloaded (1 problem); still serving the previous config"
        )
        assert len(lines) == 2  # printed once, by the parent
        victim = min(pids)
        os.kill(victim, signal.SIGKILL)
        lines = await said(proxy, "listening in place of")
        replacement = int(lines[-1].split()[2])
        seen = await routes_of(port, {replacement})
        assert seen[replacement] == ["/auth", "/"]  # it started with the reloaded config
        proxy.process.send_signal(signal.SIGHUP)
        lines = await said(proxy, "reloaded")
        assert lines[-1].startswith(f"corsproxy: {path} not reloaded (1 problem)")
    finally:
        code, rest = proxy.stop()
    assert code == 0
    assert "reloaded" not in rest


async def test_the_inspector_marks_each_reload_on_its_stream_and_in_its_list(tmp_path, upstream):
    path = tmp_path / "corsproxy.yaml"
    path.write_text(config(upstream))
    port = free_port()
    proxy = ProxyProcess(["serve", "-c", str(path), "--port", str(port)], env=FAST_POLL)
    token = proxy.inspector_line().rsplit("token=", 1)[1]
    auth = {"Authorization": f"Bearer {token}"}
    base = f"http://127.0.0.1:{port}/__corsproxy/api"
    try:
        await read_until(proxy, "config: ")
        async with aiohttp.ClientSession(headers=auth) as client:
            async with client.get(f"{base}/events") as stream:
                assert stream.status == 200
                await stream.content.readline()  # `retry:`: the stream is open and subscribed
                save(path, config(upstream, B))
                event = await asyncio.wait_for(_next_event(stream, "reload"), 10)
            assert event["ok"] is True
            assert event["message"] == (f"reloaded {path}: cors.allow_origins: [{A}] -> [{B}]")
            assert event["details"][0].startswith("the CORS rules are narrower now")
            async with client.get(f"{base}/exchanges") as resp:
                assert [r["message"] for r in (await resp.json())["reloads"]] == [event["message"]]
            async with client.get(f"{base}/events?since=0") as stream:
                await stream.content.readline()
                save(path, "cors: [")
                event = await asyncio.wait_for(_next_event(stream, "reload"), 10)
            assert event["ok"] is False
            assert event["message"] == (
                f"{path} not reloaded (1 problem); still serving the previous config"
            )
        # The token survived both: the same Inspector serves on.
        async with aiohttp.ClientSession(headers=auth) as client:
            async with client.get(f"{base}/exchanges") as resp:
                assert resp.status == 200
        async with aiohttp.ClientSession() as client:
            async with client.get(f"{base}/exchanges") as resp:
                assert resp.status == 403
    finally:
        proxy.stop()


async def _next_event(stream: aiohttp.ClientResponse, kind: str) -> dict:
    current = None
    async for raw in stream.content:
        line = raw.decode().rstrip("\n")
        if line.startswith("event: "):
            current = line[7:]
        elif line.startswith("data: ") and current == kind:
            return json.loads(line[6:])
    raise AssertionError("the stream ended")

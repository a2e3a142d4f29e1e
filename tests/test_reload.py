"""Reloading the config while it runs: the real `corsproxy serve` process, a real file edited
under it, and the next request. Every wait is on a line the proxy prints, never on a clock."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from tests.conftest import free_port
from tests.proc import ProxyProcess

A, B = "http://a.test", "http://b.test"
FAST_POLL = {"CORSPROXY_RELOAD_POLL": "0.02"}


@pytest.fixture
async def backends(aiohttp_server) -> dict[str, object]:
    """Two upstreams that say who they are; /slow waits until the test releases it."""
    arrived, release = asyncio.Event(), asyncio.Event()
    waiting: list[int] = []

    def app(name: str) -> web.Application:
        async def answer(request: web.Request) -> web.StreamResponse:
            if request.path.endswith("/slow"):
                waiting.append(1)
                arrived.set()
                await release.wait()
            return web.Response(text=f"{name} {request.path}")

        application = web.Application()
        application.router.add_route("*", "/{tail:.*}", answer)
        return application

    one, two = await aiohttp_server(app("one")), await aiohttp_server(app("two"))
    return {
        "one": f"http://127.0.0.1:{one.port}",
        "two": f"http://127.0.0.1:{two.port}",
        "arrived": arrived,
        "release": release,
        "waiting": waiting,
    }


def save(path: Path, text: str) -> None:
    """As most editors save: a new file renamed over the old one."""
    temporary = path.with_suffix(".tmp")
    temporary.write_text(text)
    os.replace(temporary, path)


def config(upstream: str, origins: str = A, extra: str = "") -> str:
    return f"upstream: {upstream}\ncors:\n  allow_origins: [{origins}]\n{extra}"


class Serving:
    """`corsproxy serve -c FILE` on a free port, and the lines it prints after the start-up."""

    def __init__(
        self, path: Path | None, *flags: str, port: bool = True, env: dict | None = None
    ) -> None:
        self.port = free_port()
        args = ["serve", *(["-c", str(path)] if path else []), "--no-inspector", *flags]
        if port:
            args += ["--port", str(self.port)]
        self.proxy = ProxyProcess(args, env={**FAST_POLL, **(env or {})})
        self.url = f"http://127.0.0.1:{self.port}"

    async def until(self, needle: str) -> list[str]:
        """The lines up to and including the first that contains `needle`."""

        def read() -> list[str]:
            lines = []
            for line in self.proxy.process.stdout:
                lines.append(line.rstrip("\n"))
                if needle in line:
                    return lines
            raise AssertionError(f"{needle!r} never came; got {lines}")

        return await asyncio.wait_for(asyncio.to_thread(read), 10)

    async def get(self, path: str, origin: str | None = None) -> tuple[int, str, str | None]:
        headers = {"Origin": origin} if origin else {}
        async with aiohttp.ClientSession() as client:
            async with client.get(self.url + path, headers=headers) as response:
                allowed = response.headers.get("Access-Control-Allow-Origin")
                return response.status, await response.text(), allowed

    def stop(self) -> str:
        return self.proxy.stop()[1]


def reloads(lines: list[str]) -> list[str]:
    """The proxy's own lines among the access log's."""
    return [line for line in lines if line.startswith(("corsproxy", "/", "c"))]


async def test_a_saved_origin_route_and_cookie_setting_apply_to_the_next_request(
    tmp_path, backends
):
    path = tmp_path / "corsproxy.yaml"
    path.write_text(config(backends["one"]))
    serving = Serving(path)
    try:
        await serving.until("config: ")
        assert (await serving.get("/x", B))[2] is None
        routes = (
            f"routes:\n  - prefix: /auth\n    upstream: {backends['two']}\n"
            "    cookies: {samesite: none}\n"
        )
        save(path, config(backends["one"], f"{A}, {B}", routes))
        lines = await serving.until("reloaded")
        assert lines[-1] == (
            f"corsproxy: reloaded {path}: route /auth added; "
            f"cors.allow_origins: [{A}] -> [{A}, {B}]"
        )
        assert await serving.get("/x", B) == (200, "one /x", B)
        assert await serving.get("/auth/y", B) == (200, "two /auth/y", B)
        save(path, config(backends["one"], f"{A}, {B}", routes.replace("none", "lax")))
        lines = await serving.until("reloaded")
        assert lines[-1].endswith(": route /auth: cookies.samesite: none -> lax")
    finally:
        serving.stop()


async def test_an_invalid_file_keeps_the_previous_config_and_lists_every_problem(
    tmp_path, backends
):
    path = tmp_path / "corsproxy.yaml"
    path.write_text(config(backends["one"]))
    serving = Serving(path)
    try:
        await serving.until("config: ")
        save(path, config("ftp://nowhere", A, "log_level: loud\n"))
        lines = await serving.until("log_level")
        assert lines[-3] == (
            f"corsproxy: {path} not reloaded (2 problems); still serving the previous config"
        )
        assert lines[-2].startswith(f"{path}:1: upstream: ")
        assert lines[-1].startswith(f"{path}:4: log_level: ")
        assert await serving.get("/x", A) == (200, "one /x", A)
    finally:
        serving.stop()


async def test_a_half_written_then_finished_file_and_a_deleted_one(tmp_path, backends):
    path = tmp_path / "corsproxy.yaml"
    whole = config(backends["one"], f"{A}, {B}")
    path.write_text(config(backends["one"]))
    serving = Serving(path)
    try:
        await serving.until("config: ")
        with open(path, "w") as file:  # an editor writing in two steps: the first half
            file.write(whole[: whole.index("[") + 3])
            file.flush()
            lines = await serving.until("not reloaded (1 problem)")
            assert await serving.get("/x", A) == (200, "one /x", A)
            file.write(whole[whole.index("[") + 3 :])
        lines = await serving.until("reloaded")
        assert lines[-1].endswith(f": cors.allow_origins: [{A}] -> [{A}, {B}]")
        path.unlink()
        lines = await serving.until("gone")
        assert lines[-2:] == [
            f"corsproxy: {path} not reloaded (1 problem); still serving the previous config",
            f"{path}: cannot read the config file: it is gone (deleted, or renamed away)",
        ]
        assert await serving.get("/x", B) == (200, "one /x", B)
        path.write_text("")
        await serving.until("the file is empty")
        assert await serving.get("/x", B) == (200, "one /x", B)
        path.write_text(whole)
        lines = await serving.until("reloaded")
        assert lines[-1] == f"corsproxy: reloaded {path}: no setting changed"
    finally:
        serving.stop()


async def test_the_same_content_saved_again_prints_nothing(tmp_path, backends):
    path = tmp_path / "corsproxy.yaml"
    path.write_text(config(backends["one"]))
    serving = Serving(path)
    try:
        await serving.until("config: ")
        for _ in range(5):  # saved again and again, each time as a new file (a new inode)
            save(path, config(backends["one"]))
            assert (await serving.get("/x", A))[0] == 200
        save(path, config(backends["one"], B))
        lines = await serving.until("reloaded")
        assert [line for line in lines if "GET /x" not in line] == [
            f"corsproxy: reloaded {path}: cors.allow_origins: [{A}] -> [{B}]",
        ]
        lines = await serving.until("max_age")  # the narrower rules' note comes right after
        assert lines == [
            "corsproxy: the CORS rules are narrower now: browsers may keep using cached "
            "preflight answers for up to 600 seconds (max_age)"
        ]
    finally:
        serving.stop()


async def test_sighup_reloads_even_with_no_reload(tmp_path, backends):
    path = tmp_path / "corsproxy.yaml"
    path.write_text(config(backends["one"]))
    serving = Serving(path, "--no-reload")
    try:
        await serving.until("config: ")
        save(path, config(backends["two"]))
        serving.proxy.process.send_signal(signal.SIGHUP)
        lines = await serving.until("reloaded")
        assert lines[-1] == (
            f"corsproxy: reloaded {path}: route /: upstream: {backends['one']} -> {backends['two']}"
        )
        assert await serving.get("/x", A) == (200, "two /x", A)
        serving.proxy.process.send_signal(signal.SIGHUP)  # asked again: said again
        lines = await serving.until("reloaded")
        assert lines[-1] == f"corsproxy: reloaded {path}: no setting changed"
        assert serving.proxy.process.poll() is None
    finally:
        serving.stop()


async def test_sighup_without_a_config_file_says_so_and_serves_on(backends):
    serving = Serving(None, backends["one"])
    try:
        serving.proxy.process.send_signal(signal.SIGHUP)
        lines = await serving.until("SIGHUP")
        assert lines[-1].startswith("corsproxy: SIGHUP: no config file to reload")
        assert await serving.get("/x", A) == (200, "one /x", None)
    finally:
        serving.stop()


async def test_a_key_that_needs_a_restart_is_reported_and_the_rest_applies(tmp_path, backends):
    path = tmp_path / "corsproxy.yaml"
    port = free_port()
    path.write_text(config(backends["one"], A, f"listen:\n  port: {port}\n"))
    serving = Serving(path, port=False)
    serving.url = f"http://127.0.0.1:{port}"
    try:
        await serving.until("config: ")
        save(path, config(backends["one"], f"{A}, {B}", f"listen:\n  port: {free_port()}\n"))
        lines = await serving.until("reloaded")
        assert lines[-1] == (
            f"corsproxy: reloaded {path}: cors.allow_origins: [{A}] -> [{A}, {B}]; "
            "listen.port changed: restart to apply"
        )
        assert await serving.get("/x", B) == (200, "one /x", B)
    finally:
        serving.stop()


async def test_flags_and_environment_keep_their_precedence_over_the_saved_file(tmp_path, backends):
    path = tmp_path / "corsproxy.yaml"
    path.write_text(config(backends["one"]))
    serving = Serving(path, "--allow-origin", A, env={"CORSPROXY_UPSTREAM": backends["two"]})
    try:
        await serving.until("config: ")
        save(path, config(backends["one"], B, "log_level: warning\n"))
        lines = await serving.until("reloaded")
        assert lines[-1] == f"corsproxy: reloaded {path}: log_level: info -> warning"
        assert await serving.get("/x", B) == (200, "two /x", None)
        assert await serving.get("/x", A) == (200, "two /x", A)
        save(path, config(backends["one"], "http://c.test", "log_level: warning\n"))
        lines = await serving.until("reloaded")
        assert lines[-1] == (
            f"corsproxy: reloaded {path}: no setting changed (CORSPROXY_UPSTREAM in place of "
            "its upstream, --allow-origin over its cors.allow_origins)"
        )
    finally:
        serving.stop()


@pytest.mark.parametrize(
    "flags",
    [
        (),
        pytest.param(
            ("--workers", "2"),
            marks=pytest.mark.skipif(
                not hasattr(socket, "SO_REUSEPORT"), reason="needs SO_REUSEPORT"
            ),
        ),
    ],
    ids=["one process", "two workers"],
)
async def test_requests_in_flight_finish_under_the_config_they_started_with(
    tmp_path, backends, flags
):
    """200 requests started under the old config, a reload, then their answers: none fails,
    each with the old config's CORS headers, while a new request sees the new config (with
    two workers: whichever worker answers it, once the parent said the reload is done)."""
    path = tmp_path / "corsproxy.yaml"
    path.write_text(config(backends["one"]))
    serving = Serving(path, *flags)
    try:
        await serving.until("config: ")
        async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as client:

            async def slow() -> tuple[int, str | None, str]:
                async with client.get(serving.url + "/slow", headers={"Origin": A}) as resp:
                    return (
                        resp.status,
                        resp.headers.get("Access-Control-Allow-Origin"),
                        (await resp.text()),
                    )

            flying = [asyncio.ensure_future(slow()) for _ in range(200)]
            while len(backends["waiting"]) < 200:  # every one has reached the upstream
                backends["arrived"].clear()
                await backends["arrived"].wait()
            save(path, config(backends["two"], B))
            await serving.until("reloaded")
            for _ in range(10):  # new connections: with workers, each may land on either
                assert await serving.get("/x", A) == (200, "two /x", None)
            backends["release"].set()
            answers = await asyncio.gather(*flying)
        assert set(answers) == {(200, A, "one /slow")}
    finally:
        serving.stop()


async def test_a_refused_origin_is_told_that_saving_the_file_applies_the_fix(tmp_path, backends):
    path = tmp_path / "corsproxy.yaml"
    path.write_text(config(backends["one"]))
    serving = Serving(path)
    try:
        await serving.until("config: ")
        await serving.get("/x", B)
        lines = await serving.until("GET /x")
        assert (
            lines[-1]
            .split(" ", 1)[1]
            .startswith(
                f"GET /x origin={B} refused (origin '{B}' is not in cors.allow_origins ({A}); add it "
                f"there (or pass --allow-origin {B}) to allow it; saving the config file applies it "
                "at once) -> 200"
            )
        )
    finally:
        serving.stop()


class RawUpstream:
    """A keep-alive HTTP/1.1 upstream that counts its connections and sees each one close."""

    def __init__(self) -> None:
        self.connections = 0
        self.closed = asyncio.Event()

    async def start(self) -> str:
        server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.server = server
        return f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                await reader.readuntil(b"\r\n\r\n")
                writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            self.closed.set()
        finally:
            writer.close()


async def test_kept_upstreams_keep_their_connections_and_removed_ones_are_closed(tmp_path):
    kept, removed = RawUpstream(), RawUpstream()
    kept_url, removed_url = await kept.start(), await removed.start()
    path = tmp_path / "corsproxy.yaml"
    auth = f"routes:\n  - {{prefix: /auth, upstream: {removed_url}}}\n"
    path.write_text(config(kept_url, A, auth))
    serving = Serving(path)
    try:
        await serving.until("config: ")
        assert await serving.get("/x") == (200, "ok", None)
        assert await serving.get("/auth/x") == (200, "ok", None)
        save(path, config(kept_url, B))
        await serving.until("reloaded")
        await asyncio.wait_for(removed.closed.wait(), 5)
        assert await serving.get("/x") == (200, "ok", None)
        assert (kept.connections, kept.closed.is_set()) == (1, False)
    finally:
        serving.stop()
        kept.server.close()
        removed.server.close()


async def test_a_websocket_and_a_stream_opened_before_a_reload_flow_on_and_close_normally(
    tmp_path, aiohttp_server
):
    async def socket(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for message in ws:
            await ws.send_str("echo " + message.data)
        return ws

    async def events(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for word in ("one", "two"):
            await response.write(f"data: {word}\n\n".encode())
            await go.wait()  # the second event only after the reload
        return response

    go = asyncio.Event()
    app = web.Application()
    app.router.add_get("/ws", socket)
    app.router.add_get("/events", events)
    upstream = f"http://127.0.0.1:{(await aiohttp_server(app)).port}"
    path = tmp_path / "corsproxy.yaml"
    path.write_text(config(upstream))
    serving = Serving(path)
    try:
        await serving.until("config: ")
        async with aiohttp.ClientSession(headers={"Origin": A}) as client:
            async with (
                client.ws_connect(serving.url + "/ws") as ws,
                client.get(serving.url + "/events") as stream,
            ):
                await ws.send_str("before")
                assert await ws.receive_str() == "echo before"
                assert await stream.content.readline() == b"data: one\n"
                save(path, config(upstream, B))
                await serving.until("reloaded")
                await ws.send_str("after")
                assert await ws.receive_str() == "echo after"
                go.set()
                rest = await stream.content.read()
                assert rest == b"\ndata: two\n\n"
                assert stream.headers["Access-Control-Allow-Origin"] == A
                await ws.close()
                assert ws.close_code == 1000
            assert await serving.get("/events", A) == (200, "data: one\n\ndata: two\n\n", None)
    finally:
        serving.stop()


async def test_with_https_a_reload_keeps_the_certificate_and_says_nothing_of_tls(
    tmp_path, backends, monkeypatch
):
    """listen.tls: auto is resolved to a certificate at start; the reloaded file still says
    auto, which is no change (nor a restart to ask for)."""
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    home = {"HOME": str(tmp_path / "home"), "CORSPROXY_HOME": str(tmp_path / "data")}
    path = tmp_path / "corsproxy.yaml"
    path.write_text(config(backends["one"]))
    serving = Serving(path, "--https", env=home)
    try:
        await serving.until("config: ")
        save(path, config(backends["one"], f"{A}, {B}"))
        lines = await serving.until("reloaded")
        assert lines[-1] == f"corsproxy: reloaded {path}: cors.allow_origins: [{A}] -> [{A}, {B}]"
    finally:
        output = serving.stop()
    assert "listen.tls" not in output

"""`serve --https`: the real process with the local authority's certificate, verified by a client
that trusts that authority only; cookies, redirects, WebSockets and SSE over it; --workers N.

HOME, CORSPROXY_HOME and mkcert's CAROOT are temporary folders in every test.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import os
import signal
import socket
import ssl
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from cryptography.hazmat.primitives import serialization

from corsproxy.config.model import Cors, Listen
from corsproxy.tls.authority import load_authority, private_pem, write_private
from corsproxy.tls.leaf import issue_leaf
from tests.conftest import free_port
from tests.proc import ProxyProcess

ORIGIN = "https://localhost:5173"


@pytest.fixture
def user(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    """A user with no authority yet; also this process's environment (for in-process proxies)."""
    (tmp_path / "caroot").mkdir()
    env = {
        "HOME": str(tmp_path / "home"),
        "CORSPROXY_HOME": str(tmp_path / "data"),
        "CAROOT": str(tmp_path / "caroot"),
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    return env


def trusting(user: dict[str, str]) -> ssl.SSLContext:
    """A client context that trusts the local authority and nothing else."""
    return ssl.create_default_context(cafile=str(Path(user["CORSPROXY_HOME"]) / "ca.pem"))


@pytest.fixture
async def upstream(aiohttp_server) -> str:
    async def echo(request: web.Request) -> web.Response:
        return web.json_response({"path": request.path, "pid": None})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    server = await aiohttp_server(app)
    return f"http://127.0.0.1:{server.port}"


def start(upstream: str, user: dict[str, str], *flags: str) -> tuple[ProxyProcess, int, list[str]]:
    """`corsproxy serve UPSTREAM --https`; returns it, its port and the two lines after the
    banner (who signed the certificate)."""
    port = free_port()
    proxy = ProxyProcess(["serve", upstream, "--https", "--port", str(port), *flags], env=user)
    return proxy, port, read_lines(proxy, 2)


def read_lines(proxy: ProxyProcess, count: int, timeout: float = 10.0) -> list[str]:
    """The next `count` output lines; a proxy that never prints them is killed, failing the test
    instead of hanging it."""
    with ThreadPoolExecutor(1) as pool:
        lines = pool.submit(lambda: [proxy.process.stdout.readline() for _ in range(count)])
        try:
            return [line.rstrip("\n") for line in lines.result(timeout)]
        except TimeoutError:
            proxy.process.kill()
            raise AssertionError(f"no {count} lines from the proxy in {timeout} s") from None


def read_until(proxy: ProxyProcess, needle: str) -> str:
    """The first output line that contains `needle` (at most 200 lines on)."""
    for _ in range(200):
        (line,) = read_lines(proxy, 1)
        if needle in line:
            return line
    raise AssertionError(f"{needle!r} never came")


async def get(url: str, context: ssl.SSLContext) -> tuple[int, str]:
    connector = aiohttp.TCPConnector(ssl=context, force_close=True)
    async with aiohttp.ClientSession(connector=connector) as client:
        async with client.get(url) as resp:
            return resp.status, await resp.text()


async def test_serve_https_answers_on_every_loopback_name_with_a_trusted_certificate(
    upstream: str, user: dict[str, str]
) -> None:
    proxy, port, notes = start(upstream, user)
    try:
        data = user["CORSPROXY_HOME"]
        assert proxy.banner.startswith(f"corsproxy: https://127.0.0.1:{port} -> {upstream} ")
        assert (
            notes[0] == f"corsproxy: created corsproxy's local certificate authority in {data} "
            "(its key is readable by you only)"
        )
        assert notes[1].startswith(
            "corsproxy: https certificate for localhost, 127.0.0.1, ::1 (until "
        )
        assert notes[1].endswith(
            f"; issued now: there was none yet), signed by corsproxy's local authority {data}/ca.pem"
        )
        assert read_lines(proxy, 1) == [
            "corsproxy: to make this machine's browsers trust it (once): corsproxy trust "
            "(undo: corsproxy trust --uninstall)"
        ]
        for host in ("localhost", "127.0.0.1"):  # ::1 is in it too; the proxy listens on IPv4
            assert (await get(f"https://{host}:{port}/x", trusting(user)))[0] == 200
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await get(f"https://localhost:{port}/x", ssl.create_default_context())
    finally:
        assert proxy.stop()[0] == 0


async def test_an_expired_leaf_is_reissued_on_the_next_start(
    upstream: str, user: dict[str, str]
) -> None:
    authority = load_authority(user)
    long_ago = dt.datetime.now(dt.UTC) - dt.timedelta(days=900)
    cert, key = issue_leaf(authority, ("localhost", "127.0.0.1", "::1"), long_ago)
    leaf = Path(user["CORSPROXY_HOME"]) / "leaf.pem"
    write_private(leaf, private_pem(key) + cert.public_bytes(serialization.Encoding.PEM))
    proxy, port, notes = start(upstream, user)
    try:
        assert (
            f"; issued now: the one there expired on {cert.not_valid_after_utc:%Y-%m-%d})"
            in notes[0]
        )
        assert (await get(f"https://localhost:{port}/x", trusting(user)))[0] == 200
    finally:
        proxy.stop()


async def test_a_leaf_for_other_names_is_reissued_on_the_next_start(
    upstream: str, user: dict[str, str], tmp_path: Path
) -> None:
    proxy, port, _ = start(upstream, user)
    proxy.stop()
    config = tmp_path / "corsproxy.yaml"
    config.write_text("listen:\n  allowed_hosts: [devbox.test]\n")
    proxy, port, notes = start(upstream, user, "-c", str(config))
    try:
        assert "localhost, 127.0.0.1, ::1, devbox.test (until " in notes[0]
        assert "; issued now: the names changed: +devbox.test)" in notes[0]
        connector = aiohttp.TCPConnector(ssl=trusting(user), resolver=LoopbackResolver())
        async with aiohttp.ClientSession(connector=connector) as client:
            async with client.get(f"https://devbox.test:{port}/x") as resp:
                assert resp.status == 200
    finally:
        proxy.stop()


async def health_pids(port: int, user: dict[str, str], want: set[int] | int) -> set[int]:
    """Worker pids answering /__corsproxy/health over fresh, verified connections, until `want`
    (a count, or these pids) answered."""
    seen: set[int] = set()
    for _ in range(64):
        status, body = await get(f"https://localhost:{port}/__corsproxy/health", trusting(user))
        assert status == 200
        seen.add(json.loads(body)["pid"])
        if (len(seen) >= want) if isinstance(want, int) else want <= seen:
            break
    return seen


@pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="needs SO_REUSEPORT")
async def test_workers_serve_the_leaf_the_parent_issued(user: dict[str, str]) -> None:
    """The parent issues the leaf once, before forking, and says so once; every worker serves
    that leaf, a replacement for a worker that died too."""
    proxy, port, notes = start("http://127.0.0.1:9", user, "--workers", "2")
    try:
        assert proxy.banner.endswith("2 workers)")
        assert "issued now: there was none yet" in notes[1]
        leaf = Path(user["CORSPROXY_HOME"]) / "leaf.pem"
        issued = leaf.read_bytes()
        first, second = await health_pids(port, user, 2)
        os.kill(first, signal.SIGKILL)
        line = read_until(proxy, f"in place of {first}")
        replacement = int(line.split("worker ")[1].split()[0])
        assert await health_pids(port, user, {second, replacement})  # each one verified
        assert leaf.read_bytes() == issued  # no worker issued one of its own
    finally:
        assert proxy.stop()[0] == 0


# ---- what the browser side sees over https (an in-process proxy with tls: auto) ---------------


class LoopbackResolver(aiohttp.abc.AbstractResolver):
    """Every name resolves to 127.0.0.1, as a hosts-file entry for a dev machine's name does."""

    async def resolve(self, host, port=0, family=0):
        return [
            {
                "hostname": host,
                "host": "127.0.0.1",
                "port": port,
                "family": 2,
                "proto": 0,
                "flags": 0,
            }
        ]

    async def close(self) -> None:
        return None


def app_with_login_redirect_ws_and_events(gates: list[asyncio.Event]) -> web.Application:
    async def login(request: web.Request) -> web.Response:
        response = web.json_response({"ok": True})
        response.headers["Set-Cookie"] = "sid=s3cret; Path=/; Secure; HttpOnly; SameSite=None"
        return response

    async def moved(request: web.Request) -> web.Response:
        return web.Response(status=302, headers={"Location": f"http://{request.host}/landed"})

    async def echo(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for message in ws:
            await ws.send_str(f"echo {message.data}")
        return ws

    async def events(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for i, gate in enumerate(gates):
            await gate.wait()
            await response.write(f"data: event {i}\n\n".encode())
        return response

    app = web.Application()
    app.router.add_post("/login", login)
    app.router.add_get("/moved", moved)
    app.router.add_get("/ws", echo)
    app.router.add_get("/events", events)
    return app


@pytest.fixture
async def devbox(aiohttp_server, start_proxy, user: dict[str, str]):
    """A proxy with tls: auto reached as https://devbox.test:PORT (a name that is not loopback,
    where plain http would lose Secure cookies), and a client that trusts the authority only."""
    gates = [asyncio.Event() for _ in range(3)]
    backend = await aiohttp_server(app_with_login_redirect_ws_and_events(gates))
    proxy = await start_proxy(
        f"http://127.0.0.1:{backend.port}",
        listen=Listen(allowed_hosts=("devbox.test",), tls="auto"),
        cors=Cors(allow_origins=(ORIGIN,)),
    )
    connector = aiohttp.TCPConnector(ssl=trusting(user), resolver=LoopbackResolver())
    async with aiohttp.ClientSession(
        connector=connector, cookie_jar=aiohttp.DummyCookieJar()
    ) as client:
        yield client, f"https://devbox.test:{proxy.port}", gates


async def test_secure_cookies_are_kept_for_an_https_browser_side(devbox) -> None:
    client, base, _ = devbox
    async with client.post(f"{base}/login", headers={"Origin": ORIGIN}) as resp:
        name, *attributes = (part.strip() for part in resp.headers["Set-Cookie"].split(";"))
    assert name == "sid=s3cret"
    assert {"Secure", "SameSite=None"} <= set(attributes)  # over http on devbox.test: dropped


async def test_redirects_point_at_the_proxy_over_https(devbox) -> None:
    client, base, _ = devbox
    async with client.get(f"{base}/moved", allow_redirects=False) as resp:
        assert resp.status == 302
        assert resp.headers["Location"] == f"{base}/landed"


async def test_websocket_over_wss(devbox) -> None:
    client, base, _ = devbox
    async with client.ws_connect(f"wss{base[5:]}/ws", origin=ORIGIN) as ws:
        await ws.send_str("hello")
        assert (await asyncio.wait_for(ws.receive(), 10)).data == "echo hello"


async def test_server_sent_events_arrive_one_by_one_over_tls(devbox) -> None:
    client, base, gates = devbox
    async with client.get(f"{base}/events", headers={"Origin": ORIGIN}) as resp:
        for i, gate in enumerate(gates):
            gate.set()  # event i is produced only now: a buffering proxy would never deliver it
            assert (
                await asyncio.wait_for(resp.content.readline(), 10) == f"data: event {i}\n".encode()
            )
            assert await asyncio.wait_for(resp.content.readline(), 10) == b"\n"

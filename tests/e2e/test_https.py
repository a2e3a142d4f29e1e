"""`serve --https` in a real Chromium that trusts the local authority for real (issue 18).

`corsproxy trust`, pointed at a temporary HOME, fills that HOME's ~/.pki/nssdb; Chromium is
launched with HOME there (a fresh profile, no --ignore-certificate-errors). The page is served
over https on another site, https://app.test:P, with a second leaf from the same authority; it
logs in through https://localhost:Q (the proxy), gets the upstream's
`SameSite=None; Secure; Partitioned` cookie, sends it back on a credentialed fetch, and talks
to a wss:// echo. The twin: the same Chromium without the trusted authority refuses the page.
"""

from __future__ import annotations

import datetime as dt
import os
import secrets
import ssl
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import WSMsgType, web
from cryptography.hazmat.primitives import serialization

from tests.conftest import free_port
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, E2E, SETTINGS_ENV, TIMEOUT, LoggedProxy, Tab
from tests.proc import corsproxy_command

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

INCLUDE = {"credentials": "include"}


@dataclass(frozen=True)
class Setup:
    env: dict[str, str]  # HOME, CORSPROXY_HOME, CAROOT: all temporary
    page: str  # https://app.test:P
    proxy: str  # https://localhost:Q
    log: LoggedProxy


# ---- the backend (plain http, as a local API is) and the https page server ------------------


async def login(request: web.Request) -> web.Response:
    """A login whose cookie is already what a cross-site frontend needs: the upstream sends
    `SameSite=None; Secure; Partitioned` itself (independent of the proxy's cookie defaults)."""
    token = secrets.token_hex(8)
    response = web.json_response({"logged_in": True, "token": token})
    response.headers["Set-Cookie"] = (
        f"sid={token}; Path=/; HttpOnly; Secure; SameSite=None; Partitioned"
    )
    return response


async def whoami(request: web.Request) -> web.Response:
    return web.json_response({"cookie": request.headers.get("Cookie")})


async def echo(request: web.Request) -> web.WebSocketResponse:
    socket = web.WebSocketResponse()
    await socket.prepare(request)
    async for message in socket:
        if message.type is WSMsgType.TEXT:
            await socket.send_str(message.data)
    return socket


async def index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(E2E / "static" / "index.html", headers={"Cache-Control": "no-store"})


async def no_icon(request: web.Request) -> web.Response:
    return web.Response(status=204)


async def serve(app: web.Application, context: ssl.SSLContext | None) -> tuple[web.AppRunner, int]:
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=context)
    await site.start()
    return runner, site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]


def page_context(env: dict[str, str], folder: Path) -> ssl.SSLContext:
    """The page server's TLS: a leaf for app.test from the same local authority."""
    from corsproxy.tls.authority import load_authority, private_pem
    from corsproxy.tls.leaf import issue_leaf

    cert, key = issue_leaf(load_authority(env), ("app.test",), dt.datetime.now(dt.UTC))
    pem = folder / "app.test.pem"
    pem.write_bytes(private_pem(key) + cert.public_bytes(serialization.Encoding.PEM))
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(pem)
    return context


@pytest_asyncio.fixture(loop_scope="session")
async def setup(tmp_path: Path) -> AsyncIterator[Setup]:
    (tmp_path / "caroot").mkdir()
    env = {
        **{k: v for k, v in os.environ.items() if k not in SETTINGS_ENV},
        "HOME": str(tmp_path / "home"),
        "CORSPROXY_HOME": str(tmp_path / "data"),
        "CAROOT": str(tmp_path / "caroot"),  # a real mkcert, if installed, finds no authority
    }
    env.pop("XDG_DATA_HOME", None)
    backend = web.Application()
    backend.router.add_post("/login", login)
    backend.router.add_get("/whoami", whoami)
    backend.router.add_get("/ws", echo)
    pages = web.Application()
    pages.router.add_get("/", index)
    pages.router.add_get("/favicon.ico", no_icon)
    backend_runner, backend_port = await serve(backend, None)
    pages_runner, pages_port = await serve(pages, page_context(env, tmp_path))
    page = f"https://app.test:{pages_port}"
    port = free_port()
    upstream = f"http://127.0.0.1:{backend_port}"
    log = LoggedProxy(
        ["serve", upstream, "--https", "--port", str(port), "--allow-origin", page], env=env
    )
    try:
        yield Setup(env, page, f"https://localhost:{port}", log)
    finally:
        log.stop()
        await pages_runner.cleanup()
        await backend_runner.cleanup()


def trust(env: dict[str, str]) -> str:
    done = subprocess.run(
        [*corsproxy_command(), "trust"], env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest_asyncio.fixture(loop_scope="session")
async def chromium_for(browser: Any) -> AsyncIterator[Any]:
    """chromium_for(home) -> a new context of a Chromium whose HOME is `home` (so it reads that
    home's ~/.pki/nssdb), in a fresh profile; certificate errors are not ignored."""
    launched = []

    async def launch(home: str) -> Any:
        chromium = await browser.browser_type.launch(
            executable_path=CHROMIUM,
            args=CHROMIUM_ARGS,
            env={**os.environ, "HOME": home},
            timeout=TIMEOUT * 1000,
        )
        launched.append(chromium)
        context = await chromium.new_context()  # ignore_https_errors stays False
        await context.add_init_script(path=E2E / "static" / "helpers.js")
        return context

    yield launch
    for chromium in launched:
        await chromium.close()


async def test_a_page_on_another_site_logs_in_through_the_https_proxy(
    setup: Setup, chromium_for: Any
) -> None:
    output = trust(setup.env)
    home = setup.env["HOME"]
    assert f"  Chromium (NSS database {home}/.pki/nssdb): done" in output.splitlines()
    context = await chromium_for(home)
    page = await context.new_page()
    await page.goto(setup.page + "/", timeout=TIMEOUT * 1000)
    tab = Tab(page)

    status, body = await tab.fetch_json(setup.proxy + "/login", method="POST", **INCLUDE)
    assert status == 200 and body["logged_in"]
    (cookie,) = await context.cookies()
    assert (cookie["name"], cookie["domain"], cookie["secure"], cookie["sameSite"]) == (
        "sid",
        "localhost",
        True,
        "None",
    )
    assert cookie["partitionKey"].startswith("https://app.test")  # CHIPS: the page's site

    assert await tab.fetch_json(setup.proxy + "/whoami", **INCLUDE) == (
        200,
        {"cookie": f"sid={body['token']}"},
    )
    wss = "wss://" + setup.proxy.removeprefix("https://") + "/ws"
    events = await tab.js("([url, text]) => websocketEcho(url, text)", [wss, "over tls"])
    assert events == ["open", "message over tls", "close 1000"]
    await setup.log.logged("GET", "/whoami")


async def test_without_trust_chromium_refuses_the_certificate(
    setup: Setup, chromium_for: Any, tmp_path: Path
) -> None:
    """The twin: a HOME whose NSS database was never given the authority."""
    context = await chromium_for(str(tmp_path / "untrusting-home"))
    page = await context.new_page()
    with pytest.raises(Exception, match="ERR_CERT_AUTHORITY_INVALID"):
        await page.goto(setup.page + "/", timeout=TIMEOUT * 1000)
    with pytest.raises(Exception, match="ERR_CERT_AUTHORITY_INVALID"):
        await page.goto(setup.proxy + "/__corsproxy/health", timeout=TIMEOUT * 1000)

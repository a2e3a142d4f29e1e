"""Seams between the second round's features, each found by review and proven here with the
real `corsproxy serve` process: header-rule secrets vs the inspector and the debug log, ..."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from tests import test_reload as reloading
from tests.conftest import ORIGIN, free_port, raw_request
from tests.proc import ProxyProcess
from tests.test_reload import A, Serving, save
from tests.test_workers import read_until

backends = reloading.backends  # the fixture: two upstreams that say who they are

SECRET = "sk-review-5e1f0a"  # what API_TOKEN holds
TOKEN = "review-inspector-token-0123456789abcdef"  # the inspector's, fixed
CONFIG = """\
routes:
  - prefix: /
    upstream: {upstream}
    request_headers:
      set: {{Authorization: "Bearer ${{API_TOKEN}}"}}
    response_headers:
      set: {{X-Echo-Key: "${{API_TOKEN}}"}}
"""


async def get(url: str, **headers: str) -> tuple[int, str]:
    """Like curl: only the headers given (the upstream runs on this test's event loop)."""
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as session:
        async with session.get(url, headers=headers) as response:
            return response.status, await response.text()


async def upstream_app(aiohttp_server):  # type: ignore[no-untyped-def]
    async def page(request: web.Request) -> web.Response:
        return web.json_response({"ok": True})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", page)
    return await aiohttp_server(app)


@pytest.fixture
def config_file(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "corsproxy.yaml"


@pytest.mark.parametrize(
    "api", ["api/exchanges", "api/har"], ids=["the exchanges' JSON", "the HAR download"]
)
async def test_a_header_rule_secret_never_reaches_the_inspector(aiohttp_server, config_file, api):
    upstream = await upstream_app(aiohttp_server)
    config_file.write_text(CONFIG.format(upstream=f"http://127.0.0.1:{upstream.port}"))
    port = free_port()
    env = {"API_TOKEN": SECRET, "CORSPROXY_INSPECTOR_TOKEN": TOKEN}
    proxy = ProxyProcess(["serve", "-c", str(config_file), "--port", str(port)], env=env)
    try:
        base = f"http://localhost:{port}"
        assert (await get(f"{base}/data", Origin=ORIGIN))[0] == 200
        status, text = await get(f"{base}/__corsproxy/{api}", Authorization=f"Bearer {TOKEN}")
        assert status == 200
        assert "Bearer ${API_TOKEN}" in text  # shown as written ...
        assert SECRET not in text  # ... never as sent
    finally:
        proxy.stop()


async def test_a_header_rule_secret_never_reaches_the_debug_log(aiohttp_server, config_file):
    upstream = await upstream_app(aiohttp_server)
    config_file.write_text(CONFIG.format(upstream=f"http://127.0.0.1:{upstream.port}"))
    port = free_port()
    args = ["serve", "-c", str(config_file), "--port", str(port), "--log-level", "debug"]
    proxy = ProxyProcess(args, env={"API_TOKEN": SECRET})
    try:
        assert (await get(f"http://localhost:{port}/data", Origin=ORIGIN))[0] == 200
    finally:
        code, output = proxy.stop()
    assert "to the upstream:" in output
    assert "Bearer ${API_TOKEN}" in output
    assert SECRET not in output


@pytest.mark.parametrize(
    ("before", "after", "shows_headers"),
    [("info", "debug", True), ("debug", "info", False)],
    ids=["a reload to debug adds the header sets", "a reload from debug drops them"],
)
async def test_a_reloaded_log_level_changes_the_header_sets_under_each_line(
    tmp_path, backends, before, after, shows_headers
):
    path = tmp_path / "corsproxy.yaml"
    path.write_text(reloading.config(backends["one"], extra=f"log_level: {before}\n"))
    serving = Serving(path)
    try:
        await serving.until("config: ")
        save(path, reloading.config(backends["one"], extra=f"log_level: {after}\n"))
        lines = await serving.until("reloaded")
        assert lines[-1].endswith(f"log_level: {before} -> {after}")
        assert (await serving.get("/after-reload", A))[0] == 200
        assert (await serving.get("/next", A))[0] == 200
        lines = await serving.until("/next")  # the header sets come before the next line
    finally:
        serving.stop()
    output = "\n".join(lines)
    assert "/after-reload" in output
    assert ("from the browser:" in output) is shows_headers, output


def _upstream_that_counts(seen: list[str]) -> web.Application:
    async def page(request: web.Request) -> web.Response:
        seen.append(request.path)
        return web.Response(text="from the upstream")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", page)
    return app


ABSOLUTE = [
    ("a preflight", "OPTIONS", "Access-Control-Request-Method: PUT\r\n"),
    ("a GET", "GET", ""),
]


@pytest.mark.parametrize(
    ("method", "extra"), [r[1:] for r in ABSOLUTE], ids=[r[0] for r in ABSOLUTE]
)
async def test_an_absolute_form_inspector_url_is_neither_forwarded_nor_granted_cors(
    aiohttp_server, start_proxy, method, extra
):
    """/__corsproxy/... is the proxy's own whichever form the request target takes (RFC 9112
    §3.2.2 absolute-form): never sent upstream, never a preflight grant, never CORS headers."""
    seen: list[str] = []
    upstream = await aiohttp_server(_upstream_that_counts(seen))
    proxy = await start_proxy(f"http://127.0.0.1:{upstream.port}")
    target = f"http://localhost:{proxy.port}/__corsproxy/api/exchanges"
    head = (
        f"{method} {target} HTTP/1.1\r\nHost: localhost:{proxy.port}\r\nOrigin: {ORIGIN}\r\n{extra}"
    )
    # Kept alive, then one more request that closes: the early preflight answer sees the first.
    data = (
        head
        + "\r\n"
        + "GET /__corsproxy/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    answer = (await raw_request(proxy.port, data.encode())).decode("latin-1")
    first = answer.split("\r\n\r\n", 1)[0]
    assert seen == []
    assert "access-control-" not in first.lower(), first
    assert first.startswith(("HTTP/1.1 403", "HTTP/1.1 404")), first


async def test_an_absolute_form_inspector_request_is_not_kept_as_an_exchange(start_proxy, client):
    """The inspector keeps the app's exchanges only: a request to its own API, with its bearer
    token, is left out whichever form the request target takes."""
    proxy = await start_proxy("http://127.0.0.1:9")
    token = proxy.running.proxy.inspector.token
    target = f"http://localhost:{proxy.port}/__corsproxy/api/exchanges"
    data = (
        f"GET {target} HTTP/1.1\r\nHost: localhost:{proxy.port}\r\n"
        f"Authorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )
    answer = (await raw_request(proxy.port, data.encode())).decode("latin-1")
    assert answer.startswith(("HTTP/1.1 200", "HTTP/1.1 404")), answer  # never forwarded
    url = f"{proxy.url}/__corsproxy/api/exchanges"
    async with client.get(url, headers={"Authorization": f"Bearer {token}"}) as resp:
        assert (await resp.json())["exchanges"] == []


@pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="needs SO_REUSEPORT")
async def test_https_with_two_workers_reloads_in_every_worker_and_keeps_the_token(
    tmp_path, backends, monkeypatch
):
    monkeypatch.delenv("XDG_DATA_HOME", raising=False)
    env = {
        **reloading.FAST_POLL,
        "HOME": str(tmp_path / "home"),
        "CORSPROXY_HOME": str(tmp_path / "data"),
        "CORSPROXY_INSPECTOR_TOKEN": TOKEN,
    }
    path = tmp_path / "corsproxy.yaml"
    path.write_text(reloading.config(backends["one"]))
    port = free_port()
    args = ["serve", "-c", str(path), "--port", str(port), "--workers", "2", "--https"]
    proxy = ProxyProcess(args, env=env)
    base = f"https://localhost:{port}"
    connector = aiohttp.TCPConnector(ssl=False, force_close=True)
    try:
        await read_until(proxy, "config: ")
        save(path, reloading.config(backends["one"], f"{A}, {reloading.B}"))
        lines = [line for line in await read_until(proxy, "reloaded") if "reloaded" in line]
        assert lines == [
            f"corsproxy: reloaded {path}: cors.allow_origins: [{A}] -> [{A}, {reloading.B}]"
        ]
        allowed: dict[int, str | None] = {}
        async with aiohttp.ClientSession(connector=connector) as client:
            for _ in range(200):
                async with client.get(f"{base}/__corsproxy/health") as response:
                    pid = (await response.json())["pid"]
                async with client.get(f"{base}/x", headers={"Origin": reloading.B}) as response:
                    allowed[pid] = response.headers.get("Access-Control-Allow-Origin")
                if len(allowed) == 2:
                    break
            auth = {"Authorization": f"Bearer {TOKEN}"}
            async with client.get(f"{base}/__corsproxy/api/exchanges", headers=auth) as response:
                assert response.status == 200
                reloads = (await response.json())["reloads"]
        assert len(allowed) == 2
        assert set(allowed.values()) == {reloading.B}  # every worker switched
        assert [r["ok"] for r in reloads] == [True]
    finally:
        code, rest = proxy.stop()
    assert code == 0, rest
    assert "listen.tls" not in rest

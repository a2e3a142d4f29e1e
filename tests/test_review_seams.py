"""Seams between the second round's features, each found by review and proven here with the
real `corsproxy serve` process: header-rule secrets vs the inspector and the debug log, ..."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from tests.conftest import ORIGIN, free_port
from tests.proc import ProxyProcess

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
def config(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path / "corsproxy.yaml"


@pytest.mark.parametrize(
    "api", ["api/exchanges", "api/har"], ids=["the exchanges' JSON", "the HAR download"]
)
async def test_a_header_rule_secret_never_reaches_the_inspector(aiohttp_server, config, api):
    upstream = await upstream_app(aiohttp_server)
    config.write_text(CONFIG.format(upstream=f"http://127.0.0.1:{upstream.port}"))
    port = free_port()
    env = {"API_TOKEN": SECRET, "CORSPROXY_INSPECTOR_TOKEN": TOKEN}
    proxy = ProxyProcess(["serve", "-c", str(config), "--port", str(port)], env=env)
    try:
        base = f"http://localhost:{port}"
        assert (await get(f"{base}/data", Origin=ORIGIN))[0] == 200
        status, text = await get(f"{base}/__corsproxy/{api}", Authorization=f"Bearer {TOKEN}")
        assert status == 200
        assert "Bearer ${API_TOKEN}" in text  # shown as written ...
        assert SECRET not in text  # ... never as sent
    finally:
        proxy.stop()


async def test_a_header_rule_secret_never_reaches_the_debug_log(aiohttp_server, config):
    upstream = await upstream_app(aiohttp_server)
    config.write_text(CONFIG.format(upstream=f"http://127.0.0.1:{upstream.port}"))
    port = free_port()
    args = ["serve", "-c", str(config), "--port", str(port), "--log-level", "debug"]
    proxy = ProxyProcess(args, env={"API_TOKEN": SECRET})
    try:
        assert (await get(f"http://localhost:{port}/data", Origin=ORIGIN))[0] == 200
    finally:
        code, output = proxy.stop()
    assert "to the upstream:" in output
    assert "Bearer ${API_TOKEN}" in output
    assert SECRET not in output

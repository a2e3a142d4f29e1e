"""Header rules in the real `corsproxy serve` process, in front of a real upstream that records
what it received: who gets the injected header, what the browser gets back, WebSockets too."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import WSMsgType, web

from tests.conftest import ORIGIN, cors_headers, free_port
from tests.proc import ProxyProcess, corsproxy_command

SECRET = "sk-test-7f3a9c"  # what API_TOKEN holds; must never reach a refused page's request
EVIL = "http://evil.test:8000"
INJECTED = {"authorization": f"Bearer {SECRET}", "x-api-key": "dev-key"}
CONFIG = """\
routes:
  - prefix: /
    upstream: {upstream}
    request_headers:
      set: {{Authorization: "Bearer ${{API_TOKEN}}", X-Api-Key: "${{API_KEY:-dev-key}}"}}
      remove: [Cookie]
    response_headers:
      set: {{Cache-Control: no-store, X-Served-By: corsproxy}}
      remove: [Content-Security-Policy, X-Frame-Options]
"""
# The four request headers a rule may touch here, as the upstream saw them (None: absent).
WATCHED = ("authorization", "x-api-key", "cookie")


def recording_upstream(seen: dict[str, dict[str, str]]) -> web.Application:
    """A backend that records each request's headers by path, and sends headers in the way."""

    async def page(request: web.Request) -> web.Response:
        seen[request.path_qs] = {k.lower(): v for k, v in request.headers.items()}
        headers = {
            "Content-Security-Policy": "frame-ancestors 'none'",
            "X-Frame-Options": "DENY",
            "Cache-Control": "max-age=600",
            "Access-Control-Allow-Origin": "*",  # its own CORS, which the rules replace
        }
        return web.Response(text="<p>backend page</p>", content_type="text/html", headers=headers)

    async def socket(request: web.Request) -> web.WebSocketResponse:
        seen[request.path_qs] = {k.lower(): v for k, v in request.headers.items()}
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        async for message in ws:
            if message.type is WSMsgType.TEXT:
                await ws.send_str(message.data)
        return ws

    app = web.Application()
    app.router.add_get("/ws", socket)
    app.router.add_route("*", "/{tail:.*}", page)
    return app


@dataclass
class Running:
    url: str
    seen: dict[str, dict[str, str]]
    process: ProxyProcess

    output: str | None = None

    def stop(self) -> str:
        """Stop the proxy (exit 0 expected) and return everything it printed."""
        if self.output is None:
            code, self.output = self.process.stop()
            assert code == 0, self.output
        return self.output

    def watched(self, path: str) -> dict[str, str | None]:
        headers = self.seen[path]
        return {name: headers.get(name) for name in WATCHED}


@pytest.fixture
async def running(aiohttp_server, tmp_path: Path) -> AsyncIterator[Running]:
    seen: dict[str, dict[str, str]] = {}
    upstream = await aiohttp_server(recording_upstream(seen))
    config = tmp_path / "corsproxy.yaml"
    config.write_text(CONFIG.format(upstream=f"http://127.0.0.1:{upstream.port}"))
    port = free_port()
    process = ProxyProcess(
        ["serve", "-c", str(config), "--port", str(port)], env={"API_TOKEN": SECRET}
    )
    started = Running(f"http://127.0.0.1:{port}", seen, process)
    try:
        yield started
    finally:
        output = started.stop()
    assert SECRET not in output  # the log never shows the secret


@pytest.fixture
async def curl() -> AsyncIterator[aiohttp.ClientSession]:
    """Like curl: sends only what it is told (no cookies kept, no User-Agent)."""
    async with aiohttp.ClientSession(
        cookie_jar=aiohttp.DummyCookieJar(), skip_auto_headers=("User-Agent", "Accept-Encoding")
    ) as session:
        yield session


WHO = [
    ("curl: no Origin", "/curl", {}, True),
    ("an allowed origin", "/allowed", {"Origin": ORIGIN}, True),
    (
        "an allowed origin, cross-site",
        "/allowed-cross",
        {"Origin": ORIGIN, "Sec-Fetch-Site": "cross-site"},
        True,
    ),
    ("the address bar", "/typed", {"Sec-Fetch-Site": "none"}, True),
    ("a refused origin", "/refused", {"Origin": EVIL}, False),
    ("a refused origin's no-cors GET", "/no-cors", {"Sec-Fetch-Site": "cross-site"}, False),
    ("another origin of the same site", "/same-site", {"Sec-Fetch-Site": "same-site"}, False),
]


async def test_only_allowed_pages_and_non_browsers_get_the_request_rules(running, curl):
    for _, path, sent, _ in WHO:
        async with curl.get(running.url + path, headers={**sent, "Cookie": "sid=1"}) as resp:
            assert resp.status == 200
    got = {name: running.watched(path) for name, path, _, _ in WHO}
    with_rules = {**INJECTED, "cookie": None}
    untouched = {"authorization": None, "x-api-key": None, "cookie": "sid=1"}
    assert got == {name: with_rules if yes else untouched for name, _, _, yes in WHO}
    assert all(SECRET not in str(running.seen[p]) for _, p, _, yes in WHO if not yes)


async def test_the_log_says_when_and_why_the_rules_were_withheld(running, curl):
    for path, headers in (("/a", {"Origin": EVIL}), ("/b", {"Sec-Fetch-Site": "cross-site"})):
        async with curl.get(running.url + path, headers=headers) as resp:
            assert resp.status == 200
    lines = [line for line in running.stop().splitlines() if line[13:].startswith("GET /")]
    assert "; request_headers withheld: origin refused;" in lines[0], lines
    assert (
        "; request_headers withheld: no Origin, and Sec-Fetch-Site: cross-site says another "
        "page sent it -> 200 " in lines[1]
    ), lines


async def test_response_rules_come_before_the_cors_step(running, curl):
    async with curl.get(running.url + "/page", headers={"Origin": ORIGIN}) as resp:
        assert resp.headers["Cache-Control"] == "no-store"
        assert resp.headers["X-Served-By"] == "corsproxy"
        assert "Content-Security-Policy" not in resp.headers
        assert "X-Frame-Options" not in resp.headers
        # The CORS rules have the last word, and "*" exposes what the browser really gets.
        assert cors_headers(resp.headers) == {
            "access-control-allow-origin": ORIGIN,
            "access-control-allow-credentials": "true",
            "access-control-expose-headers": {"x-served-by", "date", "server"},
            "vary": {"origin"},
        }
    async with curl.get(running.url + "/page", headers={"Origin": EVIL}) as resp:
        assert resp.headers["Cache-Control"] == "no-store"  # a refused page's too: it reads none
        assert "Content-Security-Policy" not in resp.headers
        assert cors_headers(resp.headers) == {"vary": {"origin"}}


async def test_websocket_upgrades_get_the_request_rules_under_the_same_condition(running, curl):
    ws_url = running.url.replace("http:", "ws:") + "/ws"
    for origin in (ORIGIN, None):
        headers = {"Origin": origin} if origin else {}
        async with curl.ws_connect(ws_url, headers={**headers, "Cookie": "sid=1"}) as ws:
            await ws.send_str("hi")
            assert (await ws.receive()).data == "hi"
        assert running.watched("/ws") == {**INJECTED, "cookie": None}, origin
        del running.seen["/ws"]
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await curl.ws_connect(ws_url, headers={"Origin": EVIL})
    assert refused.value.status == 403
    assert "/ws" not in running.seen


def run_check(config: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    import os

    clean = {k: v for k, v in os.environ.items() if k not in ("API_TOKEN", "API_KEY")}
    return subprocess.run(
        [*corsproxy_command(), "check", "-c", str(config)],
        capture_output=True,
        text=True,
        env={**clean, **env},
        timeout=30,
        cwd=config.parent,
    )


def test_check_shows_the_template_and_an_unset_variable_stops_it(tmp_path: Path):
    config = tmp_path / "corsproxy.yaml"
    config.write_text(CONFIG.format(upstream="http://localhost:8000"))
    unset = run_check(config, {})
    assert unset.returncode == 2
    assert unset.stderr.splitlines()[0] == (
        f"{config}:5: routes[0].request_headers.set.Authorization: ${{API_TOKEN}} is not set in "
        "the environment; set it, or give a default: ${API_TOKEN:-value}"
    )
    ok = run_check(config, {"API_TOKEN": SECRET})
    assert ok.returncode == 0, ok.stderr
    assert (
        'request_headers: set Authorization: "Bearer ${API_TOKEN}", '
        'X-Api-Key: "${API_KEY:-dev-key}"; remove Cookie\n' in ok.stdout
    )
    assert SECRET not in ok.stdout + ok.stderr

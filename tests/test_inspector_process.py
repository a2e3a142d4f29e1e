"""`corsproxy serve` as a real process: the inspector's start-up line, its token and who it
refuses, `--no-inspector`, and what the access log never shows."""

from __future__ import annotations

import asyncio
import json
import os
import re
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator

import aiohttp
import pytest
from aiohttp import web

from tests.conftest import ORIGIN, free_port
from tests.proc import ProxyProcess

# The test's own requests to the proxy: never through an http_proxy from the environment.
DIRECT = urllib.request.build_opener(
    urllib.request.ProxyHandler({}),
    type(
        "NoRedirect",
        (urllib.request.HTTPRedirectHandler,),
        {
            "redirect_request": lambda *args: None,
        },
    ),
)
FIXED = "fixed-token-for-the-tests-0123456789"
LINE = re.compile(r"inspector: http://localhost:(\d+)/__corsproxy/\?token=([A-Za-z0-9_.~-]{22,})")


@pytest.fixture
async def upstream(aiohttp_server) -> str:
    async def echo(request: web.Request) -> web.Response:
        return web.json_response({"path": request.path_qs})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    server = await aiohttp_server(app)
    return f"http://127.0.0.1:{server.port}"


@pytest.fixture
def serve(upstream: str) -> Iterator:
    """serve(*flags) -> the started `corsproxy serve UPSTREAM --port N *flags` and its port."""
    started: list[ProxyProcess] = []

    def go(*flags: str, env: dict[str, str] | None = None) -> tuple[ProxyProcess, int]:
        port = free_port()
        proxy = ProxyProcess(["serve", upstream, "--port", str(port), *flags], env=env)
        started.append(proxy)
        return proxy, port

    yield go
    for proxy in started:
        proxy.stop()


def get(url: str, **headers: str) -> tuple[int, dict[str, str], str]:
    request = urllib.request.Request(url, headers=headers)
    try:
        with DIRECT.open(request, timeout=10) as answer:
            return answer.status, dict(answer.headers), answer.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read().decode()


async def test_the_start_up_output_prints_the_inspector_url_after_the_banner(serve) -> None:
    proxy, port, token = await_start(serve)
    assert proxy.banner.startswith(f"corsproxy: http://127.0.0.1:{port} -> ")
    assert token and len(token) >= 22
    _, _, second = await_start(serve)
    assert second != token  # new at every start


def await_start(serve, *flags: str, env: dict[str, str] | None = None):
    """Start, and read the inspector line that follows the banner: (process, port, token)."""
    proxy, port = serve(*flags, env=env)
    line = proxy.process.stdout.readline().strip()
    found = LINE.fullmatch(line)
    assert found, line
    assert int(found.group(1)) == port
    return proxy, port, found.group(2)


async def test_the_token_logs_in_and_nothing_else_does(serve) -> None:
    proxy, port, token = await_start(serve)
    base = f"http://localhost:{port}/__corsproxy"
    status, headers, _ = get(f"{base}/?token={token}")
    assert status == 303 and headers["Location"] == "/__corsproxy/"
    cookie = headers["Set-Cookie"].split(";", 1)[0]
    assert "HttpOnly; SameSite=Strict; Path=/__corsproxy/" in headers["Set-Cookie"]
    assert get(f"{base}/api/exchanges", Cookie=cookie)[0] == 200
    assert get(f"{base}/api/exchanges", Authorization=f"Bearer {token}")[0] == 200
    status, _, text = get(f"{base}/api/exchanges", Authorization="Bearer wrong")
    assert status == 403
    assert "`inspector: http://.../__corsproxy/?token=...`" in text
    assert get(f"{base}/?token=wrong")[0] == 403
    assert get(f"{base}/api/exchanges")[0] == 403


@pytest.mark.parametrize("site", ["same-site", "cross-site"])
async def test_another_sites_request_is_refused_whatever_token_it_carries(serve, site) -> None:
    proxy, port, token = await_start(serve)
    base = f"http://localhost:{port}/__corsproxy"
    for url in (f"{base}/api/exchanges", f"{base}/", f"{base}/api/har"):
        status, headers, text = get(
            url, Authorization=f"Bearer {token}", **{"Sec-Fetch-Site": site}
        )
        assert status == 403, url
        assert f"Sec-Fetch-Site: {site}" in text
        assert not [n for n in headers if n.lower().startswith("access-control-")]
    status, _, _ = get(f"{base}/api/exchanges", Authorization=f"Bearer {token}", Origin=ORIGIN)
    assert status == 403


async def test_the_token_never_reaches_the_access_log(serve) -> None:
    proxy, port, token = await_start(serve)
    get(f"http://localhost:{port}/__corsproxy/?token={token}")
    get(f"http://localhost:{port}/__corsproxy/?token={token}&again")
    # Through to the upstream, which runs on this test's event loop: not from this thread.
    await asyncio.to_thread(
        get, f"http://localhost:{port}/api/x", Authorization=f"Bearer {token}", Origin=ORIGIN
    )
    get(f"http://localhost:{port}/__corsproxy/api/exchanges", Authorization=f"Bearer {token}")
    _, output = proxy.stop()
    assert "GET /__corsproxy/?token=… " in output
    assert token not in output


async def test_a_token_from_the_environment_is_used(serve) -> None:
    _, port, token = await_start(serve, env={"CORSPROXY_INSPECTOR_TOKEN": FIXED})
    assert token == FIXED
    assert (
        get(f"http://localhost:{port}/__corsproxy/api/har", Authorization=f"Bearer {FIXED}")[0]
        == 200
    )


async def test_a_short_token_from_the_environment_stops_the_start(upstream) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "corsproxy", "serve", upstream, "--port", str(free_port())],
        env={**os.environ, "CORSPROXY_INSPECTOR_TOKEN": "hunter2"},
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode == 2
    assert (
        "CORSPROXY_INSPECTOR_TOKEN: inspector.token: expected at least 22 characters" in done.stderr
    )
    assert "hunter2" not in done.stderr


async def test_no_inspector_answers_404_and_prints_no_url(serve) -> None:
    proxy, port = serve("--no-inspector")
    for path in ("/__corsproxy/", "/__corsproxy/api/exchanges"):
        assert get(f"http://localhost:{port}{path}")[0] == 404
    assert get(f"http://localhost:{port}/__corsproxy/health")[0] == 200
    _, output = proxy.stop()
    assert "inspector:" not in output


@pytest.mark.skipif(not hasattr(__import__("socket"), "SO_REUSEPORT"), reason="needs SO_REUSEPORT")
async def test_with_workers_one_list_and_one_stream_show_every_worker(serve) -> None:
    proxy, port, token = await_start(serve, "--workers", "2")
    bearer = {"Authorization": f"Bearer {token}"}
    base = f"http://localhost:{port}"
    events = f"{base}/__corsproxy/api/events"
    async with aiohttp.ClientSession() as client, client.get(events, headers=bearer) as stream:
        assert stream.status == 200
        sent: list[str] = []
        streamed: set[int] = set()
        for n in range(64):  # a new connection each: the kernel picks a worker for each
            path = f"/w/{n}"
            connector = aiohttp.TCPConnector(force_close=True)
            async with aiohttp.ClientSession(connector=connector) as one:
                async with one.get(base + path, headers={"Origin": ORIGIN}) as resp:
                    assert resp.status == 200
            sent.append(path)
            while True:
                line = (await asyncio.wait_for(stream.content.readline(), 10)).decode()
                if line.startswith("data: "):
                    record = json.loads(line[6:])
                    assert record["path"] == path
                    streamed.add(record["worker"])
                    break
            if len(streamed) == 2:
                break
        assert len(streamed) == 2, "every exchange came from one worker"
        async with client.get(f"{base}/__corsproxy/api/exchanges", headers=bearer) as resp:
            kept = (await resp.json())["exchanges"]
    assert [r["path"] for r in kept] == sent
    assert {r["worker"] for r in kept} == streamed
    assert len({r["id"] for r in kept}) == len(kept)

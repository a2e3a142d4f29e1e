"""The access log of a real proxy: what a person sees on their terminal, at info and at debug.

The terminal tests run `corsproxy serve` as a process whose stderr is a pseudo-terminal, as
a person's shell gives it, and read what it writes there.
"""

from __future__ import annotations

import asyncio
import os
import re
import select
import subprocess

import aiohttp
from aiohttp import web

from tests.conftest import ORIGIN, free_port
from tests.proc import corsproxy_command
from tests.test_proxy import start_pair


def lines_of(log: str) -> list[str]:
    """The log's request lines without their time (checked by test_accesslog.py)."""
    return [line[13:] for line in log.splitlines() if not line.startswith(" ")]


async def test_a_refused_origin_says_blocked_where_the_status_is(
    aiohttp_server, start_proxy, client
):
    _, proxy, _ = await start_pair(aiohttp_server, start_proxy)
    async with client.get(proxy.url + "/x", headers={"Origin": "http://evil.example"}) as resp:
        assert resp.status == 200
    [line] = lines_of(proxy.log)
    assert line.startswith("GET /x origin=http://evil.example refused (")
    assert line.rsplit(" ", 1)[0].endswith(" -> 200 (blocked in the browser: origin refused)")


async def test_the_upstream_alone_finding_is_said_in_full_once_then_by_name(
    aiohttp_server, start_proxy, client
):
    _, proxy, _ = await start_pair(aiohttp_server, start_proxy)
    for path in ("/a", "/b", "/c"):
        async with client.get(proxy.url + path, headers={"Origin": ORIGIN}) as resp:
            assert resp.status == 200
    full = "upstream alone: CORSMissingAllowOrigin (no Access-Control-Allow-Origin header) -> fixed"
    short = "upstream alone: CORSMissingAllowOrigin -> fixed"
    said = [line.split("; ", 1)[1].rsplit(" -> 200 ", 1)[0] for line in lines_of(proxy.log)]
    assert said == [full, short, short]


async def test_debug_adds_the_four_header_sets_of_the_exchange(aiohttp_server, start_proxy, client):
    upstream, proxy, _ = await start_pair(aiohttp_server, start_proxy, log_level="debug")
    headers = {"Origin": ORIGIN, "X-Custom": "r-17"}
    async with client.get(proxy.url + "/users", headers=headers) as resp:
        assert resp.status == 200
    line, *block = proxy.log.splitlines()
    assert " GET /users origin=http://localhost:5173 allowed " in line
    titles = [row for row in block if not row.startswith("      ")]
    assert titles == [
        "    from the browser:",
        "    to the upstream:",
        "    from the upstream:",
        "    to the browser:",
    ]
    sections: list[list[str]] = []
    for row in block:
        if row in titles:
            sections.append([])
        else:
            sections[-1].append(row)
    browser, sent, answer, out = sections
    assert "      X-Custom: r-17" in browser and f"      Host: 127.0.0.1:{proxy.port}" in browser
    assert f"      Host: 127.0.0.1:{upstream.port}" in sent  # the upstream's own Host
    assert "      X-Custom: r-17" in sent
    assert "      X-Total-Count: 42" in answer
    assert not any("Access-Control-" in row for row in answer)  # the backend sends no CORS
    assert f"      Access-Control-Allow-Origin: {ORIGIN}" in out


async def test_info_writes_no_headers(aiohttp_server, start_proxy, client):
    _, proxy, _ = await start_pair(aiohttp_server, start_proxy)
    async with client.get(proxy.url + "/users", headers={"Origin": ORIGIN}) as resp:
        assert resp.status == 200
    assert len(proxy.log.splitlines()) == 1


def serve_on_a_terminal(upstream_port: int, env: dict[str, str]) -> tuple[str, str]:
    """`corsproxy serve` with a pseudo-terminal as stdout and stderr: send one allowed and
    one refused request once it listens, stop it, and return what the terminal showed, whole
    and from the first request line on."""
    leader, follower = os.openpty()
    port = free_port()
    process = subprocess.Popen(
        [*corsproxy_command(), "serve", f"http://127.0.0.1:{upstream_port}", "--port", str(port)],
        stdout=follower,
        stderr=follower,
        env={**os.environ, "TERM": "xterm", **env},
    )
    os.close(follower)
    try:
        shown = read_until(leader, r"config: [^\n]*\n", "")
        for origin in (ORIGIN, "http://evil.example"):
            asyncio.run(get(f"http://127.0.0.1:{port}/users", origin))
        shown = read_until(leader, r"evil\.example[^\n]*ms\r\n", shown)
    finally:
        process.terminate()
        process.wait(10)
        os.close(leader)
    return shown, shown.split("config: ", 1)[1].split("\r\n", 1)[1]


def read_until(fd: int, pattern: str, shown: str) -> str:
    """Read the terminal until `pattern` matches what it shows; returns all it showed."""
    while not re.search(pattern, shown):
        ready, _, _ = select.select([fd], [], [], 30)
        assert ready, f"nothing more on the terminal; it shows {shown!r}"
        shown += os.read(fd, 4096).decode()
    return shown


async def get(url: str, origin: str) -> None:
    async with aiohttp.ClientSession() as session:
        async with session.get(url, headers={"Origin": origin}) as resp:
            await resp.read()


async def test_on_a_terminal_the_verdicts_are_coloured(aiohttp_server):
    upstream = await aiohttp_server(no_cors_backend())
    _, requests = await asyncio.to_thread(serve_on_a_terminal, upstream.port, {})
    fixed, refused = requests.splitlines()[:2]
    assert f"origin={ORIGIN} \x1b[33mallowed\x1b[0m (origin allowed by 'localhost'); " in fixed
    assert fixed.split("fixed ", 1)[1].startswith("\x1b[33m-> 200\x1b[0m ")
    assert "origin=http://evil.example \x1b[31mrefused\x1b[0m (origin " in refused
    assert "\x1b[31m-> 200 (blocked in the browser: origin refused)\x1b[0m " in refused


async def test_no_color_keeps_a_terminal_plain(aiohttp_server):
    upstream = await aiohttp_server(no_cors_backend())
    shown, requests = await asyncio.to_thread(serve_on_a_terminal, upstream.port, {"NO_COLOR": "1"})
    assert "\x1b" not in shown
    assert "-> 200 (blocked in the browser: origin refused) " in requests


def no_cors_backend() -> web.Application:
    async def users(request: web.Request) -> web.Response:
        return web.json_response([{"id": 1}])

    app = web.Application()
    app.router.add_get("/users", users)
    return app

"""`corsproxy serve --workers N`: N real processes on one port, watched and stopped by a parent."""

from __future__ import annotations

import asyncio
import fcntl
import importlib.util
import os
import re
import signal
import socket
import subprocess
import sys
import threading

import aiohttp
import pytest
from aiohttp import web

from corsproxy.proxy.accesslog import pieces
from corsproxy.serve.workers import Restarts, exit_reason
from tests.conftest import ORIGIN, free_port
from tests.proc import ProxyProcess, corsproxy_command

FAST = "; uvloop" if importlib.util.find_spec("uvloop") else ""  # as in test_cli.py
pytestmark = pytest.mark.skipif(not hasattr(socket, "SO_REUSEPORT"), reason="needs SO_REUSEPORT")


@pytest.fixture
async def upstream(aiohttp_server) -> str:
    """A backend without CORS that answers every path."""

    async def echo(request: web.Request) -> web.Response:
        return web.Response(text=request.path)

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    server = await aiohttp_server(app)
    return f"http://127.0.0.1:{server.port}"


def serve(upstream: str, *flags: str) -> tuple[ProxyProcess, int]:
    port = free_port()
    proxy = ProxyProcess(["serve", upstream, "--port", str(port), "--workers", "2", *flags])
    proxy.inspector_line()  # printed once, by the parent, after the banner
    return proxy, port


async def pids_answering(port: int, want: int | set[int], attempts: int = 64) -> set[int]:
    """Health checks over fresh connections (the kernel picks a worker for each) until `want`
    pids (a count, or these very pids) have answered; every one of them must succeed."""
    seen: set[int] = set()
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as client:
        for _ in range(attempts):
            async with client.get(f"http://127.0.0.1:{port}/__corsproxy/health") as resp:
                assert resp.status == 200
                seen.add((await resp.json())["pid"])
            if (len(seen) >= want) if isinstance(want, int) else (want <= seen):
                break
    return seen


async def pids_answering_tls(port: int, want: int, attempts: int = 64) -> set[int]:
    """pids_answering() over https, the proxy's certificate unchecked."""
    seen: set[int] = set()
    connector = aiohttp.TCPConnector(force_close=True, ssl=False)
    async with aiohttp.ClientSession(connector=connector) as client:
        for _ in range(attempts):
            async with client.get(f"https://localhost:{port}/__corsproxy/health") as resp:
                seen.add((await resp.json())["pid"])
            if len(seen) >= want:
                break
    return seen


async def read_until(proxy: ProxyProcess, needle: str) -> list[str]:
    """The proxy's output lines up to and including the first that contains `needle`."""

    def read() -> list[str]:
        lines = []
        for line in proxy.process.stdout:
            lines.append(line.rstrip("\n"))
            if needle in line:
                return lines
        raise AssertionError(f"{needle!r} never came; got {lines}")

    return await asyncio.wait_for(asyncio.to_thread(read), 10)


def parent_of(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("PPid:"))


def gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


async def test_two_workers_serve_one_port_with_cors_and_stop_on_sigterm(upstream):
    proxy, port = serve(upstream)
    try:
        assert proxy.banner == (
            f"corsproxy: http://127.0.0.1:{port} -> {upstream} (origins: localhost{FAST}; "
            "2 workers)"
        )
        async with aiohttp.ClientSession() as client:
            async with client.get(
                f"http://127.0.0.1:{port}/api/x", headers={"Origin": ORIGIN}
            ) as resp:
                assert (resp.status, await resp.text()) == (200, "/api/x")
                assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN
                assert resp.headers["Access-Control-Allow-Credentials"] == "true"
                assert "Origin" in resp.headers["Vary"]
        pids = await pids_answering(port, 2)
        assert len(pids) == 2
        assert {parent_of(pid) for pid in pids} == {proxy.pid}
    finally:
        code, output = await asyncio.to_thread(proxy.stop, signal.SIGTERM)
    assert code == 0, output
    assert output.count("corsproxy: stopping (draining in-flight requests)") == 1
    assert f"GET /api/x origin={ORIGIN} allowed" in output
    assert all(gone(pid) for pid in pids)


async def test_a_killed_worker_is_replaced_and_the_port_keeps_answering(upstream):
    proxy, port = serve(upstream, "--log-level", "warning")
    try:
        victim, survivor = sorted(await pids_answering(port, 2))
        os.kill(victim, signal.SIGKILL)
        lines = await read_until(proxy, "listening in place of")
        assert f"corsproxy: worker {victim} exited with signal SIGKILL; restarting" in lines
        replacement = int(
            re.fullmatch(rf"corsproxy: worker (\d+) listening in place of {victim}", lines[-1])[1]
        )
        assert await pids_answering(port, {survivor, replacement}) == {survivor, replacement}
        assert parent_of(replacement) == proxy.pid
    finally:
        code, output = await asyncio.to_thread(proxy.stop, signal.SIGINT)
    assert code == 0, output
    assert all(gone(pid) for pid in (survivor, replacement))


async def test_workers_that_keep_dying_at_start_up_are_given_up_on(upstream, tmp_path):
    trustme = pytest.importorskip("trustme")
    cert = trustme.CA().issue_cert("localhost")
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    config = tmp_path / "corsproxy.yaml"
    config.write_text("listen:\n  tls: {cert: cert.pem, key: key.pem}\n")
    proxy, port = serve(upstream, "-c", str(config), "--log-level", "warning")
    pids = await pids_answering_tls(port, 2)
    # Each new worker reads the files again: from now on every one fails as it starts.
    (tmp_path / "cert.pem").unlink()
    os.kill(min(pids), signal.SIGKILL)
    code, output = await asyncio.to_thread(proxy.wait)
    assert code == 1, output
    lines = output.splitlines()
    assert f"corsproxy: worker {min(pids)} exited with signal SIGKILL; restarting" in lines
    assert re.search(r"corsproxy: worker \d+ cannot start: No such file or directory", output)
    assert re.fullmatch(
        r"corsproxy: worker \d+ exited with status 1; giving up: 3 workers in a row exited "
        r"within 1 s of starting",
        lines[-1],
    )
    assert all(gone(pid) for pid in pids)


PORT_ZERO = """
import sys
from corsproxy.serve import workers
from corsproxy.config.load import Overrides, load

sys.exit(workers.run(load(Overrides(upstream=sys.argv[1], workers=2), {}), port=0))
"""


async def test_port_0_is_one_free_port_for_every_worker(upstream):
    # listen.port refuses 0, but server.start(port=0) gives the tests a free port: so does this.
    proxy = ProxyProcess([upstream], command=[sys.executable, "-c", PORT_ZERO])
    try:
        port = int(re.match(r"corsproxy: http://127\.0\.0\.1:(\d+) ", proxy.banner)[1])
        assert port != 0
        assert len(await pids_answering(port, 2)) == 2
    finally:
        code, output = await asyncio.to_thread(proxy.stop)
    assert code == 0, output


def run_serve(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        corsproxy_command() + ["serve", *args], capture_output=True, text=True, timeout=30
    )


def busy_message(port: int) -> str:
    return (
        f"corsproxy: cannot listen on 127.0.0.1:{port}: address already in use; "
        "choose another with --port or listen.port\n"
    )


def test_a_busy_port_is_the_usual_message_and_exit_2():
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_serve("http://localhost:8000", "--port", str(port), "--workers", "2")
    assert (result.returncode, result.stderr) == (2, busy_message(port))


async def test_a_port_another_corsproxy_serves_with_workers_is_busy_too(upstream):
    # Both would set SO_REUSEPORT: without the plain bind first they would share the port.
    proxy, port = serve(upstream)
    try:
        result = await asyncio.to_thread(run_serve, upstream, "--port", str(port), "--workers", "2")
        assert (result.returncode, result.stderr) == (2, busy_message(port))
    finally:
        assert proxy.stop()[0] == 0


async def test_log_lines_from_all_workers_arrive_whole(upstream):
    """Many long lines at once from two processes into one pipe: none is cut by another."""
    proxy, port = serve(upstream)
    # A one-page pipe: any write longer than PIPE_BUF now waits part-way, letting the other
    # worker's bytes in, so a batch written whole would show up as mixed lines at once.
    fcntl.fcntl(proxy.process.stdout.fileno(), fcntl.F_SETPIPE_SZ, 4096)
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(proxy.process.stdout))
    reader.start()
    long = "a" * 1500
    try:
        connector = aiohttp.TCPConnector(force_close=True, limit=32)
        async with aiohttp.ClientSession(connector=connector) as client:

            async def get(i: int) -> int:
                async with client.get(f"http://127.0.0.1:{port}/{long}/{i}") as resp:
                    await resp.read()
                    return resp.status

            assert set(await asyncio.gather(*(get(i) for i in range(300)))) == {200}
    finally:
        proxy.process.send_signal(signal.SIGTERM)
        code = await asyncio.to_thread(proxy.process.wait, 10)
        reader.join(10)
    assert code == 0
    request = re.compile(rf"\d\d:\d\d:\d\d\.\d{{3}} GET /{long}/(\d+) [^/]*-> 200 \d+\.\dms\n")
    numbers = []
    for line in lines:
        if not line.startswith(("corsproxy: ", "config: ")):
            match = request.fullmatch(line)
            assert match, f"a cut or mixed line: {line[:80]!r}...{line[-80:]!r}"
            numbers.append(int(match[1]))
    assert sorted(numbers) == list(range(300))


LINE = "y" * 99 + "\n"
PIECES = [
    ("nothing queued, nothing written", [], 10, []),
    ("lines that fit go out as one piece", ["ab\n", "cd\n"], 10, ["ab\ncd\n"]),
    (
        "a piece ends on a line end rather than pass the limit",
        ["abcd\n", "efgh\n", "ij\n"],
        10,
        ["abcd\nefgh\n", "ij\n"],
    ),
    (
        "a line longer than the limit goes alone",
        ["a\n", "x" * 20 + "\n", "b\n"],
        10,
        ["a\n", "x" * 20 + "\n", "b\n"],
    ),
    ("bytes are counted, not characters", ["éééé\n", "éééé\n"], 10, ["éééé\n", "éééé\n"]),
    (
        "at PIPE_BUF, 40 lines of 100 bytes, then the rest",
        [LINE] * 50,
        4096,
        [LINE * 40, LINE * 10],
    ),
]


@pytest.mark.parametrize(
    ("lines", "limit", "want"), [r[1:] for r in PIECES], ids=[r[0] for r in PIECES]
)
def test_log_batches_are_split_into_pipe_sized_pieces(lines, limit, want):
    assert pieces(lines, limit) == want


EXITS = [
    ("a clean exit", 0, "exited with status 0"),
    ("an error exit", 1 << 8, "exited with status 1"),
    ("killed", signal.SIGKILL, "exited with signal SIGKILL"),
    ("segfault", signal.SIGSEGV, "exited with signal SIGSEGV"),
]


@pytest.mark.parametrize(("status", "text"), [r[1:] for r in EXITS], ids=[r[0] for r in EXITS])
def test_exit_reason(status: int, text: str):
    assert exit_reason(status) == text


RESTARTS = [
    ("one death at start-up is replaced", [True], [True]),
    ("the third death in a row at start-up gives up", [True, True, True], [True, True, False]),
    ("a worker that had been serving resets the count", [True, True, False, True], [True] * 4),
    ("a worker surviving its start resets the count", [True, True, "survived", True], [True] * 3),
]


@pytest.mark.parametrize(
    ("events", "replace"), [r[1:] for r in RESTARTS], ids=[r[0] for r in RESTARTS]
)
def test_workers_dying_at_start_up_are_given_up_on(events: list, replace: list[bool]):
    restarts = Restarts(limit=3)
    answers = []
    for event in events:
        if event == "survived":
            restarts.survived()
        else:
            answers.append(restarts.died(at_start=event))
    assert answers == replace

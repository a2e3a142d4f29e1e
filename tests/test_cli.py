"""The command line as a user runs it: start-up line, exit codes, signals, check output."""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import shlex
import signal
import subprocess

import aiohttp
import pytest
from aiohttp import web

from tests.conftest import ORIGIN, free_port
from tests.proc import ProxyProcess, corsproxy_command

# uvloop is used when installed (the `fast` extra), and the start-up line says so.
FAST = "; uvloop" if importlib.util.find_spec("uvloop") else ""


def run(*args: str, cwd=None, env=None) -> subprocess.CompletedProcess:
    import os

    return subprocess.run(
        corsproxy_command() + list(args),
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=30,
    )


async def test_serve_prints_where_it_listens_forwards_and_which_origins():
    port = free_port()
    proxy = ProxyProcess(["serve", "http://localhost:8000", "--port", str(port)])
    assert proxy.banner == (
        f"corsproxy: http://127.0.0.1:{port} -> http://localhost:8000 (origins: localhost{FAST})"
    )
    code, _ = proxy.stop(signal.SIGINT)
    assert code == 0


async def test_environment_is_used_and_flags_win_over_it():
    port, other = free_port(), free_port()
    proxy = ProxyProcess(
        ["serve", "--port", str(port)],
        env={
            "CORSPROXY_UPSTREAM": "http://localhost:9000",
            "CORSPROXY_PORT": str(other),
            "CORSPROXY_ALLOW_ORIGINS": "http://app.test:3000, localhost",
        },
    )
    assert proxy.banner == (
        f"corsproxy: http://127.0.0.1:{port} -> http://localhost:9000 "
        f"(origins: http://app.test:3000, localhost{FAST})"
    )
    assert proxy.stop()[0] == 0


async def test_sigterm_lets_an_in_flight_request_finish_then_exits_0(aiohttp_server):
    arrived, release = asyncio.Event(), asyncio.Event()

    async def slow(request: web.Request) -> web.Response:
        arrived.set()
        await release.wait()
        return web.Response(text="finished")

    app = web.Application()
    app.router.add_get("/slow", slow)
    upstream = await aiohttp_server(app)
    port = free_port()
    proxy = ProxyProcess(["serve", f"http://127.0.0.1:{upstream.port}", "--port", str(port)])
    async with aiohttp.ClientSession() as client:
        pending = asyncio.ensure_future(client.get(f"http://127.0.0.1:{port}/slow"))
        await asyncio.wait_for(arrived.wait(), 10)
        proxy.process.send_signal(signal.SIGTERM)
        release.set()
        async with await asyncio.wait_for(pending, 10) as resp:
            assert await resp.text() == "finished"
    code, output = await asyncio.to_thread(proxy.wait)
    assert code == 0, output
    assert "stopping" in output


def test_bad_flag_value_exits_2_naming_the_key():
    result = run("serve", "http://localhost:8000", "--port", "eighty")
    assert result.returncode == 2
    assert result.stderr.splitlines()[0] == (
        "--port: listen.port: expected an integer from 1 to 65535; got 'eighty'"
    )


def test_a_bad_workers_flag_exits_2_naming_the_key():
    result = run("serve", "http://localhost:8000", "--workers", "0")
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "--workers: listen.workers: expected a number of processes from 1 to 64; got 0",
        "corsproxy: 1 problem found; nothing was started",
    ]


async def test_one_worker_is_the_plain_single_process():
    port = free_port()
    proxy = ProxyProcess(["serve", "http://localhost:8000", "--port", str(port), "--workers", "1"])
    assert proxy.banner == (
        f"corsproxy: http://127.0.0.1:{port} -> http://localhost:8000 (origins: localhost{FAST})"
    )
    assert proxy.stop()[0] == 0


def test_check_shows_the_workers_from_the_environment():
    result = run(
        "check", env={"CORSPROXY_UPSTREAM": "http://localhost:8000", "CORSPROXY_WORKERS": "3"}
    )
    assert result.returncode == 0, result.stderr
    assert "\n  workers: 3   # processes serving the port" in result.stdout


def test_serve_without_upstream_says_how_to_give_one():
    result = run("serve", env={"CORSPROXY_UPSTREAM": ""})
    assert result.returncode == 2
    assert (
        "upstream: no upstream configured; give one, e.g. corsproxy serve "
        "http://localhost:8000" in result.stderr
    )


def test_busy_port_is_a_clear_message_and_exit_2():
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run("serve", "http://localhost:8000", "--port", str(port))
    assert result.returncode == 2
    assert f"corsproxy: cannot listen on 127.0.0.1:{port}: " in result.stderr
    assert "Traceback" not in result.stderr


def test_check_accepts_the_example_config():
    result = run("check", "-c", "config.example.yaml")
    assert result.returncode == 0, result.stderr
    assert "routes (longest prefix wins):" in result.stdout


def test_check_reports_a_wrong_key_and_a_wrong_type_with_file_and_line(tmp_path):
    config = tmp_path / "corsproxy.yaml"
    config.write_text(
        "upstream: http://localhost:8000\nlisten:\n  prot: 8080\n"
        "cors:\n  allow_credentials: maybe\n"
    )
    result = run("check", "-c", str(config))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"{config}:3: listen.prot: unknown key; did you mean 'port'?",
        f"{config}:5: cors.allow_credentials: expected true or false; got 'maybe'",
        "corsproxy: 2 problems found",
    ]


def test_corsproxy_yaml_in_the_working_directory_is_picked_up(tmp_path):
    (tmp_path / "corsproxy.yaml").write_text("upstream: http://localhost:7000\n")
    result = run("check", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "  /  -> http://localhost:7000 " in result.stdout


def test_an_upstream_without_its_scheme_is_one_problem_with_the_url_meant(tmp_path):
    result = run("serve", "localhost:18100", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        "UPSTREAM: upstream: expected an http:// or https:// URL such as http://localhost:8000; "
        "got 'localhost:18100'; did you mean http://localhost:18100?",
        "corsproxy: 1 problem found; nothing was started",
    ]


def test_a_yaml_syntax_error_names_one_line(tmp_path):
    config = tmp_path / "corsproxy.yaml"
    config.write_text(
        "upstream: http://localhost:8000\ncors:\n  allow_origins: [http://a.test\n"
        "  max_age: 5\nlisten:\n  port: 3\n"
    )
    result = run("check", "-c", str(config))
    assert result.returncode == 2
    assert result.stderr.splitlines() == [
        f"{config}:3: not valid YAML: the '[' on this line is never closed with ']'",
        "corsproxy: 1 problem found",
    ]


def test_a_bad_origin_is_echoed_like_every_other_bad_value(tmp_path):
    result = run("serve", "http://localhost:8000", "--allow-origin", "http://a.test/", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.splitlines()[0] == (
        "--allow-origin: cors.allow_origins[0]: an origin has no path or trailing slash "
        "(browsers never send one); got 'http://a.test/'; did you mean 'http://a.test'?"
    )


def start_up_lines(proxy: ProxyProcess) -> list[str]:
    """The banner and the line that names the config file (after the inspector's)."""
    inspector = proxy.inspector_line()
    assert inspector.startswith("inspector: http://localhost:"), inspector
    return [proxy.banner, proxy.process.stdout.readline().rstrip("\n")]


async def test_serve_url_beside_a_corsproxy_yaml_names_the_file_and_the_merge(tmp_path):
    (tmp_path / "corsproxy.yaml").write_text(
        "routes:\n  - prefix: /api\n    upstream: http://localhost:9000\n"
        "  - prefix: /\n    upstream: http://localhost:3000\n"
        "cors:\n  allow_origins: [localhost, https://app.example.com]\n"
    )
    port = free_port()
    proxy = ProxyProcess(["serve", "http://localhost:8000", "--port", str(port)], cwd=tmp_path)
    try:
        assert start_up_lines(proxy) == [
            f"corsproxy: http://127.0.0.1:{port} -> /api http://localhost:9000, "
            f"/ http://localhost:8000 (origins: localhost, https://app.example.com{FAST})",
            "config: ./corsproxy.yaml (found in the working directory); on top of it: "
            'UPSTREAM in place of its "/" route (its /api route kept)',
        ]
    finally:
        assert proxy.stop()[0] == 0


async def test_serve_without_a_config_file_says_it_read_none(tmp_path):
    port = free_port()
    proxy = ProxyProcess(["serve", "http://localhost:8000", "--port", str(port)], cwd=tmp_path)
    try:
        assert start_up_lines(proxy)[1] == (
            "config: none (no -c FILE, no CORSPROXY_CONFIG, no corsproxy.yaml in this folder)"
        )
    finally:
        assert proxy.stop()[0] == 0


async def test_a_config_file_named_by_the_environment_says_so_and_what_flags_replaced(tmp_path):
    config = tmp_path / "dev.yaml"
    config.write_text("upstream: http://localhost:3000\nlisten:\n  port: 1\nlog_level: info\n")
    port = free_port()
    proxy = ProxyProcess(
        ["serve", "--port", str(port)],
        env={"CORSPROXY_CONFIG": str(config), "CORSPROXY_LOG_LEVEL": "warning"},
        cwd=tmp_path,
    )
    try:
        assert start_up_lines(proxy)[1] == (
            f"config: {config} (from CORSPROXY_CONFIG); on top of it: "
            "--port over its listen.port, CORSPROXY_LOG_LEVEL over its log_level"
        )
    finally:
        assert proxy.stop()[0] == 0


def test_python_dash_m_works_too():
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "corsproxy", "--version"], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0 and result.stdout.startswith("corsproxy ")


async def test_started_proxy_answers_a_preflight(aiohttp_server):
    port = free_port()
    proxy = ProxyProcess(["serve", "http://localhost:1", "--port", str(port)])
    try:
        async with aiohttp.ClientSession() as client:
            async with client.options(
                f"http://127.0.0.1:{port}/x",
                headers={"Origin": ORIGIN, "Access-Control-Request-Method": "PUT"},
            ) as resp:
                assert resp.status == 204
                assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN
    finally:
        code, log = proxy.stop()
    assert code == 0
    assert f"OPTIONS /x origin={ORIGIN} preflight (origin allowed by 'localhost') -> 204" in log


@pytest.mark.parametrize("argv", [[], ["frobnicate"]], ids=["no command", "unknown command"])
def test_bad_use_exits_2(argv):
    assert run(*argv).returncode == 2


def test_the_open_files_limit_is_raised_to_the_hard_limit():
    import resource

    from corsproxy.serve.server import raise_open_files_limit

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(256, hard), hard))
        warning = raise_open_files_limit()
        raised, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
        wanted = hard if hard != resource.RLIM_INFINITY else 65536
        assert raised == wanted
        assert (warning is None) == (raised >= 4096)
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def subcommands() -> dict[str, argparse.ArgumentParser]:
    from corsproxy import cli

    parser = cli._parser()
    [commands] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
    return {"corsproxy": parser, **commands.choices}


# doctor's help is its own front-end's (tests/test_doctor.py).
HELPED = ("corsproxy", "serve", "check", "demo")


@pytest.mark.parametrize("command", HELPED)
def test_help_ends_with_examples_that_are_real_command_lines(command):
    parser = subcommands()[command]
    text = parser.format_help()
    title = "start here:" if command == "corsproxy" else "examples:"
    block = text.split(f"\n{title}\n", 1)[1].split("\n\n", 1)[0]
    examples = [line.strip() for line in block.splitlines() if line.startswith("  corsproxy ")]
    examples += [line.strip() for line in block.splitlines() if line.startswith("  CORSPROXY_")]
    assert 2 <= len(examples) <= 3, block
    for example in examples:
        argv = shlex.split(example.split("   ")[0])  # the command, without its comment
        while "=" in argv[0]:  # VARIABLE=value before the command
            argv.pop(0)
        assert argv[0] == "corsproxy"
        args = subcommands()["corsproxy"].parse_args(argv[1:])  # SystemExit if it is not
        assert command == "corsproxy" or args.command == command


@pytest.mark.parametrize("command", HELPED)
def test_every_option_is_described(command):
    parser = subcommands()[command]
    undescribed = [a.dest for a in parser._actions if not a.help]
    for action in parser._actions:  # the list of commands: each one's own line
        if isinstance(action, argparse._SubParsersAction):
            undescribed.remove(action.dest)
            undescribed += [a.dest for a in action._choices_actions if not a.help]
    assert undescribed == []


def test_the_help_is_what_the_command_prints():
    result = run("serve", "--help")
    assert result.returncode == 0
    assert "\nexamples:\n  corsproxy serve http://localhost:8000\n" in result.stdout

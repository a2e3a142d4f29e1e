"""`corsproxy demo` as a real process: it serves the page, the proxy and the backend on the
ports it prints, stops cleanly on SIGINT and SIGTERM, and moves off busy ports (saying so).

Nothing waits by sleeping: the demo prints "Press Ctrl-C to stop all three." once all three
servers listen, and a reader thread hands the test each line as it comes.
"""

from __future__ import annotations

import http.client
import json
import os
import queue
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager

import pytest

from corsproxy.demo.app import port_free

READY = "Press Ctrl-C to stop all three."
TIMEOUT = 20.0
PORT_LINE = re.compile(r"^  (page|proxy|backend) +http://localhost:(\d+)/ ")


class DemoProcess:
    """`python -m corsproxy demo ARGS` in a child; ready once it printed READY."""

    def __init__(self, args: Sequence[str], env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "corsproxy", "demo", *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self.lines: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()
        self.wait_for(lambda line: line == READY)
        self.ports = {m[1]: int(m[2]) for m in (PORT_LINE.match(line) for line in self.lines) if m}

    def _read(self) -> None:
        for line in self.process.stdout:  # type: ignore[union-attr]
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def wait_for(self, matches: Callable[[str], bool]) -> str:
        """The next line that matches (earlier lines are kept in self.lines)."""
        deadline = time.monotonic() + TIMEOUT
        while (left := deadline - time.monotonic()) > 0:
            try:
                line = self._queue.get(timeout=left)
            except queue.Empty:
                break
            if line is None:
                self.process.wait()
                break
            self.lines.append(line)
            if matches(line):
                return line
        self.process.kill()
        raise AssertionError("demo output so far:\n" + "\n".join(self.lines))

    def url(self, role: str, path: str = "/") -> str:
        return f"http://localhost:{self.ports[role]}{path}"

    def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        self.wait_for(lambda line: line == "corsproxy demo: stopped")
        return self.process.wait(timeout=TIMEOUT)


@contextmanager
def demo(*args: str, env: dict[str, str] | None = None) -> Iterator[DemoProcess]:
    running = DemoProcess(args, env)
    try:
        yield running
    finally:
        if running.process.poll() is None:
            running.process.kill()
            running.process.wait()


def get(url: str, origin: str | None = None) -> tuple[int, dict[str, str], bytes]:
    """A plain GET (no browser): status, headers with lower-case names, body."""
    request = urllib.request.Request(url, headers={"Origin": origin} if origin else {})
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            headers = {k.lower(): v for k, v in response.headers.items()}
            return response.status, headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, {k.lower(): v for k, v in error.headers.items()}, error.read()


def free_base() -> int:
    """A port N with N, N+1 and N+2 all free."""
    for _ in range(50):
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            base = probe.getsockname()[1]
        if base < 65533 and all(port_free(base + i) for i in range(3)):
            return base
    raise AssertionError("no three consecutive free ports")


@contextmanager
def occupied(ports: Sequence[int], host: str = "127.0.0.1") -> Iterator[None]:
    """Listen on the ports (a port something else already holds counts as occupied too)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    held = []
    try:
        for port in ports:
            sock = socket.socket(family)
            try:
                sock.bind((host, port))
                sock.listen()
            except OSError:
                sock.close()
                continue
            held.append(sock)
        yield
    finally:
        for sock in held:
            sock.close()


def test_it_serves_the_page_the_proxy_and_the_backend_on_the_ports_it_prints():
    base = free_base()
    with demo("--port-base", str(base)) as running:
        assert running.ports == {"page": base, "proxy": base + 1, "backend": base + 2}
        assert f"corsproxy demo: open http://localhost:{base}/" in running.lines
        assert not any("busy" in line for line in running.lines)
        page = f"http://localhost:{base}"

        status, headers, body = get(running.url("page"))
        assert (status, headers["content-type"]) == (200, "text/html; charset=utf-8")
        assert b"/demo.js" in body and b"http" not in body.split(b"<body")[0].replace(
            b'name="viewport"', b""
        )  # the head loads nothing from elsewhere
        for asset in ("/demo.css", "/demo.js"):
            assert get(running.url("page", asset))[0] == 200

        config = json.loads(get(running.url("page", "/config.json"))[2])
        assert {k: config[k] for k in ("page", "proxy", "backend")} == {
            "page": page,
            "proxy": f"http://localhost:{base + 1}",
            "backend": f"http://localhost:{base + 2}",
        }

        status, headers, body = get(running.url("backend", "/api/hello"), origin=page)
        assert status == 200 and not [h for h in headers if h.startswith("access-control-")]
        status, headers, body = get(running.url("proxy", "/api/hello"), origin=page)
        assert (status, headers["access-control-allow-origin"]) == (200, page)
        assert json.loads(body) == {"message": "Hello from the backend!"}
        assert get(running.url("proxy", "/__corsproxy/health"))[0] == 200

        assert running.stop() == 0


def test_the_demo_prints_its_proxys_inspector_and_the_page_links_to_it():
    with demo("--port-base", "0") as running:
        [line] = [line for line in running.lines if line.startswith("  inspector ")]
        url = line.split()[1]
        proxy = running.ports["proxy"]
        assert re.fullmatch(rf"http://localhost:{proxy}/__corsproxy/\?token=[\w-]{{22,}}", url)
        assert json.loads(get(running.url("page", "/config.json"))[2])["inspector"] == url
        assert b"see these\n      requests in the inspector" in get(running.url("page"))[2]
        # The token is the proxy's own: it logs in (a cookie, then the page without the token).
        parts = urllib.parse.urlsplit(url)
        connection = http.client.HTTPConnection("127.0.0.1", parts.port, timeout=TIMEOUT)
        connection.request("GET", f"{parts.path}?{parts.query}")
        answer = connection.getresponse()
        assert (answer.status, answer.getheader("Location")) == (303, "/__corsproxy/")
        assert "HttpOnly" in answer.getheader("Set-Cookie", "")
        connection.close()
        assert running.stop() == 0


def test_diagnose_says_what_doctor_says_for_a_card():
    with demo("--port-base", "0") as running:
        status, _, body = get(running.url("page", "/diagnose?card=simple"))
        report = json.loads(body)
        assert status == 200
        assert [d["finding"] for d in report["direct"]] == ["CORSMissingAllowOrigin"]
        assert [d["verdict"] for d in report["proxied"]] == ["allowed"]
        assert get(running.url("page", "/diagnose?card=nope"))[0] == 404


def test_the_proxy_log_shows_the_pages_requests_and_not_the_demos_diagnosis():
    with demo("--port-base", "0") as running:
        for card in ("simple", "credentials"):
            assert get(running.url("page", f"/diagnose?card={card}"))[0] == 200
        page = running.url("page").rstrip("/")
        assert get(running.url("proxy", "/api/hello?from-the-page"), origin=page)[0] == 200
        line = running.wait_for(lambda line: "/api/" in line)
        assert re.fullmatch(
            rf"\d\d:\d\d:\d\d\.\d{{3}} GET /api/hello\?from-the-page origin={page} allowed .*",
            line,
        )
        assert running.stop() == 0
    assert [line for line in running.lines if "/api/" in line] == [line]


def test_the_diagnosis_shows_the_proxy_it_stands_for():
    with demo("--port-base", "0") as running:
        report = json.loads(get(running.url("page", "/diagnose?card=simple"))[2])
        proxy = running.url("proxy", "/api/hello")
        assert [doc["url"] for doc in report["proxied"]] == [proxy]
        assert str(running.ports["proxy"]) in json.dumps(report["proxied"])
        assert running.stop() == 0


def test_a_page_url_by_another_host_name_redirects_to_localhost():
    with demo("--port-base", "0") as running:
        request = urllib.request.Request(f"http://127.0.0.1:{running.ports['page']}/")
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            assert response.url == running.url("page")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["Ctrl-C", "SIGTERM"])
def test_a_signal_stops_all_three_with_exit_0(sig):
    with demo("--port-base", "0") as running:
        assert get(running.url("proxy", "/api/hello"))[0] == 200
        assert running.stop(sig) == 0
        assert "Traceback" not in "\n".join(running.lines)
        assert all(port_free(port) for port in running.ports.values())


def test_busy_default_ports_are_swapped_for_free_ones_on_one_line():
    with occupied([8700, 8701, 8702]), demo() as running:
        busy = [line for line in running.lines if "busy" in line]
        assert busy == [
            f"corsproxy demo: port 8700 is busy, so the page uses {running.ports['page']}; "
            f"port 8701 is busy, so the proxy uses {running.ports['proxy']}; "
            f"port 8702 is busy, so the backend uses {running.ports['backend']}"
        ]
        assert not {8700, 8701, 8702} & set(running.ports.values())
        assert get(running.url("proxy", "/api/hello"))[0] == 200
        assert json.loads(get(running.url("page", "/config.json"))[2])["proxy"] == running.url(
            "proxy"
        ).rstrip("/")
        assert running.stop() == 0


def test_only_the_busy_port_moves():
    base = free_base()
    with occupied([base + 1]), demo("--port-base", str(base)) as running:
        assert running.ports["page"] == base and running.ports["backend"] == base + 2
        assert running.ports["proxy"] != base + 1
        assert f"corsproxy demo: port {base + 1} is busy, so the proxy uses" in running.lines[0]
        assert running.stop() == 0


def test_a_port_taken_on_ipv6_localhost_counts_as_busy():
    """Browsers try ::1 first for localhost: a dev server there would answer instead."""
    if not socket.has_ipv6 or not _ipv6_loopback():
        pytest.skip("no IPv6 loopback here")
    base = free_base()
    with occupied([base], host="::1"), demo("--port-base", str(base)) as running:
        assert running.ports["page"] != base
        assert running.lines[0].startswith(f"corsproxy demo: port {base} is busy")
        assert running.stop() == 0


def _ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


def test_open_hands_the_page_url_to_the_browser():
    command = f"{sys.executable} -c \"import sys; print('opened', sys.argv[1], flush=True)\" %s"
    with demo("--port-base", "0", "--open", env={"BROWSER": command}) as running:
        opened = running.wait_for(lambda line: line.startswith("opened "))
        assert opened == f"opened {running.url('page')}"
        assert running.stop() == 0


def test_a_bad_port_base_is_bad_use():
    result = subprocess.run(
        [sys.executable, "-m", "corsproxy", "demo", "--port-base", "70000"],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    assert result.returncode == 2
    assert result.stderr == "corsproxy demo: --port-base must be 0 or 1-65533, got 70000\n"

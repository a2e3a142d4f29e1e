"""Header rules in Chromium: a page on a refused origin can still *send* through the proxy (a
text/plain POST, a no-cors GET, a link), so the injected API token must never ride on those;
an allowed page's requests, and those of a page of the proxy's own origin, carry it.

The upstream records what it received (a refused page cannot read the answer, so only the
upstream can tell); each test waits for the proxy's log line of its request, which is written
once the upstream has answered, then reads the record.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import free_port
from tests.e2e.conftest import (
    FAILED,
    SETTINGS_ENV,
    LoggedProxy,
    OpenPage,
    Servers,
    unique,
)

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

SECRET = "sk-live-e2e-5d1f0b"  # what API_TOKEN holds for the proxy under test
INJECTED = {"authorization": f"Bearer {SECRET}", "x-api-key": "dev-key"}
WITHHELD = {"authorization": None, "x-api-key": None}
OWN_PAGE = b"<!doctype html><title>a page of the backend, through the proxy</title>"


class Recorder(ThreadingHTTPServer):
    """The upstream: answers 200 to anything and records each request's headers and body."""

    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Record)
        self.seen: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()

    def got(self, path: str) -> dict[str, Any]:
        with self.lock:
            return self.seen[path]


class _Record(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as the proxy's upstream pool expects
    server: Recorder

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
        headers = [(name.lower(), value) for name, value in self.headers.items()]
        with self.server.lock:
            self.server.seen[self.path] = {"headers": headers, "body": body}
        page = OWN_PAGE if self.path.startswith("/own-page") else b"recorded"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def recorder() -> Iterator[Recorder]:
    server = Recorder()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def proxy(recorder: Recorder, servers: Servers, tmp_path_factory) -> Iterator[LoggedProxy]:
    """`corsproxy serve` injecting `Authorization: Bearer ${API_TOKEN}` on its one route;
    allowed: localhost pages (default) and the cross-site page http://app.test:PORT."""
    path: Path = tmp_path_factory.mktemp("header-rules") / "corsproxy.yaml"
    config = {
        "routes": [
            {
                "prefix": "/",
                "upstream": f"http://127.0.0.1:{recorder.server_address[1]}",
                "request_headers": {
                    "set": {
                        "Authorization": "Bearer ${API_TOKEN}",
                        "X-Api-Key": "${API_KEY:-dev-key}",
                    }
                },
            }
        ],
        "cors": {"allow_origins": ["localhost", servers.page("app.test")]},
    }
    started = None
    for attempt in range(3):  # the proxy has no port 0: a free port may be taken meanwhile
        config["listen"] = {"port": free_port()}
        path.write_text(yaml.safe_dump(config, sort_keys=False))
        try:
            with pytest.MonkeyPatch.context() as env:
                for name in (*SETTINGS_ENV, "API_KEY"):
                    env.delenv(name, raising=False)
                started = LoggedProxy(["serve", "-c", str(path)], env={"API_TOKEN": SECRET})
            break
        except RuntimeError as error:
            if "cannot listen" not in str(error) or attempt == 2:
                raise
    assert started is not None
    try:
        yield started
    finally:
        _, output = started.stop()
        assert SECRET not in output  # nor does the log ever show it


def upstream_saw(recorder: Recorder, path: str) -> dict[str, Any]:
    """The injected headers as the upstream got them, and whether the secret was anywhere."""
    record = recorder.got(path)
    headers = dict(record["headers"])
    return {
        "authorization": headers.get("authorization"),
        "x-api-key": headers.get("x-api-key"),
        "secret anywhere": SECRET in json.dumps(record),
    }


# What a page does, in its own JavaScript, given the URL; it returns what the page saw.
SENDS = {
    "text/plain POST": (
        "url => call(url, {method: 'POST', headers: {'Content-Type': 'text/plain'}, body: 'hi'})"
    ),
    "no-cors GET": "url => call(url, {mode: 'no-cors'})",
    "cors GET": "url => call(url)",
    # A link: the page navigates away (after this evaluation returns).
    "link": "url => { setTimeout(() => { location.href = url; }, 0); return 'navigating'; }",
}
METHOD = {"text/plain POST": "POST"}


async def send(open_page: OpenPage, page: str, proxy: LoggedProxy, kind: str, path: str) -> Any:
    """From a page of origin `page`, send `kind` to the proxy; returns what the page saw once
    the proxy has logged the request (so the upstream has recorded it)."""
    tab = await open_page(page)
    seen = await tab.js(SENDS[kind], proxy.url() + path)
    await proxy.logged(METHOD.get(kind, "GET"), path)
    return seen


@pytest.mark.parametrize("kind", ["text/plain POST", "no-cors GET", "link"])
async def test_a_refused_page_sends_but_the_upstream_sees_no_injected_header(
    servers: Servers, proxy: LoggedProxy, recorder: Recorder, open_page: OpenPage, kind: str
):
    path = unique("/refused")
    seen = await send(open_page, servers.page("evil.test"), proxy, kind, path)

    if kind == "text/plain POST":
        assert seen == FAILED  # sent and answered, but the browser hides the answer
        assert recorder.got(path)["body"] == "hi"
    assert upstream_saw(recorder, path) == {**WITHHELD, "secret anywhere": False}
    [line] = proxy.requests(METHOD.get(kind, "GET"), path)
    assert "request_headers withheld: " in line, line


@pytest.mark.parametrize(
    ("host", "kind"),
    [
        ("localhost", "text/plain POST"),
        ("localhost", "cors GET"),
        ("app.test", "text/plain POST"),  # cross-site, but its origin is allowed
    ],
    ids=["localhost text/plain POST", "localhost cors GET", "cross-site app.test POST"],
)
async def test_an_allowed_pages_request_carries_the_injected_header(
    servers: Servers,
    proxy: LoggedProxy,
    recorder: Recorder,
    open_page: OpenPage,
    host: str,
    kind: str,
):
    path = unique("/allowed")
    seen = await send(open_page, servers.page(host), proxy, kind, path)

    assert seen["status"] == 200 and seen["body"] == "recorded", seen
    assert upstream_saw(recorder, path) == {**INJECTED, "secret anywhere": True}


async def test_an_allowed_pages_no_cors_get_has_no_origin_to_check_and_is_withheld(
    servers: Servers, proxy: LoggedProxy, recorder: Recorder, open_page: OpenPage
):
    """An <img> or no-cors fetch sends no Origin, and Sec-Fetch-Site: same-site cannot tell an
    allowed localhost page from another one; a cors-mode request (or crossorigin) can."""
    path = unique("/allowed-no-cors")
    await send(open_page, servers.page(), proxy, "no-cors GET", path)

    assert upstream_saw(recorder, path) == {**WITHHELD, "secret anywhere": False}


@pytest.mark.parametrize("kind", ["no-cors GET", "text/plain POST"])
async def test_a_page_of_the_proxys_own_origin_carries_it(
    proxy: LoggedProxy, recorder: Recorder, open_page: OpenPage, kind: str
):
    """The backend's own page, opened through the proxy: same-origin requests (no Origin on
    the GET, Sec-Fetch-Site: same-origin) and the page itself (typed in: none) carry it."""
    own = await open_page(proxy.url(), "/own-page.html")
    path = unique("/same-origin")
    await own.js(SENDS[kind], path)
    await proxy.logged(METHOD.get(kind, "GET"), path)

    assert upstream_saw(recorder, "/own-page.html")["authorization"] == f"Bearer {SECRET}"
    assert upstream_saw(recorder, path) == {**INJECTED, "secret anywhere": True}

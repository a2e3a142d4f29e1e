"""Browser tests: a page in headless Chromium calls a CORS-less backend directly and through
the real `corsproxy` process, and asserts only what JavaScript on that page can see.

Session-wide, started once and only when a test asks for them: the backend and the page
server (tests/e2e/servers.py, each its own process), one proxy process per configuration
(proxy_configs(), written as YAML), one Chromium. Each test gets a fresh browser context (its own
cookies, HTTP cache and preflight cache). Nothing waits by sleeping: processes announce their
ports on stdout, and a proxy's access log is read by a thread that tests wait on.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import urllib.parse
import urllib.request
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml

from tests.conftest import free_port
from tests.e2e.firefox import firefox  # noqa: F401  (the session's Firefox, for any e2e test)
from tests.proc import ProxyProcess

E2E = Path(__file__).parent
# Debian's chromium package; elsewhere point CORSPROXY_CHROMIUM at a Chromium or Chrome binary.
CHROMIUM = os.environ.get("CORSPROXY_CHROMIUM", "/usr/bin/chromium")
INSTALL = "apt-get install chromium && pip install playwright"
REQUIRE_ENV = "CORSPROXY_REQUIRE_BROWSER"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # Distinct host names, all on this machine: app.test and evil.test are other sites than
    # localhost and than proxy.test, so their requests are cross-site as in real life.
    "--host-resolver-rules=MAP *.test 127.0.0.1",
    # Everything is on this machine: an http_proxy from the environment must not get *.test.
    "--no-proxy-server",
]
# The same for the test's own requests to the backend (urllib honours http_proxy too).
DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))
TIMEOUT = 30.0  # seconds for any one step; a hang fails the test instead of the whole run
# A development machine as another device on the LAN reaches it: by a name that is not
# localhost, over plain http (the page and the proxy on two ports of it).
LAN_HOST = "devbox.test"
# What a page's fetch() rejects with when the browser blocks the response (or cannot connect).
FAILED = {"error": "TypeError: Failed to fetch"}


def unique(path: str) -> str:
    """The path with a query no other request used: its own log lines and cache entries."""
    return f"{path}?id={uuid.uuid4().hex[:12]}"


# ---- no browser: one line saying how to install it, or a failure in CI ---------------------


def browser_missing() -> str | None:
    """What is missing for the browser tests, or None."""
    missing = []
    if not os.access(CHROMIUM, os.X_OK):
        missing.append(CHROMIUM)
    if importlib.util.find_spec("playwright") is None:
        missing.append("the playwright package")
    return " and ".join(missing) or None


def _missing_message(missing: str) -> str:
    return f"browser tests: {missing} not found; install: {INSTALL}"


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Everything under tests/e2e is a browser test, whether or not its module says so."""
    for item in items:
        if E2E in Path(item.path).parents and item.get_closest_marker("browser") is None:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session", autouse=True)
def _browser_available() -> None:
    """Skip every browser test (one folded reason) or, with CORSPROXY_REQUIRE_BROWSER=1, fail."""
    missing = browser_missing()
    if missing is None:
        return
    if os.environ.get(REQUIRE_ENV) == "1":
        pytest.fail(f"{_missing_message(missing)} ({REQUIRE_ENV}=1)", pytrace=False)
    pytest.skip(_missing_message(missing))


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo) -> Any:
    """Report the missing-browser skip at one place, so `-rs` folds it into one line."""
    report = yield
    if report.skipped and isinstance(report.longrepr, tuple):
        reason = report.longrepr[2]
        if reason.startswith("Skipped: browser tests: "):
            report.longrepr = (__file__, 1, reason)
    return report


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    """Say once why the browser tests were skipped, also when -rs did not ask for reasons."""
    if "s" in terminalreporter.reportchars or "a" in terminalreporter.reportchars:
        return  # pytest's own summary shows the folded reason, on one line
    for report in terminalreporter.stats.get("skipped", ()):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else ""
        if reason.startswith("Skipped: browser tests: "):
            terminalreporter.write_line(reason.removeprefix("Skipped: "), yellow=True)
            return


# ---- the backend and the page server -----------------------------------------------------


class ServerProcess:
    """`python servers.py KIND` as a child; ready once it printed `ready PORT...`."""

    def __init__(self, kind: str, env: dict[str, str] | None = None) -> None:
        self.process = subprocess.Popen(
            [sys.executable, str(E2E / "servers.py"), kind],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        words = self.process.stdout.readline().split()  # type: ignore[union-attr]
        if not words or words[0] != "ready":
            self.process.kill()
            raise RuntimeError(f"servers.py {kind} did not start (exit {self.process.wait()})")
        self.ports = [int(word) for word in words[1:]]

    def stop(self) -> None:
        self.process.stdin.close()  # type: ignore[union-attr]  # servers.py exits on EOF
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


@dataclass(frozen=True)
class Servers:
    backend_port: int
    page_ports: tuple[int, int]  # two ports: two origins of one site (http://localhost)
    dead_port: int  # bound, never listening: connecting to it is refused

    def page(self, host: str = "localhost", second: bool = False) -> str:
        """A page origin, e.g. http://app.test:PORT."""
        return f"http://{host}:{self.page_ports[1 if second else 0]}"

    def backend(self, host: str = "localhost") -> str:
        return f"http://{host}:{self.backend_port}"

    def hits(self, path: str) -> int:
        """How often the backend served /wrong/... (asked straight from Python, no browser)."""
        query = urllib.parse.urlencode({"path": path})
        with DIRECT.open(f"{self.backend('127.0.0.1')}/__hits?{query}") as answer:
            return json.load(answer)["hits"]


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    backend = ServerProcess("backend", env={"AIOHTTP_NO_EXTENSIONS": "1"})
    pages = ServerProcess("pages")
    dead = socket.socket()
    dead.bind(("127.0.0.1", 0))  # held for the session so nothing else takes the port
    try:
        yield Servers(backend.ports[0], (pages.ports[0], pages.ports[1]), dead.getsockname()[1])
    finally:
        dead.close()
        pages.stop()
        backend.stop()


# ---- one proxy process per configuration ---------------------------------------------------


def proxy_configs(servers: Servers) -> dict[str, dict[str, Any]]:
    """Each configuration the suite needs, by name; `listen.port` is added at start."""
    upstream = servers.backend("127.0.0.1")

    def route(**options: Any) -> dict[str, Any]:
        return {"prefix": "/", "upstream": upstream, **options}

    lan = {
        "listen": {"allowed_hosts": [LAN_HOST]},
        "cors": {"allow_origins": [servers.page(LAN_HOST)]},
    }
    return {
        # Zero config: only the upstream; every other setting is the default.
        "default": {"upstream": upstream},
        # A cross-site page (app.test) addressing the proxy by another name (proxy.test).
        "cross-site": {
            "upstream": upstream,
            "listen": {"allowed_hosts": ["proxy.test"]},
            "cors": {"allow_origins": [servers.page("app.test")]},
        },
        # The twins that switch one header off, to show the browser needs it.
        "max_age 0": {"upstream": upstream, "cors": {"max_age": 0}},
        "no credentials": {"upstream": upstream, "cors": {"allow_credentials": False}},
        "expose a list": {"upstream": upstream, "cors": {"expose_headers": ["X-Request-Id"]}},
        # An upstream that is down.
        "dead upstream": {"upstream": f"http://127.0.0.1:{servers.dead_port}"},
        # Fidelity (tests/e2e/test_fidelity_browser.py): a page and the proxy on one LAN host
        # name over plain http (not a secure context), and twins with a rewrite switched off.
        "lan": {**lan, "upstream": upstream},
        "lan, Secure kept": {**lan, "routes": [route(cookies={"secure": "keep"})]},
        "cookie Domain kept": {"routes": [route(cookies={"domain": "keep"})]},
        "redirects kept": {"routes": [route(redirects="keep")]},
        # The inspector's tests (test_inspector.py): the backend, and a dead one under /dead.
        "inspector": {
            "routes": [
                route(prefix="/dead", upstream=f"http://127.0.0.1:{servers.dead_port}"),
                route(),
            ]
        },
    }


class LoggedProxy(ProxyProcess):
    """A `corsproxy serve -c FILE` process whose access log a thread reads as it is written."""

    def __init__(self, args: Sequence[str], env: dict[str, str] | None = None) -> None:
        super().__init__(args, env)
        self.port = int(self.banner.split(" -> ")[0].rsplit(":", 1)[1])
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        for line in self.process.stdout:  # type: ignore[union-attr]
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()

    def url(self, host: str = "localhost") -> str:
        """The proxy as a page addresses it, e.g. http://proxy.test:PORT."""
        return f"http://{host}:{self.port}"

    def inspector_url(self) -> str:
        """The URL printed after the banner: http://localhost:PORT/__corsproxy/?token=..."""
        with self._changed:
            found = self._changed.wait_for(
                lambda: any(line.startswith("inspector: ") for line in self.lines), TIMEOUT
            )
            assert found, "no inspector line:\n" + "\n".join(self.lines)
            line = next(line for line in self.lines if line.startswith("inspector: "))
            return line.removeprefix("inspector: ")

    def requests(self, method: str, path: str) -> list[str]:
        """The access-log lines of requests `METHOD PATH` (path with its query, exactly)."""
        start = f"{method} {path} "
        with self._changed:
            # Each line opens with the local time, `14:03:07.412 `.
            return [line for line in self.lines if line[13:].startswith(start)]

    def wait_for(self, method: str, path: str, count: int = 1) -> list[str]:
        """Block until `count` lines for METHOD PATH were logged; they are returned."""
        with self._changed:
            done = self._changed.wait_for(
                lambda: len(self.requests(method, path)) >= count, timeout=TIMEOUT
            )
            if not done:
                raise AssertionError(
                    f"proxy logged {len(self.requests(method, path))} of {count} "
                    f"'{method} {path}' lines; log so far:\n" + "\n".join(self.lines)
                )
            return self.requests(method, path)

    async def logged(self, method: str, path: str, count: int = 1) -> list[str]:
        """wait_for() without blocking the event loop the browser runs on."""
        return await asyncio.to_thread(self.wait_for, method, path, count)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10) -> tuple[int, str]:
        if self.process.poll() is None:
            self.process.send_signal(sig)
        self.process.wait(timeout=timeout)
        self._reader.join(timeout=timeout)
        with self._changed:
            return self.process.returncode, "\n".join(self.lines)


# The environment variables `corsproxy serve` reads (SPEC.md): they beat the YAML file, so a
# developer's own settings must not leak into the proxies under test.
SETTINGS_ENV = (
    "CORSPROXY_CONFIG",
    "CORSPROXY_UPSTREAM",
    "CORSPROXY_HOST",
    "CORSPROXY_PORT",
    "CORSPROXY_ALLOW_ORIGINS",
    "CORSPROXY_LOG_LEVEL",
    "CORSPROXY_INSPECTOR_TOKEN",
)


class Proxies:
    """proxies[name]: the proxy for proxy_configs()[name], started on first use."""

    def __init__(self, directory: Path, configs: dict[str, dict[str, Any]]) -> None:
        self.directory = directory
        self.configs = configs
        self.running: dict[str, LoggedProxy] = {}

    def __getitem__(self, name: str) -> LoggedProxy:
        if name not in self.running:
            self.running[name] = self._start(name)
        return self.running[name]

    def _start(self, name: str) -> LoggedProxy:
        path = self.directory / (name.replace(" ", "-") + ".yaml")
        for attempt in range(3):  # the proxy has no port 0: a free port may be taken meanwhile
            config = {**self.configs[name]}
            config["listen"] = {**config.get("listen", {}), "port": free_port()}
            path.write_text(yaml.safe_dump(config, sort_keys=False))
            try:
                with pytest.MonkeyPatch.context() as env:  # only while the child is spawned
                    for name in SETTINGS_ENV:
                        env.delenv(name, raising=False)
                    return LoggedProxy(["serve", "-c", str(path)])
            except RuntimeError as error:
                if "cannot listen" not in str(error) or attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def stop_all(self) -> None:
        for proxy in self.running.values():
            proxy.stop()


@pytest.fixture(scope="session")
def proxies(servers: Servers, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxies]:
    started = Proxies(tmp_path_factory.mktemp("proxy-configs"), proxy_configs(servers))
    try:
        yield started
    finally:
        started.stop_all()


# ---- the browser ---------------------------------------------------------------------------


@pytest_asyncio.fixture(scope="session", loop_scope="session")
async def browser() -> AsyncIterator[Any]:
    """One Chromium for the session (the async API: the sync one would leave its event loop
    marked as running in this thread, breaking the pytest-asyncio tests that run after)."""
    from playwright.async_api import async_playwright

    async with async_playwright() as playwright:
        chromium = await playwright.chromium.launch(
            executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=TIMEOUT * 1000
        )
        yield chromium
        await chromium.close()


class Tab:
    """A page loaded from one origin; the helpers of static/helpers.js run inside it."""

    def __init__(self, page: Any) -> None:
        self.page = page
        self.console: list[str] = []  # what Chromium's console said, e.g. why CORS failed
        page.on("console", lambda message: self.console.append(message.text))

    async def js(self, expression: str, arg: Any = None) -> Any:
        return await asyncio.wait_for(self.page.evaluate(expression, arg), TIMEOUT)

    async def fetch(self, url: str, **init: Any) -> dict[str, Any]:
        """fetch(url, init) in the page: {status, headers, body} as JS reads them, or FAILED."""
        return await self.js("([url, init]) => call(url, init)", [url, init])

    async def fetch_json(self, url: str, **init: Any) -> tuple[int, Any]:
        """fetch() that must succeed: (status, parsed body)."""
        result = await self.fetch(url, **init)
        assert "error" not in result, f"{url}: {result['error']}; console: {self.console}"
        return result["status"], json.loads(result["body"])


OpenPage = Callable[..., Awaitable[Tab]]


@pytest_asyncio.fixture(loop_scope="session")
async def context(browser: Any) -> AsyncIterator[Any]:
    """A fresh browser context per test: no cookie, cache entry or cached preflight left over."""
    fresh = await browser.new_context()
    await fresh.add_init_script(path=E2E / "static" / "helpers.js")
    yield fresh
    await fresh.close()


@pytest.fixture
def open_page(context: Any) -> OpenPage:
    """open_page(origin) -> a Tab showing the test page of that origin (or any other URL)."""

    async def open_tab(origin: str, path: str = "/") -> Tab:
        page = await context.new_page()
        await page.goto(origin + path, timeout=TIMEOUT * 1000)
        return Tab(page)

    return open_tab


# ---- the two ways a frontend meets the proxy -----------------------------------------------


@dataclass(frozen=True)
class Site:
    """A page origin, the proxy as that page addresses it, and the backend addressed directly."""

    page: str
    proxy: str
    backend: str
    log: LoggedProxy


@pytest.fixture(params=["zero-config localhost", "cross-site app.test"])
def site(request: pytest.FixtureRequest, servers: Servers, proxies: Proxies) -> Site:
    if request.param == "zero-config localhost":
        proxy = proxies["default"]
        return Site(servers.page(), proxy.url(), servers.backend(), proxy)
    proxy = proxies["cross-site"]
    return Site(
        servers.page("app.test"), proxy.url("proxy.test"), servers.backend("api.test"), proxy
    )

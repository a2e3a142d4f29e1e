"""Headless Firefox (Debian's firefox-esr) for the browser tests, driven over Marionette.

Playwright's Firefox needs a Firefox build of its own; Debian's firefox-esr speaks
Marionette, which the `marionette-driver` package (Mozilla's own client) drives. Its calls
block, so each runs in a thread; the API mirrors the Chromium Tab of conftest.py:

    async def test_x(firefox: Firefox):
        await firefox.open("http://127.0.0.1:PORT/")           # load a page, wait for it
        result = await firefox.fetch(url, credentials="include")  # {status, headers, body}
        value = await firefox.evaluate("async (x) => x + 1", 41)  # any async JS, one argument
        jar = await firefox.cookies()                           # every cookie, all partitions
        await firefox.reset()                                   # cookies and caches cleared

One Firefox per session (it takes seconds to start); `reset()` gives a test a fresh state.
Host names: `Firefox(local_names=["app.test"])` resolves them to this machine.
"""

from __future__ import annotations

import asyncio
import os
import tempfile
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import pytest

FIREFOX = os.environ.get("CORSPROXY_FIREFOX", "/usr/bin/firefox-esr")
INSTALL = "apt-get install firefox-esr && pip install marionette-driver"
TIMEOUT = 30.0
# What fetch() rejects with in Firefox when the browser blocks the response or cannot connect.
FAILED = {"error": "TypeError: NetworkError when attempting to fetch resource."}
# The names the suite uses besides localhost (see CHROMIUM_ARGS in conftest.py).
TEST_NAMES = ("app.test", "evil.test", "proxy.test", "api.test", "devbox.test", "api.backend.test")

# The page-side half of fetch(): what JavaScript may read, or the TypeError.
_FETCH = """async ([url, init]) => {
  try {
    const response = await fetch(url, init);
    const headers = {};
    response.headers.forEach((value, name) => { headers[name] = value; });
    return { status: response.status, headers, body: await response.text() };
  } catch (error) {
    return { error: `${error.name}: ${error.message}` };
  }
}"""
# Marionette's async script: run the expression's function on the argument, hand back
# {ok: value} or {thrown: text} (a rejected promise would otherwise time out).
_ASYNC = """const [arg, resolve] = [arguments[0], arguments[arguments.length - 1]];
Promise.resolve().then(() => (%s)(arg)).then(
  (value) => resolve({ ok: value === undefined ? null : value }),
  (error) => resolve({ thrown: String(error) }));"""
_COOKIES = """const cookies = [];
for (const c of Services.cookies.cookies) {
  cookies.push({ name: c.name, value: c.value, host: c.host, path: c.path,
    secure: c.isSecure, httpOnly: c.isHttpOnly, sameSite: c.sameSite,
    partitionKey: c.originAttributes.partitionKey || "" });
}
return cookies;"""
_RESET = """Services.cookies.removeAll();
Services.cache2.clear();
Services.clearData.deleteData(Ci.nsIClearDataService.CLEAR_ALL_CACHES, () => {});"""


class FirefoxError(AssertionError):
    """JavaScript threw in the page, or Marionette failed."""


def firefox_missing() -> str | None:
    """What is missing for the Firefox tests, or None."""
    missing = []
    if not os.access(FIREFOX, os.X_OK):
        missing.append(FIREFOX)
    try:
        import marionette_driver  # noqa: F401
    except ImportError:
        missing.append("the marionette-driver package")
    return " and ".join(missing) or None


class Firefox:
    """One headless Firefox and its Marionette session; every method is a coroutine."""

    def __init__(self, local_names: Sequence[str] = TEST_NAMES) -> None:
        from marionette_driver.marionette import Marionette

        prefs = {
            "network.proxy.type": 0,  # straight to this machine, whatever the environment says
            "network.dns.localDomains": ",".join(local_names),
            "browser.shell.checkDefaultBrowser": False,
        }
        self._lock = threading.Lock()
        self._driver = Marionette(
            bin=FIREFOX,
            port=0,  # a free port: other test runs on the machine may have Firefoxes too
            headless=True,
            prefs=prefs,
            app_args=["-remote-allow-system-access"],  # cookies() and reset() read the jar
            startup_timeout=int(TIMEOUT * 2),
            gecko_log=os.path.join(tempfile.mkdtemp(prefix="corsproxy-gecko-"), "gecko.log"),
        )
        self._driver.start_session()
        self._driver.timeout.script = TIMEOUT
        self._driver.timeout.page_load = TIMEOUT
        self.version = self._driver.session_capabilities.get("browserVersion", "")

    def _call(self, method: str, *args: Any, **kwargs: Any) -> Any:
        with self._lock:
            return getattr(self._driver, method)(*args, **kwargs)

    async def _run(self, method: str, *args: Any, **kwargs: Any) -> Any:
        return await asyncio.to_thread(self._call, method, *args, **kwargs)

    async def open(self, url: str) -> None:
        """Load `url` in the one tab and wait for it."""
        await self._run("navigate", url)

    async def evaluate(self, expression: str, arg: Any = None) -> Any:
        """Like Playwright's page.evaluate(): `expression` is a (possibly async) function of
        one JSON argument, run in the page; its JSON result comes back."""
        answer = await self._run(
            "execute_async_script", _ASYNC % expression, script_args=[arg], sandbox=None
        )
        if "thrown" in answer:
            raise FirefoxError(answer["thrown"])
        return answer["ok"]

    async def fetch(self, url: str, **init: Any) -> dict[str, Any]:
        """fetch(url, init) in the page: {status, headers, body} as JS reads them, or FAILED."""
        return await self.evaluate(_FETCH, [url, init])

    async def cookies(self) -> list[dict[str, Any]]:
        """Every cookie Firefox keeps, with its partitionKey ("" when unpartitioned)."""
        return await asyncio.to_thread(self._chrome, _COOKIES)

    async def reset(self) -> None:
        """Forget every cookie and cached response (a fresh state, as a new context is)."""
        await asyncio.to_thread(self._chrome, _RESET)
        await self.open("about:blank")

    def _chrome(self, script: str) -> Any:
        with self._lock:
            with self._driver.using_context(self._driver.CONTEXT_CHROME):
                return self._driver.execute_script(script)

    async def close(self) -> None:
        await asyncio.to_thread(self._close)

    def _close(self) -> None:
        with self._lock:
            self._driver.cleanup()
            # Let the temporary profile go now: its finaliser fails at interpreter exit.
            instance, self._driver.instance = self._driver.instance, None
            if instance is not None:
                instance.profile = None


@pytest.fixture(scope="session")
def firefox() -> Iterator[Firefox]:
    """The session's Firefox; skipped (or, with CORSPROXY_REQUIRE_BROWSER=1, failed) when
    firefox-esr or marionette-driver is missing."""
    missing = firefox_missing()
    if missing is not None:
        message = f"browser tests: {missing} not found; install: {INSTALL}"
        if os.environ.get("CORSPROXY_REQUIRE_BROWSER") == "1":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    browser = Firefox()
    try:
        yield browser
    finally:
        browser._close()

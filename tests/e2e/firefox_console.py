"""Debian's firefox-esr, headless, driven over Marionette with the marionette-driver package,
as tests/e2e/test_doctor_agrees.py needs it: the web console's CORS messages read from the chrome
side. (tests/e2e/firefox.py drives the same Firefox for pages, fetches and cookies.)

Self-contained (no playwright).
Firefox is started by hand (`firefox-esr --headless --marionette --profile DIR`) with a
profile whose user.js asks for Marionette on port 0; Firefox then writes the port it took to
DIR/MarionetteActivePort, so no free port is guessed. The page-side API is small: navigate(),
run() (an async script in the page), cors_errors() (what the web console said) and clear().
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

FIREFOX = os.environ.get("CORSPROXY_FIREFOX", "/usr/bin/firefox-esr")
INSTALL = "apt-get install firefox-esr && pip install marionette-driver"
STARTUP_SECONDS = 60.0
_PREFS = {
    "marionette.port": 0,  # any free port, written to MarionetteActivePort
    "browser.shell.checkDefaultBrowser": False,
    "browser.startup.homepage_override.mstone": "ignore",
    "browser.startup.page": 0,
    "datareporting.policy.dataSubmissionEnabled": False,
    "toolkit.telemetry.reportingpolicy.firstRun": False,
    "app.update.disabledForTesting": True,
    "app.normandy.enabled": False,
    "network.captive-portal-service.enabled": False,
    "network.connectivity-service.enabled": False,
    "browser.safebrowsing.update.enabled": False,
    "extensions.update.enabled": False,
    "network.proxy.type": 0,  # no proxy from the environment: everything is on this machine
    "devtools.console.stdout.content": False,
}
# The web console's CORS messages carry their reason as the category: the MDN page's name
# with a version suffix ("CORSMissingAllowOrigin2"). Read from the chrome side, which
# needs --remote-allow-system-access.
_CONSOLE_SCRIPT = """
const since = arguments[0];
return Services.console.getMessageArray().slice(since).flatMap((message) => {
  if (!(message instanceof Ci.nsIScriptError)) return [];
  return [{category: message.category, text: message.errorMessage,
           warning: Boolean(message.flags & Ci.nsIScriptError.warningFlag)}];
});
"""
_CLEAR_SCRIPT = """
const done = arguments[arguments.length - 1];
const what = Ci.nsIClearDataService;
const flags = what.CLEAR_COOKIES | what.CLEAR_NETWORK_CACHE | what.CLEAR_PREFLIGHT_CACHE
  | what.CLEAR_AUTH_CACHE | what.CLEAR_DOM_STORAGES;
Services.clearData.deleteData(flags, () => done(true));
"""


def firefox_missing() -> str | None:
    """What is missing to drive Firefox, or None."""
    import importlib.util

    missing = []
    if not os.access(FIREFOX, os.X_OK):
        missing.append(FIREFOX)
    if importlib.util.find_spec("marionette_driver") is None:
        missing.append("the marionette-driver package")
    return " and ".join(missing) or None


@dataclass(frozen=True)
class ConsoleMessage:
    name: str  # the MDN name, e.g. CORSMissingAllowOrigin (the category without its digit)
    text: str  # "Cross-Origin Request Blocked: ... (Reason: ...)."
    warning: bool


class Firefox:
    """One headless Firefox: Firefox.launch(["app.test"]) ... .quit()."""

    def __init__(self, process: subprocess.Popen[bytes], profile: Path, client: Any) -> None:
        self.process, self.profile, self.client = process, profile, client
        self.version: str = client.session_capabilities.get("browserVersion", "")

    @classmethod
    def launch(cls, hosts: Sequence[str] = ()) -> Firefox:
        """Start Firefox with a fresh profile; `hosts` resolve to this machine (*.test names)."""
        from marionette_driver.marionette import Marionette

        profile = Path(tempfile.mkdtemp(prefix="corsproxy-firefox-"))
        prefs = {**_PREFS, "network.dns.localDomains": ",".join(hosts)}
        lines = [f"user_pref({_js(name)}, {_js(value)});" for name, value in prefs.items()]
        (profile / "user.js").write_text("\n".join(lines) + "\n")
        command = [FIREFOX, "--headless", "--marionette", "--remote-allow-system-access"]
        command += ["--no-remote", "--profile", str(profile), "about:blank"]
        process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
        )
        try:
            port = _active_port(profile, process)
            client = Marionette(host="127.0.0.1", port=port, startup_timeout=STARTUP_SECONDS)
            client.start_session()
        except BaseException:
            _stop(process)
            shutil.rmtree(profile, ignore_errors=True)
            raise
        return cls(process, profile, client)

    def navigate(self, url: str) -> None:
        self.client.navigate(url)

    def run(self, script: str, *args: Any) -> Any:
        """An async script in the page: its last argument is the callback that returns."""
        return self.client.execute_async_script(script, script_args=list(args))

    def console_mark(self) -> int:
        """How many console messages exist now; cors_errors(mark) returns the newer ones."""
        with self.client.using_context("chrome"):
            return int(
                self.client.execute_script("return Services.console.getMessageArray().length")
            )

    def cors_errors(self, since: int) -> list[ConsoleMessage]:
        """The CORS messages the web console got since the mark (errors and warnings)."""
        with self.client.using_context("chrome"):
            found = self.client.execute_script(_CONSOLE_SCRIPT, script_args=[since])
        return [
            ConsoleMessage(m["category"].rstrip("0123456789"), m["text"], m["warning"])
            for m in found
            if m["category"].startswith("CORS")
        ]

    def clear(self) -> None:
        """Cookies, HTTP cache and preflight cache: each case starts as a fresh context would."""
        with self.client.using_context("chrome"):
            self.client.execute_async_script(_CLEAR_SCRIPT)

    def quit(self) -> None:
        try:
            self.client.delete_session()
        except Exception:  # already gone: stopping the process is what matters
            pass
        _stop(self.process)
        shutil.rmtree(self.profile, ignore_errors=True)


def _js(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _active_port(profile: Path, process: subprocess.Popen[bytes]) -> int:
    """The port Firefox wrote once Marionette listens. Polled: Firefox has no other signal."""
    path = profile / "MarionetteActivePort"
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{FIREFOX} exited with {process.returncode} at start")
        text = path.read_text().strip() if path.exists() else ""
        if text.isdigit():
            return int(text)
        time.sleep(0.05)
    raise RuntimeError(f"{FIREFOX} did not start Marionette within {STARTUP_SECONDS} s")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()

"""Reloading the config while it runs: the file watched by a cheap poll, SIGHUP, the swap.

cli.py makes one Reloader with the flags and environment of the start; server.py (one
process) or serve/fanout.py (the parent of the workers) asks it after each poll or SIGHUP, and
applies what it returns with Running.switch(). config/diff.py says what changed, in words.

A poll, not a file-system notification library: one os.stat() every POLL_SECONDS costs next
to nothing (see docs/reload.md for the figure), works the same on every platform, in Docker
bind mounts and on network file systems, and follows the path rather than an inode, so an
editor that saves by writing a new file and renaming it over the old one is seen like any
other save. The content is read and hashed only when the stat changes.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from corsproxy.config.checks import Problem
from corsproxy.config.diff import (
    Changes,
    applicable,
    changes,
    rejected_lines,
    reloaded_lines,
    same,
)
from corsproxy.config.load import ConfigError, Overrides, load
from corsproxy.config.model import Settings

POLL_SECONDS = 0.5  # a save is applied within POLL_SECONDS + SETTLE_SECONDS (and the load)
POLL_VARIABLE = "CORSPROXY_RELOAD_POLL"  # seconds between two looks (tests make it shorter)
SETTLE_SECONDS = 0.1  # a changed file is read once its stat has stayed the same this long
# A file whose modification time is this recent is read again at the next poll even if its stat
# did not change: two writes of the same size within one tick of the clock look alike (the
# "racy git" problem).
RECENT_SECONDS = 2.0


@dataclass(frozen=True)
class Stamp:
    """What os.stat() says about the file; a change of any of it means "read it again"."""

    mtime_ns: int
    size: int
    inode: int
    owner: int


def stamp(path: str) -> Stamp | None:
    try:
        found = os.stat(path)
    except OSError:
        return None
    return Stamp(found.st_mtime_ns, found.st_size, found.st_ino, found.st_uid)


def _seconds(text: str | None, default: float) -> float:
    try:
        return max(0.01, float(text)) if text else default
    except ValueError:
        return default


def _read(path: str) -> bytes | None:
    try:
        with open(path, "rb") as file:
            return file.read()
    except OSError:
        return None


def _digest(content: bytes | None) -> bytes | None:
    return None if content is None else hashlib.sha256(content).digest()


@dataclass(frozen=True)
class Outcome:
    """One reload: the settings to serve from now on (None: keep the running ones), whether
    they differ from the running ones, what changed, and the lines to print."""

    settings: Settings | None
    switch: bool
    changes: Changes
    lines: list[str]
    at: str = field(default_factory=lambda: datetime.now().astimezone().isoformat())

    def event(self) -> dict[str, Any] | None:
        """The inspector's `event: reload` data: what the terminal says, without the prefix
        (None: nothing was printed, nothing to show)."""
        if not self.lines:
            return None
        head, *rest = (line.removeprefix("corsproxy: ") for line in self.lines)
        return {
            "time": self.at,
            "ok": self.settings is not None,
            "message": head,
            "details": rest,
        }


class Reloader:
    """The file in use, and what was last read from it; load() again as at start."""

    def __init__(self, overrides: Overrides, env: Mapping[str, str], settings: Settings) -> None:
        self.applied = settings  # what runs now (cli sets it again once listen.tls is resolved)
        self.tls_auto = settings.listen.tls == "auto"  # as loaded, before the leaf was issued
        self.path = settings.source  # -c, CORSPROXY_CONFIG or ./corsproxy.yaml; None: no file
        # The file found at start is the one reloaded, wherever load() would look now.
        self.overrides, self.env = replace(overrides, config=self.path or overrides.config), env
        self.poll_seconds = _seconds(env.get(POLL_VARIABLE), POLL_SECONDS)
        self.name = self.path or "the config"
        self._stamp = stamp(self.path) if self.path else None
        self._owner = self._stamp.owner if self._stamp else os.geteuid()
        self._digest = _digest(_read(self.path)) if self.path else None
        self._pending: Stamp | None = None  # a new stamp (None: the file gone), settling
        self._settling = False
        self._recheck = self._recent(self._stamp)

    @property
    def watching(self) -> bool:
        """Polling is on: a file is in use and neither reload: false nor --no-reload says no."""
        return self.path is not None and self.applied.reload

    @property
    def delay(self) -> float:
        """Seconds until the next poll."""
        return min(SETTLE_SECONDS, self.poll_seconds) if self._settling else self.poll_seconds

    def poll(self) -> Outcome | None:
        """One look at the file: None while nothing is to be done (unchanged, settling, or the
        same content saved again); else the outcome of loading it."""
        assert self.path is not None
        now = stamp(self.path)
        if now == self._stamp and not self._recheck:
            self._settling = False
            return None
        if now != self._stamp and not (self._settling and now == self._pending):
            # Look again once it has stopped changing: an editor that deletes the file and
            # writes it anew is not caught in between.
            self._pending, self._settling = now, True
            return None
        self._settling, self._stamp = False, now
        self._recheck = self._recent(now)
        if _digest(_read(self.path)) == self._digest:
            return None
        return self.reload()

    def reload(self) -> Outcome:
        """Load the config as at start (a changed content, or SIGHUP): the outcome says it."""
        if self.path is None:
            line = (
                "corsproxy: SIGHUP: no config file to reload (none given with -c or "
                "CORSPROXY_CONFIG, and no ./corsproxy.yaml at start)"
            )
            return Outcome(None, False, Changes(), [line])
        problems = self._refusals()  # and takes note of what it read, for poll()
        if not problems:
            try:
                loaded = load(self.overrides, self.env)
            except ConfigError as error:
                problems = error.problems
            else:
                if loaded.source != self.path:  # gone between our look and load()'s
                    problems = [Problem(self.path, None, "", "cannot read the config file")]
        if problems:
            return self.refused(problems)
        return self._accepted(loaded)

    def refused(self, problems: list[Problem]) -> Outcome:
        return Outcome(None, False, Changes(), rejected_lines(self.name, problems))

    def _accepted(self, loaded: Settings) -> Outcome:
        if self.tls_auto and loaded.listen.tls == "auto":  # still auto: the leaf in use stays
            loaded = replace(loaded, listen=replace(loaded.listen, tls=self.applied.listen.tls))
        found = changes(self.applied, loaded)
        new = applicable(loaded, self.applied)
        switch = not same(self.applied, new)
        fresh = tuple(w for w in loaded.warnings if w not in self.applied.warnings)
        lines = reloaded_lines(self.name, found, fresh, loaded.merged)
        return Outcome(new, switch, found, lines)

    def _refusals(self) -> list[Problem]:
        """A file that is gone, empty, or now someone else's is never loaded: the proxy would
        fall back to defaults (or to another user's routes) instead of the config in use."""
        assert self.path is not None
        now = stamp(self.path)
        content = _read(self.path)
        self._stamp, self._digest, self._settling = now, _digest(content), False
        if now is None or content is None:
            reason = "cannot read the config file: it is gone (deleted, or renamed away)"
            return [Problem(self.path, None, "", reason)]
        if now.owner != self._owner:
            reason = (
                f"the file now belongs to user id {now.owner}, not {self._owner} as at start; "
                "not read (whoever replaced it could reroute your requests); restart to use it"
            )
            return [Problem(self.path, None, "", reason)]
        if not content.strip():
            reason = "the file is empty (an editor may still be writing it)"
            return [Problem(self.path, None, "", reason)]
        return []

    @staticmethod
    def _recent(found: Stamp | None) -> bool:
        return found is not None and time.time() - found.mtime_ns / 1e9 < RECENT_SECONDS


def carry_out(
    reloader: Reloader,
    outcome: Outcome,
    apply: Callable[[Outcome], None],
    say: Callable[[str], None],
) -> None:
    """Apply an outcome with `apply` (Running.apply, or the send to the workers), which builds
    the new proxy whole before anything switches, then print its lines. An `apply` that fails
    leaves the running config in place, and says why."""
    try:
        apply(outcome)
    except Exception as error:  # noqa: BLE001 - whatever it was, the old config serves on
        reason = f"the new config could not be started: {error}"
        outcome = reloader.refused([Problem(None, None, "", reason)])
        apply(outcome)  # no settings: only the inspector's marker
    if outcome.settings is not None:
        reloader.applied = outcome.settings
    for line in outcome.lines:
        say(line)


def attempt(reloader: Reloader, look: Callable[[], Outcome | None]) -> Outcome | None:
    """poll() or reload(); whatever goes wrong in it is a refused reload, never a crash."""
    try:
        return look()
    except Exception as error:  # noqa: BLE001 - a reload must never stop the proxy
        return reloader.refused([Problem(None, None, "", f"cannot reload: {error!r}")])


class Watch:
    """The poll on the event loop, and SIGHUP; each outcome carried out with `apply`."""

    def __init__(
        self,
        reloader: Reloader,
        apply: Callable[[Outcome], None],
        say: Callable[[str], None],
    ) -> None:
        self.reloader, self.apply, self.say = reloader, apply, say
        self._handle: asyncio.TimerHandle | None = None
        self._closed = False

    def start(self) -> None:
        self._schedule()

    def asked(self) -> None:
        """SIGHUP: reload now, watching or not (a reload: true may start the watching)."""
        self._run(self.reloader.reload)
        self._schedule()

    def close(self) -> None:
        self._closed = True
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _schedule(self) -> None:
        if self._handle is None and not self._closed and self.reloader.watching:
            loop = asyncio.get_running_loop()
            self._handle = loop.call_later(self.reloader.delay, self._tick)

    def _tick(self) -> None:
        self._handle = None
        self._run(self.reloader.poll)
        self._schedule()

    def _run(self, look: Callable[[], Outcome | None]) -> None:
        outcome = attempt(self.reloader, look)
        if outcome is not None:
            carry_out(self.reloader, outcome, self.apply, self.say)

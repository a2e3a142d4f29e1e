"""`listen.workers` > 1: several processes serve one port, the kernel spreading the connections.

cli.py hands over to run() here. The parent binds the port without listening (port 0 becomes
one real port, a busy port fails before anything starts), forks the workers, prints the
start-up line once every one listens, turns SIGTERM/SIGINT into SIGTERM for each, and replaces
a worker that dies. A worker is a whole proxy as server.start() builds it, on its own
SO_REUSEPORT socket: its own event loop, Proxy and upstream pool. All write to the one stderr.

os.fork() rather than multiprocessing: the parent is a plain select() loop with no event loop
and no threads, so a forked child starts clean and at once, with everything already imported;
spawn would start a new interpreter per worker and pickle the settings across. SO_REUSEPORT's
load balancing is a Linux feature anyway.
"""

from __future__ import annotations

import contextlib
import os
import selectors
import shutil
import signal
import socket
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import NoReturn

from corsproxy.config.describe import source_line
from corsproxy.config.model import Settings
from corsproxy.inspector import peers
from corsproxy.inspector import web as inspector_web
from corsproxy.proxy.accesslog import AccessLog
from corsproxy.serve import child, fanout, server
from corsproxy.serve.listener import reserve
from corsproxy.serve.reload import Reloader

START_SECONDS = 1.0  # a worker that dies sooner after it was forked failed to start
STOP_SECONDS = server.DRAIN_SECONDS + 5.0  # after SIGTERM; a worker still there is then killed
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)
# Blocked across fork(): the child must not run the parent's handlers.
FORK_BLOCKED = {*STOP_SIGNALS, signal.SIGCHLD, signal.SIGHUP}


def run(
    settings: Settings,
    port: int | None = None,
    open_inspector: bool = False,
    reloader: Reloader | None = None,
    notes: Sequence[str] = (),
) -> int:
    """Serve with settings.listen.workers processes until SIGTERM or SIGINT; returns 0, or 1 when
    workers keep dying as they start. Raises OSError when the port cannot be had, before any
    worker exists, so `corsproxy serve` reports it as for one process. `notes` follow the
    start-up line (who signed the https certificate)."""
    low_limit = server.raise_open_files_limit()  # before the forks: every worker inherits it
    settings = inspector_web.with_token(settings)  # one token, made before the forks
    reserved = reserve(settings.listen.host, settings.listen.port if port is None else port)
    try:
        return Supervisor(settings, reserved, low_limit, open_inspector, reloader, notes).run()
    finally:
        for sock in reserved:
            sock.close()


@dataclass
class Restarts:
    """Whether to replace a worker that died: not once `limit` in a row died right at start-up,
    which a broken start does every time; forking on regardless would loop forever."""

    limit: int
    failed: int = 0  # workers in a row that died within START_SECONDS of starting

    def died(self, at_start: bool) -> bool:
        """A worker died (at_start: within START_SECONDS); True to replace it."""
        self.failed = self.failed + 1 if at_start else 0
        return self.failed < self.limit

    def survived(self) -> None:
        """A worker lived through its first START_SECONDS: starting works."""
        self.failed = 0


@dataclass
class Worker:
    pid: int
    ready_fd: int  # read end: b"uvloop\n" or b"asyncio\n" once it listens, end of file once gone
    started: float
    control: fanout.Outbox  # the parent's end of its control pipe (reloads)
    replaces: int | None = None  # the worker it was forked to replace
    slot: int = 0  # 0..count-1; a replacement takes the slot of the worker it replaces
    ready: bool = False
    proven: bool = False  # still alive START_SECONDS after it was forked, listening


def exit_reason(status: int) -> str:
    """`exited with status 1` or `exited with signal SIGKILL`, from a waitpid() status."""
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = str(number)
        return f"exited with signal {name}"
    return f"exited with status {os.waitstatus_to_exitcode(status)}"


def _noted(signum: int, frame: object) -> None:
    """Nothing to do here: set_wakeup_fd() has already written the number for select()."""


class Supervisor:
    """The parent: forks, watches, replaces and stops the workers; it alone prints status."""

    def __init__(
        self,
        settings: Settings,
        reserved: list[socket.socket],
        low_limit: str | None,
        open_inspector: bool = False,
        reloader: Reloader | None = None,
        notes: Sequence[str] = (),
    ) -> None:
        self.settings = settings  # the latest reload's: a worker forked now starts with them
        self.open_inspector = open_inspector
        self.notes = tuple(notes)
        self.count = settings.listen.workers
        self.port: int = reserved[0].getsockname()[1]
        self.reserved = reserved
        self.low_limit = low_limit
        self.log = AccessLog(settings.log_level)
        self.workers: dict[int, Worker] = {}
        self.restarts = Restarts(limit=max(3, self.count))
        self.selector = selectors.DefaultSelector()
        self.wakeup_r, self.wakeup_w = socket.socketpair()
        # The parent holds the only write end: a worker reads end of file once it is gone.
        self.lifeline_r, self.lifeline_w = os.pipe()
        self.uvloop = False
        self.announced = False
        self.stopping = False
        self.gave_up = False
        self.kill_at: float | None = None
        # The inspector's one list across workers (inspector/peers.py): their sockets' folder.
        self.inspector_folder = peers.make_folder() if settings.inspector.enabled else None
        self.started_at = time.time()
        self.reloads = fanout.Reloads(reloader, self.log, self._reloaded) if reloader else None

    def run(self) -> int:
        for sock in (self.wakeup_r, self.wakeup_w):
            sock.setblocking(False)
        self.selector.register(self.wakeup_r, selectors.EVENT_READ)
        watched = (*STOP_SIGNALS, signal.SIGCHLD, signal.SIGHUP)
        previous = {sig: signal.signal(sig, _noted) for sig in watched}
        old_wakeup = signal.set_wakeup_fd(self.wakeup_w.fileno())
        try:
            for slot in range(self.count):
                self._spawn(replaces=None, slot=slot)
            while self.workers:
                self._turn()
        finally:
            signal.set_wakeup_fd(old_wakeup)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            # Workers still there (only if this loop failed) drain once the lifeline closes.
            self._close_fds()
            if self.inspector_folder is not None:
                shutil.rmtree(self.inspector_folder, ignore_errors=True)
        return 1 if self.gave_up else 0

    def _turn(self) -> None:
        """Wait for a signal, a worker's word or a deadline; act on each."""
        for key, _ in self.selector.select(self._timeout()):
            if key.fileobj is self.wakeup_r:
                self._signals()
            else:
                self._read(key.data)
        self._reap()
        self._check_time()
        if self.reloads is not None:
            self.reloads.turn(self._controls(), self.stopping)

    def _timeout(self) -> float | None:
        now = time.monotonic()
        deadlines = [
            w.started + START_SECONDS for w in self.workers.values() if w.ready and not w.proven
        ]
        if self.kill_at is not None:
            deadlines.append(self.kill_at)
        if self.reloads is not None:
            deadlines += self.reloads.deadlines(self._controls(), self.stopping)
        return max(0.0, min(deadlines) - now) if deadlines else None

    def _signals(self) -> None:
        try:
            numbers = self.wakeup_r.recv(512)
        except BlockingIOError:
            return
        if any(sig in numbers for sig in STOP_SIGNALS) and not self.stopping:
            self.log.message("corsproxy: stopping (draining in-flight requests)")
            self._stop()
        if signal.SIGHUP in numbers and self.reloads is not None and not self.stopping:
            self.reloads.asked(self._controls())

    def _read(self, worker: Worker) -> None:
        try:
            words = os.read(worker.ready_fd, 4096)
        except OSError:
            words = b""
        if not words:  # it is gone; _reap() learns how
            self._forget(worker)
            return
        for word in words.split():
            if word.isdigit() and self.reloads is not None:  # `reloaded N`: it switched
                self.reloads.answered(worker.pid, int(word))
            elif word in (b"uvloop", b"asyncio"):
                self._ready(worker, word)

    def _ready(self, worker: Worker, word: bytes) -> None:
        worker.ready = True
        self.uvloop = word == b"uvloop"
        if self.stopping:
            return
        if self.announced and worker.replaces is not None:
            message = f"corsproxy: worker {worker.pid} listening in place of {worker.replaces}"
            self.log.message(message)
        if not self.announced and sum(w.ready for w in self.workers.values()) == self.count:
            self._announce()

    def _announce(self) -> None:
        """The start-up line and the warnings, once, when all the workers listen."""
        self.announced = True
        url = server.listen_url(self.settings, self.port)
        self.log.message(server.start_line(self.settings, url, self.uvloop, self.count))
        for note in self.notes:
            self.log.message(note)
        inspector = inspector_web.printed_url(self.settings, self.port)
        server.announce_inspector(self.log, inspector, self.open_inspector)
        self.log.message(source_line(self.settings))
        if self.low_limit:
            self.log.message(f"corsproxy: warning: {self.low_limit}")
        for warning in self.settings.warnings:
            self.log.message(f"corsproxy: warning: {warning}")

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            worker = self.workers.pop(pid, None)
            if worker is None:
                continue
            self._forget(worker)
            if not self.stopping:
                self._replace(worker, status)

    def _replace(self, worker: Worker, status: int) -> None:
        at_start = not (worker.ready and time.monotonic() - worker.started >= START_SECONDS)
        how = f"corsproxy: worker {worker.pid} {exit_reason(status)}"
        if self.restarts.died(at_start):
            self.log.message(f"{how}; restarting")
            self._spawn(replaces=worker.pid, slot=worker.slot)
            return
        self.log.message(
            f"{how}; giving up: {self.restarts.failed} workers in a row exited within "
            f"{START_SECONDS:g} s of starting"
        )
        self.gave_up = True
        self._stop()

    def _check_time(self) -> None:
        now = time.monotonic()
        for worker in self.workers.values():
            if worker.ready and not worker.proven and now - worker.started >= START_SECONDS:
                worker.proven = True
                self.restarts.survived()
        if self.kill_at is not None and now >= self.kill_at:
            self.kill_at = None  # a drain is bounded; a worker stuck past it is not waited for
            for pid in self.workers:
                _send(pid, signal.SIGKILL)

    def _stop(self) -> None:
        self.stopping = True
        self.kill_at = time.monotonic() + STOP_SECONDS
        for pid in self.workers:
            _send(pid, signal.SIGTERM)

    def _spawn(self, replaces: int | None, slot: int) -> None:
        ready_r, ready_w = os.pipe()
        control_r, control_w = os.pipe()
        os.set_blocking(control_w, False)
        for stream in (sys.stdout, sys.stderr):  # else the child would write them out again
            with contextlib.suppress(OSError, ValueError):
                stream.flush()
        mask = signal.pthread_sigmask(signal.SIG_BLOCK, FORK_BLOCKED)
        try:
            pid = os.fork()
        except OSError as error:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            for fd in (ready_r, ready_w, control_r, control_w):
                os.close(fd)
            self.log.message(f"corsproxy: cannot start a worker: {error.strerror or error}")
            self.gave_up = True
            self._stop()
            return
        if pid == 0:
            os.close(ready_r)
            os.close(control_w)
            self._become_worker(child.Pipes(ready_w, self.lifeline_r, control_r), mask, slot)
        signal.pthread_sigmask(signal.SIG_SETMASK, mask)
        os.close(ready_w)
        os.close(control_r)
        control = fanout.Outbox(control_w)
        worker = Worker(pid, ready_r, time.monotonic(), control, replaces, slot)
        self.workers[pid] = worker
        self.selector.register(ready_r, selectors.EVENT_READ, worker)

    def _become_worker(
        self, pipes: child.Pipes, mask: set[int | signal.Signals], slot: int
    ) -> NoReturn:
        """In the child: serve until SIGTERM, then exit, never returning into the parent's code."""
        code = 1
        try:
            signal.set_wakeup_fd(-1)
            # Ctrl-C reaches the whole process group; the parent answers it with SIGTERM.
            signal.signal(signal.SIGINT, signal.SIG_IGN)
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
            signal.signal(signal.SIGHUP, signal.SIG_IGN)  # the parent reloads, then tells it
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)
            self._close_inherited()
            serving = child.serve(self.settings, self.port, pipes, self._shared(slot))
            code = server.run_loop(serving)
        except BaseException:
            traceback.print_exc()
        finally:
            for stream in (sys.stdout, sys.stderr):
                with contextlib.suppress(OSError, ValueError):
                    stream.flush()
            os._exit(code)

    def _shared(self, slot: int) -> tuple[Callable[[], int], peers.Peers] | None:
        """In a new worker: its inspector's ids and its way to the other workers' exchanges."""
        if self.inspector_folder is None:
            return None
        return peers.ids(slot, self.started_at), peers.Peers(self.inspector_folder, slot)

    def _controls(self) -> dict[int, fanout.Outbox]:
        return {pid: worker.control for pid, worker in self.workers.items()}

    def _reloaded(self, settings: Settings) -> None:
        """A worker forked from now on starts with these."""
        self.settings = settings

    def _forget(self, worker: Worker) -> None:
        if worker.ready_fd >= 0:
            self.selector.unregister(worker.ready_fd)
            os.close(worker.ready_fd)
            worker.ready_fd = -1
        if worker.control.fd >= 0:
            os.close(worker.control.fd)
            worker.control.fd = -1
        if self.reloads is not None:
            self.reloads.answered(worker.pid, None)

    def _close_fds(self) -> None:
        """In the parent, at the end; run() closes the reserved sockets."""
        for worker in self.workers.values():
            self._forget(worker)
        self.selector.close()
        self.wakeup_r.close()
        self.wakeup_w.close()
        os.close(self.lifeline_r)
        os.close(self.lifeline_w)

    def _close_inherited(self) -> None:
        """In a new worker: the parent's descriptors, its lifeline's read end apart. Closed, not
        unregistered: the epoll instance is shared with the parent across fork()."""
        for worker in self.workers.values():
            for fd in (worker.ready_fd, worker.control.fd):
                if fd >= 0:
                    os.close(fd)
        self.selector.close()
        self.wakeup_r.close()
        self.wakeup_w.close()
        os.close(self.lifeline_w)
        for sock in self.reserved:
            sock.close()


def _send(pid: int, sig: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, sig)

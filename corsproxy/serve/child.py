"""One worker process of `listen.workers` > 1, after the fork (serve/workers.py forks it).

It listens on the shared port, tells the parent it is ready, serves until SIGTERM or until the
parent is gone, and applies each reload the parent sends on its control pipe (serve/fanout.py):
the parent has validated it once; the worker only switches and answers.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Callable
from dataclasses import dataclass

from corsproxy.config.model import Settings
from corsproxy.inspector import peers
from corsproxy.proxy.accesslog import AccessLog
from corsproxy.serve import server
from corsproxy.serve.fanout import Decoder
from corsproxy.serve.reload import Outcome


@dataclass(frozen=True)
class Pipes:
    """A worker's ends: ready (to the parent), lifeline and control (from it)."""

    ready: int
    lifeline: int
    control: int


async def serve(
    settings: Settings,
    port: int,
    pipes: Pipes,
    inspector: tuple[Callable[[], int], peers.Peers] | None = None,
) -> int:
    """One worker: listen on the shared port, say so, serve until SIGTERM, drain as one process
    does. The parent vanishing (SIGKILL) stops it too, so no worker keeps the port orphaned."""
    log = AccessLog(settings.log_level)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, stop.set)

    def orphaned() -> None:  # end of file on the lifeline
        loop.remove_reader(pipes.lifeline)
        stop.set()

    loop.add_reader(pipes.lifeline, orphaned)
    try:
        ids, others = inspector or (None, None)
        running = await server.start(
            settings, log, port=port, reuse_port=True, ids=ids, peers=others
        )
    except OSError as error:  # the port, or the TLS files (ssl.SSLError is an OSError)
        log.message(f"corsproxy: worker {os.getpid()} cannot start: {error.strerror or error}")
        return 1

    def answer(generation: int) -> None:
        os.write(pipes.ready, b"reloaded %d\n" % generation)

    listen(pipes.control, running.apply, answer, log.message)
    with contextlib.suppress(OSError):  # the parent is gone: the lifeline says so too
        os.write(pipes.ready, b"uvloop\n" if server.uvloop_running() else b"asyncio\n")
    try:
        await stop.wait()
    finally:
        await running.stop()
    return 0


def listen(
    control_fd: int,
    apply: Callable[[Outcome], None],
    answer: Callable[[int], None],
    say: Callable[[str], None],
) -> None:
    """Apply each reload from the parent, quietly (the parent prints), and answer its number."""
    loop = asyncio.get_running_loop()
    decoder = Decoder()

    def readable() -> None:
        try:
            data = os.read(control_fd, 1 << 16)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # the parent is gone; the lifeline stops this worker
            loop.remove_reader(control_fd)
            return
        for generation, outcome in decoder.feed(data):
            try:
                apply(outcome)
            except Exception as error:  # noqa: BLE001 - the parent's checks passed; say why
                say(f"corsproxy: worker {os.getpid()} could not switch: {error}")
            with contextlib.suppress(OSError):
                answer(generation)

    os.set_blocking(control_fd, False)
    loop.add_reader(control_fd, readable)

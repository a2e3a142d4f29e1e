"""One upstream socket as an asyncio protocol: bytes go to the response parser as they come.

client.Pool owns these and client.Response reads through them. Reading pauses while the
parser holds more than HIGH_WATER bytes the browser has not taken yet: memory stays bounded
however fast the upstream sends and however slow the browser reads.
"""

from __future__ import annotations

import asyncio
from typing import Protocol

from corsproxy.http import responseparser, wire
from corsproxy.http.errors import Disconnected, IdleTimeout

HIGH_WATER = 256 * 1024  # stop reading from the upstream while the browser is this far behind


class Body(Protocol):
    """A request body as the client reads it: aiohttp's StreamReader (request.content)."""

    def is_eof(self) -> bool: ...

    def read_nowait(self, n: int = -1) -> bytes: ...

    async def read(self, n: int = -1) -> bytes: ...

    async def readany(self) -> bytes: ...


class Connection(asyncio.Protocol):
    """One upstream socket: bytes go to the current response's parser, a waiting reader is
    woken. Bytes that arrive while no response is awaited make the connection unusable."""

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.transport: asyncio.Transport | None = None
        self.parser: responseparser.ResponseParser | None = None
        self.invalid: wire.InvalidResponse | None = None  # what the parser refused
        self.stray = False  # bytes arrived that belong to no response
        self.closed = False
        self.error: BaseException | None = None
        self.idle_since = 0.0
        self._waiter: asyncio.Future[None] | None = None
        self._drain: asyncio.Future[None] | None = None
        self._reading_paused = False

    # asyncio.Protocol callbacks

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]

    def data_received(self, data: bytes) -> None:
        parser = self.parser
        if parser is None or self.invalid is not None:
            self.stray = True
            return
        try:
            parser.feed(data)
        except wire.InvalidResponse as exc:
            self.invalid = exc
        if parser.buffered > HIGH_WATER and not self._reading_paused and self.transport:
            self._reading_paused = True
            self.transport.pause_reading()
        self._wake()

    def eof_received(self) -> bool:
        self.closed = True
        self._wake()
        return False

    def connection_lost(self, exc: BaseException | None) -> None:
        self.closed = True
        self.error = exc
        self._wake()
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)

    def pause_writing(self) -> None:
        self._drain = self.loop.create_future()

    def resume_writing(self) -> None:
        if self._drain is not None and not self._drain.done():
            self._drain.set_result(None)
        self._drain = None

    # used by Pool and Response

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def wait_data(self, timeout: float | None) -> None:
        """Wait until more bytes (or the end) arrive; IdleTimeout after `timeout` seconds."""
        if self._reading_paused and self.transport is not None:
            self._reading_paused = False
            self.transport.resume_reading()
        waiter = self.loop.create_future()
        self._waiter = waiter
        timer = None
        if timeout is not None:
            timer = self.loop.call_later(timeout, _expire, waiter, timeout)
        try:
            await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()

    def consumed(self) -> None:
        """The reader took the body's data: read on if reading was paused."""
        if self._reading_paused and self.transport:
            self._reading_paused = False
            self.transport.resume_reading()

    async def drain(self) -> None:
        if self.closed:
            raise Disconnected("the upstream closed the connection while the body was sent")
        if self._drain is not None:
            await self._drain

    def abort_unless_sent(self, sending: asyncio.Task[None]) -> None:
        """The browser's body could not be read to its end: the upstream exchange is void."""
        if sending.cancelled() or sending.exception() is not None:
            self.abort()

    def abort(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.abort()


def _expire(waiter: asyncio.Future[None], timeout: float) -> None:
    if not waiter.done():
        waiter.set_exception(IdleTimeout(f"no data for {timeout:g} s, read_timeout"))

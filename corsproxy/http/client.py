"""The proxy's upstream client: pooled HTTP/1.1 connections that relay bytes as they are.

aiohttp's ClientSession was the largest single cost of a proxied request: it builds a
request object, a URL, a cookie filter, a response object and a stream reader for every
exchange. The proxy already has the head it wants to send and only needs the status, the
raw header list and the body bytes back, so this client writes one prepared head and feeds
what arrives straight to llhttp (responseparser.ResponseParser). WebSocket upgrades go through
wsclient.py, which raises the same errors.

Errors are raised as the UpstreamError subclasses of errors.py; gateway.explain() names them.
"""

from __future__ import annotations

import asyncio
import socket
import ssl
import time
from asyncio.staggered import staggered_race
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable, Container
from itertools import zip_longest

from corsproxy.http import responseparser, wire
from corsproxy.http.connection import Body, Connection
from corsproxy.http.errors import (
    CertificateRejected,
    ConnectFailed,
    Disconnected,
    HeadTooLarge,
    HostNotFound,
    IdleTimeout,
    InvalidResponse,
    TLSFailed,
    UpstreamError,
)

CHUNK = 64 * 1024
IDLE_SECONDS = 10.0  # a pooled connection unused this long is closed instead of reused
IDLE_PER_UPSTREAM = 64  # idle connections kept per upstream; more are closed
DNS_SECONDS = 10.0  # how long a name's addresses are reused
HAPPY_EYEBALLS_DELAY = 0.25  # head start of each address over the next (RFC 8305 §5)


class Response:
    """An upstream response whose head has arrived; the body is read with read() or chunks().

    release() must be called once the body is done with (or abandoned): the connection goes
    back to the pool only when the whole exchange ended cleanly.
    """

    def __init__(
        self,
        pool: Pool,
        key: tuple[str, str, int, bool],
        conn: Connection,
        parser: responseparser.ResponseParser,
        read_timeout: float | None,
        sending: asyncio.Task[None] | None,
    ) -> None:
        head = parser.head
        assert head is not None
        self.status = head.status
        self.reason = head.reason
        self.headers = head.headers
        self.length = head.length if head.framing is wire.Framing.LENGTH else None
        self.framing = head.framing
        self._pool = pool
        self._key = key
        self._conn: Connection | None = conn
        self._parser = parser
        self._head = head
        self._read_timeout = read_timeout
        self._sending = sending

    async def read(self) -> bytes:
        """The whole body (for the small ones, whose length is known)."""
        if self._parser.done:  # the usual small API answer: it came in with the head
            return b"".join(self._parser.take())
        return b"".join([chunk async for chunk in self.chunks()])

    async def chunks(self) -> AsyncIterator[bytes]:
        """The body's bytes as they arrive; at most HIGH_WATER plus one read is buffered."""
        conn = self._conn
        assert conn is not None, "the response was released"
        parser = self._parser
        while True:
            pieces = parser.take()
            if pieces:
                conn.consumed()
                for piece in pieces:
                    yield piece
                continue
            if conn.invalid is not None:
                raise InvalidResponse(str(conn.invalid))
            if parser.done:
                return
            if conn.closed:
                self._ended_by_close(conn)
                return
            await conn.wait_data(self._read_timeout)

    def _ended_by_close(self, conn: Connection) -> None:
        """Return when the close is how the body ends; else Disconnected, saying what was due."""
        framing = self.framing
        if framing is wire.Framing.UNTIL_CLOSE and conn.error is None:
            return
        if framing is wire.Framing.UNTIL_CLOSE:
            raise Disconnected(f"the connection was reset ({conn.error})")
        if framing is wire.Framing.LENGTH:
            due = f"{(self.length or 0) - self._parser.received} of {self.length} bytes still due"
            raise Disconnected(f"the connection closed with {due}")
        raise Disconnected("the connection closed inside the chunked body")

    def release(self) -> None:
        """Return the connection to the pool if the exchange ended cleanly, else close it."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        conn.parser = None
        sent = self._sending is None or (self._sending.done() and not self._sending.cancelled())
        if sent and self._sending is not None and self._sending.exception() is not None:
            sent = False
        parser = self._parser
        if (
            parser.done
            and not parser.buffered  # the body was read to its end
            and sent
            and self._head.keep_alive
            and not conn.closed
            and not parser.beyond  # bytes beyond the body: the upstream is out of step
            and not conn.stray
            and conn.invalid is None
        ):
            self._pool.put(self._key, conn)
        else:
            if self._sending is not None and not self._sending.done():
                self._sending.cancel()
            conn.abort()
        parser.close()


class Pool:
    """Keep-alive connections per upstream (scheme, host, port, verify), reused newest first.

    At most IDLE_PER_UPSTREAM wait per upstream, and none longer than IDLE_SECONDS: after a
    burst of parallel requests the surplus is closed, not kept open on both sides for good.
    """

    def __init__(self) -> None:
        self._idle: dict[tuple[str, str, int, bool], deque[Connection]] = {}
        self._dns: dict[tuple[str, int], tuple[float, list[tuple]]] = {}
        self._tls: dict[bool, ssl.SSLContext] = {}
        self._sweep: asyncio.TimerHandle | None = None
        self._wanted: Container[tuple[str, str, int, bool]] | None = None  # see keep_only()

    def put(self, key: tuple[str, str, int, bool], conn: Connection) -> None:
        if self._wanted is not None and key not in self._wanted:
            conn.abort()  # its upstream left the config while this request ran
            return
        conn.idle_since = time.monotonic()
        idle = self._idle.get(key)
        if idle is None:
            idle = self._idle[key] = deque()
        idle.append(conn)
        if len(idle) > IDLE_PER_UPSTREAM:
            idle.popleft().abort()  # the one idle longest
        if self._sweep is None:
            self._sweep = conn.loop.call_later(IDLE_SECONDS, self._expire_idle, conn.loop)

    def _take(self, key: tuple[str, str, int, bool]) -> Connection | None:
        idle = self._idle.get(key)
        if not idle:
            return None
        fresh = time.monotonic() - IDLE_SECONDS
        while idle:
            conn = idle.pop()
            if not conn.closed and conn.idle_since >= fresh and not conn.stray:
                return conn
            conn.abort()
        return None

    def _expire_idle(self, loop: asyncio.AbstractEventLoop) -> None:
        """Close what has waited IDLE_SECONDS or was closed by the upstream meanwhile."""
        self._sweep = None
        fresh = time.monotonic() - IDLE_SECONDS
        for idle in self._idle.values():
            while idle and (idle[0].closed or idle[0].idle_since < fresh):
                idle.popleft().abort()
        if any(self._idle.values()):
            self._sweep = loop.call_later(IDLE_SECONDS, self._expire_idle, loop)

    def keep_only(self, keys: Container[tuple[str, str, int, bool]]) -> None:
        """After a reload: close the idle connections of upstreams no longer configured, and
        close theirs that requests still running give back later. Kept upstreams keep theirs."""
        self._wanted = keys
        for key in [key for key in self._idle if key not in keys]:
            for conn in self._idle.pop(key):
                conn.abort()

    def close(self) -> None:
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        for idle in self._idle.values():
            for conn in idle:
                conn.abort()
        self._idle.clear()

    async def request(
        self,
        scheme: str,
        host: str,
        port: int,
        verify: bool,
        method: str,
        head: bytes,
        body: Body | None,
        body_length: int | None,
        timeout: float,
        read_timeout: float | None,
    ) -> Response:
        """Send one request and return once the response head has arrived.

        `head` is the complete request head; `body` is streamed after it, as is when
        body_length is known, chunked otherwise. A reused connection that turns out to have
        been closed by the upstream meanwhile is retried once on a new one, when no body
        bytes have been consumed yet (as browsers do).
        """
        key = (scheme, host, port, verify)
        # `timeout` bounds everything up to the response head. asyncio.timeout() costs a few
        # µs per request, so it guards only the steps that may block for long (connecting,
        # waiting for a small upload); waiting for the head passes its deadline on instead.
        deadline = time.monotonic() + timeout
        small: bytes | None = None
        if body is not None and body_length is not None and body_length <= CHUNK:
            # Sent with the head in one write. Usually it came in with the browser's head.
            if body.is_eof():
                small = body.read_nowait(-1)
            else:
                async with asyncio.timeout(timeout):
                    small = await body.read()
            body = None
        for attempt in (0, 1):
            conn = self._take(key) if attempt == 0 else None
            reused = conn is not None
            if conn is None:
                async with asyncio.timeout(deadline - time.monotonic()):
                    conn = await self._connect(scheme, host, port, verify)
            sending: asyncio.Task[None] | None = None
            parser = conn.parser = responseparser.ResponseParser(method)
            try:
                assert conn.transport is not None
                conn.transport.write(head + small if small else head)
                if body is not None:
                    sending = asyncio.ensure_future(_send_body(conn, body, body_length is None))
                    sending.add_done_callback(conn.abort_unless_sent)
                await _read_head(conn, parser, deadline)
            except Disconnected:
                if sending is not None:
                    sending.cancel()
                conn.abort()
                parser.close()
                if reused and body is None and not parser.fed:
                    continue
                raise
            except BaseException:
                if sending is not None:
                    sending.cancel()
                conn.abort()
                parser.close()
                raise
            return Response(self, key, conn, parser, read_timeout, sending)
        raise AssertionError("unreachable")

    async def _connect(self, scheme: str, host: str, port: int, verify: bool) -> Connection:
        """A new connection; with several addresses, each next one is tried after a short
        head start of the one before (Happy Eyeballs, RFC 8305), so an IPv6 address that
        silently drops packets costs 250 ms, not the whole timeout."""
        loop = asyncio.get_running_loop()
        context = self._context(verify) if scheme == "https" else None

        def attempt(family: int, address: tuple) -> Callable[[], Awaitable[Connection]]:
            async def connect() -> Connection:
                conn = Connection(loop)
                try:
                    await loop.create_connection(
                        lambda: conn,
                        address[0],
                        address[1],
                        family=family,
                        ssl=context,
                        server_hostname=host if context else None,
                    )
                except BaseException:
                    conn.abort()  # also when it lost the race after connecting
                    raise
                return conn

            return connect

        attempts = [attempt(*found) for found in _interleaved(await self._resolve(host, port))]
        if len(attempts) == 1:
            try:
                return await attempts[0]()
            except OSError as exc:
                raise _connect_error([exc]) from None
        winner, _, errors = await staggered_race(attempts, HAPPY_EYEBALLS_DELAY)
        if winner is not None:
            return winner
        raise _connect_error([e for e in errors if e is not None]) from None

    async def _resolve(self, host: str, port: int) -> list[tuple]:
        now = time.monotonic()
        cached = self._dns.get((host, port))
        if cached is not None and cached[0] > now:
            return cached[1]
        loop = asyncio.get_running_loop()
        try:
            infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise HostNotFound(f"cannot resolve {host!r}: {exc}") from None
        addresses = list(dict.fromkeys((info[0], info[4]) for info in infos))
        self._dns[(host, port)] = (now + DNS_SECONDS, addresses)
        return addresses

    def _context(self, verify: bool) -> ssl.SSLContext:
        context = self._tls.get(verify)
        if context is None:
            context = ssl.create_default_context()
            if not verify:  # verify_tls: false, for self-signed development certificates
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            context.set_alpn_protocols(["http/1.1"])
            self._tls[verify] = context
        return context


def _interleaved(addresses: list[tuple]) -> list[tuple]:
    """Addresses alternating by family, in the resolver's order otherwise (RFC 8305 §4)."""
    families: dict[int, list[tuple]] = {}
    for found in addresses:
        families.setdefault(found[0], []).append(found)
    lists = list(families.values())
    return [found for group in zip_longest(*lists) for found in group if found is not None]


def _connect_error(errors: list[BaseException]) -> UpstreamError | BaseException:
    """The error to report when no address connected: a certificate or TLS failure first."""
    for exc in errors:
        if isinstance(exc, ssl.SSLCertVerificationError):
            return CertificateRejected(exc)
    for exc in errors:
        if isinstance(exc, ssl.SSLError):
            return TLSFailed(exc)
    for exc in reversed(errors):
        if isinstance(exc, OSError):
            return ConnectFailed(exc)
    return errors[-1] if errors else ConnectFailed(OSError("no address to connect to"))


async def _read_head(
    conn: Connection, parser: responseparser.ResponseParser, deadline: float
) -> None:
    """Wait until the parser has the final head (interim 1xx ones are skipped there).

    Only the route's `timeout` applies here; read_timeout is for the gaps inside a body.
    """
    while parser.head is None:
        if conn.invalid is not None:
            error = HeadTooLarge if isinstance(conn.invalid, wire.HeadTooLarge) else InvalidResponse
            raise error(str(conn.invalid))
        if conn.closed:
            if parser.fed:
                raise Disconnected("the connection closed in the middle of the response head")
            raise Disconnected("the connection closed before the response headers")
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no response headers in time")
        try:
            await conn.wait_data(left)
        except IdleTimeout:
            raise TimeoutError("no response headers in time") from None


async def _send_body(conn: Connection, body: Body, chunked: bool) -> None:
    """Stream the browser's body upstream, re-framed as chunked when its length is unknown."""
    transport = conn.transport
    assert transport is not None
    while True:
        data = await body.readany()
        if not data:
            break
        if chunked:
            transport.write(b"%x\r\n%b\r\n" % (len(data), data))
        else:
            transport.write(data)
        await conn.drain()
    if chunked:
        transport.write(b"0\r\n\r\n")

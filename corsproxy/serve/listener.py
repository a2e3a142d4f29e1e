"""The listening sockets: accept every waiting connection at once, then hand each to aiohttp.

server.start() opens a Listener instead of an aiohttp TCPSite. uvloop (libuv) accepts one
connection per event-loop turn, so under load a burst of new browser connections waited in
the kernel's queue for seconds; accepting in batches here keeps them moving on either loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import ssl
from collections.abc import Callable

BATCH = 256  # connections accepted per wake-up at most, so requests in flight are not starved


class Listener:
    """Sockets bound to (host, port), each accepting in batches into one protocol factory."""

    def __init__(
        self,
        factory: Callable[[], asyncio.Protocol],
        host: str,
        port: int,
        ssl_context: ssl.SSLContext | None = None,
        backlog: int = 1024,
        reuse_port: bool = False,
    ) -> None:
        self._factory = factory
        self._ssl = ssl_context
        self._loop = asyncio.get_running_loop()
        self.sockets = _bind(host, port, backlog, reuse_port)
        self.port: int = self.sockets[0].getsockname()[1]
        self._tasks: set[asyncio.Task[None]] = set()
        for sock in self.sockets:
            self._loop.add_reader(sock.fileno(), self._accept, sock)

    def _accept(self, listening: socket.socket) -> None:
        for _ in range(BATCH):
            try:
                conn, _ = listening.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError:  # EMFILE and friends: the kernel keeps it queued for the next turn
                return
            conn.setblocking(False)
            with contextlib.suppress(OSError):
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            task = self._loop.create_task(self._connect(conn))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _connect(self, conn: socket.socket) -> None:
        try:
            await self._loop.connect_accepted_socket(self._factory, conn, ssl=self._ssl)
        except (TimeoutError, OSError, ssl.SSLError):
            conn.close()  # a client that left during the TLS handshake: nothing to serve

    def close(self) -> None:
        """Stop accepting: new connections are refused from here on."""
        for sock in self.sockets:
            with contextlib.suppress(ValueError, OSError):
                self._loop.remove_reader(sock.fileno())
            sock.close()


def reserve(host: str, port: int) -> list[socket.socket]:
    """Bind (host, port) for a group of SO_REUSEPORT listeners, without listening on it.

    The kernel hands connections only to listening sockets, so these take none; they fix port 0
    to one real port for every worker and keep the port ours while workers come and go. A plain
    bind comes first: with SO_REUSEPORT alone, a port where another corsproxy of the same user
    listens would be shared quietly instead of reported busy.
    """
    probe = _bind(host, port, None)
    real_port = probe[0].getsockname()[1]
    for sock in probe:
        sock.close()
    return _bind(host, real_port, None, reuse_port=True)


def _bind(
    host: str, port: int, backlog: int | None, reuse_port: bool = False
) -> list[socket.socket]:
    """One socket per address the host resolves to (IPv4 and IPv6 alike), listening unless
    backlog is None. With reuse_port, other processes may bind the same port (SO_REUSEPORT)
    and the kernel spreads new connections across all their listening sockets."""
    infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, address in dict.fromkeys(
            (i[0], i[1], i[2], i[3], i[4]) for i in infos
        ):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            if sockets[1:] and port == 0:  # port 0 on several addresses: one port for all
                address = (address[0], sockets[0].getsockname()[1], *address[2:])
            sock.bind(address)
            if backlog is not None:
                sock.listen(backlog)
                sock.setblocking(False)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    return sockets

"""Replay: send a kept exchange's request through the proxy again, as the browser sent it.

web.py calls send() for POST /__corsproxy/api/replay. The request goes to the proxy's own
listening address over a new connection, with the browser's header block byte for byte (the
hop-by-hop fields apart) and the body when it was kept whole; the proxy then handles it like
any other request, so a config reloaded in between shows its effect.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
from dataclasses import dataclass
from typing import TYPE_CHECKING

from corsproxy.inspector.capture import REPLAY_HEADER

if TYPE_CHECKING:
    from corsproxy.proxy.accesslog import Entry

HEAD_SECONDS = 60.0  # for the response head; the body is then read (and dropped) in the back
BODY_SECONDS = 300.0
# Framing and connection fields are this replay's own, not the original's (RFC 9110 §7.6.1).
_OWN = frozenset(
    {
        b"connection",
        b"keep-alive",
        b"proxy-connection",
        b"te",
        b"trailer",
        b"transfer-encoding",
        b"upgrade",
        b"content-length",
        b"expect",
        REPLAY_HEADER.lower().encode(),
    }
)


class NotReplayable(Exception):
    """Why this exchange cannot be sent again, in words for the page."""


@dataclass(frozen=True, slots=True)
class Address:
    """Where the proxy listens, as a client on this machine connects to it."""

    host: str
    port: int
    tls: bool

    @classmethod
    def of(cls, listen_host: str, port: int, tls: bool) -> Address:
        host = {"0.0.0.0": "127.0.0.1", "": "127.0.0.1", "::": "::1"}.get(listen_host, listen_host)
        return cls(host, port, tls)


def request_bytes(entry: Entry, marker: str) -> bytes:
    """The request to send again: request line, the browser's fields, this replay's framing."""
    headers = [(n, v) for n, v in entry.request_headers if n.lower() not in _OWN]
    upgrade = any(n.lower() == b"upgrade" for n, _ in entry.request_headers)
    if upgrade:
        raise NotReplayable("a WebSocket upgrade cannot be replayed")
    had_body = any(
        (n.lower() == b"content-length" and v.strip() not in (b"", b"0"))
        or n.lower() == b"transfer-encoding"
        for n, v in entry.request_headers
    )
    body = b""
    if had_body:
        preview = entry.request_body
        if preview is None or not preview.whole:
            raise NotReplayable(
                "its body was not kept whole (only text-like bodies up to "
                "inspector.body_preview bytes are), so it cannot be sent again"
            )
        body = preview.data
    lines = [f"{entry.method} {entry.path} HTTP/1.1".encode("latin-1")]
    lines += [name + b": " + value for name, value in headers]
    if had_body:
        lines.append(b"Content-Length: %d" % len(body))
    lines.append(f"Connection: close, {REPLAY_HEADER}".encode())
    lines.append(f"{REPLAY_HEADER}: {marker}".encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


async def send(address: Address, data: bytes) -> int:
    """Send it and return the status of the answer; the body is drained in the background."""
    context = None
    if address.tls:  # the proxy itself, on this machine: its certificate is not the point
        context = ssl.create_default_context()
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
    async with asyncio.timeout(HEAD_SECONDS):
        reader, writer = await asyncio.open_connection(address.host, address.port, ssl=context)
        try:
            writer.write(data)
            status_line = await reader.readline()
        except BaseException:
            writer.close()
            raise
    parts = status_line.split(b" ", 2)
    if len(parts) < 2 or not parts[1].isdigit():
        writer.close()
        raise ConnectionError("the proxy's answer to the replay had no status line")
    drain = asyncio.ensure_future(_drain(reader, writer))
    _DRAINING.add(drain)
    drain.add_done_callback(_DRAINING.discard)
    return int(parts[1])


_DRAINING: set[asyncio.Future[None]] = set()


async def _drain(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Read the rest until the proxy closes (it was asked to), so the exchange ends cleanly."""
    try:
        async with asyncio.timeout(BODY_SECONDS):
            while await reader.read(65536):
                pass
    except (TimeoutError, OSError):
        pass
    finally:
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()

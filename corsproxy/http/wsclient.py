"""The upstream side of a WebSocket: aiohttp's ws_connect, behind the client's own errors.

Plain HTTP goes through client.Pool. A WebSocket needs a frame reader and writer as well,
which aiohttp has and this project does not want to own, so the upgrade goes through one
aiohttp ClientSession that lives here and nowhere else. Every failure to open the upstream
WebSocket is raised as the same errors.UpstreamError subclasses the pool raises (or as
TimeoutError), so gateway.explain() names one set of errors whichever client met them.
"""

from __future__ import annotations

import asyncio
import socket

import aiohttp
from multidict import CIMultiDict
from yarl import URL

from corsproxy.http import errors, wire

# Browsers accept far bigger headers than aiohttp's 8 KiB default per line.
MAX_HEADER_LINE = wire.MAX_LINE


class WebSocketClient:
    """Opens upstream WebSockets through one aiohttp session, made on first use."""

    def __init__(self) -> None:
        self._session: aiohttp.ClientSession | None = None

    async def connect(
        self,
        url: str,
        headers: list[tuple[str, str]],
        protocols: list[str],
        verify: bool,
        timeout: float,
    ) -> aiohttp.ClientWebSocketResponse:
        """The upstream WebSocket, handshake done; errors.UpstreamError or TimeoutError."""
        session = self._session or self._open()
        try:
            async with asyncio.timeout(timeout):
                return await session.ws_connect(
                    URL(url, encoded=True),
                    headers=CIMultiDict(headers),
                    protocols=protocols,
                    autoping=False,  # the relay passes pings and closes on, as they come
                    autoclose=False,
                    ssl=verify,  # False: accept any certificate (verify_tls: false)
                    max_msg_size=0,
                )
        except aiohttp.ClientError as exc:
            raise upstream_error(exc, url) from None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _open(self) -> aiohttp.ClientSession:
        """No cookie jar, no automatic headers, no decompression: the browser's, as sent."""
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=10, enable_cleanup_closed=True)
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
            timeout=aiohttp.ClientTimeout(total=None),
            max_line_size=MAX_HEADER_LINE,
            max_field_size=MAX_HEADER_LINE,
        )
        return self._session


def upstream_error(exc: aiohttp.ClientError, url: str) -> errors.UpstreamError:
    """aiohttp's error as the client's own. The order matters: the certificate and TLS errors
    are ClientConnectorErrors too, and WSServerHandshakeError is a ClientResponseError."""
    if isinstance(exc, aiohttp.ClientConnectorCertificateError):
        return errors.CertificateRejected(exc.certificate_error)
    if isinstance(exc, aiohttp.ClientConnectorSSLError):
        return errors.TLSFailed(exc.os_error)
    if isinstance(exc, aiohttp.ClientConnectorError):
        if isinstance(exc.os_error, socket.gaierror):
            return errors.HostNotFound(f"cannot resolve {exc.host!r}: {exc.os_error}")
        return errors.ConnectFailed(exc.os_error)
    if isinstance(exc, aiohttp.WSServerHandshakeError) and exc.status != 101:
        return errors.UpgradeRefused(exc.status)
    if isinstance(exc, aiohttp.WSServerHandshakeError):
        return errors.InvalidResponse(f"bad WebSocket handshake: {exc.message}")
    if isinstance(exc, aiohttp.ClientResponseError):
        return errors.InvalidResponse(exc.message or str(exc))
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return errors.Disconnected("the connection closed before the response headers")
    if isinstance(exc, aiohttp.ClientOSError):
        return errors.Disconnected(f"the connection broke off ({exc})")
    return errors.UpstreamError(f"{type(exc).__name__}: {exc} ({url})")

"""Why the upstream could not answer, in words: the one place upstream failures are named.

proxy.forward() hands any exception from the upstream request to explain(); the browser gets
the resulting 502/504 as JSON it can read (the CORS headers are added by the caller).
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
import ssl
from dataclasses import dataclass

import aiohttp

from corsproxy.http import client
from corsproxy.proxy.routing import CompiledRoute


@dataclass(frozen=True, slots=True)
class GatewayError:
    """A failed upstream exchange: the status to send and the JSON body's fields."""

    status: int
    error: str
    detail: str
    hint: str | None = None

    def body(self, upstream: str) -> dict[str, str]:
        """The JSON document the browser receives."""
        out = {"error": self.error, "upstream": upstream, "detail": self.detail}
        if self.hint:
            out["hint"] = self.hint
        return out


async def explain(exc: BaseException, route: CompiledRoute, index: int) -> GatewayError:
    """Turn an exception raised before the upstream's headers arrived into a GatewayError."""
    where = f"routes[{index}]" if route.route.prefix != "/" or index else "the route"
    if isinstance(exc, TimeoutError | asyncio.TimeoutError) and not isinstance(
        exc, aiohttp.ClientConnectorError
    ):
        return GatewayError(
            504,
            "upstream timed out",
            f"no response headers within {route.route.timeout:g} s",
            f"raise timeout on {where} if the backend is just slow",
        )
    if isinstance(exc, client.CertificateRejected | aiohttp.ClientConnectorCertificateError):
        return GatewayError(
            502,
            "upstream TLS certificate rejected",
            f"{route.host}: {exc.certificate_error}",
            f"set verify_tls: false on {where} to accept a self-signed certificate",
        )
    if isinstance(exc, client.HostNotFound | aiohttp.ClientConnectorDNSError):
        return GatewayError(502, "upstream host not found", f"cannot resolve {route.host!r}")
    if isinstance(exc, client.ConnectFailed | aiohttp.ClientConnectorError):
        return GatewayError(502, "upstream unreachable", await _connect_detail(exc.os_error, route))
    if isinstance(exc, ssl.SSLError | aiohttp.ClientSSLError):
        return GatewayError(502, "upstream TLS handshake failed", str(exc))
    if isinstance(exc, client.Disconnected):
        return GatewayError(502, "upstream broke off", str(exc))
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return GatewayError(
            502, "upstream broke off", "the connection closed before the response headers"
        )
    if isinstance(exc, client.InvalidResponse):
        return GatewayError(502, "upstream sent an invalid response", str(exc))
    if isinstance(exc, aiohttp.ClientResponseError):
        return GatewayError(502, "upstream sent an invalid response", exc.message or str(exc))
    return GatewayError(502, "upstream failed", f"{type(exc).__name__}: {exc}".rstrip(": "))


async def _connect_detail(os_error: OSError | None, route: CompiledRoute) -> str:
    """'connection refused on ::1 and 127.0.0.1 port 8000': every address that was tried."""
    code = os_error.errno if os_error else None
    if code is None and os_error is not None and os_error.args:
        code = os_error.args[0] if isinstance(os_error.args[0], int) else None
    what = os.strerror(code).lower() if code else str(os_error)
    if code == errno.ECONNREFUSED:
        what = "connection refused"
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(
            route.host, route.port, type=socket.SOCK_STREAM
        )
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
    except OSError:
        addresses = [route.host]
    return f"{what} on {' and '.join(addresses)} port {route.port}"

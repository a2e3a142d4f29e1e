"""Why the upstream could not answer, in words: the one place upstream failures are named.

proxy.forward() and the WebSocket relay hand any exception from the upstream exchange to
explain(); the browser gets the resulting 502/504 as JSON it can read (the CORS headers are
added by the caller). Both upstream clients raise the same errors (errors.UpstreamError's
subclasses, or TimeoutError while waiting for the head), and each has its words here.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
from dataclasses import dataclass

from corsproxy.http import errors, wire
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
    """Turn an exception raised before the response's headers were sent into a GatewayError."""
    where = f"routes[{index}]" if route.route.prefix != "/" or index else "the route"
    if isinstance(exc, errors.IdleTimeout):  # a small body that stopped arriving
        return GatewayError(
            504,
            "upstream stalled",
            f"{exc} inside the response body",
            f"raise read_timeout on {where} if the backend pauses that long",
        )
    if isinstance(exc, TimeoutError):
        return GatewayError(
            504,
            "upstream timed out",
            f"no response headers within {route.route.timeout:g} s",
            f"raise timeout on {where} if the backend is just slow",
        )
    if isinstance(exc, errors.CertificateRejected):
        return GatewayError(
            502,
            "upstream TLS certificate rejected",
            f"{route.host}: {exc.certificate_error}",
            f"set verify_tls: false on {where} to accept a self-signed certificate",
        )
    if isinstance(exc, errors.HostNotFound):
        return GatewayError(502, "upstream host not found", f"cannot resolve {route.host!r}")
    if isinstance(exc, errors.ConnectFailed):
        return GatewayError(502, "upstream unreachable", await _connect_detail(exc.os_error, route))
    if isinstance(exc, errors.TLSFailed):
        return GatewayError(502, "upstream TLS handshake failed", str(exc))
    if isinstance(exc, errors.Disconnected):
        return GatewayError(502, "upstream broke off", str(exc))
    if isinstance(exc, errors.HeadTooLarge):
        return _head_too_large()
    if isinstance(exc, errors.InvalidResponse):
        return GatewayError(502, "upstream sent an invalid response", str(exc))
    if isinstance(exc, errors.UpgradeRefused):
        return GatewayError(502, "upstream refused the WebSocket upgrade", str(exc))
    # Anything else is a bug of the proxy's (or the request head it could not write).
    return GatewayError(502, "upstream failed", f"{type(exc).__name__}: {exc}".rstrip(": "))


def _head_too_large() -> GatewayError:
    limit = wire.MAX_HEAD // 1024
    return GatewayError(
        502,
        "upstream response head too large",
        f"the response head exceeds {limit} KiB, more than browsers accept: Chromium fails "
        "such a response with ERR_RESPONSE_HEADERS_TOO_BIG and the page sees only a "
        "network error",
        "look for a header that grows on the backend: a cookie, a trace or debug header",
    )


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

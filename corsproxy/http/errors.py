"""How an exchange with the upstream can fail: one vocabulary for HTTP and WebSocket.

client.py and wsclient.py raise these; gateway.explain() turns each into the 502 or 504
that tells the user what happened.
"""

from __future__ import annotations


class UpstreamError(Exception):
    """The upstream exchange failed; subclasses say how."""


class HostNotFound(UpstreamError):
    """The upstream's host name does not resolve."""


class ConnectFailed(UpstreamError):
    """No address of the upstream accepted a connection; os_error is the last refusal."""

    def __init__(self, os_error: OSError) -> None:
        super().__init__(str(os_error))
        self.os_error = os_error


class CertificateRejected(UpstreamError):
    """The upstream's TLS certificate did not verify."""

    def __init__(self, certificate_error: Exception) -> None:
        super().__init__(str(certificate_error))
        self.certificate_error = certificate_error


class Disconnected(UpstreamError):
    """The upstream closed the connection before (or while) sending its response."""


class TLSFailed(UpstreamError):
    """The TLS handshake with the upstream failed for another reason than its certificate."""

    def __init__(self, ssl_error: OSError) -> None:
        super().__init__(str(ssl_error))
        self.ssl_error = ssl_error


class InvalidResponse(UpstreamError):
    """The upstream's bytes are not a valid HTTP/1.x response."""


class HeadTooLarge(InvalidResponse):
    """The response head is longer than browsers accept (wire.MAX_HEAD)."""


class UpgradeRefused(UpstreamError):
    """The upstream answered a WebSocket upgrade with another status than 101."""

    def __init__(self, status: int) -> None:
        super().__init__(f"status {status}")
        self.status = status


class IdleTimeout(UpstreamError, TimeoutError):
    """No bytes from the upstream for read_timeout seconds."""

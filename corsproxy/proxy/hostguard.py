"""The DNS-rebinding guard: which Host headers the proxy answers at all.

proxy.handle() asks HostGuard.allows() first. A page on evil.example whose DNS name is
re-pointed at 127.0.0.1 sends `Host: evil.example`; refusing it keeps that page out.
"""

from __future__ import annotations

from corsproxy.cors.origins import is_loopback_host
from corsproxy.cors.sites import host_only

_ANY_INTERFACE = ("0.0.0.0", "::", "[::]", "")


class HostGuard:
    """localhost, *.localhost, 127.0.0.1, [::1], the listen host and `listen.allowed_hosts`."""

    def __init__(self, listen_host: str, allowed_hosts: tuple[str, ...]) -> None:
        names = {h.lower() for h in allowed_hosts}  # loopback names: is_loopback_host()
        listen = listen_host.lower()
        if listen not in _ANY_INTERFACE:
            names.add(f"[{listen}]" if ":" in listen and not listen.startswith("[") else listen)
        self.names = frozenset(names)
        self._cache: dict[str, bool] = {}

    def allows(self, host_header: str | None) -> bool:
        """Whether a request with this Host header may be served (missing Host: no)."""
        if host_header is None:
            return False
        known = self._cache.get(host_header)
        if known is None:
            name = host_only(host_header)
            known = name in self.names or is_loopback_host(name)
            if len(self._cache) < 1024:
                self._cache[host_header] = known
        return known

"""Routing: which configured upstream a request goes to, and the exact URL it is sent to.

proxy.handle() calls RouteTable.match() on the raw request target. The upstream URL is only
ever the configured base plus the request's path and query, byte for byte, so nothing in the
request (an absolute-form target, `//host`, `/http://host`, Host) can choose the destination.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import urlsplit

from corsproxy.config.model import Route
from corsproxy.proxy.urls import path_and_query


@dataclass(frozen=True, slots=True)
class CompiledRoute:
    """A route with everything the hot path needs prepared once."""

    route: Route
    prefix: str  # "" for "/", so every path matches it
    base: str  # scheme://authority[/base-path], no trailing slash
    upstream_host: str  # the Host header for host_header: upstream
    upstream_origin: str  # scheme://authority, for origin_header: upstream
    host: str  # host name only, for error messages
    port: int


@dataclass(frozen=True, slots=True)
class Target:
    """Where one request goes: its route and the upstream URL (already percent-encoded)."""

    route: CompiledRoute
    url: str
    path: str  # the request path as received, without the query, for rules and logs


class RouteTable:
    """Routes sorted longest prefix first; match() returns the first on a segment boundary."""

    def __init__(self, routes: tuple[Route, ...]) -> None:
        compiled = [compile_route(r) for r in routes]
        self.routes = tuple(sorted(compiled, key=lambda r: len(r.prefix), reverse=True))
        self.prefixes = tuple(r.route.prefix for r in self.routes)

    def match(self, raw_target: str) -> Target | None:
        """Route a raw request target (path and query as received); None when none matches."""
        path_qs = origin_form(raw_target)
        if path_qs is None:
            return None
        path, _, query = path_qs.partition("?")
        for route in self.routes:
            prefix = route.prefix
            if path.startswith(prefix) and (len(path) == len(prefix) or path[len(prefix)] == "/"):
                rest = path[len(prefix) :] if route.route.strip_prefix else path
                rest = rest or "/"
                url = route.base + rest + ("?" + query if query or "?" in path_qs else "")
                return Target(route, url, path)
        return None


def origin_form(raw_target: str) -> str | None:
    """The path and query of a request target (RFC 9112 §3.2).

    An absolute-form target (`http://other.host/x`) keeps only its path: its authority is
    ignored, never used as a destination. Authority-form (CONNECT) and asterisk-form give None.
    """
    if raw_target.startswith("/"):
        return raw_target
    if raw_target.find("://") <= 0:
        return None
    return path_and_query(raw_target)


def compile_route(route: Route) -> CompiledRoute:
    """Prepare a route's base URL and the upstream's Host and origin."""
    parts = urlsplit(route.upstream)
    default_port = 443 if parts.scheme == "https" else 80
    port = parts.port or default_port
    authority = parts.netloc
    return CompiledRoute(
        route=route,
        prefix="" if route.prefix == "/" else route.prefix.rstrip("/"),
        base=f"{parts.scheme}://{authority}{parts.path.rstrip('/')}",
        upstream_host=authority,
        upstream_origin=f"{parts.scheme}://{authority}",
        host=parts.hostname or "",
        port=port,
    )

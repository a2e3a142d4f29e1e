"""Header rules for each direction of the proxy: hop-by-hop removal and forwarding headers.

proxy.handle() calls for_upstream() on the browser's headers before sending them on, and
for_client() on the upstream's response headers before policy.finish() adds the CORS ones.
"""

from __future__ import annotations

from collections.abc import Iterable

from corsproxy.proxy.urls import path_and_query

# RFC 9110 §7.6.1: connection-specific fields belong to one hop and are never forwarded.
HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",  # non-standard, still sent by some clients (RFC 9110 §7.6.1 note)
        "te",
        "trailer",
        "transfer-encoding",  # each hop frames its own body (chunked or Content-Length)
        "upgrade",  # WebSocket upgrades are proxied by the shell, not by forwarding the header
    }
)
# Replaced by the proxy on the way up: Host is chosen per route, X-Forwarded-* are ours.
# Expect: aiohttp answers `100-continue` to the browser itself, and the body is streamed on.
_SET_BY_PROXY = frozenset({"host", "x-forwarded-host", "x-forwarded-proto", "expect"})
# Dropped with origin_header strip|upstream: they tell the backend the request is cross-site.
FETCH_METADATA = frozenset({"sec-fetch-site", "sec-fetch-mode", "sec-fetch-dest"})

Headers = list[tuple[str, str]]


def connection_named(headers: Iterable[tuple[str, str]]) -> frozenset[str]:
    """Header names listed in Connection (RFC 9110 §7.6.1): hop-by-hop for this message."""
    named: set[str] = set()
    for name, value in headers:
        if name.lower() == "connection":
            named.update(token.strip().lower() for token in value.split(",") if token.strip())
    return frozenset(named)


def _end_to_end(headers: Iterable[tuple[str, str]], drop: frozenset[str]) -> Headers:
    headers = list(headers)
    extra = connection_named(headers)
    return [
        (name, value)
        for name, value in headers
        if (lower := name.lower()) not in HOP_BY_HOP and lower not in drop and lower not in extra
    ]


def for_upstream(
    headers: Iterable[tuple[str, str]],
    *,
    host: str,
    client_host: str | None,
    client_ip: str | None,
    scheme: str,
    origin: str | None = None,
    origin_mode: str = "keep",
    upstream_origin: str = "",
) -> Headers:
    """The browser's headers as the upstream should see them.

    `host` is the Host to send (the upstream's, or the browser's with host_header: client);
    the browser's own Host goes on as X-Forwarded-Host. With origin_mode strip or upstream the
    Origin and Referer are removed or made the upstream's own, for backends that refuse
    foreign origins; the caller applies that only to allowed origins.
    """
    drop = _SET_BY_PROXY
    if origin_mode != "keep" and origin is not None:
        drop = drop | FETCH_METADATA | {"origin", "referer"}
    out = _end_to_end(headers, drop)
    if origin_mode == "upstream" and origin is not None:
        out.append(("Origin", upstream_origin))
        referer = _first(headers, "referer")
        if referer is not None:
            out.append(("Referer", upstream_origin + path_and_query(referer)))
    out.append(("Host", host))
    if client_ip:
        previous = _first(headers, "x-forwarded-for")
        out = [(n, v) for n, v in out if n.lower() != "x-forwarded-for"]
        out.append(("X-Forwarded-For", f"{previous}, {client_ip}" if previous else client_ip))
    if client_host:
        out.append(("X-Forwarded-Host", client_host))
    out.append(("X-Forwarded-Proto", scheme))
    return out


def for_client(headers: Iterable[tuple[str, str]]) -> Headers:
    """The upstream's response headers without the ones that belong to its hop."""
    return _end_to_end(headers, frozenset())


def _first(headers: Iterable[tuple[str, str]], lower_name: str) -> str | None:
    for name, value in headers:
        if name.lower() == lower_name:
            return value
    return None

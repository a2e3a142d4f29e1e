"""Chromium's Local Network Access (142+): a page may reach a more private address space
(public -> local -> loopback) only with the user's permission, which only secure pages can ask
for. Pure: doctor supplies the addresses; this says which space each is and what follows."""

from __future__ import annotations

import ipaddress
from typing import Literal
from urllib.parse import urlsplit

from corsproxy.cors.findings import Finding

Space = Literal["loopback", "local", "public"]
_ORDER = {"public": 0, "local": 1, "loopback": 2}
ENGINES = ("chromium",)  # Firefox 140 ESR does not enforce it (its network.lna prefs are off)


def address_space(address: str) -> Space:
    """The IP address space of an address (WICG Local Network Access, "IP address space")."""
    try:
        ip = ipaddress.ip_address(address.strip("[]"))
    except ValueError:
        return "public"
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return "loopback"
    if ip.is_private or ip.is_link_local:
        return "local"
    return "public"


def host_space(host: str) -> Space | None:
    """The space a host name says by itself (an IP literal, localhost); None: resolve it."""
    host = host.lower().rstrip(".")
    if host == "localhost" or host.endswith(".localhost"):
        return "loopback"
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None
    return address_space(host)


def is_secure_origin(origin: str) -> bool:
    """A potentially trustworthy origin (Secure Contexts §3.1): https, or a loopback host."""
    parts = urlsplit(origin)
    return parts.scheme == "https" or host_space(parts.hostname or "") == "loopback"


def check_local_network(origin: str, page: Space, target: Space, url: str) -> Finding | None:
    """The finding when a page in space `page` fetches `url` in the more private `target`."""
    if _ORDER[target] <= _ORDER[page]:
        return None
    secure = is_secure_origin(origin)
    detail = (
        f"the page is in the {page} address space and {url} in the {target} one: Chromium 142+"
        " asks the user for the Local Network Access permission, "
        + (
            "and blocks the request if it is refused"
            if secure
            else "which only secure pages (https or localhost) can get, so it blocks the request"
        )
    )
    return Finding("CORSLocalNetworkAccessDenied", not secure, detail, target, only=ENGINES)

"""Set-Cookie and Location rewrites, so cookies land on the proxy and redirects come back to it.

proxy._respond() calls response_headers() after policy.finish(). Pure: the browser-facing
facts (scheme, Host, whether the proxy's host is a secure context) come in as plain values.
"""

from __future__ import annotations

from dataclasses import dataclass

from corsproxy.config.model import Cookies
from corsproxy.cors.origins import is_loopback_host
from corsproxy.proxy.hostguard import host_name

REDIRECT_HEADERS = frozenset({"location", "content-location"})


@dataclass(frozen=True, slots=True)
class RouteMap:
    """How one route's upstream URLs map back to proxy paths."""

    base: str  # scheme://authority[/path], lowercase scheme and authority
    prefix: str  # "" for the "/" route
    strip_prefix: bool


@dataclass(frozen=True, slots=True)
class BrowserSide:
    """How the browser reached the proxy for this request."""

    scheme: str  # "http" | "https"
    host: str  # the Host header as sent, e.g. "localhost:8080"

    @property
    def secure_context(self) -> bool:
        """Browsers keep Secure cookies over https, and over plain http only on loopback names."""
        if self.scheme == "https":
            return True
        return is_loopback_host(host_name(self.host))


def rewrite_cookie(
    value: str, rules: Cookies, browser: BrowserSide, route: RouteMap
) -> tuple[str, list[str]]:
    """One Set-Cookie field rewritten for the proxy's origin; returns it and what changed."""
    pair, *attributes = value.split(";")
    name = pair.split("=", 1)[0].strip()
    kept: list[str] = []
    changes: list[str] = []
    secure = samesite = None
    for raw in attributes:
        attr = raw.strip()
        key, _, val = attr.partition("=")
        lower = key.strip().lower()
        if lower == "domain" and rules.domain != "keep":
            changes.append(
                f"Domain={val} dropped"
                if rules.domain == "strip"
                else f"Domain={val} -> {rules.domain}"
            )
            continue
        if lower == "secure":
            secure = attr
            continue
        if lower == "samesite":
            samesite = val.strip()
            continue
        if lower == "path" and route.strip_prefix and route.prefix:
            new = route.prefix + (val if val != "/" else "")
            changes.append(f"Path={val} -> {new}")
            attr = f"Path={new}"
        kept.append(attr)
    if rules.domain not in ("strip", "keep"):
        kept.append(f"Domain={rules.domain}")
        if not any(c.startswith("Domain=") for c in changes):
            changes.append(f"Domain={rules.domain} set")
    drop_secure = rules.secure == "strip" or (rules.secure == "auto" and not browser.secure_context)
    if secure is not None and drop_secure:
        changes.append("Secure dropped (the browser reached the proxy over plain http)")
        secure = None
    if rules.samesite != "keep":
        wanted = rules.samesite.capitalize()
        if samesite != wanted:
            changes.append(f"SameSite={samesite or '(none)'} -> {wanted}")
        samesite = wanted
    if samesite is not None and samesite.lower() == "none" and secure is None:
        # Browsers reject SameSite=None without Secure outright; Lax keeps the cookie alive.
        changes.append("SameSite=None -> Lax (None needs Secure)")
        samesite = "Lax"
    if secure is not None:
        kept.append(secure)
    if samesite is not None:
        kept.append(f"SameSite={samesite}")
    if not changes:
        return value, []
    return "; ".join([pair.strip(), *kept]), [f"cookie {name}: {', '.join(changes)}"]


def rewrite_location(
    value: str, browser: BrowserSide, current: RouteMap, routes: tuple[RouteMap, ...]
) -> str | None:
    """A Location pointing at a configured upstream, pointed at the proxy; None: leave it.

    Absolute and scheme-relative URLs become absolute proxy URLs (the scheme and Host the
    browser used); root-relative ones stay root-relative, with the route prefix put back.
    """
    if value.startswith("//"):
        absolute, relative = current.base.split(":", 1)[0] + ":" + value, False
    elif value.startswith("/"):
        absolute, relative = _split(current.base)[0] + value, True
    elif "://" in value:
        absolute, relative = value, False
    else:
        return None  # a relative reference already resolves against the proxy's URL
    origin, path = _split(absolute)
    for route in (current, *routes):
        base_origin, base_path = _split(route.base)
        if origin.lower() != base_origin or not _under(path, base_path):
            continue
        rest = path[len(base_path) :]
        if rest.startswith("?") or not rest:
            rest = "/" + rest if not route.strip_prefix or not route.prefix else rest
        proxied = route.prefix + rest if route.strip_prefix else rest
        result = proxied if relative else f"{browser.scheme}://{browser.host}{proxied}"
        return None if result == value else result
    return None


def _under(path: str, base_path: str) -> bool:
    """Whether a path lies below a base path, on a segment boundary."""
    if not base_path or path == base_path:
        return True
    return path.startswith(base_path) and path[len(base_path)] in "/?"


def _split(url: str) -> tuple[str, str]:
    """('scheme://authority', '/path?query') of an absolute URL."""
    start = url.find("://") + 3
    slash = min(
        (i for i in (url.find("/", start), url.find("?", start)) if i >= 0), default=len(url)
    )
    return url[:slash], url[slash:]


def response_headers(
    headers: list[tuple[str, str]],
    status: int,
    rules: Cookies,
    redirects: str,
    browser: BrowserSide,
    current: RouteMap,
    routes: tuple[RouteMap, ...],
) -> tuple[list[tuple[str, str]], list[str]]:
    """Rewrite every Set-Cookie and, on 201 and 3xx, Location/Content-Location."""
    out: list[tuple[str, str]] = []
    notes: list[str] = []
    redirecting = redirects == "rewrite" and (status == 201 or 300 <= status < 400)
    for name, value in headers:
        lower = name.lower()
        if lower == "set-cookie":
            value, changed = rewrite_cookie(value, rules, browser, current)
            notes.extend(changed)
        elif lower in REDIRECT_HEADERS and redirecting:
            new = rewrite_location(value, browser, current, routes)
            if new is not None:
                notes.append(f"{name}: {value} -> {new}")
                value = new
            elif "://" in value or value.startswith("//"):
                notes.append(f"{name} left alone (not a configured upstream): {value}")
        out.append((name, value))
    return out, notes

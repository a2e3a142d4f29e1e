"""Set-Cookie and Location rewrites, so cookies land on the proxy and redirects come back to it.

proxy._respond() calls response_headers() after policy.finish(). Pure: the browser-facing
facts (scheme, Host, whether the proxy's host is a secure context) come in as plain values.
"""

from __future__ import annotations

from dataclasses import dataclass

from corsproxy.config.model import Cookies
from corsproxy.cors import cookies
from corsproxy.cors.origins import is_loopback_host
from corsproxy.cors.sites import host_only, site_of, site_of_origin
from corsproxy.proxy.urls import split_absolute

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
        return is_loopback_host(host_only(self.host))


@dataclass(slots=True)
class _Cookie:
    """A Set-Cookie taken apart: the attributes rewrite_cookie() decides on, and the rest."""

    pair: str
    name: str
    kept: list[str]  # attributes passed on as they are (Domain and Path already rewritten)
    secure: str | None  # the attribute as sent, e.g. "Secure"
    samesite: str | None  # its value as sent, e.g. "Lax"
    partitioned: str | None
    changes: list[str]


def _take_apart(value: str, rules: Cookies, route: RouteMap) -> _Cookie:
    pair, *attributes = value.split(";")
    cookie = _Cookie(pair.strip(), pair.split("=", 1)[0].strip(), [], None, None, None, [])
    for raw in attributes:
        attr = raw.strip()
        key, _, val = attr.partition("=")
        lower = key.strip().lower()
        if lower == "domain" and rules.domain != "keep":
            cookie.changes.append(
                f"Domain={val} dropped"
                if rules.domain == "strip"
                else f"Domain={val} -> {rules.domain}"
            )
        elif lower == "secure":
            cookie.secure = attr
        elif lower == "samesite":
            cookie.samesite = val.strip()
        elif lower == "partitioned":
            cookie.partitioned = attr
        elif lower == "path" and route.strip_prefix and route.prefix:
            new = route.prefix + (val if val != "/" else "")
            cookie.changes.append(f"Path={val} -> {new}")
            cookie.kept.append(f"Path={new}")
        else:
            cookie.kept.append(attr)
    if rules.domain not in ("strip", "keep"):
        cookie.kept.append(f"Domain={rules.domain}")
        if not any(c.startswith("Domain=") for c in cookie.changes):
            cookie.changes.append(f"Domain={rules.domain} set")
    return cookie


def rewrite_cookie(
    value: str, rules: Cookies, browser: BrowserSide, route: RouteMap, page: str | None = None
) -> tuple[str, list[str]]:
    """One Set-Cookie field rewritten for the proxy's origin; returns it and what changed.

    `page` is the allowed page's origin (None: no page, or one that is refused): with
    `samesite: auto` a page of another site than the proxy gets SameSite=None; Secure;
    Partitioned where the browser accepts Secure, the only form Chromium keeps for it.
    """
    cookie = _take_apart(value, rules, route)
    secure_ok = browser.secure_context and rules.secure != "strip"  # Secure may be added
    drop = rules.secure == "strip" or (rules.secure == "auto" and not browser.secure_context)
    if cookie.secure is not None and drop:
        cookie.changes.append("Secure dropped (the browser reached the proxy over plain http)")
        cookie.secure = None
    _samesite(cookie, rules.samesite, secure_ok, browser, page)
    if cookie.samesite is not None and cookie.samesite.lower() == "none" and not cookie.secure:
        # Browsers reject SameSite=None without Secure outright; Lax keeps the cookie alive.
        cookie.changes.append("SameSite=None -> Lax (None needs Secure)")
        cookie.samesite = "Lax"
    if cookie.partitioned is not None and cookie.secure is None:
        cookie.changes.append("Partitioned dropped (it needs Secure)")
        cookie.partitioned = None
    if not cookie.changes:
        return value, []
    if cookie.secure is None and cookie.name.lower().startswith(("__host-", "__secure-")):
        cookie.changes.append(
            f"browsers refuse a {cookie.name.split('-')[0]}- cookie without Secure"
        )
    tail = [cookie.secure, cookie.samesite and f"SameSite={cookie.samesite}", cookie.partitioned]
    out = "; ".join([cookie.pair, *cookie.kept, *(a for a in tail if a)])
    return out, [f"cookie {cookie.name}: {', '.join(cookie.changes)}"]


def _samesite(
    cookie: _Cookie, mode: str, secure_ok: bool, browser: BrowserSide, page: str | None
) -> None:
    """Apply `cookies.samesite` to the cookie, noting each change."""
    if mode == "auto":
        if page is None or not is_cross_site(page, browser):
            return  # same-site: the cookie reaches the browser as the upstream sent it
        was = f"SameSite={cookie.samesite or '(none)'}"
        if not secure_ok:
            cookie.changes.append(
                f"{was} kept although the page {page} is cross-site: SameSite=None needs "
                f"Secure, which the browser refuses over plain http on {host_only(browser.host)}"
                " (serve the proxy over https, or open the page on the proxy's site)"
            )
            return
        if cookie.samesite is None or cookie.samesite.lower() != "none" or not cookie.secure:
            cookie.changes.append(f"{was} -> None; Secure (the page {page} is cross-site)")
        if cookie.partitioned is None:
            cookie.changes.append("Partitioned added (a third-party cookie for the page)")
        cookie.samesite, cookie.secure = "None", cookie.secure or "Secure"
        cookie.partitioned = cookie.partitioned or "Partitioned"
        return
    if mode == "keep":
        return
    wanted = mode.capitalize()
    if cookie.samesite != wanted:
        cookie.changes.append(f"SameSite={cookie.samesite or '(none)'} -> {wanted}")
    cookie.samesite = wanted
    if wanted == "None" and cookie.secure is None and secure_ok:
        cookie.changes.append("Secure added (SameSite=None needs it)")
        cookie.secure = "Secure"


def is_cross_site(page: str, browser: BrowserSide) -> bool:
    """Whether the page's site differs from the site of the host the browser used for the
    proxy (a `null` page is another site than any)."""
    return site_of_origin(page) != site_of(browser.scheme, host_only(browser.host))


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
        absolute, relative = split_absolute(current.base)[0] + value, True
    elif "://" in value:
        absolute, relative = value, False
    else:
        return None  # a relative reference already resolves against the proxy's URL
    origin, path = split_absolute(absolute)
    for route in (current, *routes):
        base_origin, base_path = split_absolute(route.base)
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


def response_headers(
    headers: list[tuple[str, str]],
    status: int,
    rules: Cookies,
    redirects: str,
    browser: BrowserSide,
    current: RouteMap,
    routes: tuple[RouteMap, ...],
    page: str | None = None,
    verdicts: list[cookies.CookieVerdict] | None = None,
) -> tuple[list[tuple[str, str]], list[str]]:
    """Rewrite every Set-Cookie and, on 201 and 3xx, Location/Content-Location.

    `page`: the allowed page's origin, None for a request without one or from a refused
    page. Each Set-Cookie a browser will refuse gets a note saying which and why; the verdict
    behind the note is appended to `verdicts` when given (the inspector shows them all).
    """
    out: list[tuple[str, str]] = []
    notes: list[str] = []
    redirecting = redirects == "rewrite" and (status == 201 or 300 <= status < 400)
    for name, value in headers:
        lower = name.lower()
        if lower == "set-cookie":
            value, changed = rewrite_cookie(value, rules, browser, current, page)
            notes.extend(changed)
            found = cookies.verdict(value, cookies.Where(page, browser.scheme, browser.host))
            said = found.summary()
            if said:
                notes.append(f"cookie {found.name}: {said}")
            if verdicts is not None:
                verdicts.append(found)
        elif lower in REDIRECT_HEADERS and redirecting:
            new = rewrite_location(value, browser, current, routes)
            if new is not None:
                notes.append(f"{name}: {value} -> {new}")
                value = new
            elif "://" in value or value.startswith("//"):
                notes.append(f"{name} left alone (not a configured upstream): {value}")
        out.append((name, value))
    return out, notes

"""Will the browser keep this cookie? A verdict per Set-Cookie for Chromium, Firefox and Safari.

Next to judge.py (the CORS check): the proxy's log line, the inspector and `doctor
--credentials` ask verdict() about each Set-Cookie the browser is about to receive, as
rewritten. Pure: the page's origin and the scheme and Host the browser used come in as text.

Which facts were seen in a real browser and which come from documentation: docs/cookies.md.
Chromium 150 and Firefox ESR 140 were checked in tests/e2e/test_cookie_login.py; Safari's
rules come from WebKit's documentation and bug tracker (links on each rule below).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from email.utils import parsedate_to_datetime

from corsproxy.cors.origins import is_loopback_host
from corsproxy.cors.sites import (
    host_only,
    is_ip,
    is_public_suffix,
    site_of,
    site_of_origin,
)

BROWSERS = ("chromium", "firefox", "safari")
# https://github.com/mdn/browser-compat-data/pull/28461, https://bugs.webkit.org/show_bug.cgi?id=281149
SAFARI_LOCALHOST = "which Safari refuses even on localhost"


@dataclass(frozen=True, slots=True)
class SetCookie:
    """One Set-Cookie field, its attributes read as RFC 6265bis §5.6 does (last one wins)."""

    name: str
    secure: bool = False
    samesite: str | None = None  # "strict" | "lax" | "none"; None when absent or unknown
    partitioned: bool = False
    domain: str | None = None  # lowercased, leading dot removed; None when absent or empty
    path: str | None = None
    max_age: int | None = None
    expires: float | None = None  # seconds since the epoch


def parse_set_cookie(value: str) -> SetCookie:
    """parse_set_cookie("sid=1; Secure; SameSite=None").samesite == "none"."""
    pair, *attributes = value.split(";")
    found: dict[str, str] = {}
    for raw in attributes:
        key, _, val = raw.partition("=")
        found[key.strip().lower()] = val.strip()
    samesite = found.get("samesite", "").lower()
    domain = found.get("domain", "").lower().lstrip(".") or None
    return SetCookie(
        name=pair.split("=", 1)[0].strip() if "=" in pair else "",
        secure="secure" in found,
        samesite=samesite if samesite in ("strict", "lax", "none") else None,
        partitioned="partitioned" in found,
        domain=domain,
        path=found.get("path") or None,
        max_age=_integer(found.get("max-age")),
        expires=_date(found.get("expires")),
    )


def _integer(text: str | None) -> int | None:
    try:
        return int(text) if text is not None else None
    except ValueError:
        return None


def _date(text: str | None) -> float | None:
    try:
        return parsedate_to_datetime(text).timestamp() if text else None
    except (TypeError, ValueError):
        return None


@dataclass(frozen=True, slots=True)
class Where:
    """Where the cookie arrives: the page that asked, and the proxy as the browser reached it."""

    page: str | None  # the page's origin; None: a page on the proxy's own origin
    scheme: str  # "http" | "https", how the browser reached the proxy
    host: str  # the Host header the browser sent, port included

    @property
    def host_name(self) -> str:
        return host_only(self.host)

    @property
    def https(self) -> bool:
        return self.scheme == "https"

    @property
    def loopback(self) -> bool:
        return is_loopback_host(self.host_name)

    @property
    def proxy_site(self) -> str:
        return site_of(self.scheme, self.host_name)

    @property
    def page_site(self) -> str | None:
        """The page's site; the proxy's own when there is no page, None for `null`."""
        return self.proxy_site if self.page is None else site_of_origin(self.page)

    @property
    def cross_site(self) -> bool:
        return self.page is not None and self.page_site != self.proxy_site


@dataclass(frozen=True, slots=True)
class BrowserVerdict:
    """What one browser does with the cookie, and why not when it does not."""

    browser: str
    stored: bool
    sent: bool  # sent back on the page's next credentialed fetch to the proxy
    reason: str = ""  # "" when stored and sent
    refused: bool = False  # the browser drops the Set-Cookie (a deletion is not refused)
    partition: str | None = None  # kept only for pages of this top-level site


@dataclass(frozen=True, slots=True)
class CookieVerdict:
    """verdict(...).as_dict() for the inspector; .summary() for the log line."""

    name: str
    cookie: str
    page_site: str | None
    proxy_site: str
    cross_site: bool
    deletes: bool
    browsers: tuple[BrowserVerdict, ...] = field(default=())

    def get(self, browser: str) -> BrowserVerdict:
        return next(b for b in self.browsers if b.browser == browser)

    def as_dict(self) -> dict:
        return asdict(self)

    def refusals(self) -> list[tuple[str, str]]:
        """(browser, reason) for each browser that drops the cookie."""
        return [(b.browser, b.reason) for b in self.browsers if b.refused]

    def summary(self) -> str:
        """A few words for the log: "refused by chromium, safari (SameSite=Lax on a ...)";
        "" when every browser keeps it."""
        grouped: dict[str, list[str]] = {}
        for browser, reason in self.refusals():
            grouped.setdefault(reason, []).append(browser)
        parts = [f"refused by {', '.join(names)} ({reason})" for reason, names in grouped.items()]
        return "; ".join(parts)


def verdict(set_cookie: str, where: Where, now: float | None = None) -> CookieVerdict:
    """What Chromium, Firefox and Safari do with `set_cookie` (as the browser receives it)
    arriving on a credentialed fetch from `where.page` to the proxy."""
    cookie = parse_set_cookie(set_cookie)
    now = time.time() if now is None else now
    deletes = (cookie.max_age is not None and cookie.max_age <= 0) or (
        cookie.max_age is None and cookie.expires is not None and cookie.expires <= now
    )
    browsers = tuple(
        _outcome(browser, _refusal(browser, cookie, where), cookie, where, deletes)
        for browser in BROWSERS
    )
    return CookieVerdict(
        cookie.name, set_cookie, where.page_site, where.proxy_site, where.cross_site, deletes,
        browsers,
    )  # fmt: skip


def _outcome(
    browser: str, reason: str | None, cookie: SetCookie, where: Where, deletes: bool
) -> BrowserVerdict:
    if reason is not None:
        return BrowserVerdict(browser, False, False, reason, refused=True)
    if deletes:
        return BrowserVerdict(browser, False, False, "it deletes the cookie (expired)")
    partition = None
    if where.cross_site and (browser == "firefox" or cookie.partitioned):
        # Firefox's Total Cookie Protection keys every third-party cookie by the top-level
        # site; Chromium and Safari do so for Partitioned (CHIPS) cookies.
        partition = where.page_site or "the opaque origin null"
    return BrowserVerdict(browser, True, True, partition=partition)


def _refusal(browser: str, cookie: SetCookie, where: Where) -> str | None:
    """The first rule this browser applies that drops the cookie, in words; None: kept."""
    for rule in (_secure_over_http, _prefix, _domain, _none_without_secure, _partitioned):
        reason = rule(browser, cookie, where)
        if reason is not None:
            return reason
    return _cross_site(browser, cookie, where) if where.cross_site else None


def _secure_over_http(browser: str, cookie: SetCookie, where: Where) -> str | None:
    """RFC 6265bis §5.7 step 13: Secure only from a secure origin. Chromium and Firefox count
    http://localhost, *.localhost, 127.0.0.1 and [::1] as secure; Safari does not (links above)."""
    if not cookie.secure or where.https:
        return None
    if browser == "safari":
        return f"Secure over plain http, {SAFARI_LOCALHOST}"
    if where.loopback:
        return None
    return f"Secure over plain http on {where.host_name}, which is not localhost"


def _prefix(browser: str, cookie: SetCookie, where: Where) -> str | None:
    """Cookie name prefixes, matched without regard to case (RFC 6265bis §4.1.3):
    https://developer.mozilla.org/en-US/docs/Web/HTTP/Reference/Headers/Set-Cookie#cookie_prefixes"""
    name = cookie.name.lower()
    if name.startswith("__secure-") and not cookie.secure:
        return "a __Secure- cookie needs Secure"
    if not name.startswith("__host-"):
        return None
    if not cookie.secure:
        return "a __Host- cookie needs Secure"
    if cookie.domain is not None:
        return "a __Host- cookie may not have a Domain"
    if cookie.path != "/":
        return "a __Host- cookie needs Path=/"
    return None


def _domain(browser: str, cookie: SetCookie, where: Where) -> str | None:
    """RFC 6265bis §5.7 steps 9-10: the Domain must domain-match the host and not be a public
    suffix (unless it is the host itself); an IP address matches only itself."""
    domain, host = cookie.domain, where.host_name
    if domain is None or domain == host:
        return None
    matches = not is_ip(host) and host.endswith("." + domain)
    if matches and not is_public_suffix(domain):
        return None
    return f"Domain={domain} does not match the host {host}"


def _none_without_secure(browser: str, cookie: SetCookie, where: Where) -> str | None:
    """https://www.chromium.org/updates/same-site/ (Chromium 80); Firefox the same (checked)."""
    if browser == "safari" or cookie.samesite != "none" or cookie.secure:
        return None
    return "SameSite=None without Secure"


def _partitioned(browser: str, cookie: SetCookie, where: Where) -> str | None:
    """CHIPS: a Partitioned cookie must be Secure (Chromium, checked; Safari as the CHIPS
    draft says); Firefox ESR 140 ignores the attribute (checked)."""
    if browser == "firefox" or not cookie.partitioned or cookie.secure:
        return None
    return "Partitioned without Secure"


def _cross_site(browser: str, cookie: SetCookie, where: Where) -> str | None:
    """The page is another site than the proxy: the cookie is a third-party one for it."""
    other = f"the page's site {where.page_site or 'null'} is not {where.proxy_site}"
    if cookie.samesite in ("lax", "strict"):
        # RFC 6265bis §5.7 step 15: a cross-site response may not set a Lax or Strict cookie.
        return f"SameSite={cookie.samesite.capitalize()} on a cross-site response ({other})"
    if browser == "chromium":
        if cookie.samesite is None:
            # https://www.chromium.org/updates/same-site/: no SameSite means Lax.
            return f"no SameSite, so Lax, on a cross-site response ({other})"
        if not cookie.partitioned:
            # Observed (Chromium 150/156 here): a third-party cookie is kept only partitioned.
            return f"a third-party cookie without Partitioned ({other})"
        return None
    if browser == "safari":
        # Full third-party cookie blocking since Safari 13.1:
        # https://webkit.org/blog/10218/full-third-party-cookie-blocking-and-more/
        # Partitioned is not counted as an exception: sources disagree on whether Safari
        # ships it (https://developer.chrome.com/docs/privacy-sandbox/chips says 18.4; the
        # web-features explorer, from MDN's compat data, says no: webkit.org/b/292975).
        return f"Safari blocks third-party cookies ({other})"
    return None  # Firefox: no SameSite means None, and Total Cookie Protection partitions it

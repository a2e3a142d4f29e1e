"""Who may read the inspector: the holder of its token, from the inspector's own origin only.

web.py asks decide() before answering any /__corsproxy/ URL but health; the Host guard has
already run. The exchanges hold cookies and Authorization headers, so: a token of 192 random
bits, compared in constant time; a cookie no other site's request carries (SameSite=Strict)
and no script reads (HttpOnly); any request another site's page made (Sec-Fetch-Site, or an
Origin that is not the inspector's) refused whatever it carries. Pure: values in, Access out.
"""

from __future__ import annotations

import hmac
import secrets
from dataclasses import dataclass
from urllib.parse import parse_qsl

PREFIX = "/__corsproxy"
PAGE = PREFIX + "/"
FOREIGN_SITES = frozenset({"cross-site", "same-site"})
WHERE_PRINTED = (
    "Open the inspector with the URL corsproxy printed when it started, on the line "
    "`inspector: http://.../__corsproxy/?token=...` (or send Authorization: Bearer <token>)."
)


def new_token() -> str:
    """192 random bits, URL-safe (32 characters): new at every start unless the config fixes it."""
    return secrets.token_urlsafe(24)


def cookie_name(port: int) -> str:
    """Cookies ignore ports: two proxies on one host must not overwrite each other's."""
    return f"corsproxy_inspector_{port}"


def login_cookie(name: str, token: str, https: bool) -> str:
    secure = "; Secure" if https else ""
    return f"{name}={token}; HttpOnly; SameSite=Strict; Path={PAGE}{secure}"


@dataclass(frozen=True, slots=True)
class Access:
    """granted, or the status (303: log in and go to the page; 403) and why, in words."""

    granted: bool
    status: int = 200
    reason: str = ""

    @property
    def login(self) -> bool:
        """Set the cookie; 303 to the page, or 200 with a page that goes there (HANDOFF)."""
        return self.status in (303, 200) and not self.granted


GRANTED = Access(True)
LOGIN = Access(False, 303, "token accepted; the cookie is set")
# A link to the tokened URL followed from another page (the demo's, a chat, an app's): the
# browser marks that navigation same-site or cross-site, and so is every redirect after it.
# Answered 200 with the cookie and a page that moves on to the inspector by itself, which the
# browser then marks same-origin. Only a top-level GET navigation with the right token gets it.
HANDOFF = Access(False, 200, "token accepted from a link on another site; the cookie is set")


@dataclass(frozen=True, slots=True)
class Asked:
    """What one request brings: its raw path, and the headers decide() reads (None: absent)."""

    raw_path: str
    method: str = "GET"
    sec_fetch_site: str | None = None
    sec_fetch_mode: str | None = None
    sec_fetch_dest: str | None = None
    origin: str | None = None
    own_origin: str = ""  # scheme://Host as this request addressed the proxy
    authorization: str | None = None
    cookie: str | None = None


def decide(asked: Asked, token: str, cookie: str) -> Access:
    """Sec-Fetch-Site first, then Origin, then the token (query on the page, header, cookie)."""
    site = (asked.sec_fetch_site or "").strip().lower()
    path, _, query = asked.raw_path.partition("?")
    given = [v for n, v in parse_qsl(query, keep_blank_values=True) if n == "token"]
    if site in FOREIGN_SITES and _followed_link(asked, path, given, token):
        return HANDOFF
    if site in FOREIGN_SITES:
        return Access(
            False,
            403,
            f"refused: a request from another site's page (Sec-Fetch-Site: {site}) never "
            f"reaches the inspector, whatever token it carries. {WHERE_PRINTED}",
        )
    if asked.origin is not None and asked.origin.lower() != asked.own_origin.lower():
        return Access(
            False,
            403,
            f"refused: a request from another origin's page (Origin: {asked.origin}) never "
            f"reaches the inspector. {WHERE_PRINTED}",
        )
    if path == PAGE and given:
        if len(given) == 1 and same(given[0], token):
            return LOGIN
        return Access(False, 403, f"refused: wrong token. {WHERE_PRINTED}")
    bearer = _bearer(asked.authorization)
    if bearer is not None and same(bearer, token):
        return GRANTED
    value = cookie_value(asked.cookie, cookie)
    if value is not None and same(value, token):
        return GRANTED
    return Access(False, 403, f"this needs the inspector's token. {WHERE_PRINTED}")


def _followed_link(asked: Asked, path: str, given: list[str], token: str) -> bool:
    """A top-level navigation to the tokened page URL: what following a link to it sends."""
    return (
        asked.method == "GET"
        and path == PAGE
        and (asked.sec_fetch_mode or "").lower() == "navigate"
        and (asked.sec_fetch_dest or "").lower() == "document"
        and len(given) == 1
        and same(given[0], token)
    )


def same(given: str, token: str) -> bool:
    """Constant time: how much of a guess was right must not show in how long it took."""
    return hmac.compare_digest(given.encode("utf-8", "replace"), token.encode("utf-8", "replace"))


def _bearer(authorization: str | None) -> str | None:
    if authorization is None:
        return None
    scheme, _, value = authorization.strip().partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


def cookie_value(header: str | None, name: str) -> str | None:
    """The value of cookie `name` in a Cookie header (RFC 6265 §5.4 `name=value; ...`)."""
    for part in (header or "").split(";"):
        key, eq, value = part.strip().partition("=")
        if eq and key == name:
            return value.strip().strip('"')
    return None

"""The browser's CORS checks from the WHATWG Fetch standard, run on plain data (no I/O).
doctor.py feeds it real exchanges; proxy.py may call check_cors() on an upstream's own headers."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from corsproxy.cors.fetch import (
    FORBIDDEN_RESPONSE,
    SAFELISTED_METHODS,
    SAFELISTED_RESPONSE,
    BadList,
    Headers,
    PreflightNeed,
    get_header,
    header_values,
    is_cross_origin,
    needs_preflight,
    normalize_method,
    serialized_origin,
    token_list,
    url_origin,
)
from corsproxy.cors.findings import FINDINGS, Finding, FindingInfo

__all__ = [
    "FINDINGS",
    "Finding",
    "FindingInfo",
    "PreflightNeed",
    "ReadableHeaders",
    "RedirectStep",
    "check_cors",
    "check_preflight",
    "check_redirect",
    "is_cross_origin",
    "needs_preflight",
    "normalize_method",
    "readable_headers",
    "requested_headers",
    "serialized_origin",
    "url_origin",
]

CHROME_MAX_AGE = 7200  # services/network/public/cpp/cors/preflight_result.cc caps at 2 hours
REDIRECT_STATUSES = frozenset({301, 302, 303, 307, 308})  # Fetch "redirect status"
_REQUEST_BODY_HEADERS = ("content-encoding", "content-language", "content-location", "content-type")
# Names nobody reads from JavaScript: left out of the "not exposed" note, not out of the lists.
_DULL_RESPONSE = frozenset("connection date keep-alive server transfer-encoding vary".split())
_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:")


@dataclass(frozen=True)
class ReadableHeaders:
    """Which response header names the page's JavaScript can read, and which it cannot."""

    readable: tuple[str, ...]
    hidden: tuple[str, ...]
    notes: tuple[Finding, ...] = ()


@dataclass(frozen=True)
class RedirectStep:
    """check_redirect(...) -> where the browser goes next, or the finding that stops it."""

    findings: tuple[Finding, ...]
    location: str | None = None  # None: not a redirect the browser follows
    method: str = "GET"
    drop_headers: tuple[str, ...] = ()  # lowercase names removed from the next request
    drop_body: bool = False
    tainted: bool = False  # from the next request on, the origin is serialized as "null"


def _cors_check(
    origin: str, credentials: bool, headers: Headers, preflight: bool = False
) -> Finding | None:
    """Fetch §4.9 "CORS check", with Chromium's finer split of the failures (cors.cc)."""
    allow = get_header(headers, "access-control-allow-origin")
    if allow is None:
        detail = "no Access-Control-Allow-Origin header"
        return Finding("CORSMissingAllowOrigin", True, detail, preflight=preflight)
    if allow == "*":  # step 3: `*` succeeds only when credentials mode is not "include"
        if not credentials:
            return None
        detail = "Access-Control-Allow-Origin is '*' but the request includes credentials"
        return Finding("CORSNotSupportingCredentials", True, detail, "*", preflight=preflight)
    if allow != origin:  # step 4: byte-for-byte equality with the serialized request origin
        return _origin_mismatch(allow, origin, preflight)
    if not credentials:
        return None
    value = get_header(headers, "access-control-allow-credentials")
    if value == "true":  # step 7: case-sensitive, exactly one `true`
        return None
    shown = "missing" if value is None else f"{value!r}, not 'true'"
    detail = f"Access-Control-Allow-Credentials is {shown}"
    return Finding("CORSMissingAllowCredentials", True, detail, value or "", preflight=preflight)


def _origin_mismatch(allow: str, origin: str, preflight: bool) -> Finding:
    if "," in allow or " " in allow:  # a list, or the header sent twice ("get" joins with ", ")
        detail = f"Access-Control-Allow-Origin is {allow!r}: more than one value"
        name = "CORSMultipleAllowOriginNotAllowed"
    elif allow != "null" and not _looks_like_url(allow):
        detail = f"Access-Control-Allow-Origin is {allow!r}, which is not an origin"
        return Finding(
            "CORSInvalidAllowOrigin",
            True,
            detail,
            allow,
            preflight=preflight,
            names=(("firefox", "CORSAllowOriginNotMatchingOrigin"),),
        )
    else:
        detail = f"Access-Control-Allow-Origin is {allow!r} but the request's origin is {origin!r}"
        name = "CORSAllowOriginNotMatchingOrigin"
        if allow.rstrip("/") == origin or allow.lower() == origin:
            detail += " (they differ only by a trailing slash or letter case, which still fails)"
        elif origin == "null":
            detail += " (after a cross-origin redirect the browser sends Origin: null)"
    return Finding(name, True, detail, allow, preflight=preflight)


def _looks_like_url(value: str) -> bool:
    """Roughly Chromium's GURL validity: a scheme, and a host for http(s)."""
    if not _SCHEME.match(value):
        return False
    return not value.lower().startswith(("http:", "https:")) or url_origin(value) != "null"


def _varies_on_origin(headers: Headers) -> bool:
    values = header_values(headers, "vary")
    return bool({item.strip().lower() for v in values for item in v.split(",")} & {"origin", "*"})


def requested_headers(request_headers: Headers) -> tuple[str, ...]:
    """The names a preflight asks for: every Access-Control-Request-Headers line, joined with
    "," (RFC 9110 §5.3) and split again, lowercased; empty items (an empty line) are ignored."""
    values = header_values(request_headers, "access-control-request-headers")
    return tuple(i.strip(" \t").lower() for v in values for i in v.split(",") if i.strip(" \t"))


def check_request_url(url: str) -> tuple[Finding, ...]:
    """fetch() of a URL that is not http(s) fails before any request (Fetch §4.1 scheme fetch)."""
    scheme = urlsplit(url).scheme.lower() if "://" in url or ":" in url else ""
    if scheme in ("http", "https"):
        return ()
    return (Finding("CORSRequestNotHttp", True, f"{url} is not an http(s) URL", scheme),)


def check_cors(origin: str, credentials: bool, response_headers: Headers) -> list[Finding]:
    """The CORS check on an actual response: [] or notes when it passes, [fatal] when it fails.

    origin is the serialized request origin (see serialized_origin); cheap and side-effect free.
    """
    failure = _cors_check(origin, credentials, response_headers)
    if failure:
        return [failure]
    allow = get_header(response_headers, "access-control-allow-origin") or ""
    if allow != "*" and not _varies_on_origin(response_headers):
        detail = f"Access-Control-Allow-Origin is {allow!r} and Vary does not name Origin"
        return [Finding("CORSMissingVaryOrigin", False, detail, allow)]
    return []


def check_preflight(
    origin: str,
    credentials: bool,
    method: str,
    request_header_names: Sequence[str],
    status: int,
    response_headers: Headers,
    redirected: bool = False,
) -> list[Finding]:
    """Fetch §4.8 "CORS-preflight fetch" step 7 on the OPTIONS response; any fatal one blocks.

    method is the normalized method; request_header_names the CORS-unsafe names it asked for.
    """
    if redirected:  # a preflight is never redirected (HTTP-network-or-cache fetch, no follow)
        return [_preflight_redirect(origin, credentials, status, response_headers)]
    # Step 7: "a CORS check ... returns success and response's status is an ok status" -- the
    # CORS check comes first, and Chromium's console names that failure when both fail.
    failure = _cors_check(origin, credentials, response_headers, preflight=True)
    found = [failure] if failure else []
    if not 200 <= status <= 299:  # "ok status"
        detail = f"the preflight was answered with {status}; only 200-299 is ok"
        found.append(
            Finding("CORSPreflightDidNotSucceed", True, detail, str(status), preflight=True)
        )
    if found:  # network error: Allow-Methods and Allow-Headers are never read
        return found
    methods = _parse_allow(response_headers, "access-control-allow-methods", found)
    allowed = _parse_allow(response_headers, "access-control-allow-headers", found)
    if found:  # step 7.3: a list that fails to parse is a network error
        return found
    found += _method_findings(method, methods, credentials)
    found += _header_findings(request_header_names, {h.lower() for h in allowed}, credentials)
    return found if any(f.fatal for f in found) else found + _max_age_notes(response_headers)


def _preflight_redirect(origin: str, credentials: bool, status: int, headers: Headers) -> Finding:
    """Chromium refuses the redirect first; Firefox runs the CORS check on it first, and names
    that failure when the redirect carries no (or a wrong) Access-Control-Allow-Origin."""
    failure = _cors_check(origin, credentials, headers, preflight=True)
    detail = f"the preflight was answered with a {status} redirect"
    if failure:
        detail += f" (and {failure.detail}, which Firefox reports first)"
    names = (("firefox", failure.name_in("firefox")),) if failure else ()
    return Finding(
        "CORSExternalRedirectNotAllowed", True, detail, str(status), preflight=True, names=names
    )


def _parse_allow(headers: Headers, name: str, found: list[Finding]) -> list[str]:
    try:
        return token_list(headers, name) or []
    except BadList as bad:
        kind = "CORSInvalidAllowMethod" if name.endswith("methods") else "CORSInvalidAllowHeader"
        detail = f"{name} has {bad.item!r}, which is not a token"
        found.append(Finding(kind, True, detail, bad.item, preflight=True))
        return []


def _method_findings(method: str, methods: list[str], credentials: bool) -> list[Finding]:
    """Step 7.5: the method must be listed (case-sensitively), safelisted, or covered by `*`."""
    if method in methods or method in SAFELISTED_METHODS:
        return []
    if "*" in methods and not credentials:
        return []
    if method.upper() in methods:
        detail = (
            f"the preflight allows {method.upper()} but the page sends {method}: the comparison"
            f" is case-sensitive and browsers do not uppercase {method}; use '{method.upper()}'"
        )
    elif "*" in methods:
        detail = "Access-Control-Allow-Methods is '*', a wildcard only without credentials"
    elif methods:
        detail = f"Access-Control-Allow-Methods lists {', '.join(methods)}"
    else:
        detail = "the preflight response has no Access-Control-Allow-Methods"
    return [Finding("CORSMethodNotFound", True, detail, method=method, preflight=True)]


def _header_findings(names: Sequence[str], allowed: set[str], credentials: bool) -> list[Finding]:
    """Steps 7.6-7.7: each unsafe name must be listed; `*` covers the rest but not Authorization
    (the "CORS non-wildcard request-header name")."""
    wildcard = "*" in allowed and not credentials
    found = []
    for name in (n.lower() for n in names):
        if name in allowed or (wildcard and name != "authorization"):
            continue
        if wildcard:  # what both engines do today: allowed, with the standard's warning
            detail = (
                "Access-Control-Allow-Headers is '*', which the Fetch standard says never covers"
                " authorization; browsers are expected to enforce it"
            )
            found.append(
                Finding("CORSWildcardDoesNotCoverAuthorization", False, detail, preflight=True)
            )
            continue
        listed = ", ".join(sorted(allowed))
        detail = f"Access-Control-Allow-Headers lists {listed}" if listed else ""
        detail = detail or "the preflight response has no Access-Control-Allow-Headers"
        detail += " ('*' counts only without credentials)" if "*" in allowed else ""
        found.append(
            Finding(
                "CORSMissingAllowHeaderFromPreflight", True, detail, header=name, preflight=True
            )
        )
    return found


def _max_age_notes(headers: Headers) -> list[Finding]:
    value = get_header(headers, "access-control-max-age") or ""
    # isascii(): "²".isdigit() is true but int() refuses it; more than 9 digits is over anyway.
    if value.isascii() and value.isdigit() and (len(value) > 9 or int(value) > CHROME_MAX_AGE):
        detail = f"Access-Control-Max-Age is {value}; Chrome keeps a preflight {CHROME_MAX_AGE} s"
        return [Finding("CORSMaxAgeCapped", False, detail, value, preflight=True)]
    return []


def readable_headers(credentials: bool, response_headers: Headers) -> ReadableHeaders:
    """The CORS filtered response (Fetch §2.2.6, main fetch step 14): what `response.headers`
    shows the page, and the names it hides."""
    present = sorted({name.lower() for name, _ in response_headers})
    bad = None
    try:
        listed = token_list(response_headers, "access-control-expose-headers") or []
    except BadList as error:
        listed, bad = [], error.item
    exposed = {name.lower() for name in listed}
    wildcard = "*" in exposed and not credentials  # `*` exposes all names only without credentials

    def readable(name: str) -> bool:
        if name in SAFELISTED_RESPONSE:
            return True
        return name not in FORBIDDEN_RESPONSE and (wildcard or name in exposed)

    shown = tuple(name for name in present if readable(name))
    hidden = tuple(name for name in present if not readable(name))
    # Set-Cookie is hidden whatever the server sends (the browser stores the cookie itself), so
    # it is no part of a note whose fix is to expose headers.
    notable = [
        n
        for n in hidden
        if n not in _DULL_RESPONSE
        and n not in FORBIDDEN_RESPONSE
        and not n.startswith("access-control-")
    ]
    if not notable:
        return ReadableHeaders(shown, hidden)
    detail = f"the page cannot read {', '.join(notable)}"
    if bad is not None:
        detail += f" (Access-Control-Expose-Headers has {bad!r}, not a token: it exposes nothing)"
    elif "*" in exposed and credentials:
        detail += " ('*' in Access-Control-Expose-Headers counts only without credentials)"
    return ReadableHeaders(shown, hidden, (Finding("CORSHeaderNotExposed", False, detail),))


def check_redirect(
    origin: str, url_list: Sequence[str], status: int, response_headers: Headers, method: str
) -> RedirectStep:
    """Fetch §4.5 "HTTP-redirect fetch" for a request whose URLs so far are url_list.

    The redirect response itself must pass check_cors() first (HTTP fetch step 4.4), which
    the caller does: this judges only where the Location leads.
    """
    locations = header_values(response_headers, "location")
    if status not in REDIRECT_STATUSES or not locations:
        return RedirectStep((), None, method)
    current = url_list[-1]
    if len(locations) > 1:  # the Location ABNF allows one value: extracting it fails
        why, code = (
            "the redirect has more than one Location",
            "ERR_RESPONSE_HEADERS_MULTIPLE_LOCATION",
        )
        return _stop("CORSDidNotSucceed", why, method, code)
    try:
        target = urljoin(current, locations[0].strip())
        scheme = urlsplit(target).scheme.lower()
    except ValueError:  # e.g. "http://[": not a URL, so locationURL is failure
        return _stop("CORSDidNotSucceed", "the redirect's Location is not a URL", method, "")
    if scheme not in ("http", "https"):  # step 6: a network error, as Chromium logs it
        why = f"the redirect goes to {target}, which is not http(s)"
        return _stop("CORSDidNotSucceed", why, method, "ERR_UNSAFE_REDIRECT")
    if url_origin(target) == "null":  # step 5: locationURL is failure
        why = f"the redirect's Location {locations[0]!r} is not a valid URL"
        return _stop("CORSDidNotSucceed", why, method, "ERR_INVALID_REDIRECT")
    if len(url_list) > 20:  # step 7: the redirect count is already 20
        return _stop(
            "CORSDidNotSucceed", "more than 20 redirects", method, "ERR_TOO_MANY_REDIRECTS"
        )
    parts = urlsplit(target)
    has_credentials = parts.username is not None or parts.password is not None
    # Steps 9-10: credentials in the Location fail in CORS mode unless the whole trip stays
    # on the page's own origin.
    if has_credentials and (url_origin(target) != origin or is_cross_origin(origin, url_list)):
        why = f"the redirect goes to {target}, which has credentials in it"
        finding = Finding(
            "CORSRedirectContainsCredentials",
            True,
            why,
            target,
            method=method,
            names=(("firefox", "CORSDidNotSucceed"),),
        )
        return RedirectStep((finding,), None, method)
    return _follow(origin, url_list, status, target, method)


def _stop(name: str, detail: str, method: str, value: str) -> RedirectStep:
    return RedirectStep((Finding(name, True, detail, value, method=method),), None, method)


def _follow(
    origin: str, url_list: Sequence[str], status: int, target: str, method: str
) -> RedirectStep:
    """Steps 12-13: POST becomes GET where HTTP says so; Authorization is dropped across origins."""
    drop: list[str] = []
    drop_body = False
    post_to_get = status in (301, 302) and method == "POST"
    if post_to_get or (status == 303 and method not in ("GET", "HEAD")):
        method, drop_body = "GET", True
        drop += _REQUEST_BODY_HEADERS
    if url_origin(url_list[-1]) != url_origin(target):
        drop.append("authorization")
    tainted = origin != "null" and serialized_origin(origin, [*url_list, target]) == "null"
    return RedirectStep((), target, method, tuple(drop), drop_body, tainted)

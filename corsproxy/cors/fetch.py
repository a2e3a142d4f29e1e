"""The Fetch standard's vocabulary for judge.py: methods, header safelists, list-header syntax
and URL origins, plus needs_preflight() — what a page may send before the server is asked."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from urllib.parse import urlsplit

from corsproxy.cors.engines import MAX_RANGE, Engine

Headers = Sequence[tuple[str, str]]

# Fetch §2.2.1 "Methods": only these are uppercased ("normalize"); `patch` stays `patch`.
NORMALIZED_METHODS = frozenset({"DELETE", "GET", "HEAD", "OPTIONS", "POST", "PUT"})
SAFELISTED_METHODS = frozenset({"GET", "HEAD", "POST"})  # "CORS-safelisted method"
FORBIDDEN_METHODS = frozenset({"CONNECT", "TRACE", "TRACK"})  # fetch() throws on these
# Fetch §2.2.2 "forbidden request-header": the browser sets these, never the page.
FORBIDDEN_REQUEST = frozenset(
    "accept-charset accept-encoding access-control-request-headers access-control-request-method"
    " connection content-length cookie cookie2 date dnt expect host keep-alive origin referer"
    " set-cookie te trailer transfer-encoding upgrade via".split()
)
# Fetch §2.2.2 "CORS-safelisted response-header name" and "forbidden response-header name".
SAFELISTED_RESPONSE = frozenset(
    "cache-control content-language content-length content-type expires last-modified"
    " pragma".split()
)
FORBIDDEN_RESPONSE = frozenset({"set-cookie", "set-cookie2"})
SAFE_CONTENT_TYPES = ("application/x-www-form-urlencoded", "multipart/form-data", "text/plain")

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")  # RFC 9110 §5.6.2 token
_UNSAFE_BYTE = re.compile(r'[\x00-\x08\x0a-\x1f"():<>?@\[\\\]{}\x7f]')  # §2.2.2
_LANGUAGE = re.compile(r"[0-9A-Za-z *,\-.;=]*")
# "parse a single range header value": the unit is exactly `bytes` (Chromium preflights BYTES).
_RANGE = re.compile(r"bytes=([0-9]+)-([0-9]*)")
_HTTP_WS = " \t\r\n"


class BadList(ValueError):
    """A list header that fails its ABNF; .item is the offending element."""

    def __init__(self, item: str) -> None:
        super().__init__(item)
        self.item = item


def is_token(text: str) -> bool:
    """RFC 9110 §5.6.2: 1*tchar; methods (§9.1) and field names (§5.1) are tokens."""
    return _TOKEN.fullmatch(text) is not None


def header_values(headers: Headers, name: str) -> list[str]:
    """Every value of the (lowercase) name, in order; duplicates stay visible."""
    return [value for key, value in headers if key.lower() == name]


def get_header(headers: Headers, name: str) -> str | None:
    """Fetch §2.2.2 "get": all values combined with ", ", or None when the header is absent."""
    values = header_values(headers, name)
    return ", ".join(values) if values else None


def token_list(headers: Headers, name: str) -> list[str] | None:
    """Fetch "extract header list values" for a #token header: None when absent; BadList if bad."""
    values = header_values(headers, name)
    if not values:
        return None
    items = []
    for value in values:
        for item in value.split(","):
            item = item.strip(" \t")
            if item and not is_token(item):
                raise BadList(item)
            if item:  # RFC 9110 §5.6.1: empty list elements are allowed and ignored
                items.append(item)
    return items


def mime_essence(value: str) -> str | None:
    """MIME Sniffing §4.4 "parse a MIME type" as far as its essence (type/subtype), lowercased."""
    kind, slash, rest = value.strip(_HTTP_WS).partition("/")
    subtype = rest.split(";", 1)[0].rstrip(_HTTP_WS)
    if not slash or not is_token(kind) or not is_token(subtype):
        return None
    return f"{kind}/{subtype}".lower()


def unsafe_because(name: str, value: str) -> str | None:
    """Fetch §2.2.2 "CORS-safelisted request-header": None when (name, value) is, else why not."""
    if len(value) > 128:
        return f"{name} is longer than 128 bytes"
    if name in ("accept", "content-type") and _UNSAFE_BYTE.search(value):
        return f"{name} contains a byte the safelist forbids"
    if name == "content-type":
        if mime_essence(value) in SAFE_CONTENT_TYPES:
            return None
        return f"content-type: {value} is not one of {', '.join(SAFE_CONTENT_TYPES)}"
    if name in ("accept-language", "content-language"):
        ok = _LANGUAGE.fullmatch(value)
        return None if ok else f"{name} has a character outside 0-9 A-Z a-z space * , - . ; ="
    if name == "range":
        match = _RANGE.fullmatch(value)
        if match and (not match[2] or int(match[1]) <= int(match[2])):
            return None
        return f"range: {value} is not a single bytes=start-[end] range"
    if name == "accept":
        return None
    return f"{name} is not a CORS-safelisted header"


@dataclass(frozen=True)
class PreflightNeed:
    """needs_preflight("PUT", []) -> PreflightNeed(True, "method PUT is not ...", "PUT", ())"""

    needed: bool
    reason: str
    method: str  # normalized, as the browser sends it
    unsafe_headers: tuple[str, ...]  # sorted, lowercase: Access-Control-Request-Headers, split
    ignored_headers: tuple[str, ...] = ()  # forbidden names: the browser's, not the page's
    quirks: tuple[str, ...] = ()  # where the engine departs from Fetch, in words

    @property
    def request_headers_value(self) -> str:
        """The Access-Control-Request-Headers value: lowercase, sorted, "," without spaces."""
        return ",".join(self.unsafe_headers)


def normalize_method(method: str) -> str:
    """Fetch §2.2.1: uppercase DELETE GET HEAD OPTIONS POST PUT; leave any other method as is."""
    return method.upper() if method.upper() in NORMALIZED_METHODS else method


def needs_preflight(
    method: str, request_headers: Headers, engine: Engine | None = None
) -> PreflightNeed:
    """Whether fetch() sends an OPTIONS preflight first (Fetch §4.1 main fetch, step 12), by
    the standard or (engine) as that browser does.

    Raises ValueError for what fetch() itself refuses: a method that is not a token, or a
    forbidden one (CONNECT, TRACE, TRACK).
    """
    if not is_token(method):
        raise ValueError(f"{method!r} is not a valid HTTP method")
    if method.upper() in FORBIDDEN_METHODS:
        raise ValueError(f"fetch() refuses the forbidden method {method.upper()}")
    method = normalize_method(method)
    reasons = []
    if method not in SAFELISTED_METHODS:
        case = "; browsers uppercase only DELETE, GET, HEAD, OPTIONS, POST, PUT"
        hint = f"{case}, so {method} is sent as written" if method != method.upper() else ""
        reasons.append(f"method {method} is not CORS-safelisted (only GET, HEAD, POST are{hint})")
    unsafe, header_reasons, ignored, quirks = _unsafe_headers(request_headers, engine)
    reasons += header_reasons
    if not reasons:
        reasons.append(f"{method} is CORS-safelisted and so is every header the page sets")
    needed = method not in SAFELISTED_METHODS or bool(unsafe)
    return PreflightNeed(needed, "; ".join(reasons), method, unsafe, ignored, quirks)


def is_forbidden_request_header(name: str) -> bool:
    name = name.lower()
    return name in FORBIDDEN_REQUEST or name.startswith(("proxy-", "sec-"))


def _unsafe_headers(
    headers: Headers, engine: Engine | None
) -> tuple[tuple[str, ...], list[str], tuple[str, ...], tuple[str, ...]]:
    """Fetch §2.2.2 "CORS-unsafe request-header names", with a reason for each name, and the
    engine's departures from it."""
    unsafe: dict[str, str] = {}
    ignored: set[str] = set()
    quirks: list[str] = []
    safelisted_names, safelisted_size = [], 0
    for raw_name, value in headers:
        name = raw_name.lower()
        if is_forbidden_request_header(name):
            ignored.add(name)
            continue
        why = unsafe_because(name, value)
        quirk = engine.safelists(name, value) if engine and why else None
        if quirk:
            why = None
            quirks.append(quirk)
        elif engine and engine.range_64_bits and name == "range" and not why:
            if _beyond_64_bits(value):
                why = f"range: {value} has a number beyond 64 bits"
                quirks.append(f"{engine.label} preflights a range number beyond 64 bits")
        if why:
            unsafe.setdefault(name, why)
        else:
            safelisted_names.append(name)
            safelisted_size += len(value)
    if safelisted_size > 1024:  # step 5: the safelisted values together may not exceed 1024
        for name in safelisted_names:
            unsafe.setdefault(name, f"safelisted values add up to {safelisted_size} > 1024 bytes")
    names = tuple(sorted(unsafe))
    return names, [unsafe[name] for name in names], tuple(sorted(ignored)), tuple(quirks)


def _beyond_64_bits(value: str) -> bool:
    """A safelisted Range whose numbers a 64-bit parser cannot hold (Fetch reads them whole)."""
    match = _RANGE.fullmatch(value)
    return match is not None and any(n and int(n) > MAX_RANGE for n in match.groups())


def url_origin(url: str) -> str:
    """The serialized origin of an http(s) URL (default port dropped); "null" for anything else."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:  # an unclosed "[" or a port that is not a number: not a URL at all
        return "null"
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        return "null"
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    default = 80 if scheme == "http" else 443
    return f"{scheme}://{host}" if port in (None, default) else f"{scheme}://{host}:{port}"


def is_cross_origin(origin: str, url_list: Sequence[str]) -> bool:
    """Response tainting is "cors" once any URL so far is not the page's origin (Fetch §4.1)."""
    return any(url_origin(url) != origin for url in url_list)


def serialized_origin(origin: str, url_list: Sequence[str]) -> str:
    """Fetch "serializing a request origin": "null" once a redirect tainted it, else the origin."""
    for last, url in zip(url_list, url_list[1:], strict=False):
        if url_origin(url) != url_origin(last) and origin != url_origin(last):
            return "null"  # "has a redirect-tainted origin"
    return origin

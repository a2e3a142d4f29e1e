"""`corsproxy doctor`: acts as a browser against one URL and explains what the browser decides.
The I/O shell around judge.py: sends the preflight and request with aiohttp; report.py prints."""

from __future__ import annotations

import asyncio
import errno
import socket
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from urllib.parse import urlsplit

import aiohttp
from multidict import CIMultiDict

from corsproxy.cors import judge
from corsproxy.cors.fetch import FORBIDDEN_RESPONSE, is_forbidden_request_header, is_token
from corsproxy.cors.judge import Finding, PreflightNeed, ReadableHeaders
from corsproxy.doctor.report import (
    Exchange,
    Pairs,
    Report,
    blocked,
    fatal,
    render_json,
    render_text,
)

__all__ = ["DoctorError", "Exchange", "Report", "diagnose", "render_json", "render_text", "run"]

TIMEOUT_SECONDS = 15
_UNREACHABLE = {
    "ERR_NAME_NOT_RESOLVED",
    "ERR_CONNECTION_REFUSED",
    "ERR_CONNECTION_FAILED",
    "ERR_CONNECTION_TIMED_OUT",
}
_CONNECT_TIMEOUT = getattr(aiohttp, "ConnectionTimeoutError", ())  # aiohttp >= 3.10


class DoctorError(Exception):
    """Bad use, or a host that cannot be reached at all: run() prints it and exits 2."""


def parse_origin(text: str) -> str:
    """The page's origin as a browser serializes it; DoctorError when it is not an origin."""
    if text == "null":
        return text
    problem = f"bad origin {text!r}: expected scheme://host[:port], e.g. http://localhost:5173"
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise DoctorError(problem) from None
    if parts.path == "/" and not (parts.query or parts.fragment):
        raise DoctorError(f"{problem} (an origin has no trailing slash)")
    if not parts.hostname or parts.path or parts.query or parts.fragment or "@" in parts.netloc:
        raise DoctorError(problem)
    if parts.scheme.lower() in ("http", "https"):
        return judge.url_origin(text)
    return f"{parts.scheme.lower()}://{parts.hostname}" + (f":{port}" if port else "")


def parse_header_arg(text: str) -> tuple[str, str]:
    """One -H argument, 'Name: value', as fetch() would take it; DoctorError when malformed."""
    name, colon, value = text.partition(":")
    value = value.strip(" \t")
    if not colon or not is_token(name):
        raise DoctorError(f"bad -H {text!r}: expected 'Name: value'")
    if any(c in value for c in "\r\n\0") or not value.isascii() and not _latin1(value):
        raise DoctorError(f"bad -H {text!r}: the value must be one line of Latin-1 text")
    return name, value


def _latin1(text: str) -> bool:
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def _check_url(url: str) -> str:
    parts = urlsplit(url)
    if "://" not in url or not parts.scheme:
        raise DoctorError(
            f"bad URL {url!r}: give an absolute URL such as http://localhost:8000/api"
        )
    if parts.scheme.lower() in ("http", "https") and judge.url_origin(url) == "null":
        raise DoctorError(f"bad URL {url!r}: it has no valid host and port")
    if parts.username is not None or parts.password is not None:
        raise DoctorError(f"bad URL {url!r}: fetch() refuses URLs with user:password@ in them")
    return url


async def diagnose(
    url: str,
    origin: str,
    method: str = "GET",
    headers: Iterable[tuple[str, str]] = (),
    credentials: bool = False,
    insecure: bool = False,
) -> Report:
    """Act as a browser's fetch(url, {method, headers, credentials}) from a page on origin."""
    origin, url, headers = parse_origin(origin), _check_url(url), tuple(headers)
    if any(name.lower() == "origin" for name, _ in headers):
        raise DoctorError("set the page's origin with --origin, not with -H")
    try:
        need = judge.needs_preflight(method, headers)
    except ValueError as error:
        raise DoctorError(str(error)) from None
    report = Report(url, origin, need.method, credentials, need)
    not_http = judge.check_request_url(url)
    if not_http:
        return replace(
            report, exchanges=(Exchange("request", need.method, url, (), findings=not_http),)
        )
    session = aiohttp.ClientSession(
        cookie_jar=aiohttp.DummyCookieJar(),  # cookies are the user's -H Cookie, nothing stored
        auto_decompress=False,
        skip_auto_headers=("User-Agent",),
        timeout=aiohttp.ClientTimeout(total=TIMEOUT_SECONDS),
    )
    async with session:
        browser = _Browser(session, origin, credentials, verify=not insecure)
        exchanges, readable = await browser.fetch(url, need.method, headers)
    return replace(report, exchanges=tuple(exchanges), readable=readable)


@dataclass(frozen=True)
class _Browser:
    """The fetch algorithm's loop over one trip: preflight when needed, request, redirects."""

    session: aiohttp.ClientSession
    origin: str
    credentials: bool
    verify: bool  # False with --insecure: TLS certificates are not checked

    async def fetch(
        self, url: str, method: str, headers: Pairs
    ) -> tuple[list[Exchange], ReadableHeaders | None]:
        url_list, log = [url], []
        while True:
            cors = judge.is_cross_origin(self.origin, url_list)
            sent_origin = judge.serialized_origin(self.origin, url_list)
            need = judge.needs_preflight(method, headers)
            if cors and need.needed:  # main fetch step 12, again after each redirect
                log.append(await self._preflight(url_list, sent_origin, need))
                if blocked(log[-1]):
                    return log, None
            exchange, step = await self._request(url_list, sent_origin, cors, method, headers)
            log.append(exchange)
            if blocked(exchange):
                return log, None
            if step.location is None:
                return log, _readable(self.credentials, exchange)
            url_list.append(step.location)
            method = step.method
            headers = tuple(h for h in headers if h[0].lower() not in step.drop_headers)

    async def _preflight(
        self, url_list: list[str], sent_origin: str, need: PreflightNeed
    ) -> Exchange:
        """Fetch §4.8: OPTIONS with Accept, the method and the unsafe names; no credentials."""
        url = url_list[-1]
        headers = [("Accept", "*/*"), ("Access-Control-Request-Method", need.method)]
        if need.unsafe_headers:
            headers.append(("Access-Control-Request-Headers", need.request_headers_value))
        headers.append(("Origin", sent_origin))
        answer = await self._send("OPTIONS", url, headers, first=len(url_list) == 1)
        if isinstance(answer, Finding):
            return Exchange("preflight", "OPTIONS", url, tuple(headers), findings=(answer,))
        status, reason, received, sent = answer
        redirected = status in judge.REDIRECT_STATUSES and any(
            name.lower() == "location" for name, _ in received
        )
        found = judge.check_preflight(
            sent_origin,
            self.credentials,
            need.method,
            need.unsafe_headers,
            status,
            received,
            redirected,
        )
        return Exchange("preflight", "OPTIONS", url, sent, status, reason, received, tuple(found))

    async def _request(
        self, url_list: list[str], sent_origin: str, cors: bool, method: str, headers: Pairs
    ) -> tuple[Exchange, judge.RedirectStep]:
        url = url_list[-1]
        out = [] if any(n.lower() == "accept" for n, _ in headers) else [("Accept", "*/*")]
        out += [(n, v) for n, v in headers if _page_may_send(n, self.credentials)]
        if cors or method not in ("GET", "HEAD"):  # Fetch "append a request `Origin` header"
            out.append(("Origin", sent_origin))
        stop = judge.RedirectStep((), None, method)
        answer = await self._send(method, url, out, first=len(url_list) == 1)
        if isinstance(answer, Finding):
            return Exchange("request", method, url, tuple(out), findings=(answer,), cors=cors), stop
        status, reason, received, sent = answer
        found = judge.check_cors(sent_origin, self.credentials, received) if cors else []
        step = stop  # a response that fails the CORS check is never followed (HTTP fetch 4.4)
        if not fatal(found):
            step = judge.check_redirect(self.origin, url_list, status, received, method)
            found += step.findings
        note = _redirect_note(step)
        exchange = Exchange(
            "request", method, url, sent, status, reason, received, tuple(found), cors, note
        )
        return exchange, step

    async def _send(
        self, method: str, url: str, headers: list[tuple[str, str]], first: bool
    ) -> tuple[int, str, Pairs, Pairs] | Finding:
        try:
            async with self.session.request(
                method, url, headers=CIMultiDict(headers), allow_redirects=False, ssl=self.verify
            ) as response:
                received = tuple(
                    (k.decode("latin-1"), v.decode("latin-1")) for k, v in response.raw_headers
                )
                sent = tuple(response.request_info.headers.items())
                return response.status, response.reason or "", received, sent
        except (TimeoutError, aiohttp.ClientError) as error:
            code, words = _describe(error)
            if first and code in _UNREACHABLE:
                raise DoctorError(f"cannot reach {_site(url)}: {words}") from None
            return Finding(
                "CORSDidNotSucceed", True, f"{method} {url}: {words}", code, method=method
            )


def _describe(error: BaseException) -> tuple[str, str]:
    """A Chromium net:: error name and plain words for a failed exchange."""
    if isinstance(error, aiohttp.ClientConnectorCertificateError):
        return (
            "ERR_CERT_AUTHORITY_INVALID",
            f"TLS certificate refused ({error.certificate_error}); --insecure skips the check",
        )
    if isinstance(error, aiohttp.ClientSSLError):
        return "ERR_SSL_PROTOCOL_ERROR", "the TLS handshake failed"
    if isinstance(error, aiohttp.ClientConnectorError):
        os_error = error.os_error
        if isinstance(os_error, socket.gaierror):
            return "ERR_NAME_NOT_RESOLVED", f"cannot resolve host name {error.host}"
        if os_error.errno == errno.ECONNREFUSED or f"[Errno {errno.ECONNREFUSED}]" in str(os_error):
            return "ERR_CONNECTION_REFUSED", "connection refused"
        return "ERR_CONNECTION_FAILED", (os_error.strerror or str(os_error)).lower()
    if isinstance(error, _CONNECT_TIMEOUT):
        return "ERR_CONNECTION_TIMED_OUT", f"no connection within {TIMEOUT_SECONDS} s"
    if isinstance(error, aiohttp.ServerDisconnectedError):
        return "ERR_EMPTY_RESPONSE", "the server closed the connection without answering"
    if isinstance(error, TimeoutError):
        return "ERR_TIMED_OUT", f"no answer within {TIMEOUT_SECONDS} s"
    if isinstance(error, aiohttp.ClientResponseError):
        return "ERR_INVALID_HTTP_RESPONSE", f"the answer is not valid HTTP ({error.message})"
    return "ERR_FAILED", str(error) or type(error).__name__


def _site(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _page_may_send(name: str, credentials: bool) -> bool:
    """Author headers go out as given; of the browser's own, only Cookie, and with credentials."""
    if name.lower() == "cookie":
        return credentials
    return not is_forbidden_request_header(name)


def _redirect_note(step: judge.RedirectStep) -> str:
    if step.location is None:
        return ""
    note = f"redirect followed to {step.location}"
    note += " (as GET, without the body)" if step.drop_body else ""
    if step.tainted:
        note += "; the origin is 'null' from here on (cross-origin redirect)"
    return note


def _readable(credentials: bool, exchange: Exchange) -> ReadableHeaders:
    if exchange.cors:
        return judge.readable_headers(credentials, exchange.received)
    names = sorted({name.lower() for name, _ in exchange.received})  # basic filtered response
    return ReadableHeaders(
        tuple(n for n in names if n not in FORBIDDEN_RESPONSE),
        tuple(n for n in names if n in FORBIDDEN_RESPONSE),
    )


async def run_async(
    url: str,
    origin: str,
    method: str,
    raw_headers: Sequence[str],
    credentials: bool,
    insecure: bool,
    as_json: bool,
) -> int:
    """run() for callers that already have an event loop."""
    try:
        headers = [parse_header_arg(text) for text in raw_headers]
        report = await diagnose(url, origin, method, headers, credentials, insecure)
    except DoctorError as error:
        print(f"corsproxy doctor: {error}", file=sys.stderr)
        return 2
    print(render_json(report) if as_json else render_text(report))
    return 1 if report.verdict == "blocked" else 0


def run(
    url: str,
    origin: str,
    method: str,
    raw_headers: list[str],
    credentials: bool,
    insecure: bool,
    as_json: bool,
) -> int:
    """The CLI entry: prints the report; 0 allowed, 1 blocked, 2 bad use or unreachable host."""
    return asyncio.run(run_async(url, origin, method, raw_headers, credentials, insecure, as_json))

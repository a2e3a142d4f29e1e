"""`corsproxy doctor`: acts as a browser against one URL and explains what the browser decides.
The I/O shell around judge.py: sends the preflight and request with aiohttp; report.py prints."""

from __future__ import annotations

import asyncio
import errno
import socket
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from multidict import CIMultiDict

from corsproxy.cors import judge, localnet
from corsproxy.cors.engines import ENGINES
from corsproxy.cors.fetch import FORBIDDEN_RESPONSE, is_forbidden_request_header
from corsproxy.cors.judge import Finding, PreflightNeed, ReadableHeaders
from corsproxy.doctor.inputs import (
    DoctorError,
    body_of,
    check_url,
    parse_header_arg,
    parse_origin,
)
from corsproxy.doctor.report import Exchange, Pairs, Report, fatal, render_json, render_text

Notice = Callable[[str], None]

__all__ = ["DoctorError", "Exchange", "Report", "diagnose", "render_json", "render_text", "run"]

TIMEOUT_SECONDS = 15
_UNREACHABLE = {
    "ERR_NAME_NOT_RESOLVED",
    "ERR_CONNECTION_REFUSED",
    "ERR_CONNECTION_FAILED",
    "ERR_CONNECTION_TIMED_OUT",
}
_CONNECT_TIMEOUT = getattr(aiohttp, "ConnectionTimeoutError", ())  # aiohttp >= 3.10


async def diagnose(
    url: str,
    origin: str,
    method: str = "GET",
    headers: Iterable[tuple[str, str]] = (),
    credentials: bool = False,
    insecure: bool = False,
    *,
    body: bytes | None = None,
    preflight_only: bool = False,
    notice: Notice | None = None,
) -> Report:
    """Act as a browser's fetch(url, {method, headers, body, credentials}) from a page on
    origin, once for each engine in engines.ENGINES (identical requests are sent once)."""
    origin, url, headers = parse_origin(origin), check_url(url), tuple(headers)
    if any(name.lower() == "origin" for name, _ in headers):
        raise DoctorError("set the page's origin with --origin, not with -H")
    try:
        need = judge.needs_preflight(method, headers)
        needs = {e.key: judge.needs_preflight(method, headers, e) for e in ENGINES}
    except ValueError as error:
        raise DoctorError(str(error)) from None
    if body is not None and need.method in ("GET", "HEAD"):
        raise DoctorError(f"fetch() refuses a body with {need.method}: use --method POST or PUT")
    report = Report(url, origin, need.method, credentials, need, needs=needs)
    report = replace(report, preflight_only=preflight_only)
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
        first = await _local_network(origin, url)
        browser = _Browser(session, origin, credentials, not insecure, body, preflight_only, notice)
        exchanges, readable = await browser.fetch(url, need.method, headers, first)
    return replace(report, exchanges=tuple(exchanges), readable=readable)


async def _local_network(origin: str, url: str) -> list[Exchange]:
    """Chromium's Local Network Access check, before anything is sent (see localnet.py).
    A host name this machine cannot resolve is left alone: its address space is unknown."""
    if origin == "null":
        return []
    page = await _space(urlsplit(origin).hostname or "")
    target = await _space(urlsplit(url).hostname or "")
    if page is None or target is None:
        return []
    finding = localnet.check_local_network(origin, page, target, url)
    if finding is None:
        return []
    return [Exchange("check", "—", url, (), findings=(finding,), engines=localnet.ENGINES)]


async def _space(host: str) -> localnet.Space | None:
    known = localnet.host_space(host)
    if known is not None:
        return known
    try:
        found = await asyncio.get_running_loop().getaddrinfo(host, None)
    except OSError:
        return None
    return localnet.address_space(str(found[0][4][0])) if found else None


def _survivors(live: list[str], exchange: Exchange) -> list[str]:
    """The engines still going after this exchange: those it did not block."""
    return [
        key
        for key in live
        if key not in exchange.engines
        or not any(f.fatal and f.applies_to(key) for f in exchange.findings)
    ]


def _preflights(method: str, headers: Pairs, live: list[str]) -> list[tuple[PreflightNeed, tuple]]:
    """The distinct preflights the live engines send, each with the engines that send it."""
    groups: dict[tuple, tuple[PreflightNeed, list[str]]] = {}
    for engine in ENGINES:
        if engine.key not in live:
            continue
        need = judge.needs_preflight(method, headers, engine)
        if need.needed:
            key = (need.method, need.unsafe_headers)
            groups.setdefault(key, (need, []))[1].append(engine.key)
    return [(need, tuple(keys)) for need, keys in groups.values()]


@dataclass(frozen=True)
class _Browser:
    """The fetch algorithm's loop over one trip: preflight when needed, request, redirects."""

    session: aiohttp.ClientSession
    origin: str
    credentials: bool
    verify: bool  # False with --insecure: TLS certificates are not checked
    body: bytes | None = None
    preflight_only: bool = False
    notice: Notice | None = None

    async def fetch(
        self, url: str, method: str, headers: Pairs, first: list[Exchange]
    ) -> tuple[list[Exchange], ReadableHeaders | None]:
        url_list, log, body = [url], list(first), self.body
        live = [e.key for e in ENGINES]
        for exchange in first:
            live = _survivors(live, exchange)
        while live:
            cors = judge.is_cross_origin(self.origin, url_list)
            sent_origin = judge.serialized_origin(self.origin, url_list)
            # main fetch step 12, again after each redirect; engines may differ on the need
            for need, keys in _preflights(method, headers, live) if cors else []:
                log.append(await self._preflight(url_list, sent_origin, need, keys))
                live = _survivors(live, log[-1])
            if self.preflight_only or not live:
                break
            exchange, step = await self._request(
                url_list, sent_origin, cors, method, headers, body, tuple(live)
            )
            log.append(exchange)
            live = _survivors(live, exchange)
            if live and step.location is None:
                return log, _readable(self.credentials, exchange)
            url_list.append(step.location or url)
            method = step.method
            body = None if step.drop_body else body
            headers = tuple(h for h in headers if h[0].lower() not in step.drop_headers)
        return log, None

    async def _preflight(
        self, url_list: list[str], sent_origin: str, need: PreflightNeed, engines: tuple
    ) -> Exchange:
        """Fetch §4.8: OPTIONS with Accept, the method and the unsafe names; no credentials."""
        url = url_list[-1]
        headers = [("Accept", "*/*"), ("Access-Control-Request-Method", need.method)]
        if need.unsafe_headers:
            headers.append(("Access-Control-Request-Headers", need.request_headers_value))
        headers.append(("Origin", sent_origin))
        answer = await self._send("OPTIONS", url, headers, None, first=len(url_list) == 1)
        if isinstance(answer, Finding):
            found: tuple[Finding, ...] = (answer,)
            return Exchange(
                "preflight", "OPTIONS", url, tuple(headers), findings=found, engines=engines
            )
        status, reason, received, sent = answer
        redirected = status in judge.REDIRECT_STATUSES and any(
            name.lower() == "location" for name, _ in received
        )
        found = tuple(
            judge.check_preflight(
                sent_origin,
                self.credentials,
                need.method,
                judge.requested_headers(sent),  # as sent, every line (RFC 9110 §5.3)
                status,
                received,
                redirected,
            )
        )
        return Exchange(
            "preflight", "OPTIONS", url, sent, status, reason, received, found, engines=engines
        )

    async def _request(
        self,
        url_list: list[str],
        sent_origin: str,
        cors: bool,
        method: str,
        headers: Pairs,
        body: bytes | None,
        engines: tuple,
    ) -> tuple[Exchange, judge.RedirectStep]:
        url = url_list[-1]
        out = [] if any(n.lower() == "accept" for n, _ in headers) else [("Accept", "*/*")]
        out += [(n, v) for n, v in headers if _page_may_send(n, self.credentials)]
        if cors or method not in ("GET", "HEAD"):  # Fetch "append a request `Origin` header"
            out.append(("Origin", sent_origin))
        if self.notice and method.upper() not in ("GET", "HEAD", "OPTIONS"):
            self.notice(
                f"sending the actual {method} {url} now, as the browser would: the server may"
                " act on it (--preflight-only stops before it)"
            )
        stop = judge.RedirectStep((), None, method)
        answer = await self._send(method, url, out, body, first=len(url_list) == 1)
        if isinstance(answer, Finding):
            failed = Exchange(
                "request", method, url, tuple(out), findings=(answer,), cors=cors, engines=engines
            )
            return failed, stop
        status, reason, received, sent = answer
        found = judge.check_cors(sent_origin, self.credentials, received) if cors else []
        step = stop  # a response that fails the CORS check is never followed (HTTP fetch 4.4)
        if not fatal(found):
            step = judge.check_redirect(self.origin, url_list, status, received, method)
            found += step.findings
        note = _redirect_note(step)
        exchange = Exchange(
            "request",
            method,
            url,
            sent,
            status,
            reason,
            received,
            tuple(found),
            cors,
            note,
            engines,
        )
        return exchange, step

    async def _send(
        self, method: str, url: str, headers: list[tuple[str, str]], body: bytes | None, first: bool
    ) -> tuple[int, str, Pairs, Pairs] | Finding:
        try:
            async with self.session.request(
                method,
                url,
                headers=CIMultiDict(headers),
                data=body,
                allow_redirects=False,
                ssl=self.verify,
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
    *,
    data: str | None = None,
    data_file: str | None = None,
    preflight_only: bool = False,
) -> int:
    """run() for callers that already have an event loop."""
    try:
        headers = [parse_header_arg(text) for text in raw_headers]
        body, headers = body_of(data, data_file, headers)
        report = await diagnose(
            url,
            origin,
            method,
            headers,
            credentials,
            insecure,
            body=body,
            preflight_only=preflight_only,
            notice=lambda line: print(f"corsproxy doctor: {line}", file=sys.stderr, flush=True),
        )
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
    **options: Any,
) -> int:
    """The CLI entry: prints the report; 0 allowed, 1 blocked, 2 bad use or unreachable host.
    options: data, data_file, preflight_only (see run_async)."""
    return asyncio.run(
        run_async(url, origin, method, raw_headers, credentials, insecure, as_json, **options)
    )

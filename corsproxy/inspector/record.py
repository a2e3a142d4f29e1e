"""One exchange as the inspector's JSON shows it, made from the access log's Entry.

The proxy fills an Entry as a request travels (proxy/accesslog.py); the inspector keeps it and
turns it into plain JSON data only when a page or the API asks. Pure: no I/O, no aiohttp.
Body previews are collected here too, as bodies stream past (Preview), never buffered whole.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from corsproxy.cors.alone import WithoutProxy, unreachable
from corsproxy.cors.findings import Finding
from corsproxy.cors.policy import Verdict

if TYPE_CHECKING:
    from corsproxy.proxy.accesslog import Entry, HeaderSet

DECISIONS = {
    Verdict.ALLOWED: "allowed",
    Verdict.REFUSED: "refused",
    Verdict.PREFLIGHT: "preflight",
    Verdict.PREFLIGHT_REFUSED: "preflight-refused",
    Verdict.NOT_CORS: "not-cors",
}


def header_value(headers: HeaderSet | None, lower_name: str) -> str | None:
    for name, value in _items(headers):
        if name.lower() == lower_name:
            return value
    return None


def decode_raw(raw: Sequence[tuple[bytes, bytes]]) -> list[list[str]]:
    """The browser's header block as aiohttp parsed it, bytes decoded as aiohttp decodes them."""
    return [
        [name.decode("utf-8", "surrogateescape"), value.decode("utf-8", "replace")]
        for name, value in raw
    ]


def _pairs(headers: HeaderSet | None) -> list[list[str]] | None:
    return None if headers is None else [[name, value] for name, value in _items(headers)]


def _items(headers: HeaderSet | None) -> Iterable[tuple[str, str]]:
    """A header set's (name, value) pairs: the handler keeps a multidict or a list."""
    if headers is None:
        return ()
    return headers.items() if isinstance(headers, Mapping) else headers


def decision_of(entry: Entry) -> str:
    """One of allowed, refused, preflight, preflight-refused, not-cors, error."""
    if entry.failure is not None or entry.cors is None:
        return "error"  # the upstream did not answer, or the proxy refused before CORS (Host)
    return DECISIONS[entry.cors.verdict]


def without_proxy(entry: Entry, url: str | None) -> dict[str, Any] | None:
    """What the browser would have done had the page called the upstream itself; None when
    the upstream was never asked (a preflight the proxy answered, a refused Host)."""
    alone: WithoutProxy | None = entry.alone
    if entry.failure is not None:
        alone = unreachable(entry.failure.error, entry.failure.detail, entry.method)
    elif alone is None:
        if entry.from_upstream is None:
            return None
        if entry.origin is None:
            return {"verdict": "allowed", "findings": [], "credentialed_only": False}
        return None
    origin = entry.origin or "null"
    return {
        "verdict": alone.verdict,
        "findings": [finding_json(f, url or entry.path, origin) for f in alone.findings],
        "credentialed_only": alone.credentialed_only,
    }


def finding_json(finding: Finding, url: str, origin: str) -> dict[str, Any]:
    """{"name", "detail", "chromium", "fix", "mdn", ...}: the same words doctor prints."""
    info = finding.info
    return {
        "name": finding.name,
        "fatal": finding.fatal,
        "detail": finding.detail,
        "chromium": finding.message(url, origin) or None,
        "explanation": info.explanation,
        "fix": info.fix,
        "mdn": info.mdn_url,
    }


def preflight_of(entry: Entry) -> dict[str, Any] | None:
    """For a CORS preflight: the method and headers it asked for and the max-age granted."""
    if entry.method != "OPTIONS" or entry.cors is None:
        return None
    if entry.cors.verdict not in (Verdict.PREFLIGHT, Verdict.PREFLIGHT_REFUSED):
        return None
    asked: dict[str, str] = {}
    for name, value in entry.request_headers:
        lower = name.lower()
        if lower in (b"access-control-request-method", b"access-control-request-headers"):
            text = value.decode("utf-8", "replace")
            key = lower.decode()
            asked[key] = f"{asked[key]}, {text}" if key in asked else text
    max_age = header_value(entry.to_browser, "access-control-max-age")
    return {
        "method": asked.get("access-control-request-method"),
        "headers": asked.get("access-control-request-headers"),
        "max_age": int(max_age) if max_age and max_age.isdigit() else 0,
    }


def browser_url(entry: Entry, scheme: str) -> str:
    """The URL as the browser addressed the proxy: its scheme and Host, the raw path."""
    host = "localhost"
    for name, value in entry.request_headers:
        if name.lower() == b"host":
            host = value.decode("utf-8", "replace")
            break
    return f"{scheme}://{host}{entry.path}"


def to_json(entry: Entry, scheme: str) -> dict[str, Any]:
    """The exchange as /__corsproxy/api/exchanges lists it (SPEC, "The inspector")."""
    upstream_ms = entry.upstream_ms
    return {
        "id": entry.id,
        "time": datetime.fromtimestamp(entry.time).astimezone().isoformat(timespec="milliseconds"),
        "started": round(entry.time * 1000),
        "method": entry.method,
        "path": entry.path,
        "url": browser_url(entry, scheme),
        "upstream_url": entry.upstream_url,
        "route": entry.route,
        "origin": entry.origin,
        "status": entry.status,
        "duration_ms": round(entry.duration_ms, 3),
        "decision": decision_of(entry),
        "reason": entry.cors.reason if entry.cors is not None else entry.decision,
        "without_proxy": without_proxy(entry, entry.upstream_url),
        "corrections": list(entry.notes),
        "error": None if entry.failure is None else entry.failure.body(entry.upstream_url or ""),
        "request_headers": decode_raw(entry.request_headers),
        "upstream_request_headers": _pairs(entry.to_upstream),
        "upstream_response_headers": _pairs(entry.from_upstream),
        "response_headers": _pairs(entry.to_browser) or [],
        "cookies": [verdict.as_dict() for verdict in entry.cookies],
        "pair": None,  # set by store.Pairing, over every worker's exchanges in order
        "preflight": preflight_of(entry),
        "request_body": None if entry.request_body is None else entry.request_body.to_json(),
        "response_body": None if entry.response_body is None else entry.response_body.to_json(),
        "timings": {
            "total_ms": round(entry.duration_ms, 3),
            "upstream_head_ms": None if upstream_ms is None else round(upstream_ms, 3),
        },
        "replay": entry.replay_of is not None,
        "replay_of": entry.replay_of,
        "worker": entry.worker,
    }

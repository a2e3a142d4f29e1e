"""The doctor's report as plain values, and its rendering as text or one JSON document.
Pure: doctor.py fills a Report from real exchanges; judge.py's findings supply the words."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from corsproxy.cors import cookies
from corsproxy.cors.fetch import PreflightNeed
from corsproxy.cors.findings import Finding
from corsproxy.cors.judge import ReadableHeaders

Pairs = tuple[tuple[str, str], ...]


@dataclass(frozen=True)
class Exchange:
    """One request the browser sent (a preflight or the request itself) and what came back."""

    kind: Literal["preflight", "request"]
    method: str
    url: str
    sent: Pairs
    status: int | None = None  # None: no response (see the CORSDidNotSucceed finding)
    reason: str = ""
    received: Pairs = ()
    findings: tuple[Finding, ...] = ()
    cors: bool = True  # False: same-origin, so the browser runs no CORS check
    note: str = ""


@dataclass(frozen=True)
class Report:
    """What `corsproxy doctor` found: report.verdict == "blocked", report.blocking[0][1].name"""

    url: str
    origin: str
    method: str
    credentials: bool
    need: PreflightNeed
    exchanges: tuple[Exchange, ...] = ()
    readable: ReadableHeaders | None = None

    @property
    def blocking(self) -> list[tuple[Exchange, Finding]]:
        return [(ex, f) for ex in self.exchanges for f in ex.findings if f.fatal]

    @property
    def notes(self) -> list[Finding]:
        found = [f for ex in self.exchanges for f in ex.findings if not f.fatal]
        return found + list(self.readable.notes if self.readable else ())

    @property
    def verdict(self) -> Literal["allowed", "blocked"]:
        return "blocked" if self.blocking else "allowed"


def fatal(findings: Sequence[Finding]) -> bool:
    return any(f.fatal for f in findings)


def blocked(exchange: Exchange) -> bool:
    return fatal(exchange.findings)


def _finding_lines(exchange: Exchange) -> list[str]:
    lines = [f"   {'✗' if f.fatal else '!'} {f.name}: {f.detail}" for f in exchange.findings]
    if exchange.status is not None and not blocked(exchange):
        passed = "preflight passed" if exchange.kind == "preflight" else "CORS check passed"
        lines.append(f"   ✓ {passed}" if exchange.cors else "   ✓ same-origin: no CORS check")
    return lines + ([f"   → {exchange.note}"] if exchange.note else [])


def cookie_verdicts(report: Report, exchange: Exchange) -> list[cookies.CookieVerdict] | None:
    """The verdict on each Set-Cookie the exchange received; None when the browser ignores
    them all (a cross-origin fetch without credentials: 'include' stores no cookie)."""
    values = [v for n, v in exchange.received if n.lower() == "set-cookie"]
    if exchange.kind != "request" or not values:
        return []
    if exchange.cors and not report.credentials:
        return None
    parts = urlsplit(exchange.url)
    where = cookies.Where(report.origin, parts.scheme.lower(), parts.netloc.lower())
    return [cookies.verdict(value, where) for value in values]


def _cookie_lines(report: Report, exchange: Exchange) -> list[str]:
    found = cookie_verdicts(report, exchange)
    if found is None:
        return ["   ! Set-Cookie ignored: the browser stores cookies from this response only "
                "with credentials: 'include' (--credentials)"]  # fmt: skip
    lines = []
    for verdict in found:
        lines.append(f"   cookie {verdict.name}:")
        for b in verdict.browsers:
            where = f" (kept for pages on {b.partition} only)" if b.partition else ""
            said = "stored and sent back" + where if b.stored else b.reason
            lines.append(
                f"     {'✓' if b.stored else '✗' if b.refused else '-'} {b.browser}: {said}"
            )
    return lines


def _exchange_lines(number: int, exchange: Exchange) -> list[str]:
    lines = ["", f"{number}. {exchange.kind}: {exchange.method} {exchange.url}"]
    if exchange.method != exchange.method.upper():
        lines.append(
            f"   (aiohttp sends {exchange.method.upper()}; a browser sends {exchange.method})"
        )
    lines += [f"   > {name}: {value}" for name, value in exchange.sent]
    if exchange.status is not None:
        lines.append(f"   < {exchange.status} {exchange.reason}".rstrip())
        lines += [f"   < {name}: {value}" for name, value in exchange.received]
    return lines + _finding_lines(exchange)


def _explain(report: Report, exchange: Exchange, finding: Finding) -> list[str]:
    info = finding.info
    where = info.mdn_url or "no MDN page: the name is derived by corsproxy"
    return [
        "",
        f"blocked by {finding.name}",
        f"  chromium: {finding.message(exchange.url, report.origin, report.url)}",
        f"  why:      {info.explanation}",
        f"  fix:      {info.fix}",
        f"  see:      {where}",
    ]


def render_text(report: Report) -> str:
    """The steps one by one, then one verdict line (the last line)."""
    need = report.need
    mode = "included" if report.credentials else "omitted"
    lines = [
        f"doctor: {report.method} {report.url} from origin {report.origin}, credentials {mode}"
    ]
    lines.append(f"preflight: {'needed' if need.needed else 'not needed'} — {need.reason}")
    if need.ignored_headers:
        names = ", ".join(need.ignored_headers)
        lines.append(
            f"  the browser's own headers, not counted: {names} (Cookie only with credentials)"
        )
    for number, exchange in enumerate(report.exchanges, 1):
        lines += _exchange_lines(number, exchange) + _cookie_lines(report, exchange)
    if report.readable and not report.blocking:
        lines += ["", f"readable by the page: {', '.join(report.readable.readable) or 'nothing'}"]
        lines.append(f"hidden from the page: {', '.join(report.readable.hidden) or 'nothing'}")
    lines += [f"note: {note.name}: {note.detail} — fix: {note.info.fix}" for note in report.notes]
    for exchange, finding in report.blocking:
        lines += _explain(report, exchange, finding)
    lines += ["", _verdict_line(report)]
    return "\n".join(lines)


def _verdict_line(report: Report) -> str:
    if not report.blocking:
        return "verdict: allowed"
    exchange, finding = report.blocking[0]
    return (
        f"verdict: blocked — {finding.name}: {finding.short_message(exchange.url, report.origin)}"
    )


def _finding_json(report: Report, exchange: Exchange | None, finding: Finding) -> dict[str, Any]:
    info = finding.info
    url = exchange.url if exchange else report.url
    return {
        "name": finding.name,
        "fatal": finding.fatal,
        "detail": finding.detail,
        "message": finding.message(url, report.origin, report.url) or None,
        "explanation": info.explanation,
        "mdn_url": info.mdn_url,
        "fix": info.fix,
    }


def _exchange_json(report: Report, exchange: Exchange) -> dict[str, Any]:
    response = None
    if exchange.status is not None:
        headers = [list(pair) for pair in exchange.received]
        response = {"status": exchange.status, "reason": exchange.reason, "headers": headers}
    return {
        "kind": exchange.kind,
        "request": {
            "method": exchange.method,
            "url": exchange.url,
            "headers": [list(pair) for pair in exchange.sent],
        },
        "response": response,
        "cors": exchange.cors,
        "findings": [_finding_json(report, exchange, f) for f in exchange.findings],
        "note": exchange.note or None,
        "cookies": _cookies_json(report, exchange),
    }


def _cookies_json(report: Report, exchange: Exchange) -> list[dict] | str:
    found = cookie_verdicts(report, exchange)
    return "ignored without credentials" if found is None else [v.as_dict() for v in found]


def render_json(report: Report) -> str:
    """The same report as one JSON document."""
    steps = [_exchange_json(report, ex) for ex in report.exchanges]
    first_preflight = next((s for s in steps if s["kind"] == "preflight"), None)
    preflight = {"needed": report.need.needed, "reason": report.need.reason}
    preflight.update(first_preflight or {"request": None, "response": None, "findings": []})
    blocking, readable = report.blocking, report.readable
    names = (
        {"readable": list(readable.readable), "hidden": list(readable.hidden)} if readable else None
    )
    doc = {
        "url": report.url,
        "origin": report.origin,
        "method": report.method,
        "credentials": report.credentials,
        "preflight": preflight,
        "request": next((s for s in steps if s["kind"] == "request"), None),
        "steps": steps,
        "findings": [_finding_json(report, ex, f) for ex, f in blocking],
        "notes": [_finding_json(report, None, f) for f in report.notes],
        "readable_headers": names,
        "verdict": report.verdict,
        "finding": blocking[0][1].name if blocking else None,
    }
    return json.dumps(doc, indent=2, ensure_ascii=False)

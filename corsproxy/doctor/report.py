"""The doctor's report as plain values, and its rendering as text or one JSON document.
Pure: doctor.py fills a Report from real exchanges; judge.py's findings supply the words."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlsplit

from corsproxy.cors import cookies
from corsproxy.cors.engines import BY_KEY, ENGINES
from corsproxy.cors.fetch import FORBIDDEN_RESPONSE, PreflightNeed
from corsproxy.cors.findings import Finding
from corsproxy.cors.judge import ReadableHeaders

Pairs = tuple[tuple[str, str], ...]
ALL_ENGINES = tuple(engine.key for engine in ENGINES)


@dataclass(frozen=True)
class Exchange:
    """One request the browser sent (a preflight or the request itself) and what came back."""

    kind: Literal["preflight", "request", "check"]  # check: judged before anything is sent
    method: str
    url: str
    sent: Pairs
    status: int | None = None  # None: no response (see the CORSDidNotSucceed finding)
    reason: str = ""
    received: Pairs = ()
    findings: tuple[Finding, ...] = ()
    cors: bool = True  # False: same-origin, so the browser runs no CORS check
    note: str = ""
    engines: tuple[str, ...] = ALL_ENGINES  # the engines that send this (all, mostly)


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
    needs: dict[str, PreflightNeed] | None = None  # per engine key, where engines may differ
    preflight_only: bool = False

    def outcome(self, engine: str) -> tuple[Exchange, Finding] | None:
        """What blocks this engine (the first fatal finding on its way), or None."""
        for exchange in self.exchanges:
            if engine not in exchange.engines:
                continue
            for finding in exchange.findings:
                if finding.fatal and finding.applies_to(engine):
                    return exchange, finding
        return None

    @property
    def blocking(self) -> list[tuple[Exchange, Finding]]:
        """Every fatal finding on the way, in order (each blocks the engines it applies to)."""
        return [(ex, f) for ex in self.exchanges for f in ex.findings if f.fatal]

    @property
    def first_blocking(self) -> tuple[Exchange, Finding] | None:
        """What the verdict line names: the first engine's block, else the next one's."""
        for engine in ALL_ENGINES:
            hit = self.outcome(engine)
            if hit:
                return hit
        return None

    @property
    def notes(self) -> list[Finding]:
        found = [f for ex in self.exchanges for f in ex.findings if not f.fatal]
        return found + list(self.readable.notes if self.readable else ())

    @property
    def verdict(self) -> Literal["allowed", "blocked"]:
        return "blocked" if self.first_blocking else "allowed"


def fatal(findings: Sequence[Finding]) -> bool:
    return any(f.fatal for f in findings)


def blocked(exchange: Exchange) -> bool:
    return fatal(exchange.findings)


def _who(finding: Finding) -> str:
    """ " (Chromium 150 only)", " (Firefox 140 ESR: CORSOther)" or "" when every engine agrees."""
    parts = []
    if finding.only:
        parts.append(f"{' and '.join(BY_KEY[k].label for k in finding.only)} only")
    for key, name in finding.names:
        parts.append(f"{BY_KEY[key].label} names it {name}")
    return f" ({'; '.join(parts)})" if parts else ""


def _finding_lines(exchange: Exchange) -> list[str]:
    lines = [
        f"   {'✗' if f.fatal else '!'} {f.name}: {f.detail}{_who(f)}" for f in exchange.findings
    ]
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
    who = ""
    if exchange.engines != ALL_ENGINES:
        who = f" ({' and '.join(BY_KEY[k].label for k in exchange.engines)} only)"
    if exchange.kind == "check":
        return ["", f"{number}. before sending{who}: {exchange.url}", *_finding_lines(exchange)]
    lines = ["", f"{number}. {exchange.kind}{who}: {exchange.method} {exchange.url}"]
    if exchange.method != exchange.method.upper():
        lines.append(
            f"   (aiohttp sends {exchange.method.upper()}; a browser sends {exchange.method})"
        )
    lines += [f"   > {name}: {value}" for name, value in exchange.sent]
    if exchange.status is not None:
        lines.append(f"   < {exchange.status} {exchange.reason}".rstrip())
        lines += [f"   < {name}: {value}" for name, value in exchange.received]
    return lines + _finding_lines(exchange)


def no_cors_at_all(report: Report) -> bool:
    """The target sent no Access-Control-* header and no Vary: Origin anywhere: it does no CORS
    (corsproxy itself, refusing an origin, still sends Vary: Origin)."""
    for exchange in report.exchanges:
        for name, value in exchange.received:
            lower = name.lower()
            if lower.startswith("access-control-") or (
                lower == "vary" and "origin" in value.lower()
            ):
                return False
    return any(ex.status is not None for ex in report.exchanges)


def fix(report: Report, finding: Finding) -> str:
    """The catalog's fix, or, for a target without any CORS, the proxy in front of it."""
    if finding.name != "CORSMissingAllowOrigin" or not no_cors_at_all(report):
        return finding.info.fix
    parts = urlsplit(report.url)
    path = parts.path or "/"
    path += f"?{parts.query}" if parts.query else ""
    return (
        f"{parts.scheme}://{parts.netloc} sends no CORS headers at all: put corsproxy in front of"
        f" it (corsproxy serve {parts.scheme}://{parts.netloc}) and call the proxy instead,"
        f" http://localhost:8080{path}; it answers the preflight and adds the headers for"
        f" {report.origin}, which it allows by default when it is a localhost origin (otherwise"
        f" add --allow-origin {report.origin})."
    )


def _explain(report: Report, exchange: Exchange, finding: Finding) -> list[str]:
    info = finding.info
    where = info.mdn_url or "no MDN page: the name is derived by corsproxy"
    lines = ["", f"blocked by {finding.name}{_who(finding)}"]
    sentence = finding.message(exchange.url, report.origin, report.url)
    if finding.applies_to("chromium") and info.chromium_message:
        lines.append(f"  chromium: {sentence}")
    return lines + [
        f"  why:      {info.explanation}",
        f"  fix:      {fix(report, finding)}",
        f"  see:      {where}",
    ]


def _preflight_lines(report: Report) -> list[str]:
    need = report.need
    needs = report.needs or {}
    by = {key: n.needed for key, n in needs.items()}
    if len(set(by.values())) > 1:
        yes = " and ".join(BY_KEY[k].label for k, v in by.items() if v)
        no = " and ".join(BY_KEY[k].label for k, v in by.items() if not v)
        lines = [f"preflight: needed in {yes}, not in {no} — {need.reason}"]
    else:
        lines = [f"preflight: {'needed' if need.needed else 'not needed'} — {need.reason}"]
    lines += [f"  {quirk}" for n in needs.values() for quirk in n.quirks]
    if need.ignored_headers:
        names = ", ".join(need.ignored_headers)
        lines.append(
            f"  the browser's own headers, not counted: {names} (Cookie only with credentials)"
        )
    return lines


def render_text(report: Report) -> str:
    """The steps one by one, then one verdict line (the last line)."""
    mode = "included" if report.credentials else "omitted"
    lines = [
        f"doctor: {report.method} {report.url} from origin {report.origin}, credentials {mode}"
    ]
    lines += _preflight_lines(report)
    for number, exchange in enumerate(report.exchanges, 1):
        lines += _exchange_lines(number, exchange) + _cookie_lines(report, exchange)
    if report.readable and not report.first_blocking:
        hidden = [
            f"{n} (never readable: the browser stores the cookie itself)"
            if n in FORBIDDEN_RESPONSE
            else n
            for n in report.readable.hidden
        ]
        lines += ["", f"readable by the page: {', '.join(report.readable.readable) or 'nothing'}"]
        lines.append(f"hidden from the page: {', '.join(hidden) or 'nothing'}")
    lines += [
        f"note: {note.name}: {note.detail} — fix: {fix(report, note)}" for note in report.notes
    ]
    for exchange, finding in report.blocking:
        lines += _explain(report, exchange, finding)
    return "\n".join([*lines, "", *_engine_lines(report), _verdict_line(report)])


def _engine_lines(report: Report) -> list[str]:
    """One line per engine when they do not all end alike."""
    said = {key: _engine_said(report, key) for key in ALL_ENGINES}
    if len(set(said.values())) == 1:
        return []
    return [f"{BY_KEY[key].label}: {words}" for key, words in said.items()]


def _engine_said(report: Report, key: str) -> str:
    hit = report.outcome(key)
    return f"blocked ({hit[1].name_in(key)})" if hit else "allowed"


def _verdict_line(report: Report) -> str:
    if not report.first_blocking:
        if not report.preflight_only:
            return "verdict: allowed"
        if not any(ex.kind == "preflight" for ex in report.exchanges):
            return (
                "verdict: allowed — no preflight is needed, and nothing was sent (--preflight-only)"
            )
        return "verdict: allowed so far — the preflight passed; the request itself was not sent"
    exchange, finding = report.first_blocking or report.blocking[0]
    where = f"{finding.name}{_who(finding)}"
    return f"verdict: blocked — {where}: {finding.short_message(exchange.url, report.origin)}"


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
        "fix": fix(report, finding),
        # which engine reports it, under which name (MDN's, Firefox's console category)
        "engines": {k: finding.name_in(k) for k in ALL_ENGINES if finding.applies_to(k)},
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
        "engines": list(exchange.engines),
    }


def _engine_json(report: Report, key: str) -> dict[str, Any]:
    """What this engine does: {"name": "Firefox 140 ESR", "verdict", "finding", "preflight"}."""
    hit = report.outcome(key)
    need = (report.needs or {}).get(key, report.need)
    return {
        "name": BY_KEY[key].label,
        "verdict": "blocked" if hit else "allowed",
        "finding": hit[1].name_in(key) if hit else None,
        "preflight": need.needed,
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
        "verdict": report.verdict,  # "blocked" when any engine blocks
        "finding": report.first_blocking[1].name if report.first_blocking else None,
        "engines": {key: _engine_json(report, key) for key in ALL_ENGINES},
        "preflight_only": report.preflight_only,
    }
    return json.dumps(doc, indent=2, ensure_ascii=False)

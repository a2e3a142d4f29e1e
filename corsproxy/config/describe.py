"""The effective settings as text, for `corsproxy check`: defaults filled in, routes spelt out.

Reads a Settings that load() validated; writes YAML-like lines a frontend developer can scan.
"""

from __future__ import annotations

import json
import re

from corsproxy.config.model import Cors, CorsRule, HeaderRules, Route, Settings

_PLAIN = re.compile(r"[A-Za-z0-9_/.][\w./:@+-]*")
_RULE_FIELDS = (
    "allow_origins",
    "allow_methods",
    "allow_headers",
    "expose_headers",
    "allow_credentials",
    "max_age",
    "allow_private_network",
)


def _show(value: object) -> str:
    """A value as YAML would spell it: true/false, [a, b], "*" quoted."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, tuple):
        return "[" + ", ".join(_show(item) for item in value) + "]"
    if isinstance(value, str) and not _PLAIN.fullmatch(value):
        return json.dumps(value)
    return str(value)


def source_line(settings: Settings) -> str:
    """The start-up line that names the config file read, and what was laid over it:
    `config: ./corsproxy.yaml (found in the working directory); on top of it: --port ...`."""
    if settings.source is None:
        return "config: none (no -c FILE, no CORSPROXY_CONFIG, no corsproxy.yaml in this folder)"
    line = f"config: {settings.source}"
    if settings.named_by == "the working directory":
        line = f"config: ./{settings.source} (found in the working directory)"
    elif settings.named_by == "CORSPROXY_CONFIG":
        line += " (from CORSPROXY_CONFIG)"
    if settings.merged:
        line += "; on top of it: " + ", ".join(settings.merged)
    return line


def describe(settings: Settings) -> str:
    """Everything `serve` would use, in the order a request meets it, then any warnings."""
    source = settings.source or "no config file (defaults, environment and flags)"
    listen = settings.listen
    if listen.tls == "auto":
        tls = "auto   # a certificate from the local authority; see corsproxy trust --print"
    elif listen.tls:
        tls = f"cert {listen.tls.cert}, key {listen.tls.key}"
    else:
        tls = "none (plain http)"
    lines = [
        f"# effective settings, defaults filled in; from {source}",
        "listen:",
        f"  host: {_show(listen.host)}",
        f"  port: {listen.port}",
        f"  workers: {listen.workers}   # processes serving the port, each with its own pool",
        f"  allowed_hosts: {_show(listen.allowed_hosts)}"
        "   # besides localhost, *.localhost, 127.0.0.1, [::1] and the listen host",
        f"  tls: {tls}",
        f"log_level: {settings.log_level}",
        f"reload: {_show(settings.reload)}"
        + ("   # serve applies each saved change of the file" if settings.reload else ""),
        *_inspector_lines(settings),
        *_cors_lines(settings.cors),
        "",
        "routes (longest prefix wins):",
        *_route_lines(settings.routes),
    ]
    if settings.warnings:
        lines += ["", "warnings:", *(f"  {warning}" for warning in settings.warnings)]
    return "\n".join(lines) + "\n"


def _inspector_lines(settings: Settings) -> list[str]:
    """The token itself is never printed: `check` output ends up in issues and chat logs."""
    inspector = settings.inspector
    if not inspector.enabled:
        return ["inspector: false   # /__corsproxy/ answers 404 (health apart)"]
    token = "set (not shown)" if inspector.token else "new at each start (printed by serve)"
    return [
        "inspector:   # the page at /__corsproxy/; serve prints its URL with the token",
        "  enabled: true",
        f"  token: {token}",
        f"  keep: {inspector.keep}   # exchanges kept",
        f"  body_preview: {inspector.body_preview}   # bytes of each text-like body kept",
    ]


def _cors_lines(cors: Cors) -> list[str]:
    lines = ["cors:"]
    lines += [f"  {name}: {_show(getattr(cors, name))}" for name in _RULE_FIELDS]
    danger = cors.dangerously_allow_any_origin_with_credentials
    lines.append(f"  dangerously_allow_any_origin_with_credentials: {_show(danger)}")
    if not cors.rules:
        return [*lines, "  rules: []   # every path uses the settings above"]
    lines.append("  rules:   # the first whose paths match wins; unset fields come from cors")
    for rule in cors.rules:
        lines += _rule_lines(rule)
    return lines


def _rule_lines(rule: CorsRule) -> list[str]:
    lines = [f"    - paths: {_show(rule.paths)}"]
    for name in _RULE_FIELDS:
        if getattr(rule, name) is not None:
            lines.append(f"      {name}: {_show(getattr(rule, name))}")
    return lines


def _route_lines(routes: tuple[Route, ...]) -> list[str]:
    """One line per route, longest prefix first as routing tries them, its options beneath."""
    ordered = sorted(routes, key=lambda route: len(route.prefix), reverse=True)
    width = max((len(route.prefix) for route in ordered), default=1)
    lines, indent = [], " " * (width + 7)
    for route in ordered:
        cookies = route.cookies
        lines += [
            f"  {route.prefix:<{width}}  -> {route.upstream}   ({_example(route)})",
            f"{indent}strip_prefix: {_show(route.strip_prefix)}, host_header: {route.host_header}"
            f", origin_header: {route.origin_header}",
            f"{indent}verify_tls: {_show(route.verify_tls)}, websocket: {_show(route.websocket)}"
            f", redirects: {route.redirects}"
            f", timeout: {route.timeout:g}s, read_timeout: {route.read_timeout:g}s",
            f"{indent}cookies: domain {cookies.domain}, secure {cookies.secure}"
            f", samesite {cookies.samesite}",
        ]
        for key in ("request_headers", "response_headers"):
            if getattr(route, key):
                lines.append(f"{indent}{key}: {_header_rules(getattr(route, key))}")
    return lines


def _header_rules(rules: HeaderRules) -> str:
    """`set A: "Bearer ${API_TOKEN}"; remove B`: values as written, never as expanded (secrets)."""
    parts = []
    if rules.set:
        parts.append("set " + ", ".join(f"{h.name}: {_show(h.template)}" for h in rules.set))
    if rules.remove:
        parts.append("remove " + ", ".join(rules.remove))
    return "; ".join(parts)


# For config/diff.py: a reload's words show values exactly as `check` does.
show = _show
header_rules_text = _header_rules


def _example(route: Route) -> str:
    """A sample request path and the upstream URL it goes to, so strip_prefix is visible."""
    sample = route.prefix.rstrip("/") + "/users"
    rest = sample[len(route.prefix) :] if route.strip_prefix and route.prefix != "/" else sample
    return f"{sample} goes to {route.upstream}{rest}"

"""The one loader: flags over environment over file over defaults, every problem at once.

cli.py calls load(); the proxy only ever sees the valid Settings it returns.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from corsproxy.config.checks import (
    Invalid,
    Problem,
    check_bool,
    check_https_flag,
    check_inspector_token,
    check_listen_host,
    check_log_level,
    check_origin_entry,
    check_port,
    check_upstream,
    check_workers,
)
from corsproxy.config.file import FileLayer, read_config
from corsproxy.config.model import Cors, Route, Settings, effective_cors


@dataclass(frozen=True)
class Overrides:
    """Command-line flags; None means "not given" so env, file and defaults apply."""

    config: str | None = None
    upstream: str | None = None
    host: str | None = None
    port: int | None = None
    workers: int | None = None
    allow_origins: tuple[str, ...] | None = None
    log_level: str | None = None
    inspector: bool | None = None  # False: --no-inspector
    inspector_token: str | None = None  # no flag: CORSPROXY_INSPECTOR_TOKEN only
    https: bool | None = None  # --https: listen.tls: auto
    reload: bool | None = None  # False: --no-reload


class ConfigError(Exception):
    """Every problem in the file, the environment and the flags at once; `corsproxy` exits 2."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = list(problems)
        super().__init__("\n".join(str(problem) for problem in self.problems))


def _integer(check: Callable[[object], int]) -> Callable[[object], int]:
    """The environment gives text; a flag may already be an int."""

    def parse(value: object) -> int:
        if isinstance(value, str) and re.fullmatch(r"\s*[0-9]+\s*", value):
            value = int(value)
        return check(value)

    return parse


# The keys that flags and the environment may set: (Overrides field, flag, variable, key, check).
# The file alone sets everything else.
_OVERRIDABLE = (
    ("upstream", "UPSTREAM", "CORSPROXY_UPSTREAM", "upstream", check_upstream),
    ("host", "--host", "CORSPROXY_HOST", "listen.host", check_listen_host),
    ("port", "--port", "CORSPROXY_PORT", "listen.port", _integer(check_port)),
    ("workers", "--workers", "CORSPROXY_WORKERS", "listen.workers", _integer(check_workers)),
    ("allow_origins", "--allow-origin", "CORSPROXY_ALLOW_ORIGINS", "cors.allow_origins", None),
    ("log_level", "--log-level", "CORSPROXY_LOG_LEVEL", "log_level", check_log_level),
    ("inspector", "--no-inspector", None, "inspector.enabled", check_bool),
    (
        "inspector_token",
        "--inspector-token",
        "CORSPROXY_INSPECTOR_TOKEN",
        "inspector.token",
        check_inspector_token,
    ),
    ("https", "--https", None, "listen.tls", check_https_flag),
    ("reload", "--no-reload", None, "reload", check_bool),
)
DEFAULT_CONFIG = "corsproxy.yaml"
_Where = dict[str, tuple[str | None, int | None]]  # key path -> (source, line) it came from


def load(overrides: Overrides, env: Mapping[str, str]) -> Settings:
    """Flags over environment over file over defaults; raises ConfigError with every problem."""
    path, named_by = overrides.config, "--config"
    if path is None and env.get("CORSPROXY_CONFIG", "").strip():
        path, named_by = env["CORSPROXY_CONFIG"].strip(), "CORSPROXY_CONFIG"
    if path is None and os.path.isfile(DEFAULT_CONFIG):
        # Like a dev server's own config file: picked up from the working directory (the
        # Docker image's WORKDIR is /config, so a mounted /config/corsproxy.yaml just works).
        path, named_by = DEFAULT_CONFIG, "the working directory"
    file = read_config(path, named_by, env) if path else FileLayer()
    settings, problems, warnings = file.settings, file.problems, list(file.warnings)
    where: _Where = {key: (path, line) for key, line in file.lines.items()}
    given = _given(overrides, env, problems)
    for source, key, value in given:
        settings, where[key] = _apply(settings, key, value), (source, None)
    upstream_given = any(p.path == "upstream" for p in problems) or any(
        key == "upstream" for _, key, _ in given
    )
    if not settings.routes and file.readable and not file.routes_given and not upstream_given:
        reason = "no upstream configured; give one, e.g. corsproxy serve http://localhost:8000"
        problems.append(Problem(path, None, "upstream", reason))
    _check_any_origin(settings.cors, where, problems, warnings)
    _warn_injection_for_any_origin(settings.cors, file.settings.routes, where, warnings)
    if problems:
        # The file's own problems first, by line; then the environment's and the flags'.
        order = sorted(problems, key=lambda p: (p.source != path, p.line is None, p.line or 0))
        raise ConfigError(order)
    lines = tuple(str(w) for w in sorted(warnings, key=lambda w: w.line or 0))
    merged = _merged(file, given) if path else ()
    named = named_by if path else None
    return replace(settings, source=path, warnings=lines, named_by=named, merged=merged)


def _merged(file: FileLayer, given: list[tuple[str, str, object]]) -> tuple[str, ...]:
    """Where the flags and the environment replaced what the file says, for the start-up
    output: `UPSTREAM in place of its "/" route (its /api route kept)`, `--port over its
    listen.port`. A key the file does not set is not a merge, and is not mentioned."""
    said: dict[str, str] = {}  # by key: a flag after the variable for the same key wins
    routes = file.settings.routes
    for source, key, _ in given:
        if key != "upstream":
            if key in file.lines:
                said[key] = f"{source} over its {key}"
            continue
        kept = [route.prefix for route in routes if route.prefix != "/"]
        if kept:
            has_root = len(kept) < len(routes)
            said[key] = f'{source} {"in place of" if has_root else "as"} its "/" route'
            said[key] += f" (its {', '.join(kept)} route{'s' if len(kept) > 1 else ''} kept)"
        elif routes:
            said[key] = f"{source} in place of its upstream"
    return tuple(said.values())


def _given(
    overrides: Overrides, env: Mapping[str, str], problems: list[Problem]
) -> list[tuple[str, str, Any]]:
    """(source, key, checked value) from the environment, then the flags, so flags win."""
    found: list[tuple[str, str, Any]] = []
    for attr, flag, variable, key, check in _OVERRIDABLE:
        text = env.get(variable, "").strip() if variable else ""  # empty counts as unset
        for source, raw in ((variable, text or None), (flag, getattr(overrides, attr))):
            if raw is None or raw == () or source is None:
                continue
            value: Any
            if check is None:
                value = _origins(source, raw, problems)
            else:
                try:
                    value = check(raw)
                except Invalid as error:
                    problems.append(Problem(source, None, key, str(error)))
                    continue
            if value is not None:
                found.append((source, key, value))
    return found


def _origins(source: str, raw: str | tuple[str, ...], problems: list[Problem]) -> tuple | None:
    """Comma-separated in the environment, one per --allow-origin flag; each checked alone."""
    items = [item.strip() for item in raw.split(",")] if isinstance(raw, str) else list(raw)
    items = [item for item in items if item]
    before = len(problems)
    for i, item in enumerate(items):
        try:
            check_origin_entry(item)
        except Invalid as error:
            problems.append(Problem(source, None, f"cors.allow_origins[{i}]", str(error)))
    return tuple(items) if items and len(problems) == before else None


def _apply(settings: Settings, key: str, value: Any) -> Settings:
    """One flag or variable over the file: an upstream replaces the file's "/" route only."""
    if key == "upstream":
        others = tuple(route for route in settings.routes if route.prefix != "/")
        return replace(settings, routes=(*others, Route("/", value)))
    if key.startswith("listen."):
        return replace(settings, listen=replace(settings.listen, **{key[7:]: value}))
    if key == "cors.allow_origins":
        return replace(settings, cors=replace(settings.cors, allow_origins=value))
    if key.startswith("inspector."):
        return replace(settings, inspector=replace(settings.inspector, **{key[10:]: value}))
    if key == "reload":
        return replace(settings, reload=value)
    return replace(settings, log_level=value)


_ANY_ORIGIN_RISK = (
    "is refused: any web site you visit could read your logged-in responses through the proxy; "
    "list the origins, set allow_credentials: false, "
    "or set dangerously_allow_any_origin_with_credentials: true"
)
_DANGER = "cors.dangerously_allow_any_origin_with_credentials"


def _check_any_origin(
    cors: Cors, where: _Where, problems: list[Problem], warnings: list[Problem]
) -> None:
    """Refuse "*" with credentials unless the dangerous flag says so; then only warn."""
    grants = _any_origin_grants(cors, where)
    if grants and cors.dangerously_allow_any_origin_with_credentials:
        risk = "any web site you visit can read your logged-in responses through the proxy"
        warnings.append(_at(where, _DANGER, risk))
    else:
        problems.extend(_at(where, key, f"{what} {_ANY_ORIGIN_RISK}") for key, what in grants)


def _any_origin_grants(cors: Cors, where: _Where) -> list[tuple[str, str]]:
    """(key path, what) for the top level and each rule, after inheriting, that pairs "*" with
    credentials. Browsers refuse a literal `*` with credentials (Fetch §3.2.5), but the proxy
    echoes the request's origin instead, so this would hand every site your logged-in data."""
    default = "" if "cors.allow_credentials" in where else " (the default)"
    found = []
    if "*" in cors.allow_origins and cors.allow_credentials:
        found.append(("cors.allow_origins", _pairing("", default)))
    for i, rule in enumerate(cors.rules):
        merged = effective_cors(cors, rule)
        sets_either = rule.allow_origins is not None or rule.allow_credentials is not None
        if "*" in merged.allow_origins and merged.allow_credentials and sets_either:
            own = rule.allow_origins is not None  # else only the credentials are its own
            key = f"cors.rules[{i}].{'allow_origins' if own else 'allow_credentials'}"
            inherited = default or " (inherited from cors)"
            credentials = "" if rule.allow_credentials is not None else inherited
            found.append((key, _pairing("" if own else " (inherited from cors)", credentials)))
    return found


def _warn_injection_for_any_origin(
    cors: Cors, file_routes: tuple[Route, ...], where: _Where, warnings: list[Problem]
) -> None:
    """Request header rules go to allowed origins' requests: with "*" that is every site's."""
    risk = (
        '"*" in allow_origins lets every web site you visit send requests that carry these '
        "headers; list the origins that may use them"
    )
    for key in where:
        found = re.fullmatch(r"routes\[(\d+)\]\.request_headers\.set", key)
        index = int(found[1]) if found else len(file_routes)
        if index < len(file_routes) and _any_origin_reaches(cors, file_routes[index].prefix):
            warnings.append(_at(where, key, risk))


def _any_origin_reaches(cors: Cors, prefix: str) -> bool:
    """Whether "*" may be allowed on a path under `prefix`: at the top, or in a rule with a
    path pattern whose literal start could lie under it (a cheap over-estimate)."""
    if "*" in cors.allow_origins:
        return True
    for rule in cors.rules:
        if rule.allow_origins is None or "*" not in rule.allow_origins:
            continue
        for pattern in rule.paths:
            head = pattern.split("*", 1)[0]
            below = head.startswith(prefix) and head[len(prefix) :][:1] in ("", "/")
            if prefix == "/" or prefix.startswith(head) or below:
                return True
    return False


def _pairing(origins: str, credentials: str) -> str:
    return f'"*" in allow_origins{origins} together with allow_credentials: true{credentials}'


def _at(where: _Where, key: str, message: str) -> Problem:
    source, line = where.get(key, (None, None))
    return Problem(source, line, key, message)

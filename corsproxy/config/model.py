"""The configuration as frozen values, and the one loader that builds it.

Sits before everything else: cli.py calls load(); proxy.py only ever sees a valid Settings.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, fields, replace
from typing import Literal

from corsproxy.config.checks import (
    LOG_LEVELS,
    Invalid,
    Problem,
    check_https_flag,
    check_listen_host,
    check_log_level,
    check_origin_entry,
    check_port,
    check_upstream,
    check_workers,
    compile_path_glob,
)
from corsproxy.config.describe import describe

__all__ = [
    "LOG_LEVELS",
    "TLS",
    "ConfigError",
    "Cookies",
    "Cors",
    "CorsRule",
    "Listen",
    "Overrides",
    "Problem",
    "Route",
    "Settings",
    "compile_path_glob",
    "describe",
    "effective_cors",
    "load",
]

Wildcard = Literal["*"]


@dataclass(frozen=True)
class TLS:
    """`listen.tls`: serve HTTPS with this certificate and key (PEM files)."""

    cert: str
    key: str


@dataclass(frozen=True)
class Listen:
    """Where the proxy accepts connections, and which Host headers it answers."""

    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1  # processes sharing the port (SO_REUSEPORT), each with its own pool
    allowed_hosts: tuple[str, ...] = ()
    # "auto": a certificate from corsproxy's local authority (corsproxy/tls), made at start
    tls: TLS | Literal["auto"] | None = None


@dataclass(frozen=True)
class Cookies:
    """How upstream Set-Cookie attributes are rewritten for the proxy's origin."""

    domain: str = "strip"  # "strip" | "keep" | a domain to set
    secure: Literal["auto", "keep", "strip"] = "auto"
    samesite: Literal["keep", "lax", "strict", "none"] = "keep"


@dataclass(frozen=True)
class Route:
    """One upstream behind a path prefix; the longest matching prefix wins."""

    prefix: str
    upstream: str
    strip_prefix: bool = False
    host_header: Literal["upstream", "client"] = "upstream"
    origin_header: Literal["keep", "strip", "upstream"] = "keep"
    verify_tls: bool = True
    timeout: float = 30.0
    read_timeout: float = 300.0
    websocket: bool = True
    cookies: Cookies = field(default_factory=Cookies)
    redirects: Literal["rewrite", "keep"] = "rewrite"


@dataclass(frozen=True)
class CorsRule:
    """A `cors.rules` entry: paths it covers, and the fields it overrides (None = inherit)."""

    paths: tuple[str, ...]
    allow_origins: tuple[str, ...] | None = None
    allow_methods: tuple[str, ...] | Wildcard | None = None
    allow_headers: tuple[str, ...] | Wildcard | None = None
    expose_headers: tuple[str, ...] | Wildcard | None = None
    allow_credentials: bool | None = None
    max_age: int | None = None
    allow_private_network: bool | None = None


@dataclass(frozen=True)
class Cors:
    """The `cors` section; its defaults are the zero-config behaviour."""

    allow_origins: tuple[str, ...] = ("localhost",)
    allow_methods: tuple[str, ...] | Wildcard = "*"
    allow_headers: tuple[str, ...] | Wildcard = "*"
    expose_headers: tuple[str, ...] | Wildcard = "*"
    allow_credentials: bool = True
    max_age: int = 600
    allow_private_network: bool = False
    dangerously_allow_any_origin_with_credentials: bool = False
    rules: tuple[CorsRule, ...] = ()


@dataclass(frozen=True)
class Settings:
    """Everything `serve` needs, validated; `source` is the config file used, if any."""

    listen: Listen = field(default_factory=Listen)
    routes: tuple[Route, ...] = ()
    cors: Cors = field(default_factory=Cors)
    log_level: str = "info"
    source: str | None = None
    warnings: tuple[str, ...] = ()


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
    https: bool | None = None  # --https: listen.tls: auto


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
    ("https", "--https", None, "listen.tls", check_https_flag),
)
DEFAULT_CONFIG = "corsproxy.yaml"
_Where = dict[str, tuple[str | None, int | None]]  # key path -> (source, line) it came from


def load(overrides: Overrides, env: Mapping[str, str]) -> Settings:
    """Flags over environment over file over defaults; raises ConfigError with every problem."""
    from corsproxy.config.file import FileLayer, read_config  # it builds the dataclasses above

    path, named_by = overrides.config, "--config"
    if path is None and env.get("CORSPROXY_CONFIG", "").strip():
        path, named_by = env["CORSPROXY_CONFIG"].strip(), "CORSPROXY_CONFIG"
    if path is None and os.path.isfile(DEFAULT_CONFIG):
        # Like a dev server's own config file: picked up from the working directory (the
        # Docker image's WORKDIR is /config, so a mounted /config/corsproxy.yaml just works).
        path, named_by = DEFAULT_CONFIG, "the working directory"
    file = read_config(path, named_by) if path else FileLayer()
    settings, problems, warnings = file.settings, file.problems, list(file.warnings)
    where: _Where = {key: (path, line) for key, line in file.lines.items()}
    for source, key, value in _given(overrides, env, problems):
        settings, where[key] = _apply(settings, key, value), (source, None)
    if not settings.routes and file.readable and not file.routes_given:
        reason = "no upstream configured; give one, e.g. corsproxy serve http://localhost:8000"
        problems.append(Problem(path, None, "upstream", reason))
    _check_any_origin(settings.cors, where, problems, warnings)
    if problems:
        # The file's own problems first, by line; then the environment's and the flags'.
        order = sorted(problems, key=lambda p: (p.source != path, p.line is None, p.line or 0))
        raise ConfigError(order)
    lines = tuple(str(w) for w in sorted(warnings, key=lambda w: w.line or 0))
    return replace(settings, source=path, warnings=lines)


def _given(
    overrides: Overrides, env: Mapping[str, str], problems: list[Problem]
) -> list[tuple[str, str, object]]:
    """(source, key, checked value) from the environment, then the flags, so flags win."""
    found = []
    for attr, flag, variable, key, check in _OVERRIDABLE:
        text = env.get(variable, "").strip() if variable else ""  # empty counts as unset
        for source, raw in ((variable, text or None), (flag, getattr(overrides, attr))):
            if raw is None or raw == ():
                continue
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


def _apply(settings: Settings, key: str, value: object) -> Settings:
    """One flag or variable over the file: an upstream replaces the file's "/" route only."""
    if key == "upstream":
        others = tuple(route for route in settings.routes if route.prefix != "/")
        return replace(settings, routes=(*others, Route("/", value)))
    if key.startswith("listen."):
        return replace(settings, listen=replace(settings.listen, **{key[7:]: value}))
    if key == "cors.allow_origins":
        return replace(settings, cors=replace(settings.cors, allow_origins=value))
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


def _pairing(origins: str, credentials: str) -> str:
    return f'"*" in allow_origins{origins} together with allow_credentials: true{credentials}'


def _at(where: _Where, key: str, message: str) -> Problem:
    source, line = where.get(key, (None, None))
    return Problem(source, line, key, message)


def effective_cors(cors: Cors, rule: CorsRule) -> Cors:
    """The policy for paths under `rule`: its fields where given, the `cors` section elsewhere."""
    given = {f.name: getattr(rule, f.name) for f in fields(rule) if f.name != "paths"}
    return replace(cors, rules=(), **{k: v for k, v in given.items() if v is not None})

"""The configuration as frozen values: what every other part reads, and only reads.

config/load.py builds them (flags > environment > file > defaults); nothing else does.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields, replace
from typing import Literal

from corsproxy.config.checks import Problem, compile_path_glob

__all__ = [
    "TLS",
    "Cookies",
    "Cors",
    "CorsRule",
    "HeaderRules",
    "Inspector",
    "Listen",
    "Problem",
    "Route",
    "SetHeader",
    "Settings",
    "compile_path_glob",
    "effective_cors",
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
    # auto: a cross-site page gets SameSite=None; Secure; Partitioned (see proxy/rewrite.py)
    samesite: Literal["auto", "keep", "lax", "strict", "none"] = "auto"


@dataclass(frozen=True)
class SetHeader:
    """One `set` entry: the value sent, and the value as written, which is all anyone sees."""

    name: str
    template: str  # as written, e.g. `Bearer ${API_TOKEN}`: what check and the log show
    value: str = field(repr=False)  # ${NAME} expanded from the environment at load; never shown


@dataclass(frozen=True)
class HeaderRules:
    """A route's `request_headers` or `response_headers`: names to set, names to remove."""

    set: tuple[SetHeader, ...] = ()
    remove: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.set or self.remove)


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
    request_headers: HeaderRules = field(default_factory=HeaderRules)  # allowed pages only
    response_headers: HeaderRules = field(default_factory=HeaderRules)  # before the CORS step


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
class Inspector:
    """`inspector`: the page at /__corsproxy/ that shows every exchange (corsproxy/inspector/)."""

    enabled: bool = True
    token: str | None = None  # None: a new one at each start (serve.server makes it)
    keep: int = 500  # exchanges kept, the oldest forgotten first
    body_preview: int = 16384  # bytes of each text-like body kept for the page


@dataclass(frozen=True)
class Settings:
    """Everything `serve` needs, validated; `source` is the config file used, if any."""

    listen: Listen = field(default_factory=Listen)
    routes: tuple[Route, ...] = ()
    cors: Cors = field(default_factory=Cors)
    log_level: str = "info"
    inspector: Inspector = field(default_factory=Inspector)
    reload: bool = True  # watch the config file and apply each saved change (serve/reload.py)
    source: str | None = None
    warnings: tuple[str, ...] = ()
    # Where the settings came from, for the start-up output (not part of what they are):
    named_by: str | None = field(default=None, compare=False)  # --config, CORSPROXY_CONFIG, ...
    merged: tuple[str, ...] = field(default=(), compare=False)  # flags over the file, in words


def effective_cors(cors: Cors, rule: CorsRule) -> Cors:
    """The policy for paths under `rule`: its fields where given, the `cors` section elsewhere."""
    given = {f.name: getattr(rule, f.name) for f in fields(rule) if f.name != "paths"}
    return replace(cors, rules=(), **{k: v for k, v in given.items() if v is not None})

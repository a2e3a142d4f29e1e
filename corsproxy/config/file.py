"""The config file's keys: which check reads each one, and the sections built from them.

Sits inside settings.load(): file -> settings_yaml Values -> these dataclasses, every problem kept.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any, Literal

from corsproxy.config.checks import (
    Invalid,
    Problem,
    check_bool,
    check_cookie_domain,
    check_header_name,
    check_host_name,
    check_listen_host,
    check_log_level,
    check_max_age,
    check_method,
    check_origin_entry,
    check_path_glob,
    check_port,
    check_prefix,
    check_seconds,
    check_tls_auto,
    check_tls_pair,
    check_upstream,
    check_workers,
    one_of,
    readable_file,
)
from corsproxy.config.model import TLS, Cookies, Cors, CorsRule, Listen, Route, Settings
from corsproxy.config.yamllines import ListOf, Reader, Value, parse

# Which check reads which key; the dataclasses in settings.py hold the defaults.
TOP_KEYS = ("listen", "upstream", "routes", "cors", "log_level")
LISTEN_CHECKS = {
    "host": check_listen_host,
    "port": check_port,
    "workers": check_workers,
    "allowed_hosts": ListOf(check_host_name, "a list of host names such as [myapp.test]"),
}
COOKIE_CHECKS = {
    "domain": check_cookie_domain,
    "secure": one_of("auto", "keep", "strip"),
    "samesite": one_of("keep", "lax", "strict", "none"),
}
ROUTE_CHECKS = {
    "prefix": check_prefix,
    "upstream": check_upstream,
    "strip_prefix": check_bool,
    "host_header": one_of("upstream", "client"),
    "origin_header": one_of("keep", "strip", "upstream"),
    "verify_tls": check_bool,
    "timeout": check_seconds,
    "read_timeout": check_seconds,
    "websocket": check_bool,
    "redirects": one_of("rewrite", "keep"),
}
_RULE_FIELDS = {
    "allow_origins": ListOf(
        check_origin_entry, "a list of origins such as [http://localhost:5173]"
    ),
    "allow_methods": ListOf(check_method, '"*" or a list of methods such as [GET, POST]', True),
    "allow_headers": ListOf(check_header_name, '"*" or a list of header names', True),
    "expose_headers": ListOf(check_header_name, '"*" or a list of header names', True),
    "allow_credentials": check_bool,
    "max_age": check_max_age,
    "allow_private_network": check_bool,
}
CORS_CHECKS = {**_RULE_FIELDS, "dangerously_allow_any_origin_with_credentials": check_bool}
RULE_CHECKS = {
    "paths": ListOf(
        check_path_glob, "a non-empty list of path patterns such as [/public/**]", non_empty=True
    ),
    **_RULE_FIELDS,
}
MISSING = {
    "prefix": "missing; expected a path starting with /, such as /api",
    "upstream": "missing; expected an http:// or https:// URL such as http://localhost:8000",
    "paths": "missing; expected a non-empty list of path patterns such as [/public/**]",
    "tls.cert": "missing; expected the path of the PEM certificate file",
    "tls.key": "missing; expected the path of the PEM private key file",
}
# A top-level key that belongs in a section: `port:` at the top means `listen.port`.
ELSEWHERE = {key: f"listen.{key}" for key in (*LISTEN_CHECKS, "tls")} | {
    key: f"cors.{key}" for key in (*CORS_CHECKS, "rules")
}


@dataclass
class FileLayer:
    """What one config file says over the defaults, and on which line it said each key."""

    settings: Settings = field(default_factory=Settings)
    lines: dict[str, int] = field(default_factory=dict)
    problems: list[Problem] = field(default_factory=list)
    warnings: list[Problem] = field(default_factory=list)
    readable: bool = True  # False: nothing can be known about its routes
    routes_given: bool = False  # `upstream` or `routes` written, even if wrongly


def read_config(path: str, named_by: str) -> FileLayer:
    try:
        with open(path, encoding="utf-8") as file:
            text = file.read()
    except OSError as error:
        reason = f"cannot read the config file (named by {named_by}): {error.strerror}"
        return FileLayer(problems=[Problem(path, None, "", reason)], readable=False)
    except UnicodeDecodeError:
        reason = "cannot read the config file: it is not UTF-8 text"
        return FileLayer(problems=[Problem(path, None, "", reason)], readable=False)
    tree, problems = parse(text, path)
    if tree is None and problems:
        return FileLayer(problems=problems, readable=False)
    reader = Reader(path, problems)
    top = reader.mapping(tree, "", TOP_KEYS, ELSEWHERE)
    if top is None:
        return FileLayer(problems=problems, readable=False)
    settings = _settings(reader, top, os.path.dirname(path))
    given = "upstream" in top or ("routes" in top and bool(top["routes"].data))
    return FileLayer(settings, reader.lines, problems, reader.warnings, True, given)


def _settings(r: Reader, top: dict[str, Value], base_dir: str) -> Settings:
    listen = _listen(r, top.get("listen"), base_dir)
    cors = _cors(r, top.get("cors"))
    level = r.field(top["log_level"], "log_level", check_log_level) if "log_level" in top else None
    return Settings(listen=listen, routes=_routes(r, top), cors=cors, log_level=level or "info")


def _listen(r: Reader, value: Value | None, base_dir: str) -> Listen:
    items = r.mapping(value, "listen", [*LISTEN_CHECKS, "tls"]) or {}
    tls = _tls(r, items["tls"], base_dir) if "tls" in items else None
    return Listen(**r.fields(items, "listen", LISTEN_CHECKS), tls=tls)


def _tls(r: Reader, value: Value, base_dir: str) -> TLS | Literal["auto"] | None:
    if value.data is not None and not isinstance(value.data, dict):
        return r.field(value, "listen.tls", check_tls_auto)
    items = r.mapping(value, "listen.tls", ["cert", "key"])
    if not isinstance(value.data, dict) or items is None:
        return None
    for key in ("cert", "key"):
        if key not in items:
            r.problem(value.key_line or value.line, f"listen.tls.{key}", MISSING[f"tls.{key}"])
    files = r.fields(items, "listen.tls", dict.fromkeys(("cert", "key"), readable_file(base_dir)))
    if len(files) < 2:
        return None
    try:
        check_tls_pair(files["cert"], files["key"])
    except Invalid as error:
        r.problem(value.key_line or value.line, "listen.tls", str(error))
    return TLS(**files)


def _routes(r: Reader, top: dict[str, Value]) -> tuple[Route, ...]:
    """The `routes` entries, then the `upstream` shorthand at "/"; each prefix used once."""
    taken: dict[str, str] = {}  # prefix -> who uses it, for the duplicate message
    shorthand = None
    if "upstream" in top:
        taken["/"] = f"the top-level upstream on line {top['upstream'].line}"
        shorthand = r.field(top["upstream"], "upstream", check_upstream)
    routes = []
    for i, item in enumerate(r.sequence(top.get("routes"), "routes")):
        route, path = _route(r, item, f"routes[{i}]"), f"routes[{i}].prefix"
        if route is None:
            continue
        if route.prefix in taken:
            message = f"duplicate prefix {route.prefix!r}; {taken[route.prefix]} already uses it"
            r.problem(r.lines[path], path, message)
            continue
        taken[route.prefix] = f"routes[{i}] on line {r.lines[path]}"
        routes.append(route)
    return (*routes, Route("/", shorthand)) if shorthand else tuple(routes)


def _route(r: Reader, value: Value, path: str) -> Route | None:
    items = r.mapping(value, path, [*ROUTE_CHECKS, "cookies"])
    if items is None:
        return None
    for key in ("prefix", "upstream"):
        if key not in items:
            r.problem(value.key_line or value.line, f"{path}.{key}", MISSING[key])
    fields = r.fields(items, path, ROUTE_CHECKS)
    cookie_items = r.mapping(items.get("cookies"), f"{path}.cookies", list(COOKIE_CHECKS)) or {}
    cookies = Cookies(**r.fields(cookie_items, f"{path}.cookies", COOKIE_CHECKS))
    if "prefix" not in fields or "upstream" not in fields:
        return None
    return Route(**fields, cookies=cookies)


def _cors(r: Reader, value: Value | None) -> Cors:
    items = r.mapping(value, "cors", [*CORS_CHECKS, "rules"]) or {}
    fields = r.fields(items, "cors", CORS_CHECKS)
    _warn_max_age(r, fields, "cors")
    rules = [
        _rule(r, v, f"cors.rules[{i}]")
        for i, v in enumerate(r.sequence(items.get("rules"), "cors.rules"))
    ]
    return Cors(**fields, rules=tuple(rule for rule in rules if rule is not None))


def _rule(r: Reader, value: Value, path: str) -> CorsRule | None:
    items = r.mapping(value, path, list(RULE_CHECKS))
    if items is None:
        return None
    if "paths" not in items:
        r.problem(value.key_line or value.line, f"{path}.paths", MISSING["paths"])
    fields = r.fields(items, path, RULE_CHECKS)
    _warn_max_age(r, fields, path)
    return CorsRule(**fields) if "paths" in fields else None


def _warn_max_age(r: Reader, fields: dict[str, Any], path: str) -> None:
    """Accepted, but Chromium caps its preflight cache at two hours, so say so."""
    age = fields.get("max_age", 0)
    if age > 7200:
        message = (
            f"{age} s is above 7200 s, the most Chrome honours; Chrome will ask again after 7200 s"
        )
        r.warnings.append(Problem(r.source, r.lines[f"{path}.max_age"], f"{path}.max_age", message))

"""The config file's keys: which check reads each one, and the sections built from them.

Sits inside settings.load(): file -> settings_yaml Values -> these dataclasses, every problem kept.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from corsproxy.config.checks import (
    Invalid,
    Problem,
    check_body_preview,
    check_bool,
    check_cookie_domain,
    check_header_name,
    check_host_name,
    check_inspector_token,
    check_keep,
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
    cookie_rules_warning,
    expected,
    one_of,
    readable_file,
)
from corsproxy.config.model import (
    TLS,
    Cookies,
    Cors,
    CorsRule,
    HeaderRules,
    Inspector,
    Listen,
    Route,
    SetHeader,
    Settings,
)
from corsproxy.config.yamllines import ListOf, Reader, Value, parse
from corsproxy.proxy import headerrules  # the one place that knows the header-rule grammar

# Which check reads which key; the dataclasses in settings.py hold the defaults.
TOP_KEYS = ("listen", "upstream", "routes", "cors", "log_level", "inspector", "reload")
LISTEN_CHECKS = {
    "host": check_listen_host,
    "port": check_port,
    "workers": check_workers,
    "allowed_hosts": ListOf(check_host_name, "a list of host names such as [myapp.test]"),
}
COOKIE_CHECKS = {
    "domain": check_cookie_domain,
    "secure": one_of("auto", "keep", "strip"),
    "samesite": one_of("auto", "keep", "lax", "strict", "none"),
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
HEADER_RULES = ("request_headers", "response_headers")
REMOVE = ListOf(headerrules.check_name, "a list of header names such as [Cookie]")
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
INSPECTOR_CHECKS = {
    "enabled": check_bool,
    "token": check_inspector_token,
    "keep": check_keep,
    "body_preview": check_body_preview,
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


def read_config(path: str, named_by: str, env: Mapping[str, str]) -> FileLayer:
    """The file's layer; `env` is the environment that `${NAME}` in header rules come from."""
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
    settings = _settings(reader, top, os.path.dirname(path), env)
    given = "upstream" in top or ("routes" in top and bool(top["routes"].data))
    return FileLayer(settings, reader.lines, problems, reader.warnings, True, given)


def _settings(r: Reader, top: dict[str, Value], base_dir: str, env: Mapping[str, str]) -> Settings:
    listen = _listen(r, top.get("listen"), base_dir)
    cors = _cors(r, top.get("cors"))
    level = r.field(top["log_level"], "log_level", check_log_level) if "log_level" in top else None
    reload = r.field(top["reload"], "reload", check_bool) if "reload" in top else None
    return Settings(
        listen=listen,
        routes=_routes(r, top, env),
        cors=cors,
        log_level=level or "info",
        inspector=_inspector(r, top.get("inspector")),
        reload=reload is not False,  # None (not given): watched
    )


def _inspector(r: Reader, value: Value | None) -> Inspector:
    """`inspector: false` (or true) alone, or the mapping of its keys."""
    if value is not None and isinstance(value.data, bool):
        return Inspector(enabled=r.field(value, "inspector", check_bool))
    if value is not None and value.data is not None and not isinstance(value.data, dict):
        what = "true, false or a mapping of keys such as {keep: 500}"
        r.problem(value.line, "inspector", str(expected(what, value.data)))
        return Inspector()
    items = r.mapping(value, "inspector", list(INSPECTOR_CHECKS)) or {}
    if "token" in items and items["token"].data is None:
        del items["token"]  # `token: null`, as the example writes it: a new one at each start
    return Inspector(**r.fields(items, "inspector", INSPECTOR_CHECKS))


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


def _routes(r: Reader, top: dict[str, Value], env: Mapping[str, str]) -> tuple[Route, ...]:
    """The `routes` entries, then the `upstream` shorthand at "/"; each prefix used once."""
    taken: dict[str, str] = {}  # prefix -> who uses it, for the duplicate message
    shorthand = None
    if "upstream" in top:
        taken["/"] = f"the top-level upstream on line {top['upstream'].line}"
        shorthand = r.field(top["upstream"], "upstream", check_upstream)
    routes = []
    for i, item in enumerate(r.sequence(top.get("routes"), "routes")):
        route, path = _route(r, item, f"routes[{i}]", env), f"routes[{i}].prefix"
        if route is None:
            continue
        if route.prefix in taken:
            message = f"duplicate prefix {route.prefix!r}; {taken[route.prefix]} already uses it"
            r.problem(r.lines[path], path, message)
            continue
        taken[route.prefix] = f"routes[{i}] on line {r.lines[path]}"
        routes.append(route)
    return (*routes, Route("/", shorthand)) if shorthand else tuple(routes)


def _route(r: Reader, value: Value, path: str, env: Mapping[str, str]) -> Route | None:
    items = r.mapping(value, path, [*ROUTE_CHECKS, "cookies", *HEADER_RULES])
    if items is None:
        return None
    for key in ("prefix", "upstream"):
        if key not in items:
            r.problem(value.key_line or value.line, f"{path}.{key}", MISSING[key])
    fields = r.fields(items, path, ROUTE_CHECKS)
    cookie_items = r.mapping(items.get("cookies"), f"{path}.cookies", list(COOKIE_CHECKS)) or {}
    cookies = Cookies(**r.fields(cookie_items, f"{path}.cookies", COOKIE_CHECKS))
    warning = cookie_rules_warning(cookies.secure, cookies.samesite)
    if warning is not None:
        where = f"{path}.cookies.secure"
        r.warnings.append(Problem(r.source, r.lines.get(where), where, warning))
    request, response = (_header_rules(r, items.get(k), f"{path}.{k}", env) for k in HEADER_RULES)
    if "prefix" not in fields or "upstream" not in fields:
        return None
    return Route(**fields, cookies=cookies, request_headers=request, response_headers=response)


def _header_rules(r: Reader, value: Value | None, path: str, env: Mapping[str, str]) -> HeaderRules:
    """`set: {Name: value}` and `remove: [Name]`; each name once, whatever its case."""
    items = r.mapping(value, path, ("set", "remove")) or {}
    sets = _set_headers(r, items.get("set"), f"{path}.set", env)
    removed = (
        r.field(items["remove"], f"{path}.remove", REMOVE) if "remove" in items else ()
    ) or ()
    named = [(f"{path}.set.{header.name}", header.name) for header in sets]
    for i, name in enumerate(removed):  # a single string is a one-item list, read at .remove
        item = f"{path}.remove[{i}]"
        named.append((item if item in r.lines else f"{path}.remove", name))
    first: dict[str, str] = {}
    for key, name in named:
        earlier = first.setdefault(name.lower(), key)
        if earlier != key:
            under = "set" if earlier.startswith(f"{path}.set.") else "remove"
            message = f"{name} is already under {under} on line {r.lines[earlier]}; "
            r.problem(r.lines[key], key, message + "name each header once (names ignore case)")
    return HeaderRules(tuple(sets), tuple(removed))


def _set_headers(
    r: Reader, value: Value | None, path: str, env: Mapping[str, str]
) -> list[SetHeader]:
    """Each `Name: value` checked on its own line; the value expanded from env, kept as written."""
    if value is None or value.data is None:
        return []
    if not isinstance(value.data, dict):
        what = "a mapping of header names to values, such as {Cache-Control: no-store}"
        r.problem(value.line, path, str(expected(what, value.data)))
        return []
    r.lines[path] = value.key_line or value.line
    found = []
    for key, item in value.data.items():
        where = f"{path}.{key}"
        r.lines[where] = item.key_line or item.line
        try:
            name = headerrules.check_name(key)
        except Invalid as error:
            r.problem(r.lines[where], where, str(error))
            continue
        try:
            template, sent = headerrules.read_value(item.data, env)
        except Invalid as error:
            r.problem(item.line, where, str(error))
            continue
        found.append(SetHeader(name, template, sent))
    return found


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

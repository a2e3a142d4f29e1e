"""What a reload changed, in words: a pure diff of two Settings, and the lines serve prints.

serve/reload.py calls changes(applied, loaded) after load() accepted the saved file; the words
go to the terminal (and to on_reload hooks, such as the inspector's marker). Values are shown
as `check` shows them: header-rule values as written (`Bearer ${API_TOKEN}`), never expanded.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields, is_dataclass, replace

from corsproxy.config.describe import header_rules_text, show
from corsproxy.config.model import (
    Cors,
    CorsRule,
    HeaderRules,
    Inspector,
    Route,
    Settings,
    effective_cors,
)

# Keys a running proxy cannot change: its sockets (and their TLS) were set up at start.
RESTART_KEYS = ("listen.host", "listen.port", "listen.workers", "listen.tls")
# The inspector's store, token and page live on across reloads (the old and the new proxy share
# one Inspector): its keys too wait for a restart.
INSPECTOR_KEYS = tuple(f"inspector.{f.name}" for f in fields(Inspector))
_NOT_SETTINGS = ("source", "warnings", "inspector")  # where the settings came from, and above
_SECRET_NAMES = ("token", "secret", "password")


@dataclass(frozen=True)
class Changes:
    """A reload's effect: `applied` phrases, keys that need a restart, and, when the CORS rules
    got narrower, the longest max_age a browser may have cached the old grants for."""

    applied: tuple[str, ...] = ()
    restart: tuple[str, ...] = ()  # key paths from RESTART_KEYS
    cached_seconds: int | None = None

    def __bool__(self) -> bool:
        return bool(self.applied or self.restart)

    def words(self) -> str:
        """`route /auth added; listen.port changed: restart to apply`."""
        later = (f"{key} changed: restart to apply" for key in self.restart)
        return "; ".join((*self.applied, *later))


def changes(old: Settings, new: Settings) -> Changes:
    """What applying `new` over `old` changes, and which of its changes need a restart."""
    new = _token_kept(new, old)
    restart = tuple(
        key for key in (*RESTART_KEYS, *INSPECTOR_KEYS) if _at(old, key) != _at(new, key)
    )
    applied: list[str] = []
    _walk("", applicable(new, old), old, applied)
    return Changes(tuple(applied), restart, narrowed(old.cors, new.cors))


def applicable(new: Settings, running: Settings) -> Settings:
    """`new` with the RESTART_KEYS and the inspector of the running settings: what a reload
    can apply, and what serves after it."""
    listen = new.listen
    for key in RESTART_KEYS:
        name = key.split(".", 1)[1]
        listen = replace(listen, **{name: getattr(running.listen, name)})
    return replace(new, listen=listen, inspector=running.inspector)


def _token_kept(new: Settings, running: Settings) -> Settings:
    """An inspector token the file does not fix is the one made at start, not a change."""
    if new.inspector.token is not None:
        return new
    return replace(new, inspector=replace(new.inspector, token=running.inspector.token))


def same(old: Settings, new: Settings) -> bool:
    """Equal in everything a request can notice (the file name and warnings aside)."""
    return replace(old, source=None, warnings=()) == replace(new, source=None, warnings=())


def _at(settings: Settings, key: str) -> object:
    value: object = settings
    for name in key.split("."):
        value = getattr(value, name)
    return value


def _walk(path: str, new: object, old: object, out: list[str]) -> None:
    """Field by field; routes matched by prefix and rules by paths; a leaf as `key: a -> b`."""
    if old == new:
        return
    if path == "routes":
        _routes(old, new, out)  # type: ignore[arg-type]
    elif path == "cors.rules":
        _rules(old, new, out)  # type: ignore[arg-type]
    elif isinstance(old, HeaderRules) and isinstance(new, HeaderRules):
        out.append(_header_rules(path, old, new))
    elif is_dataclass(old) and type(old) is type(new):
        for f in fields(old):
            key = f"{path}.{f.name}" if path else f.name
            if not f.compare or (not path and f.name in _NOT_SETTINGS) or key in RESTART_KEYS:
                continue
            before, after = getattr(old, f.name), getattr(new, f.name)
            if not f.repr or any(word in f.name for word in _SECRET_NAMES):
                if before != after:
                    out.append(f"{key} changed (value not shown)")
                continue
            _walk(key, after, before, out)
    else:
        out.append(f"{path}: {_value(old)} -> {_value(new)}")


def _value(value: object) -> str:
    return "(none)" if value is None or value == () else show(value)


def _routes(old: tuple[Route, ...], new: tuple[Route, ...], out: list[str]) -> None:
    """`route /auth added`, `route /old removed`, `route /api: cookies.samesite: keep -> none`."""
    before = {route.prefix: route for route in old}
    after = {route.prefix: route for route in new}
    for prefix, route in after.items():
        if prefix not in before:
            out.append(f"route {prefix} added")
            continue
        inner: list[str] = []
        _walk("", route, before[prefix], inner)
        out.extend(f"route {prefix}: {phrase}" for phrase in inner)
    out.extend(f"route {prefix} removed" for prefix in before if prefix not in after)


def _rules(old: tuple[CorsRule, ...], new: tuple[CorsRule, ...], out: list[str]) -> None:
    """Rules matched by their paths, named by their place in the new file."""
    before = {rule.paths: (i, rule) for i, rule in enumerate(old)}
    after = {rule.paths: (i, rule) for i, rule in enumerate(new)}
    for paths, (i, rule) in after.items():
        if paths not in before:
            out.append(f"cors.rules[{i}] added (paths {show(paths)})")
        else:
            _walk(f"cors.rules[{i}]", rule, before[paths][1], out)
    for paths, (i, _) in before.items():
        if paths not in after:
            out.append(f"cors.rules[{i}] removed (paths {show(paths)})")
    kept_before = [paths for paths in before if paths in after]
    if kept_before != [paths for paths in after if paths in before]:
        out.append("cors.rules reordered (the first whose paths match wins)")


def _header_rules(path: str, old: HeaderRules, new: HeaderRules) -> str:
    """As `check` writes them; a change of expanded values alone is said without them."""
    before, after = header_rules_text(old) or "(none)", header_rules_text(new) or "(none)"
    if before == after:
        return f"{path}: values from the environment changed (not shown)"
    return f"{path}: {before} -> {after}"


def narrowed(old: Cors, new: Cors) -> int | None:
    """The longest max_age of an old policy that the new rules grant less than, else None.

    A browser that cached a preflight answer (Fetch §4.8, CORS-preflight cache) keeps using it
    for max_age seconds: requests the new rules refuse may still be sent until then. A rule
    added or removed is compared with the default policy that covered its paths before/after.
    """
    pairs = [(old, new)]
    old_rules = {rule.paths: rule for rule in old.rules}
    new_rules = {rule.paths: rule for rule in new.rules}
    for paths, rule in new_rules.items():
        before = effective_cors(old, old_rules[paths]) if paths in old_rules else old
        pairs.append((before, effective_cors(new, rule)))
    for paths, rule in old_rules.items():
        if paths not in new_rules:
            pairs.append((effective_cors(old, rule), new))
    ages = [before.max_age for before, after in pairs if _grants_less(before, after)]
    return max(ages) if ages else None


def _grants_less(old: Cors, new: Cors) -> bool:
    """Whether a preflight the old policy granted could be refused (or granted less) now."""
    wider = "*" in new.allow_origins
    return (
        (not wider and bool(set(old.allow_origins) - set(new.allow_origins)))
        or _fewer(old.allow_methods, new.allow_methods, str.upper)
        or _fewer(old.allow_headers, new.allow_headers, str.lower)
        or (old.allow_credentials and not new.allow_credentials)
        or (old.allow_private_network and not new.allow_private_network)
    )


def _fewer(
    old: tuple[str, ...] | str, new: tuple[str, ...] | str, fold: Callable[[str], str]
) -> bool:
    if new == "*":
        return False
    if old == "*":
        return True
    return bool({fold(x) for x in old} - {fold(x) for x in new})


def reloaded_lines(
    name: str, found: Changes, new_warnings: tuple[str, ...] = (), merged: tuple[str, ...] = ()
) -> list[str]:
    """`corsproxy: reloaded corsproxy.yaml: ...`, the preflight-cache note, new warnings. A
    saved file that changes no setting says so, and which flags still win over it."""
    words = found.words()
    if not words:
        words = "no setting changed" + (f" ({', '.join(merged)})" if merged else "")
    lines = [f"corsproxy: reloaded {name}: {words}"]
    if found.cached_seconds is not None and found.applied:
        lines.append(
            "corsproxy: the CORS rules are narrower now: browsers may keep using cached "
            f"preflight answers for up to {found.cached_seconds} seconds (max_age)"
        )
    lines += [f"corsproxy: warning: {warning}" for warning in new_warnings]
    return lines


def rejected_lines(name: str, problems: Sequence[object]) -> list[str]:
    """The reload refused: a count, what still runs, then each problem as `file:line: ...`."""
    count = len(problems)
    head = (
        f"corsproxy: {name} not reloaded ({count} problem{'s' if count != 1 else ''}); "
        "still serving the previous config"
    )
    return [head, *(str(problem) for problem in problems)]

"""The CORS engine: decide what to grant a request, then finish the response's headers.

proxy.handle() calls decide() before anything is sent upstream (preflights are answered from
its Decision alone) and finish() on the upstream's response headers. Pure: plain data in and out.
Decide first, write later (as Envoy's CORS filter does): nothing is granted before the origin
has been checked, and upstream CORS headers are replaced, never duplicated.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from corsproxy.config.model import Cors, compile_path_glob, effective_cors
from corsproxy.cors.fetch import FORBIDDEN_RESPONSE, SAFELISTED_METHODS, SAFELISTED_RESPONSE
from corsproxy.cors.origins import OriginMatcher

# Readable by JavaScript without Access-Control-Expose-Headers, so never listed there; and
# the forbidden response-header names (Set-Cookie), which JavaScript can never read.
SAFELISTED_RESPONSE_HEADERS = SAFELISTED_RESPONSE
_NEVER_EXPOSED = FORBIDDEN_RESPONSE
PREFLIGHT_VARY = "Origin, Access-Control-Request-Method, Access-Control-Request-Headers"
# The response headers this engine owns for an allowed origin: the upstream's values are
# dropped and the rule's written instead (Envoy: set, never append).
OWNED_HEADERS = frozenset(
    {
        "access-control-allow-origin",
        "access-control-allow-credentials",
        "access-control-expose-headers",
        "access-control-allow-methods",
        "access-control-allow-headers",
        "access-control-max-age",
        "access-control-allow-private-network",
    }
)


# Joins a granted preflight's reason to what the browser will still refuse (the access log
# reads it to say "blocked in the browser" where the status is).
WILL_BLOCK = "; the browser will block it: "


class Verdict(Enum):
    """What the engine decided about a request."""

    NOT_CORS = "no Origin"  # same-origin or non-browser: nothing to grant
    ALLOWED = "allowed"
    REFUSED = "refused"
    PREFLIGHT = "preflight"  # allowed origin: answer 204 from decision.headers
    PREFLIGHT_REFUSED = "preflight refused"  # refused origin: 403, no Access-Control-*


@dataclass(frozen=True, slots=True)
class Decision:
    """The verdict, the headers it grants, and the reason in words for the log and doctor."""

    verdict: Verdict
    origin: str | None
    headers: tuple[tuple[str, str], ...]
    reason: str
    expose: str | None = None  # a fixed Expose-Headers value; None with expose_all
    expose_all: bool = False  # expose_headers "*": list the response's own names


@dataclass(frozen=True, slots=True)
class CompiledPolicy:
    """One `cors` section (or a rule folded onto it), compiled once at config load."""

    origins: OriginMatcher
    methods: tuple[str, ...] | None  # None = "*": grant what the preflight asks
    headers: frozenset[str] | None  # lowercase names; None = "*"
    methods_value: str
    headers_value: str
    expose_value: str | None  # None = "*"
    credentials: bool
    max_age: str
    private_network: bool
    where: str = "cors"  # the config key it came from, for reasons: "cors" or "cors.rules[1]"
    reloads: bool = False  # a saved config file applies at once (serve/reload.py): say so


@dataclass(frozen=True, slots=True)
class PolicySet:
    """The default policy and the `cors.rules` overrides, the first matching path wins."""

    default: CompiledPolicy
    rules: tuple[tuple[re.Pattern[str], CompiledPolicy], ...]

    def for_path(self, path: str) -> CompiledPolicy:
        """The policy that covers this request path (without the query)."""
        for pattern, policy in self.rules:
            if pattern.fullmatch(path):
                return policy
        return self.default


def compile_policy(cors: Cors, reloads: bool = False) -> PolicySet:
    """Compile `cors` and each of its rules into the policies decide() uses; `reloads`: the
    config file is watched, so a refusal can say that saving it applies the fix."""
    rules: list[tuple[Any, CompiledPolicy]] = []
    for index, rule in enumerate(cors.rules):
        policy = _compile_one(effective_cors(cors, rule), f"cors.rules[{index}]", reloads)
        rules.extend((compile_path_glob(path), policy) for path in rule.paths)
    return PolicySet(_compile_one(cors, "cors", reloads), tuple(rules))


def _compile_one(cors: Cors, where: str = "cors", reloads: bool = False) -> CompiledPolicy:
    methods = None if cors.allow_methods == "*" else tuple(cors.allow_methods)
    headers = None if cors.allow_headers == "*" else tuple(cors.allow_headers)
    return CompiledPolicy(
        origins=OriginMatcher(tuple(cors.allow_origins)),
        methods=methods,
        headers=None if headers is None else frozenset(h.lower() for h in headers),
        methods_value=", ".join(methods or ()),
        headers_value=", ".join(headers or ()),
        expose_value=None if cors.expose_headers == "*" else ", ".join(cors.expose_headers),
        credentials=cors.allow_credentials,
        max_age=str(cors.max_age),
        private_network=cors.allow_private_network,
        where=where,
        reloads=reloads,
    )


def joined(values: Sequence[str]) -> str | None:
    """A list header sent on several lines, as its one combined value (RFC 9110 §5.3: the
    lines joined with ", "); None when it was not sent. A preflight may carry
    Access-Control-Request-Headers twice, the first line even empty."""
    return ", ".join(values) if values else None


def is_preflight(method: str, origin: str | None, request_method: str | None) -> bool:
    """Fetch standard, CORS-preflight request: OPTIONS with Origin and -Request-Method."""
    return method == "OPTIONS" and origin is not None and request_method is not None


def decide(
    policy: CompiledPolicy,
    method: str,
    origin: str | None,
    request_method: str | None = None,
    request_headers: str | None = None,
    private_network: str | None = None,
) -> Decision:
    """Decide a request from its CORS request headers; no I/O, nothing sent yet."""
    if origin is None:
        return Decision(Verdict.NOT_CORS, None, (), "no Origin header")
    preflight = is_preflight(method, origin, request_method)
    found = policy.origins.match(origin)
    if found is None:
        verdict = Verdict.PREFLIGHT_REFUSED if preflight else Verdict.REFUSED
        return Decision(verdict, origin, (), _refusal(origin, policy))
    allow_origin = "*" if found.any_origin and not policy.credentials else origin
    granted = [("Access-Control-Allow-Origin", allow_origin)]
    if policy.credentials:
        granted.append(("Access-Control-Allow-Credentials", "true"))
    reason = f"origin allowed by '{found.entry}'"
    if not preflight:
        return Decision(
            Verdict.ALLOWED,
            origin,
            tuple(granted),
            reason,
            expose=policy.expose_value,
            expose_all=policy.expose_value is None,
        )
    assert request_method is not None  # is_preflight() checked it
    return _preflight(
        policy, origin, granted, reason, request_method, request_headers, private_network
    )


def _preflight(
    policy: CompiledPolicy,
    origin: str,
    granted: list[tuple[str, str]],
    reason: str,
    request_method: str,
    request_headers: str | None,
    private_network: str | None,
) -> Decision:
    """Grant a preflight: echo what was asked under "*", else send the configured lists.

    The lists go out even when they lack what was asked, so the browser's console names
    the exact method or header it refused; the reason says the same for the log.
    """
    asked = [h.strip() for h in (request_headers or "").split(",") if h.strip()]
    notes = []
    if policy.methods is None:
        granted.append(("Access-Control-Allow-Methods", request_method))
    else:
        granted.append(("Access-Control-Allow-Methods", policy.methods_value))
        if request_method not in policy.methods and request_method not in SAFELISTED_METHODS:
            notes.append(f"method '{request_method}' is not in cors.allow_methods")
    if policy.headers is None:
        if asked:
            granted.append(("Access-Control-Allow-Headers", ", ".join(asked)))
    else:
        if policy.headers_value:
            granted.append(("Access-Control-Allow-Headers", policy.headers_value))
        missing = [h for h in asked if h.lower() not in policy.headers]
        if missing:
            notes.append(f"header '{', '.join(missing)}' not in cors.allow_headers")
    granted.append(("Access-Control-Max-Age", policy.max_age))
    if policy.private_network and private_network == "true":
        granted.append(("Access-Control-Allow-Private-Network", "true"))
    granted.append(("Vary", PREFLIGHT_VARY))
    if notes:
        reason += WILL_BLOCK + "; ".join(notes)
    return Decision(Verdict.PREFLIGHT, origin, tuple(granted), reason)


def _refusal(origin: str, policy: CompiledPolicy) -> str:
    saving = "; saving the config file applies it at once" if policy.reloads else ""
    return (
        f"origin {origin!r} is not in {policy.where}.allow_origins ({policy.origins.describe()}); "
        f"add it there (or pass --allow-origin {origin}) to allow it{saving}"
    )


@dataclass(frozen=True, slots=True)
class Finished:
    """The response headers to send, and each correction made to the upstream's own."""

    headers: list[tuple[str, str]]
    corrections: tuple[str, ...]


def finish(decision: Decision, upstream: list[tuple[str, str]]) -> Finished:
    """Apply a decision to an actual response's headers (errors included).

    Allowed: the upstream's Access-Control-* values are replaced by the rule's. Refused: the
    proxy grants nothing, and drops any grant the upstream made, because the rules decide.
    Every response gets `Vary: Origin` merged once.
    """
    if decision.verdict is Verdict.NOT_CORS:
        return Finished(merge_vary(upstream, "Origin"), ())
    kept: list[tuple[str, str]] = []
    theirs: dict[str, str] = {}
    for name, value in upstream:
        lower = name.lower()
        if lower in OWNED_HEADERS:
            theirs[name] = f"{theirs[name]}, {value}" if name in theirs else value
        else:
            kept.append((name, value))
    ours = list(decision.headers)
    if decision.verdict is Verdict.ALLOWED:
        expose = _expose_value(decision, kept)
        if expose:
            ours.append(("Access-Control-Expose-Headers", expose))
    corrections = _corrections(theirs, ours, decision)
    return Finished(merge_vary(kept + ours, "Origin"), corrections)


def _expose_value(decision: Decision, headers: list[tuple[str, str]]) -> str | None:
    if not decision.expose_all:
        return decision.expose
    names: dict[str, str] = {}
    for name, _ in headers:
        lower = name.lower()
        if lower not in SAFELISTED_RESPONSE_HEADERS and lower not in _NEVER_EXPOSED:
            names.setdefault(lower, name)
    return ", ".join(names.values()) or None


def _corrections(
    theirs: dict[str, str], ours: list[tuple[str, str]], decision: Decision
) -> tuple[str, ...]:
    """Describe what changed in the upstream's CORS headers, for the access log."""
    if not theirs:
        return ()
    mine = {name.lower(): value for name, value in ours}
    why = " (credentials)" if "access-control-allow-credentials" in mine else ""
    out = []
    for name, value in theirs.items():
        new = mine.get(name.lower())
        if new is None:
            tail = " (origin refused)" if decision.verdict is Verdict.REFUSED else ""
            out.append(f"removed: {name} {value!r}{tail}")
        elif new != value:
            out.append(
                f"fixed: {name} {value!r} -> {new!r}{why if 'origin' in name.lower() else ''}"
            )
    return tuple(out)


def merge_vary(headers: list[tuple[str, str]], token: str) -> list[tuple[str, str]]:
    """Merge one token into Vary (RFC 9110 §12.5.5): one Vary field, no duplicates, `*` kept."""
    values: list[str] = []
    rest: list[tuple[str, str]] = []
    for name, value in headers:
        if name.lower() == "vary":
            values.extend(v.strip() for v in value.split(",") if v.strip())
        else:
            rest.append((name, value))
    if "*" in values:
        rest.append(("Vary", "*"))
        return rest
    merged: dict[str, str] = {}
    for value in values + [t.strip() for t in token.split(",")]:
        merged.setdefault(value.lower(), value)
    rest.append(("Vary", ", ".join(merged.values())))
    return rest

"""Step one of every request: Host guard, route, CORS decision -> what kind of request it is.

Both ways a request can take ask this one function: the early preflight answer
(http/fastpath.py, before aiohttp builds a request) and Proxy.handle(). It reads only the
method, the raw path and the headers, so the two cannot drift apart.
"""

from __future__ import annotations

import enum
from collections.abc import Hashable
from dataclasses import dataclass
from typing import TypeVar

from multidict import CIMultiDict, CIMultiDictProxy

from corsproxy.config.model import Settings
from corsproxy.cors import policy
from corsproxy.proxy.hostguard import HostGuard
from corsproxy.proxy.routing import RouteTable, Target, origin_form

INTERNAL = "/__corsproxy"  # the proxy's own pages: itself and everything under it
HEALTH_PATH = INTERNAL + "/health"
MEMO_SIZE = 4096  # entries a Memo keeps; forgotten all at once when full

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class Memo(dict[K, V]):
    """A bounded memo: a page repeats the same few requests all day, so what was worked out
    for one is kept; when full it is forgotten at once (cheaper than tracking recency)."""

    def __init__(self, size: int = MEMO_SIZE) -> None:
        super().__init__()
        self.size = size

    def keep(self, key: K, value: V) -> V:
        if len(self) >= self.size:
            self.clear()
        self[key] = value
        return value


# What classify() reads the request headers from: aiohttp's parsed (multi)dict.
Headers = CIMultiDictProxy[str] | CIMultiDict[str]


class Kind(enum.Enum):
    CONNECT = "connect"  # refused: not an open proxy
    HOST_REFUSED = "host refused"  # DNS-rebinding guard
    INTERNAL = "internal"  # /__corsproxy/...: health (and the inspector), never forwarded
    NO_ROUTE = "no route"
    PREFLIGHT = "preflight"  # granted: answered by the proxy
    PREFLIGHT_REFUSED = "preflight refused"
    WEBSOCKET = "websocket"
    FORWARD = "forward"


@dataclass(frozen=True, slots=True)
class Classified:
    """One request, classified: what it is, and the route and decision when it has them."""

    kind: Kind
    origin: str | None
    path: str  # the raw path without the query (of an absolute-form target: its path)
    target: Target | None = None
    decision: policy.Decision | None = None
    described: str = ""  # the decision in the log's words


class Classifier:
    """The compiled guard, routes and policies; classify() is pure apart from its memo."""

    def __init__(self, settings: Settings) -> None:
        self.hosts = HostGuard(settings.listen.host, settings.listen.allowed_hosts)
        self.routes = RouteTable(settings.routes)
        watched = settings.reload and settings.source is not None  # see serve/reload.py
        self.policies = policy.compile_policy(settings.cors, reloads=watched)
        self._decisions: Memo[tuple, tuple[policy.Decision, str]] = Memo()

    def classify(self, method: str, raw_path: str, headers: Headers) -> Classified:
        origins = headers.getall("Origin", ())
        # Several Origin lines are joined, which no origin matcher accepts: refused.
        origin = origins[0] if len(origins) == 1 else (", ".join(origins) or None)
        # The path routing sees: an absolute-form target's too (routing.origin_form), so that
        # `OPTIONS http://localhost:8080/__corsproxy/...` is the proxy's own as well.
        form = raw_path if raw_path[:1] == "/" else origin_form(raw_path) or raw_path
        path = form.split("?", 1)[0]
        if method == "CONNECT":
            return Classified(Kind.CONNECT, origin, path)
        if not self.hosts.allows(headers.get("Host")):
            return Classified(Kind.HOST_REFUSED, origin, path)
        if path == INTERNAL or path.startswith(INTERNAL + "/"):
            return Classified(Kind.INTERNAL, origin, path)
        target = self.routes.match(raw_path)
        if target is None:
            decision, described = self.decide(self.policies.default, "GET", origin)
            return Classified(Kind.NO_ROUTE, origin, path, None, decision, described)
        decision, described = self.decide(
            self.policies.for_path(target.path),
            method,
            origin,
            headers.get("Access-Control-Request-Method"),
            # RFC 9110 §5.3: several lines of a list header are one comma-joined value.
            policy.joined(headers.getall("Access-Control-Request-Headers", ())),
            headers.get("Access-Control-Request-Private-Network"),
        )
        verdict = decision.verdict
        if verdict is policy.Verdict.PREFLIGHT:
            kind = Kind.PREFLIGHT
        elif verdict is policy.Verdict.PREFLIGHT_REFUSED:
            kind = Kind.PREFLIGHT_REFUSED
        elif (headers.get("Upgrade") or "").lower() == "websocket" and target.route.route.websocket:
            kind = Kind.WEBSOCKET
        else:
            kind = Kind.FORWARD
        return Classified(kind, origin, path, target, decision, described)

    def decide(
        self,
        rule: policy.CompiledPolicy,
        method: str,
        origin: str | None,
        request_method: str | None = None,
        request_headers: str | None = None,
        private_network: str | None = None,
    ) -> tuple[policy.Decision, str]:
        """policy.decide() and its log wording, remembered: they depend on nothing else."""
        key = (id(rule), method, origin, request_method, request_headers, private_network)
        known = self._decisions.get(key)
        if known is None:
            decision = policy.decide(
                rule, method, origin, request_method, request_headers, private_network
            )
            known = self._decisions.keep(key, (decision, describe(decision)))
        return known


def describe(decision: policy.Decision) -> str:
    """The decision in the access log's words."""
    if decision.verdict is policy.Verdict.NOT_CORS:
        return "no-origin"
    return f"{decision.verdict.value} ({decision.reason})"

"""The aiohttp shell: accept a request, ask the pure modules what to do, move the bytes.

A request reads here in the order it travels: Host guard, route, CORS decision, preflight
answered locally or the request streamed upstream, response headers finished, body streamed
back, one log line. Every decision is made in routing/policy/headers; this file only does I/O.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from aiohttp.http import RawRequestMessage
from multidict import CIMultiDict

from corsproxy import __version__
from corsproxy.config.model import Settings
from corsproxy.cors import judge, policy
from corsproxy.http import client, rawresponse, wire
from corsproxy.proxy import headers, rewrite, websocket
from corsproxy.proxy.accesslog import AccessLog, Entry
from corsproxy.proxy.gateway import GatewayError, explain
from corsproxy.proxy.hostguard import HostGuard
from corsproxy.proxy.routing import CompiledRoute, RouteTable, Target

HEALTH_PATH = "/__corsproxy/health"
# Bodies up to this size are read whole and sent with the headers in one write: bounded
# memory, and one write instead of three for the typical small API response.
SMALL_BODY = 64 * 1024
CHUNK = 64 * 1024
MAX_HEADER_LINE = 64 * 1024
DECISIONS_KEPT = 4096  # remembered CORS decisions; forgotten all at once when full


# What a handler returns to aiohttp: its own response types, or ready-made bytes.
Answer = web.StreamResponse | rawresponse.RawResponse


@dataclass(frozen=True, slots=True)
class Prepared:
    """What each route needs per request, built once: client options and the rewrite map."""

    index: int  # its place in the config, for messages such as "raise timeout on routes[1]"
    scheme: str  # http or https, for the upstream pool
    timeout: aiohttp.ClientTimeout
    ssl: bool  # False: accept any certificate (verify_tls: false)
    rewrite_map: rewrite.RouteMap


def _prepare(route: CompiledRoute, index: int) -> Prepared:
    settings = route.route
    return Prepared(
        index=index,
        scheme=route.upstream_origin.split(":", 1)[0].lower(),
        timeout=aiohttp.ClientTimeout(
            total=None, sock_connect=settings.timeout, sock_read=settings.read_timeout
        ),
        ssl=settings.verify_tls,
        rewrite_map=rewrite.RouteMap(
            route.upstream_origin.lower() + route.base[len(route.upstream_origin) :],
            route.prefix,
            settings.strip_prefix,
        ),
    )


class Proxy:
    """Compiled settings plus the one pooled upstream session; handle() is the web handler."""

    def __init__(self, settings: Settings, log: AccessLog | None = None) -> None:
        self.settings = settings
        self.routes = RouteTable(settings.routes)
        self.policies = policy.compile_policy(settings.cors)
        self.hosts = HostGuard(settings.listen.host, settings.listen.allowed_hosts)
        self.log = log or AccessLog(settings.log_level)
        self.scheme = "https" if settings.listen.tls else "http"
        order = {id(route): i for i, route in enumerate(settings.routes)}
        self.prepared = {id(r.route): _prepare(r, order[id(r.route)]) for r in self.routes.routes}
        self._all_maps = tuple(p.rewrite_map for p in self.prepared.values())
        self._decisions: dict[tuple, tuple[policy.Decision, str]] = {}
        self._preflights: dict[policy.Decision, tuple[str, rawresponse.RawResponse]] = {}
        self._judged: dict[tuple, tuple[str, ...]] = {}  # see _upstream_alone
        self.pool = client.Pool()  # every proxied HTTP request
        self.session: aiohttp.ClientSession | None = None  # WebSocket upgrades only

    async def start(self) -> None:
        """Open the upstream pool: no cookie jar, no automatic headers, no decompression."""
        connector = aiohttp.TCPConnector(limit=0, ttl_dns_cache=10, enable_cleanup_closed=True)
        self.session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,
            skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
            timeout=aiohttp.ClientTimeout(total=None),
            # Browsers accept far bigger headers than aiohttp's 8 KiB default per line.
            max_line_size=MAX_HEADER_LINE,
            max_field_size=MAX_HEADER_LINE,
        )

    async def close(self) -> None:
        self.pool.close()
        if self.session is not None:
            await self.session.close()

    async def handle(self, request: web.BaseRequest) -> Answer:
        """The web handler for every request the proxy receives."""
        started = time.perf_counter()
        entry = Entry(request.method, request.raw_path)
        try:
            response = await self._dispatch(request, entry)
        finally:
            if self.log.enabled or entry.status >= 403:
                self.log.emit(entry, (time.perf_counter() - started) * 1000)
        return response

    async def _dispatch(self, request: web.BaseRequest, entry: Entry) -> Answer:
        req_headers = request.headers
        if request.method == "CONNECT":
            return _json(entry, 405, {"error": "CONNECT is refused: this is not an open proxy"})
        if not self.hosts.allows(req_headers.get("Host")):
            entry.decision = f"refused: Host {req_headers.get('Host')!r} is not an allowed host"
            body = {
                "error": "host not allowed",
                "detail": f"Host {req_headers.get('Host')!r} is not localhost or in "
                "listen.allowed_hosts (DNS-rebinding guard)",
            }
            return _json(entry, 403, body)
        origins = req_headers.getall("Origin", ())
        origin = origins[0] if len(origins) == 1 else (", ".join(origins) or None)
        entry.origin = origin
        if request.raw_path.startswith(HEALTH_PATH) and request.path == HEALTH_PATH:
            return self._health(entry)
        target = self.routes.match(request.raw_path)
        if target is None:
            return self._no_route(request, entry, origin)
        rule = self.policies.for_path(target.path)
        decision, entry.decision = self._decide(
            rule,
            request.method,
            origin,
            req_headers.get("Access-Control-Request-Method"),
            policy.joined(req_headers.getall("Access-Control-Request-Headers", ())),
            req_headers.get("Access-Control-Request-Private-Network"),
        )
        if decision.verdict is policy.Verdict.PREFLIGHT:
            entry.status = 204
            if rawresponse.usable(request):
                return self._preflight_answer(decision)
            return web.Response(status=204, headers=CIMultiDict(decision.headers))
        if decision.verdict is policy.Verdict.PREFLIGHT_REFUSED:
            entry.status = 403
            return web.Response(
                status=403,
                text=f"corsproxy: preflight refused: {decision.reason}\n",
                headers={"Vary": policy.PREFLIGHT_VARY},
            )
        if req_headers.get("Upgrade", "").lower() == "websocket" and target.route.route.websocket:
            return await websocket.relay(self, request, target, decision, entry)
        return await self.forward(request, target, decision, entry)

    def _decide(
        self,
        rule: policy.CompiledPolicy,
        method: str,
        origin: str | None,
        request_method: str | None,
        request_headers: str | None,
        private_network: str | None,
    ) -> tuple[policy.Decision, str]:
        """policy.decide() and its log wording, remembered: a page repeats the same few
        requests all day, and the decision depends on nothing else."""
        key = (id(rule), method, origin, request_method, request_headers, private_network)
        known = self._decisions.get(key)
        if known is None:
            if len(self._decisions) >= DECISIONS_KEPT:
                self._decisions.clear()
            decision = policy.decide(
                rule, method, origin, request_method, request_headers, private_network
            )
            known = self._decisions[key] = (decision, _describe(decision))
        return known

    def answer_at_once(self, message: RawRequestMessage) -> bytes | None:
        """A granted preflight's answer, straight from the parser (lenient.py), or None.

        Preflights are most of a page's requests that never reach the upstream, and they
        are answered from memory; doing so before aiohttp builds a request, a task and a
        response for each halves their cost. Anything else (refused, health, no route, a
        Host the guard refuses) returns None and goes through handle() as usual.
        """
        headers = message.headers
        if message.method != "OPTIONS" or "Access-Control-Request-Method" not in headers:
            return None
        started = time.perf_counter()
        origins = headers.getall("Origin", ())
        path = message.path
        if len(origins) != 1 or path.startswith(HEALTH_PATH):
            return None
        if not self.hosts.allows(headers.get("Host")):
            return None
        target = self.routes.match(path)
        if target is None:
            return None
        decision, described = self._decide(
            self.policies.for_path(target.path),
            "OPTIONS",
            origins[0],
            headers.get("Access-Control-Request-Method"),
            policy.joined(headers.getall("Access-Control-Request-Headers", ())),
            headers.get("Access-Control-Request-Private-Network"),
        )
        if decision.verdict is not policy.Verdict.PREFLIGHT:
            return None
        answer = self._preflight_answer(decision)
        if self.log.enabled:
            entry = Entry("OPTIONS", path, origins[0], described, [], 204)
            self.log.emit(entry, (time.perf_counter() - started) * 1000)
        return answer.data

    def _preflight_answer(self, decision: policy.Decision) -> rawresponse.RawResponse:
        """The 204 for a granted preflight, as bytes; the same few are asked for all day."""
        answer = self._preflights.get(decision)
        if answer is None or answer[0] != rawresponse.http_date():
            if len(self._preflights) >= DECISIONS_KEPT:
                self._preflights.clear()
            answer = (rawresponse.http_date(), rawresponse.build(204, None, list(decision.headers)))
            self._preflights[decision] = answer
        return answer[1]

    def upstream_headers(
        self, request: web.BaseRequest, target: Target, decision: policy.Decision
    ) -> list[tuple[str, str]]:
        """The request headers to send upstream for this route and decision."""
        route = target.route
        mode = route.route.origin_header
        if decision.verdict is not policy.Verdict.ALLOWED:
            mode = "keep"  # a refused page's requests reach the backend untouched (its CSRF check)
        client_host = request.headers.get("Host")
        send_host = route.upstream_host
        if route.route.host_header == "client" and client_host:
            send_host = client_host
        return headers.for_upstream(
            request.headers.items(),
            host=send_host,
            client_host=client_host,
            client_ip=request.remote,
            scheme=self.scheme,
            origin=decision.origin,
            origin_mode=mode,
            upstream_origin=route.upstream_origin,
        )

    async def forward(
        self, request: web.BaseRequest, target: Target, decision: policy.Decision, entry: Entry
    ) -> Answer:
        """Stream the request upstream and its response back, CORS headers finished."""
        route = target.route
        options = self.prepared[id(route.route)]
        out_headers = self.upstream_headers(request, target, decision)
        body = request.content if request.body_exists else None
        if body is not None and request.content_length is None:
            out_headers.append(("Transfer-Encoding", "chunked"))  # re-framed by this hop
        try:
            head = wire.request_head(
                request.method, target.url[len(route.upstream_origin) :] or "/", out_headers
            )
        except ValueError as exc:
            return await self.gateway_error(exc, target, decision, entry)
        try:
            response = await self.pool.request(
                options.scheme,
                route.host,
                route.port,
                options.ssl,
                request.method,
                head,
                body,
                request.content_length if body is not None else None,
                route.route.timeout,
                route.route.read_timeout,
            )
        except (client.UpstreamError, TimeoutError, OSError) as exc:
            return await self.gateway_error(exc, target, decision, entry)
        try:
            return await self._respond(request, response, target, decision, entry)
        finally:
            response.release()

    async def _respond(
        self,
        request: web.BaseRequest,
        response: client.Response,
        target: Target,
        decision: policy.Decision,
        entry: Entry,
    ) -> Answer:
        raw = response.headers
        if response.framing in (wire.Framing.CHUNKED, wire.Framing.UNTIL_CLOSE):
            # RFC 9112 §6.3: a Content-Length next to Transfer-Encoding is wrong and must go,
            # or aiohttp would cut the body to it; this hop frames the body its own way.
            raw = [(n, v) for n, v in raw if n.lower() != "content-length"]
        finished = policy.finish(decision, headers.for_client(raw))
        if finished.corrections or (
            self.log.enabled and decision.verdict is policy.Verdict.ALLOWED
        ):
            entry.notes.extend(_upstream_alone(decision, request, raw, self._judged))
        entry.notes.extend(finished.corrections)
        route = target.route.route
        out, rewritten = rewrite.response_headers(
            finished.headers,
            response.status,
            route.cookies,
            route.redirects,
            rewrite.BrowserSide(self.scheme, request.headers.get("Host", "")),
            self.prepared[id(route)].rewrite_map,
            self._all_maps,
        )
        entry.notes.extend(rewritten)
        entry.status = response.status
        out_headers = CIMultiDict(out)
        length = response.length
        no_body = request.method == "HEAD" or response.status in (204, 304)
        if not no_body and length is not None and length <= SMALL_BODY:
            try:
                data = await response.read()
            except client.UpstreamError as exc:
                return await self.gateway_error(exc, target, decision, entry)
            if rawresponse.usable(request):
                return rawresponse.build(response.status, response.reason, out, data)
            return web.Response(
                status=response.status, reason=response.reason, body=data, headers=out_headers
            )
        reply = web.StreamResponse(status=response.status, reason=response.reason)
        reply.headers.extend(out_headers)
        await reply.prepare(request)
        if no_body:
            return reply
        try:
            async for chunk in response.chunks():
                await reply.write(chunk)
        except client.UpstreamError as exc:
            # The upstream broke off mid-body: abort, so the browser sees a failed load
            # rather than a silently truncated 200.
            entry.notes.append(f"upstream broke off mid-body ({exc}); aborted")
            _abort(request)
        except (ConnectionError, RuntimeError):
            entry.notes.append("client hung up mid-response")
            _abort(request)
        return reply

    async def gateway_error(
        self, exc: BaseException, target: Target, decision: policy.Decision, entry: Entry
    ) -> Answer:
        index = self.prepared[id(target.route.route)].index
        failure: GatewayError = await explain(exc, target.route, index)
        entry.notes.append(f"{failure.error}: {failure.detail}")
        return self.cors_json(
            entry, failure.status, failure.body(target.route.route.upstream), decision
        )

    def cors_json(
        self, entry: Entry, status: int, body: dict, decision: policy.Decision
    ) -> web.Response:
        """A JSON answer of the proxy's own, with the CORS headers an allowed origin needs."""
        finished = policy.finish(decision, [("Content-Type", "application/json")])
        entry.status = status
        return web.Response(
            status=status, body=json.dumps(body).encode(), headers=CIMultiDict(finished.headers)
        )

    def _no_route(self, request: web.BaseRequest, entry: Entry, origin: str | None) -> web.Response:
        """404 naming the configured prefixes, readable by allowed origins."""
        decision = policy.decide(self.policies.default, "GET", origin)
        entry.decision = _describe(decision)
        body = {
            "error": "no route",
            "detail": f"no configured prefix matches {request.path!r}",
            "prefixes": list(self.routes.prefixes),
        }
        return self.cors_json(entry, 404, body, decision)

    def _health(self, entry: Entry) -> web.Response:
        entry.status = 200
        body = {
            "status": "ok",
            "version": __version__,
            "routes": list(self.routes.prefixes),
            "pid": os.getpid(),  # with listen.workers > 1, which worker answered
        }
        return web.json_response(body)


def _upstream_alone(
    decision: policy.Decision,
    request: web.BaseRequest,
    upstream_headers: list[tuple[str, str]],
    judged: dict[tuple, tuple[str, ...]],
) -> list[str]:
    """What the browser would have made of the upstream's own headers, for the log line.

    The proxy cannot see the page's credentials mode. A request carrying cookies is judged as
    credentialed; any other is judged both ways when the rule allows credentials, and a failure
    that only a credentialed request would meet is said as such.
    """
    if decision.verdict is not policy.Verdict.ALLOWED or decision.origin is None:
        return []
    cookie = "Cookie" in request.headers
    # The verdict depends only on these: a backend answers the same way all day, so it is
    # judged once per origin, credentials mode and set of CORS headers it sent.
    cors = tuple(
        (lower, value)
        for name, value in upstream_headers
        if (lower := name.lower()).startswith("access-control-") or lower == "vary"
    )
    key = (decision, cookie, cors)
    said = judged.get(key)
    if said is None:
        if len(judged) >= DECISIONS_KEPT:
            judged.clear()
        said = judged[key] = _judge_upstream(decision, cookie, list(cors))
    return list(said)


def _judge_upstream(
    decision: policy.Decision, cookie: bool, cors: list[tuple[str, str]]
) -> tuple[str, ...]:
    assert decision.origin is not None
    modes = [True] if cookie else [False]
    if modes == [False] and any(
        n == "Access-Control-Allow-Credentials" for n, _ in decision.headers
    ):
        modes.append(True)
    for credentials in modes:
        for finding in judge.check_cors(decision.origin, credentials, cors):
            if finding.fatal:
                when = " for a credentialed request" if credentials and len(modes) > 1 else ""
                return (f"upstream alone: {finding.name} ({finding.detail}){when} -> fixed",)
    return ()


def _describe(decision: policy.Decision) -> str:
    if decision.verdict is policy.Verdict.NOT_CORS:
        return "no-origin"
    return f"{decision.verdict.value} ({decision.reason})"


def _json(entry: Entry, status: int, body: dict) -> web.Response:
    entry.status = status
    return web.json_response(body, status=status)


def _abort(request: web.BaseRequest) -> None:
    transport = request.transport
    if transport is not None:
        transport.abort()

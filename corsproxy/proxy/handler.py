"""The aiohttp shell: accept a request, ask the pure modules what to do, move the bytes.

A request reads here in the order it travels: Host guard, route, CORS decision, preflight
answered locally or the request streamed upstream, response headers finished, body streamed
back, one log line. Every decision is made in routing/policy/headers; this file only does I/O.
"""

from __future__ import annotations

import json
import os
import time

from aiohttp import web
from aiohttp.http import RawRequestMessage
from multidict import CIMultiDict

from corsproxy import __version__
from corsproxy.config.model import Settings
from corsproxy.cors import policy
from corsproxy.cors.cookies import CookieVerdict
from corsproxy.http import client, errors, rawresponse, wire
from corsproxy.http.wsclient import WebSocketClient
from corsproxy.inspector.web import Inspector
from corsproxy.proxy import headerrules, headers, hints, rewrite, websocket
from corsproxy.proxy.accesslog import AccessLog, Entry
from corsproxy.proxy.classify import HEALTH_PATH, Classified, Classifier, Kind, Memo
from corsproxy.proxy.gateway import GatewayError, explain
from corsproxy.proxy.prepared import prepare
from corsproxy.proxy.routing import Target
from corsproxy.proxy.upstreamalone import Judged, upstream_alone

# Bodies up to this size are read whole and sent with the headers in one write: bounded
# memory, and one write instead of three for the typical small API response.
SMALL_BODY = 64 * 1024


# What a handler returns to aiohttp: its own response types, or ready-made bytes.
Answer = web.StreamResponse | rawresponse.RawResponse


class Proxy:
    """Compiled settings plus the upstream pools; handle() is the web handler."""

    def __init__(
        self, settings: Settings, log: AccessLog | None = None, inspector: Inspector | None = None
    ) -> None:
        self.settings = settings
        self.inspector = inspector  # None: inspector.enabled is false
        self.classifier = Classifier(settings)
        self.routes = self.classifier.routes
        self.log = log or AccessLog(settings.log_level)
        self.scheme = "https" if settings.listen.tls else "http"
        self.raw_responses = True  # ready-made bytes for small answers (fastpath.enabled())
        order = {id(route): i for i, route in enumerate(settings.routes)}
        self.prepared = {id(r.route): prepare(r, order[id(r.route)]) for r in self.routes.routes}
        self._all_maps = tuple(p.rewrite_map for p in self.prepared.values())
        self._preflights: Memo[policy.Decision, tuple[str, rawresponse.RawResponse]] = Memo()
        self._judged: Memo[tuple, Judged] = Memo()  # see upstream_alone()
        self.pool = client.Pool()  # every proxied HTTP request
        self.websockets = WebSocketClient()  # WebSocket upgrades only

    async def start(self) -> None:
        """Nothing to open: both upstream clients connect on first use."""

    async def close(self) -> None:
        self.pool.close()
        await self.websockets.close()

    async def handle(self, request: web.BaseRequest) -> Answer:
        """The web handler for every request the proxy receives: classify, then act, then log."""
        started = time.perf_counter()
        entry = Entry(request.method, request.raw_path, from_browser=request.headers)
        inspector = self.inspector
        if inspector is not None:
            inspector.begin(request, entry)
        try:
            seen = self.classifier.classify(request.method, request.raw_path, request.headers)
            inspector = None if seen.kind is Kind.INTERNAL else inspector  # not the app's
            entry.origin, entry.decision = seen.origin, seen.described
            if seen.decision is not None:
                entry.cors, entry.verdict = seen.decision, seen.decision.verdict
            if seen.target is not None:
                entry.route = seen.target.route.route.prefix
            response = await self._act(request, seen, entry)
        finally:
            millis = (time.perf_counter() - started) * 1000
            if self.log.enabled or entry.status >= 403:
                self.log.emit(entry, millis)
            if inspector is not None:
                inspector.finish(entry, millis)
        return response

    async def _act(self, request: web.BaseRequest, seen: Classified, entry: Entry) -> Answer:
        """Each kind of request to its answer, in the order classify() tells them apart."""
        kind = seen.kind
        if kind is Kind.CONNECT:
            return _json(entry, 405, {"error": "CONNECT is refused: this is not an open proxy"})
        if kind is Kind.HOST_REFUSED:
            return self._host_refused(request, entry)
        if kind is Kind.INTERNAL:
            return await self._internal(request, seen, entry)
        decision = seen.decision
        assert decision is not None
        if kind is Kind.NO_ROUTE:
            return self._no_route(request, entry, decision)
        if kind is Kind.PREFLIGHT:
            entry.status, entry.to_browser = 204, decision.headers
            if self.raw_responses and rawresponse.usable(request):
                return self._preflight_answer(decision)
            return web.Response(status=204, headers=CIMultiDict(decision.headers))
        if kind is Kind.PREFLIGHT_REFUSED:
            entry.status, entry.to_browser = 403, (("Vary", policy.PREFLIGHT_VARY),)
            return web.Response(
                status=403,
                text=f"corsproxy: preflight refused: {decision.reason}\n",
                headers={"Vary": policy.PREFLIGHT_VARY},
            )
        assert seen.target is not None
        if kind is Kind.WEBSOCKET:
            return await self._websocket(request, seen.target, decision, entry)
        return await self.forward(request, seen.target, decision, entry)

    async def _websocket(
        self, request: web.BaseRequest, target: Target, decision: policy.Decision, entry: Entry
    ) -> Answer:
        return await websocket.relay(
            request,
            target,
            decision,
            entry,
            upstream_client=self.websockets,
            headers=self.upstream_headers(request, target, decision, entry),
            fail=lambda exc: self.gateway_error(exc, target, decision, entry),
        )

    def answer_at_once(self, message: RawRequestMessage) -> bytes | None:
        """A granted preflight's answer, straight from the parser (http/fastpath.py), or None.

        Preflights, most of a page's requests, are answered from memory before aiohttp builds
        a request, a task and a response: half their cost. Anything else returns None and
        goes through handle(), which classifies it the same way.
        """
        if message.method != "OPTIONS":
            return None
        started = time.perf_counter()
        seen = self.classifier.classify("OPTIONS", message.path, message.headers)
        if seen.kind is not Kind.PREFLIGHT:
            return None
        assert seen.decision is not None
        answer = self._preflight_answer(seen.decision)
        if self.log.enabled or self.inspector is not None:
            decision = seen.decision
            entry = Entry("OPTIONS", message.path, seen.origin, seen.described, [], 204)
            entry.verdict, entry.cors = decision.verdict, decision
            entry.from_browser, entry.to_browser = message.headers, decision.headers
            if self.log.enabled:
                self.log.emit(entry, (time.perf_counter() - started) * 1000)
            if self.inspector is not None:
                assert seen.target is not None
                entry.route = seen.target.route.route.prefix
                self.inspector.early(message, entry, started)
        return answer.data

    def _preflight_answer(self, decision: policy.Decision) -> rawresponse.RawResponse:
        """The 204 for a granted preflight, as bytes, remembered per decision and second."""
        answer = self._preflights.get(decision)
        if answer is None or answer[0] != rawresponse.http_date():
            answer = self._preflights.keep(
                decision,
                (rawresponse.http_date(), rawresponse.build(204, None, list(decision.headers))),
            )
        return answer[1]

    def upstream_headers(
        self, request: web.BaseRequest, target: Target, decision: policy.Decision, entry: Entry
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
        out = headers.for_upstream(
            request.headers.items(),
            host=send_host,
            client_host=client_host,
            client_ip=request.remote,
            scheme=self.scheme,
            origin=decision.origin,
            origin_mode=mode,
            upstream_origin=route.upstream_origin,
        )
        rules = self.prepared[id(route.route)].request_rules
        if rules is not None:
            fetch_site = request.headers.getall("Sec-Fetch-Site", ())
            out, withheld = headerrules.on_request(rules, decision.verdict, fetch_site, out)
            if withheld:
                entry.notes.append(withheld)
        return out

    async def forward(
        self, request: web.BaseRequest, target: Target, decision: policy.Decision, entry: Entry
    ) -> Answer:
        """Stream the request upstream and its response back, CORS headers finished."""
        route = target.route
        options = self.prepared[id(route.route)]
        out_headers = self.upstream_headers(request, target, decision, entry)
        entry.upstream_url = target.url
        body = request.content if request.body_exists else None
        if body is not None and request.content_length is None:
            out_headers.append(("Transfer-Encoding", "chunked"))  # re-framed by this hop
        entry.to_upstream = headerrules.shown(options.request_rules, out_headers)
        if body is not None and self.inspector is not None:
            kind = request.headers.get("Content-Type")
            body = self.inspector.tap(entry, kind, request.content_length, body)
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
        except (errors.UpstreamError, TimeoutError, OSError) as exc:
            return await self.gateway_error(exc, target, decision, entry)
        if self.inspector is not None:
            entry.upstream_ms = (time.perf_counter() - entry.started) * 1000
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
        options = self.prepared[id(route := target.route.route)]
        for_client = headerrules.on_response(options.response_rules, headers.for_client(raw))
        finished = policy.finish(decision, for_client)
        allowed = decision.verdict is policy.Verdict.ALLOWED
        if finished.corrections or self.inspector is not None or (self.log.enabled and allowed):
            judged = upstream_alone(decision, "Cookie" in request.headers, raw, self._judged)
            if judged is not None:
                entry.alone, found = judged
                if allowed:
                    entry.upstream_alone = found
        entry.notes.extend(finished.corrections)
        verdicts: list[CookieVerdict] | None = [] if self.inspector is not None else None
        out, rewritten = rewrite.response_headers(
            finished.headers,
            response.status,
            route.cookies,
            route.redirects,
            rewrite.BrowserSide(self.scheme, request.headers.get("Host", "")),
            options.rewrite_map,
            self._all_maps,
            page=decision.origin if allowed else None,
            verdicts=verdicts,
        )
        entry.notes.extend(rewritten)
        if verdicts:
            entry.cookies = verdicts
        entry.status = response.status
        shown = headerrules.shown(options.response_rules, out)  # ${NAME} values as written
        entry.from_upstream, entry.to_browser = response.headers, shown
        preview = self.inspector.preview(entry, out) if self.inspector is not None else None
        hint = hints.origin_check_hint(
            request.method, response.status, allowed, route.origin_header, options.index
        )
        if hint is not None:
            entry.notes.append(hint)
        out_headers = CIMultiDict(out)
        length = response.length
        no_body = request.method == "HEAD" or response.status in (204, 304)
        if not no_body and length is not None and length <= SMALL_BODY:
            try:
                data = await response.read()
            except errors.UpstreamError as exc:
                return await self.gateway_error(exc, target, decision, entry)
            if preview is not None:
                preview.feed(data)
            if self.raw_responses and rawresponse.usable(request):
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
                if preview is not None:
                    preview.feed(chunk)
                await reply.write(chunk)
        except errors.UpstreamError as exc:
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
        entry.failure = failure
        entry.notes.append(f"{failure.error}: {failure.detail}")
        return self.cors_json(
            entry, failure.status, failure.body(target.route.route.upstream), decision
        )

    def cors_json(
        self, entry: Entry, status: int, body: dict, decision: policy.Decision
    ) -> web.Response:
        """A JSON answer of the proxy's own, with the CORS headers an allowed origin needs."""
        finished = policy.finish(decision, [("Content-Type", "application/json")])
        entry.status, entry.to_browser = status, finished.headers
        return web.Response(
            status=status, body=json.dumps(body).encode(), headers=CIMultiDict(finished.headers)
        )

    def _host_refused(self, request: web.BaseRequest, entry: Entry) -> web.Response:
        host = request.headers.get("Host")
        entry.decision = f"refused: Host {host!r} is not an allowed host"
        body = {
            "error": "host not allowed",
            "detail": f"Host {host!r} is not localhost or in "
            "listen.allowed_hosts (DNS-rebinding guard)",
        }
        return _json(entry, 403, body)

    def _no_route(
        self, request: web.BaseRequest, entry: Entry, decision: policy.Decision
    ) -> web.Response:
        """404 naming the configured prefixes, readable by allowed origins."""
        body = {
            "error": "no route",
            "detail": f"no configured prefix matches {request.path!r}",
            "prefixes": list(self.routes.prefixes),
        }
        return self.cors_json(entry, 404, body, decision)

    async def _internal(self, request: web.BaseRequest, seen: Classified, entry: Entry) -> Answer:
        """/__corsproxy/...: the health check and the inspector; never forwarded, no CORS."""
        if seen.path == HEALTH_PATH:
            return self._health(entry)
        if self.inspector is not None:
            return await self.inspector.handle(request, entry)
        return _json(entry, 404, {"error": "the inspector is off (inspector: false)"})

    def _health(self, entry: Entry) -> web.Response:
        entry.status = 200
        body = {
            "status": "ok",
            "version": __version__,
            "routes": list(self.routes.prefixes),
            "pid": os.getpid(),  # with listen.workers > 1, which worker answered
        }
        return web.json_response(body)


def _json(entry: Entry, status: int, body: dict) -> web.Response:
    entry.status = status
    return web.json_response(body, status=status)


def _abort(request: web.BaseRequest) -> None:
    transport = request.transport
    if transport is not None:
        transport.abort()

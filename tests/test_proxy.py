"""The proxy shell against real upstream servers: forwarding, preflights, CORS on responses."""

from __future__ import annotations

import asyncio
import gzip
import json
import re

from aiohttp import web
from yarl import URL

from corsproxy.config.model import Cors, Route
from tests.conftest import ORIGIN, cors_headers, free_port, raw_request


def upstream_app(seen: list[web.Request] | None = None) -> web.Application:
    """A backend with no CORS at all, recording what it received."""

    async def echo(request: web.Request) -> web.StreamResponse:
        if seen is not None:
            seen.append(request)
        body = await request.read()
        data = {
            "method": request.method,
            "raw_path": request.raw_path,
            "headers": [[k, v] for k, v in request.headers.items()],
            "body_length": len(body),
        }
        return web.json_response(data, headers={"X-Total-Count": "42"})

    app = web.Application(client_max_size=64 * 1024**2)  # uploads of a few MiB are read whole
    app.router.add_route("*", "/{tail:.*}", echo)
    return app


async def start_pair(aiohttp_server, start_proxy, app=None, **options):
    seen: list[web.Request] = []
    upstream = await aiohttp_server(app or upstream_app(seen))
    proxy = await start_proxy(str(upstream.make_url("")).rstrip("/"), **options)
    return upstream, proxy, seen


async def test_simple_get_from_allowed_origin_gets_the_whole_cors_set(
    aiohttp_server, start_proxy, client
):
    _, proxy, _ = await start_pair(aiohttp_server, start_proxy)
    async with client.get(proxy.url + "/users", headers={"Origin": ORIGIN}) as resp:
        assert resp.status == 200
        assert cors_headers(resp.headers) == {
            "access-control-allow-origin": ORIGIN,
            "access-control-allow-credentials": "true",
            "access-control-expose-headers": {"x-total-count", "date", "server"},
            "vary": {"origin"},
        }
    clock, line = proxy.log.split(" ", 1)
    assert re.fullmatch(r"[0-2][0-9]:[0-5][0-9]:[0-5][0-9]\.[0-9]{3}", clock)
    assert line.startswith(
        "GET /users origin=http://localhost:5173 allowed (origin allowed by 'localhost'); "
        "upstream alone: CORSMissingAllowOrigin (no Access-Control-Allow-Origin header) -> fixed"
        " -> 200 "
    )


async def test_preflight_is_answered_locally_and_never_forwarded(
    aiohttp_server, start_proxy, client
):
    _, proxy, seen = await start_pair(aiohttp_server, start_proxy)
    preflight = {
        "Origin": ORIGIN,
        "Access-Control-Request-Method": "patch",
        "Access-Control-Request-Headers": "content-type,x-api-key",
    }
    async with client.options(proxy.url + "/users/1", headers=preflight) as resp:
        assert resp.status == 204
        assert cors_headers(resp.headers) == {
            "access-control-allow-origin": ORIGIN,
            "access-control-allow-credentials": "true",
            "access-control-allow-methods": {"patch"},
            "access-control-allow-headers": {"content-type", "x-api-key"},
            "access-control-max-age": "600",
            "vary": {"origin", "access-control-request-method", "access-control-request-headers"},
        }
        assert resp.headers["Access-Control-Allow-Methods"] == "patch"  # case kept, never *
    assert seen == []


async def test_options_without_request_method_is_forwarded(aiohttp_server, start_proxy, client):
    _, proxy, seen = await start_pair(aiohttp_server, start_proxy)
    async with client.options(proxy.url + "/x", headers={"Origin": ORIGIN}) as resp:
        assert resp.status == 200
        assert (await resp.json())["method"] == "OPTIONS"
    assert len(seen) == 1


async def test_refused_origin_gets_no_grant_but_vary(aiohttp_server, start_proxy, client):
    _, proxy, _ = await start_pair(aiohttp_server, start_proxy)
    for origin in ("http://localhost.evil.example", "http://evil-localhost:5173", "null"):
        async with client.get(proxy.url + "/", headers={"Origin": origin}) as resp:
            assert resp.status == 200
            assert cors_headers(resp.headers) == {"vary": {"origin"}}
    assert "not in cors.allow_origins (localhost)" in proxy.log


async def test_refused_preflight_is_403_without_access_control_headers(
    aiohttp_server, start_proxy, client
):
    _, proxy, seen = await start_pair(aiohttp_server, start_proxy)
    preflight = {"Origin": "http://evil.test", "Access-Control-Request-Method": "PUT"}
    async with client.options(proxy.url + "/x", headers=preflight) as resp:
        assert resp.status == 403
        assert "not in cors.allow_origins" in await resp.text()
        assert cors_headers(resp.headers) == {
            "vary": {"origin", "access-control-request-method", "access-control-request-headers"}
        }
    assert seen == []


async def test_explicit_lists_are_sent_even_when_they_lack_what_was_asked(
    aiohttp_server, start_proxy, client
):
    cors = Cors(allow_methods=("GET", "POST"), allow_headers=("Content-Type",))
    _, proxy, _ = await start_pair(aiohttp_server, start_proxy, cors=cors)
    preflight = {
        "Origin": ORIGIN,
        "Access-Control-Request-Method": "DELETE",
        "Access-Control-Request-Headers": "x-secret",
    }
    async with client.options(proxy.url + "/x", headers=preflight) as resp:
        assert resp.status == 204
        assert resp.headers["Access-Control-Allow-Methods"] == "GET, POST"
        assert resp.headers["Access-Control-Allow-Headers"] == "Content-Type"
    assert "method 'DELETE' is not in cors.allow_methods" in proxy.log
    assert "header 'x-secret' not in cors.allow_headers" in proxy.log


def wrong_cors_app() -> web.Application:
    async def handler(request: web.Request) -> web.Response:
        response = web.Response(text="{}", content_type="application/json")
        response.headers.add("Access-Control-Allow-Origin", "*")
        response.headers.add("Access-Control-Allow-Origin", "http://other.example")
        response.headers.add("Vary", "Accept-Encoding")
        return response

    app = web.Application()
    app.router.add_get("/", handler)
    return app


async def test_upstream_cors_headers_are_replaced_not_duplicated(
    aiohttp_server, start_proxy, client
):
    _, proxy, _ = await start_pair(aiohttp_server, start_proxy, app=wrong_cors_app())
    async with client.get(proxy.url + "/", headers={"Origin": ORIGIN}) as resp:
        assert cors_headers(resp.headers) == {
            "access-control-allow-origin": ORIGIN,
            "access-control-allow-credentials": "true",
            "access-control-expose-headers": {"date", "server", "vary"},
            "vary": {"accept-encoding", "origin"},
        }
    assert "; upstream alone: CORSMultipleAllowOriginNotAllowed (" in proxy.log
    assert "fixed: Access-Control-Allow-Origin '*, http://other.example' -> " in proxy.log
    assert "(credentials)" in proxy.log


async def test_upstream_grant_is_removed_for_a_refused_origin(aiohttp_server, start_proxy, client):
    _, proxy, _ = await start_pair(aiohttp_server, start_proxy, app=wrong_cors_app())
    async with client.get(proxy.url + "/", headers={"Origin": "http://evil.test"}) as resp:
        assert cors_headers(resp.headers) == {"vary": {"accept-encoding", "origin"}}


async def test_raw_path_and_query_reach_the_upstream_byte_for_byte(
    aiohttp_server, start_proxy, client
):
    _, proxy, _ = await start_pair(aiohttp_server, start_proxy)
    raw = "/a%7Eb/%2F/caf%C3%A9;x=1?q=%20a+b&z=%2F&empty="
    async with client.get(URL(proxy.url + raw, encoded=True)) as resp:
        assert (await resp.json())["raw_path"] == raw


async def test_hop_by_hop_and_connection_named_headers_are_dropped_upstream(
    aiohttp_server, start_proxy
):
    upstream, proxy, _ = await start_pair(aiohttp_server, start_proxy)
    request = (
        b"GET /h HTTP/1.1\r\nHost: localhost\r\nConnection: close, X-Secret-Hop\r\n"
        b"X-Secret-Hop: 1\r\nKeep-Alive: timeout=5\r\nTE: trailers\r\n"
        b"Proxy-Authorization: Basic eA==\r\nX-Kept: yes\r\n\r\n"
    )
    reply = await raw_request(proxy.port, request)
    body = json.loads(reply.split(b"\r\n\r\n", 1)[1])
    names = {k.lower(): v for k, v in body["headers"]}
    for dropped in ("x-secret-hop", "keep-alive", "te", "proxy-authorization"):
        assert dropped not in names
    assert names["x-kept"] == "yes"
    assert names["host"] == f"127.0.0.1:{upstream.port}"
    assert names["x-forwarded-host"] == "localhost"
    assert names["x-forwarded-proto"] == "http"
    assert names["x-forwarded-for"] == "127.0.0.1"
    assert "user-agent" not in names and "accept-encoding" not in names


async def test_host_header_client_sends_the_browsers_host(aiohttp_server, start_proxy, client):
    _, proxy, _ = await start_pair(aiohttp_server, start_proxy, host_header="client")
    async with client.get(proxy.url + "/", headers={"Host": "localhost:8080"}) as resp:
        names = {k.lower(): v for k, v in (await resp.json())["headers"]}
    assert names["host"] == "localhost:8080"


GZIPPED = gzip.compress(b'{"compressed": true}' * 100)


def special_app() -> web.Application:
    payload = GZIPPED

    async def gz(request: web.Request) -> web.Response:
        return web.Response(
            body=payload, headers={"Content-Encoding": "gzip", "Content-Type": "application/json"}
        )

    async def no_content(request: web.Request) -> web.Response:
        return web.Response(status=204)

    async def not_modified(request: web.Request) -> web.Response:
        return web.Response(status=304, headers={"ETag": '"v1"'})

    async def ranged(request: web.Request) -> web.Response:
        data = bytes(range(256)) * 4
        if "Range" in request.headers:
            start, end = request.headers["Range"].removeprefix("bytes=").split("-")
            part = data[int(start) : int(end) + 1]
            return web.Response(
                status=206,
                body=part,
                headers={"Content-Range": f"bytes {start}-{end}/{len(data)}"},
            )
        return web.Response(body=data)

    async def chunked(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        for i in range(5):
            await response.write(f"part {i}\n".encode())
        return response

    app = web.Application()
    app.router.add_get("/gzip", gz)
    app.router.add_get("/204", no_content)
    app.router.add_get("/304", not_modified)
    app.router.add_get("/range", ranged)
    app.router.add_get("/chunked", chunked)
    return app


async def test_compressed_body_passes_through_untouched(aiohttp_server, start_proxy, client):
    app = special_app()
    _, proxy, _ = await start_pair(aiohttp_server, start_proxy, app=app)
    async with client.get(proxy.url + "/gzip", headers={"Accept-Encoding": "gzip"}) as resp:
        assert resp.headers["Content-Encoding"] == "gzip"
        assert await resp.read() == GZIPPED


async def test_head_204_and_304_have_no_body(aiohttp_server, start_proxy):
    _, proxy, _ = await start_pair(aiohttp_server, start_proxy, app=special_app())
    for method, path, status in (
        ("HEAD", "/range", 200),
        ("GET", "/204", 204),
        ("GET", "/304", 304),
    ):
        request = f"{method} {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
        reply = await raw_request(proxy.port, request.encode())
        head, _, body = reply.partition(b"\r\n\r\n")
        assert head.startswith(f"HTTP/1.1 {status}".encode())
        assert body == b""
        if method == "HEAD":
            assert b"Content-Length: 1024" in head


async def test_range_request_gets_206(aiohttp_server, start_proxy, client):
    _, proxy, _ = await start_pair(aiohttp_server, start_proxy, app=special_app())
    async with client.get(proxy.url + "/range", headers={"Range": "bytes=10-19"}) as resp:
        assert resp.status == 206
        assert resp.headers["Content-Range"] == "bytes 10-19/1024"
        assert await resp.read() == bytes(range(10, 20))


async def test_chunked_response_streams_through(aiohttp_server, start_proxy, client):
    _, proxy, _ = await start_pair(aiohttp_server, start_proxy, app=special_app())
    async with client.get(proxy.url + "/chunked") as resp:
        assert resp.headers.get("Transfer-Encoding") == "chunked"
        assert await resp.text() == "".join(f"part {i}\n" for i in range(5))


async def test_request_body_is_streamed_upstream(aiohttp_server, start_proxy, client):
    _, proxy, _ = await start_pair(aiohttp_server, start_proxy)

    async def body():
        for _ in range(16):
            yield b"x" * 65536

    async with client.post(proxy.url + "/upload", data=body()) as resp:
        assert (await resp.json())["body_length"] == 16 * 65536


async def test_dead_upstream_gives_a_readable_502(start_proxy, client):
    port = free_port()
    proxy = await start_proxy(f"http://localhost:{port}")
    async with client.get(proxy.url + "/x", headers={"Origin": ORIGIN}) as resp:
        assert resp.status == 502
        assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN
        body = await resp.json()
    assert body["error"] == "upstream unreachable"
    assert body["upstream"] == f"http://localhost:{port}"
    assert body["detail"].startswith("connection refused on ")
    assert f"127.0.0.1 port {port}" in body["detail"]


async def test_localhost_upstream_is_tried_on_every_address(aiohttp_server, start_proxy, client):
    upstream = await aiohttp_server(upstream_app(), host="127.0.0.1")
    proxy = await start_proxy(f"http://localhost:{upstream.port}")
    async with client.get(proxy.url + "/") as resp:
        assert resp.status == 200


async def test_stalled_upstream_gives_504_and_the_proxy_keeps_serving(
    aiohttp_server, start_proxy, client
):
    release = asyncio.Event()

    async def stall(request: web.Request) -> web.Response:
        if request.path == "/stall":
            await release.wait()
        return web.Response(text="fine")

    app = web.Application()
    app.router.add_get("/{tail:.*}", stall)
    _, proxy, _ = await start_pair(aiohttp_server, start_proxy, app=app, timeout=0.3)
    async with client.get(proxy.url + "/stall", headers={"Origin": ORIGIN}) as resp:
        assert resp.status == 504
        assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN
        assert (await resp.json())["error"] == "upstream timed out"
    release.set()
    async with client.get(proxy.url + "/ok") as resp:
        assert await resp.text() == "fine"


async def test_upstream_breaking_off_mid_body_aborts_the_client(
    aiohttp_raw_server, start_proxy, client
):
    async def broken(request: web.BaseRequest) -> web.StreamResponse:
        if request.path == "/ok":
            return web.Response(text="fine")
        response = web.StreamResponse(headers={"Content-Length": "1000000"})
        await response.prepare(request)
        await response.write(b"x" * 100000)
        request.transport.close()
        return response

    upstream = await aiohttp_raw_server(broken)
    proxy = await start_proxy(str(upstream.make_url("")).rstrip("/"))
    try:
        async with client.get(proxy.url + "/big") as resp:
            await resp.read()
        raise AssertionError("a truncated body was delivered as complete")
    except aiohttp_client_errors() as exc:
        assert exc is not None
    async with client.get(proxy.url + "/ok") as resp:
        assert await resp.text() == "fine"
    assert "upstream broke off mid-body" in proxy.log


def aiohttp_client_errors():
    import aiohttp

    return (aiohttp.ClientPayloadError, aiohttp.ServerDisconnectedError)


async def test_client_hanging_up_cancels_the_upstream_request(aiohttp_server, start_proxy):
    started, cancelled = asyncio.Event(), asyncio.Event()

    async def hang(request: web.Request) -> web.Response:
        if request.path == "/ok":
            return web.Response(text="fine")
        started.set()
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return web.Response()

    app = web.Application()
    app.router.add_get("/{tail:.*}", hang)
    _, proxy, _ = await start_pair(aiohttp_server, start_proxy, app=app)
    reader, writer = await asyncio.open_connection("127.0.0.1", proxy.port)
    writer.write(b"GET /hang HTTP/1.1\r\nHost: localhost\r\n\r\n")
    await writer.drain()
    await asyncio.wait_for(started.wait(), 10)
    writer.close()
    await asyncio.wait_for(cancelled.wait(), 10)
    reply = await raw_request(
        proxy.port, b"GET /ok HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    assert reply.endswith(b"fine")


async def test_absolute_form_target_cannot_choose_the_destination(aiohttp_server, start_proxy):
    _, proxy, seen = await start_pair(aiohttp_server, start_proxy)
    request = b"GET http://evil.example/steal?x=1 HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    reply = await raw_request(proxy.port, request)
    assert reply.startswith(b"HTTP/1.1 200")
    assert json.loads(reply.split(b"\r\n\r\n", 1)[1])["raw_path"] == "/steal?x=1"


async def test_scheme_relative_and_embedded_urls_stay_paths(aiohttp_server, start_proxy, client):
    _, proxy, _ = await start_pair(aiohttp_server, start_proxy)
    for path in ("//evil.example/x", "/http://evil.example/x"):
        async with client.get(URL(proxy.url + path, encoded=True)) as resp:
            assert (await resp.json())["raw_path"] == path


async def test_connect_is_refused(aiohttp_server, start_proxy):
    _, proxy, seen = await start_pair(aiohttp_server, start_proxy)
    request = (
        b"CONNECT evil.example:443 HTTP/1.1\r\nHost: evil.example:443\r\nConnection: close\r\n\r\n"
    )
    reply = await raw_request(proxy.port, request)
    assert reply.startswith(b"HTTP/1.1 405")
    assert seen == []


async def test_foreign_host_header_is_refused_dns_rebinding(aiohttp_server, start_proxy, client):
    _, proxy, seen = await start_pair(aiohttp_server, start_proxy)
    for host in ("evil.example", "evil.example:8080", "localhost.evil.example"):
        async with client.get(proxy.url + "/", headers={"Host": host}) as resp:
            assert resp.status == 403
            assert (await resp.json())["error"] == "host not allowed"
    for host in ("localhost:8080", "127.0.0.1", "[::1]:8080", "app.localhost"):
        async with client.get(proxy.url + "/", headers={"Host": host}) as resp:
            assert resp.status == 200
    assert len(seen) == 4


async def test_health_is_answered_locally(aiohttp_server, start_proxy, client):
    _, proxy, seen = await start_pair(aiohttp_server, start_proxy)
    async with client.get(proxy.url + "/__corsproxy/health") as resp:
        assert resp.status == 200
        assert (await resp.json())["status"] == "ok"
    assert seen == []


async def test_unmatched_path_gets_404_listing_prefixes(aiohttp_server, start_proxy, client):
    upstream = await aiohttp_server(upstream_app())
    base = str(upstream.make_url("")).rstrip("/")
    proxy = await start_proxy(routes=(Route("/api", base), Route("/auth", base)))
    async with client.get(proxy.url + "/apix", headers={"Origin": ORIGIN}) as resp:
        assert resp.status == 404
        assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN
        assert set((await resp.json())["prefixes"]) == {"/api", "/auth"}


async def test_compressed_upload_reaches_the_upstream_as_sent(aiohttp_server, start_proxy, client):
    seen: list[bytes] = []

    async def sink(request: web.Request) -> web.Response:
        seen.append(await request.content.read())
        return web.Response(text=request.headers.get("Content-Encoding", ""))

    app = web.Application()
    app.router.add_post("/upload", sink)
    upstream = await aiohttp_server(app, auto_decompress=False)  # sees the bytes as they came
    proxy = await start_proxy(str(upstream.make_url("")).rstrip("/"))
    body = gzip.compress(b'{"big": "json"}' * 1000)
    headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
    async with client.post(proxy.url + "/upload", data=body, headers=headers) as resp:
        assert await resp.text() == "gzip"
    assert seen == [body]


async def test_a_lowercase_method_is_forwarded_with_its_case(start_proxy):
    """Methods are case-sensitive (RFC 9110 §9.1): `patch` goes upstream as `patch`."""
    seen: list[bytes] = []

    async def upstream(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(re.search(rb"(?i)content-length: *(\d+)", head).group(1))
        body = await reader.readexactly(length)
        seen.append(head.split(b" ", 1)[0])
        reply = head.split(b" ", 1)[0] + b" " + body
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(reply), reply))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(upstream, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        proxy = await start_proxy(f"http://127.0.0.1:{port}")
        request = (
            b"patch /item HTTP/1.1\r\nHost: localhost\r\nOrigin: http://localhost:5173\r\n"
            b"Content-Length: 2\r\n\r\nhi"
            b"GET /again HTTP/1.1\r\nHost: localhost\r\nContent-Length: 0\r\n"
            b"Connection: close\r\n\r\n"
        )
        reply = await raw_request(proxy.port, request)
    finally:
        server.close()
    first, second = reply.split(b"HTTP/1.1 ")[1:3]
    assert (
        first.startswith(b"200 ") and b"Access-Control-Allow-Origin: http://localhost:5173" in first
    )
    assert first.endswith(b"patch hi")
    assert second.startswith(b"200 ") and second.endswith(b"GET ")
    assert seen == [b"patch", b"GET"]


async def test_star_from_the_upstream_is_explained_for_credentialed_requests(
    aiohttp_server, start_proxy, client
):
    async def star(request: web.Request) -> web.Response:
        return web.Response(text="{}", headers={"Access-Control-Allow-Origin": "*"})

    app = web.Application()
    app.router.add_get("/", star)
    _, proxy, _ = await start_pair(aiohttp_server, start_proxy, app=app)
    async with client.get(proxy.url + "/", headers={"Origin": ORIGIN}) as resp:
        assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN
    assert (
        "; upstream alone: CORSNotSupportingCredentials (Access-Control-Allow-Origin is '*' but "
        "the request includes credentials) for a credentialed request -> fixed; fixed: "
        "Access-Control-Allow-Origin '*' -> 'http://localhost:5173' (credentials) -> 200 "
    ) in proxy.log

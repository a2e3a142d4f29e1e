"""Real apps through the proxy: routes, cookies, redirects, Origin rewriting, SSE, WebSocket, TLS."""

from __future__ import annotations

import asyncio
import ssl

import aiohttp
import pytest
import trustme
from aiohttp import web

from corsproxy.config.model import TLS, Cors, Listen, Route
from tests.conftest import ORIGIN, free_port


def echo_app(name: str) -> web.Application:
    async def echo(request: web.Request) -> web.Response:
        return web.json_response(
            {
                "backend": name,
                "path": request.raw_path,
                "host": request.host,
                "headers": {k.lower(): v for k, v in request.headers.items()},
            }
        )

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    return app


async def base(server) -> str:
    return str(server.make_url("")).rstrip("/")


async def test_longest_prefix_wins_on_segment_boundaries(aiohttp_server, start_proxy, client):
    web_app = await aiohttp_server(echo_app("web"))
    api = await aiohttp_server(echo_app("api"))
    v2 = await aiohttp_server(echo_app("v2"))
    proxy = await start_proxy(
        routes=(
            Route("/", await base(web_app)),
            Route("/api", await base(api)),
            Route("/api/v2", await base(v2), strip_prefix=True),
        )
    )
    expected = {
        "/": ("web", "/"),
        "/apix": ("web", "/apix"),
        "/api": ("api", "/api"),
        "/api/users": ("api", "/api/users"),
        "/api/v2/users?x=1": ("v2", "/users?x=1"),
        "/api/v2": ("v2", "/"),
    }
    for path, (backend, upstream_path) in expected.items():
        async with client.get(proxy.url + path) as resp:
            body = await resp.json()
        assert (body["backend"], body["path"]) == (backend, upstream_path), path


def login_app() -> web.Application:
    async def login(request: web.Request) -> web.Response:
        response = web.json_response({"ok": True})
        response.headers.add(
            "Set-Cookie",
            "sid=s3cret; Domain=backend.example; Path=/; Secure; HttpOnly; SameSite=None",
        )
        response.headers.add("Set-Cookie", "theme=dark; Path=/")
        return response

    async def me(request: web.Request) -> web.Response:
        return web.json_response({"cookie": request.headers.get("Cookie")})

    app = web.Application()
    app.router.add_post("/login", login)
    app.router.add_get("/me", me)
    return app


async def test_login_cookie_is_stored_and_sent_back(aiohttp_server, start_proxy):
    upstream = await aiohttp_server(login_app())
    proxy = await start_proxy(await base(upstream))
    here = f"http://localhost:{proxy.port}"
    jar = aiohttp.CookieJar(treat_as_secure_origin=[here])
    async with aiohttp.ClientSession(cookie_jar=jar) as browser:
        async with browser.post(here + "/login", headers={"Origin": ORIGIN}) as resp:
            assert resp.headers.getall("Set-Cookie") == [
                "sid=s3cret; Path=/; HttpOnly; Secure; SameSite=None",
                "theme=dark; Path=/",
            ]
        async with browser.get(here + "/me", headers={"Origin": ORIGIN}) as resp:
            assert (await resp.json())["cookie"] == "sid=s3cret; theme=dark"
    assert "cookie sid: Domain=backend.example dropped" in proxy.log


def redirect_app() -> web.Application:
    async def old(request: web.Request) -> web.Response:
        status = int(request.query["status"])
        target = f"http://{request.host}/new"
        raise {302: web.HTTPFound, 303: web.HTTPSeeOther, 307: web.HTTPTemporaryRedirect}[status](
            target
        )

    async def new(request: web.Request) -> web.Response:
        return web.json_response(
            {"method": request.method, "body": await request.text(), "host": request.host}
        )

    app = web.Application()
    app.router.add_route("*", "/old", old)
    app.router.add_route("*", "/new", new)
    return app


@pytest.mark.parametrize(
    "status,method,final_method,body",
    [(302, "GET", "GET", ""), (303, "POST", "GET", ""), (307, "POST", "POST", "payload")],
    ids=[
        "302 is followed through the proxy",
        "303 turns into a GET through the proxy",
        "307 keeps method and body through the proxy",
    ],
)
async def test_redirects_are_followed_through_the_proxy(
    aiohttp_server, start_proxy, client, status, method, final_method, body
):
    upstream = await aiohttp_server(redirect_app())
    proxy = await start_proxy(await base(upstream))
    here = f"http://localhost:{proxy.port}"
    data = b"payload" if method == "POST" else None
    async with client.request(
        method, f"{here}/old?status={status}", data=data, headers={"Origin": ORIGIN}
    ) as resp:
        assert [r.status for r in resp.history] == [status]
        assert resp.history[0].headers["Location"] == f"{here}/new"
        assert resp.history[0].headers["Access-Control-Allow-Origin"] == ORIGIN
        assert str(resp.url) == f"{here}/new"
        assert await resp.json() == {
            "method": final_method,
            "body": body,
            "host": f"127.0.0.1:{upstream.port}",
        }


@pytest.mark.parametrize(
    "mode,expected",
    [
        ("keep", {"origin": ORIGIN, "referer": ORIGIN + "/page", "sec-fetch-site": "cross-site"}),
        ("strip", {"origin": None, "referer": None, "sec-fetch-site": None}),
        ("upstream", {"origin": "UPSTREAM", "referer": "UPSTREAM/page", "sec-fetch-site": None}),
    ],
    ids=["keep passes them on", "strip removes them", "upstream sends the backend's own origin"],
)
async def test_origin_header_modes(aiohttp_server, start_proxy, client, mode, expected):
    upstream = await aiohttp_server(echo_app("api"))
    proxy = await start_proxy(await base(upstream), origin_header=mode)
    sent = {"Origin": ORIGIN, "Referer": ORIGIN + "/page", "Sec-Fetch-Site": "cross-site"}
    async with client.get(proxy.url + "/x", headers=sent) as resp:
        seen = (await resp.json())["headers"]
    own = await base(upstream)
    want = {k: (v.replace("UPSTREAM", own) if v else None) for k, v in expected.items()}
    assert {k: seen.get(k) for k in want} == want


async def test_refused_origin_reaches_the_backend_untouched(aiohttp_server, start_proxy, client):
    upstream = await aiohttp_server(echo_app("api"))
    proxy = await start_proxy(await base(upstream), origin_header="strip")
    async with client.get(proxy.url + "/x", headers={"Origin": "http://evil.test"}) as resp:
        assert (await resp.json())["headers"]["origin"] == "http://evil.test"


async def test_server_sent_events_arrive_one_by_one(aiohttp_server, start_proxy, client):
    gates = [asyncio.Event() for _ in range(3)]

    async def events(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for i, gate in enumerate(gates):
            await gate.wait()
            await response.write(f"data: event {i}\n\n".encode())
        return response

    app = web.Application()
    app.router.add_get("/events", events)
    upstream = await aiohttp_server(app)
    proxy = await start_proxy(await base(upstream))
    async with client.get(proxy.url + "/events", headers={"Origin": ORIGIN}) as resp:
        assert resp.headers["Content-Type"] == "text/event-stream"
        for i, gate in enumerate(gates):
            gate.set()  # event i is produced only now; the next one only after it arrived
            line = await asyncio.wait_for(resp.content.readline(), 10)
            assert line == f"data: event {i}\n".encode()
            assert await asyncio.wait_for(resp.content.readline(), 10) == b"\n"


async def test_timeout_bounds_only_the_wait_for_headers(aiohttp_server, start_proxy, client):
    async def slow_stream(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "text/plain"})
        await response.prepare(request)
        for i in range(3):
            await response.write(f"tick {i}\n".encode())
            await asyncio.sleep(0.3)  # the slow stream under test: longer than the timeout
        return response

    app = web.Application()
    app.router.add_get("/slow", slow_stream)
    upstream = await aiohttp_server(app)
    proxy = await start_proxy(await base(upstream), timeout=0.1)
    async with client.get(proxy.url + "/slow") as resp:
        assert await resp.text() == "tick 0\ntick 1\ntick 2\n"


def ws_app() -> web.Application:
    async def echo(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(protocols=("v1",))
        await ws.prepare(request)
        await ws.send_str(f"origin={request.headers.get('Origin')}")
        async for message in ws:
            if message.type is aiohttp.WSMsgType.TEXT and message.data == "close":
                await ws.close(code=4001, message=b"bye")
            elif message.type is aiohttp.WSMsgType.TEXT:
                await ws.send_str(message.data.upper())
            elif message.type is aiohttp.WSMsgType.BINARY:
                await ws.send_bytes(message.data[::-1])
        return ws

    app = web.Application()
    app.router.add_get("/ws", echo)
    return app


async def test_websocket_relays_text_binary_subprotocol_and_close_code(
    aiohttp_server, start_proxy, client
):
    upstream = await aiohttp_server(ws_app())
    proxy = await start_proxy(await base(upstream))
    async with client.ws_connect(proxy.url + "/ws", origin=ORIGIN, protocols=("v2", "v1")) as ws:
        assert ws.protocol == "v1"
        assert (await ws.receive_str()) == f"origin={ORIGIN}"
        await ws.send_str("hello")
        assert await ws.receive_str() == "HELLO"
        await ws.send_bytes(b"\x00\x01\x02")
        assert await ws.receive_bytes() == b"\x02\x01\x00"
        await ws.send_str("close")
        message = await ws.receive()
        assert message.type is aiohttp.WSMsgType.CLOSE
        assert (message.data, message.extra) == (4001, "bye")


async def test_websocket_from_a_refused_origin_is_403(aiohttp_server, start_proxy, client):
    upstream = await aiohttp_server(ws_app())
    proxy = await start_proxy(await base(upstream))
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect(proxy.url + "/ws", origin="http://evil.test")
    assert refused.value.status == 403


async def test_websocket_to_a_dead_upstream_is_refused_cleanly(start_proxy, client):
    proxy = await start_proxy(f"http://127.0.0.1:{free_port()}")
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await client.ws_connect(proxy.url + "/ws", origin=ORIGIN)
    assert refused.value.status == 502
    async with client.get(proxy.url + "/__corsproxy/health") as resp:
        assert resp.status == 200


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


async def https_upstream(aiohttp_server, ca: trustme.CA):
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("localhost").configure_cert(context)
    return await aiohttp_server(echo_app("tls"), ssl=context)


async def test_self_signed_upstream_is_a_502_naming_verify_tls(
    aiohttp_server, start_proxy, client, ca
):
    upstream = await https_upstream(aiohttp_server, ca)
    proxy = await start_proxy(f"https://localhost:{upstream.port}")
    async with client.get(proxy.url + "/x", headers={"Origin": ORIGIN}) as resp:
        assert resp.status == 502
        assert resp.headers["Access-Control-Allow-Origin"] == ORIGIN
        body = await resp.json()
    assert body["error"] == "upstream TLS certificate rejected"
    assert "verify_tls: false" in body["hint"]


async def test_verify_tls_false_accepts_it_with_sni_and_host(
    aiohttp_server, start_proxy, client, ca
):
    upstream = await https_upstream(aiohttp_server, ca)
    proxy = await start_proxy(f"https://localhost:{upstream.port}", verify_tls=False)
    async with client.get(proxy.url + "/x") as resp:
        assert resp.status == 200
        assert (await resp.json())["host"] == f"localhost:{upstream.port}"


async def test_https_listener_keeps_secure_cookies(aiohttp_server, start_proxy, ca, tmp_path):
    cert = ca.issue_cert("devbox.test")
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert.cert_chain_pems[0].write_to_path(cert_file)
    cert.private_key_pem.write_to_path(key_file)
    upstream = await aiohttp_server(login_app())
    proxy = await start_proxy(
        await base(upstream),
        listen=Listen(allowed_hosts=("devbox.test",), tls=TLS(str(cert_file), str(key_file))),
        cors=Cors(),
    )
    context = ssl.create_default_context()
    ca.configure_trust(context)
    connector = aiohttp.TCPConnector(ssl=context, resolver=_StaticResolver())
    async with aiohttp.ClientSession(connector=connector) as browser:
        async with browser.post(f"https://devbox.test:{proxy.port}/login") as resp:
            assert resp.headers.getall("Set-Cookie")[0] == (
                "sid=s3cret; Path=/; HttpOnly; Secure; SameSite=None"
            )


class _StaticResolver(aiohttp.abc.AbstractResolver):
    """Resolves every name to 127.0.0.1, like a hosts-file entry for a dev machine name."""

    async def resolve(self, host, port=0, family=0):
        return [
            {
                "hostname": host,
                "host": "127.0.0.1",
                "port": port,
                "family": 2,
                "proto": 0,
                "flags": 0,
            }
        ]

    async def close(self):
        return None


def ws_probe_app(events: list[str], closed: asyncio.Event) -> web.Application:
    """An upstream WebSocket that records pings, pongs and how the other side closed."""

    async def probe(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse(autoping=False)
        await ws.prepare(request)
        events.append(f"origin={request.headers.get('Origin')}")
        while True:
            message = await ws.receive()
            if message.type is aiohttp.WSMsgType.PING:
                events.append(f"ping {message.data.decode()}")
                await ws.pong(message.data)
            elif message.type is aiohttp.WSMsgType.TEXT and message.data == "ping me":
                await ws.ping(b"from upstream")
            elif message.type is aiohttp.WSMsgType.PONG:
                events.append(f"pong {message.data.decode()}")
                await ws.send_str("got pong")
            elif message.type is aiohttp.WSMsgType.CLOSE:
                events.append(f"close {message.data} {message.extra}")
                await ws.close()
                break
            else:
                break
        closed.set()
        return ws

    app = web.Application()
    app.router.add_get("/probe", probe)
    return app


async def test_websocket_relays_ping_pong_and_the_browsers_close(
    aiohttp_server, start_proxy, client
):
    events: list[str] = []
    closed = asyncio.Event()
    upstream = await aiohttp_server(ws_probe_app(events, closed))
    proxy = await start_proxy(await base(upstream), origin_header="upstream")
    async with client.ws_connect(proxy.url + "/probe", origin=ORIGIN, autoping=False) as ws:
        await ws.ping(b"from browser")
        pong = await asyncio.wait_for(ws.receive(), 10)
        assert (pong.type, pong.data) == (aiohttp.WSMsgType.PONG, b"from browser")
        await ws.send_str("ping me")
        ping = await asyncio.wait_for(ws.receive(), 10)
        assert (ping.type, ping.data) == (aiohttp.WSMsgType.PING, b"from upstream")
        await ws.pong(ping.data)
        assert await asyncio.wait_for(ws.receive_str(), 10) == "got pong"
        await ws.close(code=4002, message=b"tab closed")
    await asyncio.wait_for(closed.wait(), 10)
    assert events == [
        f"origin={await base(upstream)}",  # origin_header: upstream applies to WebSockets too
        "ping from browser",
        "pong from upstream",
        "close 4002 tab closed",
    ]

"""The inspector in a real proxy, against real upstream servers: what /__corsproxy/ answers."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from corsproxy.config.model import Inspector
from tests.conftest import ORIGIN, free_port, raw_request

AUTH = "Authorization"


def upstream_app(seen: list[tuple[str, dict[str, str], bytes]]) -> web.Application:
    """A backend without CORS that records what reached it; /big streams 200 kB of text."""

    async def echo(request: web.Request) -> web.StreamResponse:
        body = await request.read()
        seen.append((request.method, dict(request.headers), body))
        if request.path == "/big":
            response = web.StreamResponse(headers={"Content-Type": "text/plain"})
            await response.prepare(request)
            for _ in range(20):
                await response.write(b"0123456789" * 1000)
            return response
        if request.path == "/login":
            response = web.json_response({"ok": True})
            response.headers.add("Set-Cookie", "sid=abc; Path=/; HttpOnly")
            return response
        if request.path == "/binary":
            return web.Response(body=b"\x00\x01" * 100, content_type="application/octet-stream")
        if request.path == "/star":
            headers = {
                "Access-Control-Allow-Origin": "*",
                "Access-Control-Allow-Credentials": "true",
            }
            return web.json_response({"star": True}, headers=headers)
        return web.json_response({"path": request.path_qs}, headers={"X-Total-Count": "3"})

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", echo)
    return app


@pytest.fixture
async def pair(aiohttp_server, start_proxy):
    """(proxy, seen, bearer headers): the proxy in front of upstream_app."""

    async def go(**options: Any):
        seen: list = []
        upstream = await aiohttp_server(upstream_app(seen))
        proxy = await start_proxy(str(upstream.make_url("")).rstrip("/"), **options)
        inspector = proxy.running.proxy.inspector
        return proxy, seen, {AUTH: f"Bearer {inspector.token}"} if inspector else {}

    return go


async def exchanges(client: aiohttp.ClientSession, proxy, bearer: dict, since: int = 0) -> list:
    url = f"{proxy.url}/__corsproxy/api/exchanges?since={since}"
    async with client.get(url, headers=bearer) as resp:
        assert resp.status == 200
        return (await resp.json())["exchanges"]


def header(pairs: list[list[str]] | None, name: str) -> list[str]:
    return [v for n, v in pairs or [] if n.lower() == name.lower()]


async def test_an_allowed_request_is_kept_with_its_four_header_sets(pair, client) -> None:
    proxy, _, bearer = await pair()
    async with client.get(f"{proxy.url}/api/items?page=2", headers={"Origin": ORIGIN}) as resp:
        assert resp.status == 200
    [kept] = await exchanges(client, proxy, bearer)
    assert (kept["method"], kept["path"], kept["status"]) == ("GET", "/api/items?page=2", 200)
    assert (kept["decision"], kept["origin"], kept["route"]) == ("allowed", ORIGIN, "/")
    assert header(kept["request_headers"], "Origin") == [ORIGIN]
    assert header(kept["upstream_request_headers"], "X-Forwarded-Proto") == ["http"]
    assert header(kept["upstream_response_headers"], "X-Total-Count") == ["3"]
    assert header(kept["upstream_response_headers"], "Access-Control-Allow-Origin") == []
    assert header(kept["response_headers"], "Access-Control-Allow-Origin") == [ORIGIN]
    assert kept["without_proxy"]["verdict"] == "blocked"
    assert [f["name"] for f in kept["without_proxy"]["findings"]] == ["CORSMissingAllowOrigin"]
    assert kept["response_body"]["text"] == '{"path": "/api/items?page=2"}'
    assert kept["replay"] is False and kept["pair"] is None


async def test_each_set_cookie_gets_the_verdict_the_log_line_is_made_from(pair, client) -> None:
    """A cross-site page (localhost calling the proxy at 127.0.0.1) logs in: the cookie is
    rewritten to SameSite=None; Secure; Partitioned (samesite: auto), and the record holds, per
    browser, what becomes of it."""
    proxy, _, bearer = await pair()
    async with client.post(f"{proxy.url}/login", headers={"Origin": ORIGIN}) as resp:
        assert resp.status == 200
    [kept] = await exchanges(client, proxy, bearer)
    [cookie] = kept["cookies"]
    assert (cookie["name"], cookie["cross_site"]) == ("sid", True)
    assert "Partitioned" in cookie["cookie"] and "SameSite=None" in cookie["cookie"]
    assert {b["browser"] for b in cookie["browsers"]} >= {"chromium", "firefox"}
    assert header(kept["response_headers"], "Set-Cookie") == [cookie["cookie"]]


async def test_the_log_line_and_the_record_say_the_same(pair, client) -> None:
    proxy, _, bearer = await pair()
    async with client.get(f"{proxy.url}/star", headers={"Origin": ORIGIN}) as resp:
        assert resp.status == 200
    [kept] = await exchanges(client, proxy, bearer)
    finding = kept["without_proxy"]["findings"][0]
    assert kept["without_proxy"]["credentialed_only"] is True
    assert (
        f"upstream alone: {finding['name']} ({finding['detail']}) for a credentialed" in proxy.log
    )
    assert kept["corrections"] == [
        "fixed: Access-Control-Allow-Origin '*' -> 'http://localhost:5173' (credentials)"
    ]


async def test_a_preflight_is_paired_with_the_request_after_it(pair, client) -> None:
    proxy, _, bearer = await pair()
    asked = {"Origin": ORIGIN, "Access-Control-Request-Method": "PUT"}
    async with client.options(f"{proxy.url}/api/notes/1", headers=asked) as resp:
        assert resp.status == 204
    async with client.put(f"{proxy.url}/api/notes/1", headers={"Origin": ORIGIN}) as resp:
        assert resp.status == 200
    preflight, request = await exchanges(client, proxy, bearer)
    assert (preflight["decision"], preflight["pair"]) == ("preflight", request["id"])
    assert (request["decision"], request["pair"]) == ("allowed", preflight["id"])
    assert preflight["without_proxy"] is None and preflight["upstream_request_headers"] is None
    assert header(preflight["response_headers"], "Access-Control-Allow-Methods") == ["PUT"]


async def test_a_preflight_answered_straight_from_the_parser_is_kept(pair) -> None:
    proxy, _, bearer = await pair()
    request = (
        f"OPTIONS /early HTTP/1.1\r\nHost: localhost\r\nOrigin: {ORIGIN}\r\n"
        "Access-Control-Request-Method: POST\r\n\r\n"
        "GET /__corsproxy/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    ).encode()
    await raw_request(proxy.port, request)
    store = proxy.running.proxy.inspector.store
    [kept] = store.since(0)
    assert (kept["method"], kept["path"], kept["decision"], kept["status"]) == (
        "OPTIONS",
        "/early",
        "preflight",
        204,
    )
    assert header(kept["request_headers"], "Access-Control-Request-Method") == ["POST"]


async def test_a_dead_upstream_is_an_error_with_the_network_failure(start_proxy, client) -> None:
    proxy = await start_proxy(f"http://127.0.0.1:{free_port()}")
    bearer = {AUTH: f"Bearer {proxy.running.proxy.inspector.token}"}
    async with client.get(f"{proxy.url}/x", headers={"Origin": ORIGIN}) as resp:
        assert resp.status == 502
    [kept] = await exchanges(client, proxy, bearer)
    assert kept["decision"] == "error" and kept["error"]["error"] == "upstream unreachable"
    assert kept["without_proxy"]["findings"][0]["name"] == "CORSDidNotSucceed"
    assert kept["upstream_response_headers"] is None


async def test_bodies_are_previewed_up_to_the_limit_and_counted(pair, client) -> None:
    proxy, seen, bearer = await pair(inspector=Inspector(body_preview=1000))
    sent = json.dumps({"text": "x" * 50_000})
    headers = {"Origin": ORIGIN, "Content-Type": "application/json"}
    async with client.post(f"{proxy.url}/upload", data=sent, headers=headers) as resp:
        assert resp.status == 200
    async with client.get(f"{proxy.url}/big") as resp:
        assert len(await resp.read()) == 200_000
    async with client.get(f"{proxy.url}/binary") as resp:
        await resp.read()
    upload, big, binary = await exchanges(client, proxy, bearer)
    assert seen[0][2] == sent.encode()  # the upstream got all of it
    assert upload["request_body"] == {
        "content_type": "application/json",
        "text": sent[:1000],
        "size": len(sent),
        "truncated": True,
    }
    assert big["response_body"]["text"] == ("0123456789" * 100)
    assert (big["response_body"]["size"], big["response_body"]["truncated"]) == (200_000, True)
    assert binary["response_body"] is None and binary["request_body"] is None


async def test_replay_sends_the_request_again_marked_as_a_replay(pair, client) -> None:
    proxy, seen, bearer = await pair()
    headers = {"Origin": ORIGIN, "Content-Type": "application/json", "X-Custom": "a"}
    async with client.post(f"{proxy.url}/api/notes?x=1", data='{"n": 1}', headers=headers) as resp:
        assert resp.status == 200
    [original] = await exchanges(client, proxy, bearer)
    url = f"{proxy.url}/__corsproxy/api/replay"
    async with client.post(url, json={"id": original["id"]}, headers=bearer) as resp:
        assert resp.status == 200
        assert await resp.json() == {"replayed": original["id"], "status": 200}
    [replayed] = await exchanges(client, proxy, bearer, since=original["id"])
    assert (replayed["replay"], replayed["replay_of"]) == (True, original["id"])
    assert (replayed["method"], replayed["path"]) == ("POST", "/api/notes?x=1")
    assert replayed["request_body"]["text"] == '{"n": 1}'
    assert header(replayed["request_headers"], "X-Corsproxy-Replay") == []
    assert [(m, h["X-Custom"], h["Origin"], b) for m, h, b in seen] == [
        ("POST", "a", ORIGIN, b'{"n": 1}'),
        ("POST", "a", ORIGIN, b'{"n": 1}'),
    ]
    assert "X-Corsproxy-Replay" not in seen[1][1]  # the marker never reaches the upstream


async def test_a_body_not_kept_whole_is_not_replayed(pair, client) -> None:
    proxy, seen, bearer = await pair()
    headers = {"Content-Type": "application/octet-stream"}
    async with client.post(f"{proxy.url}/upload", data=b"\x00" * 10, headers=headers) as resp:
        assert resp.status == 200
    url = f"{proxy.url}/__corsproxy/api/replay"
    async with client.post(url, json={"id": 1}, headers=bearer) as resp:
        assert resp.status == 409
        assert "body was not kept whole" in (await resp.json())["error"]
    async with client.post(url, json={"id": 99}, headers=bearer) as resp:
        assert resp.status == 404
    async with client.post(url, data="nonsense", headers=bearer) as resp:
        assert resp.status == 400
    assert len(seen) == 1


async def test_a_forged_replay_marker_is_not_a_replay(pair, client) -> None:
    proxy, _, bearer = await pair()
    forged = {"Connection": "X-Corsproxy-Replay", "X-Corsproxy-Replay": "1 0123456789abcdef"}
    async with client.get(f"{proxy.url}/x", headers=forged) as resp:
        assert resp.status == 200
    [kept] = await exchanges(client, proxy, bearer)
    assert kept["replay"] is False


async def test_clear_forgets_every_exchange(pair, client) -> None:
    proxy, _, bearer = await pair()
    async with client.get(f"{proxy.url}/x") as resp:
        assert resp.status == 200
    async with client.post(f"{proxy.url}/__corsproxy/api/clear", headers=bearer) as resp:
        assert resp.status == 200
    assert await exchanges(client, proxy, bearer) == []
    async with client.get(f"{proxy.url}/__corsproxy/api/clear", headers=bearer) as resp:
        assert resp.status == 405  # changes nothing on a GET: no <img src> can clear the list


async def read_events(resp: aiohttp.ClientResponse, count: int) -> list[tuple[str, dict]]:
    """The next `count` events of a stream (comments and retry lines skipped)."""
    found: list[tuple[str, dict]] = []
    kind = None
    while len(found) < count:
        line = (await asyncio.wait_for(resp.content.readline(), 10)).decode().rstrip("\n")
        if line.startswith("event: "):
            kind = line[7:]
        elif line.startswith("data: ") and kind:
            found.append((kind, json.loads(line[6:])))
            kind = None
    return found


async def test_the_event_stream_sends_each_exchange_as_it_finishes(pair, client) -> None:
    proxy, _, bearer = await pair()
    url = f"{proxy.url}/__corsproxy/api/events"
    async with client.get(url, headers=bearer) as stream:
        assert stream.status == 200
        assert stream.headers["Content-Type"] == "text/event-stream"
        asked = {"Origin": ORIGIN, "Access-Control-Request-Method": "DELETE"}
        async with client.options(f"{proxy.url}/n/1", headers=asked) as resp:
            assert resp.status == 204
        async with client.delete(f"{proxy.url}/n/1", headers={"Origin": ORIGIN}) as resp:
            assert resp.status == 200
        (k1, preflight), (k2, request) = await read_events(stream, 2)
    assert (k1, k2) == ("exchange", "exchange")
    assert (preflight["method"], request["method"]) == ("OPTIONS", "DELETE")
    assert request["pair"] == preflight["id"]


async def test_the_event_stream_resumes_after_an_id(pair, client) -> None:
    proxy, _, bearer = await pair()
    for path in ("/a", "/b", "/c"):
        async with client.get(proxy.url + path) as resp:
            assert resp.status == 200
    url = f"{proxy.url}/__corsproxy/api/events"
    async with client.get(url, headers={**bearer, "Last-Event-ID": "1"}) as stream:
        events = await read_events(stream, 2)
    assert [e["path"] for _, e in events] == ["/b", "/c"]


async def test_stopping_the_proxy_ends_open_event_streams(pair, client) -> None:
    proxy, _, bearer = await pair()
    url = f"{proxy.url}/__corsproxy/api/events"
    async with client.get(url, headers=bearer) as stream:
        await stream.content.readline()  # the stream is open
        await proxy.running.stop()
        rest = await asyncio.wait_for(stream.content.read(), 10)
    assert b"event: exchange" not in rest


INSPECTOR_URLS = [
    ("GET", "/__corsproxy/"),
    ("GET", "/__corsproxy/inspector.js"),
    ("GET", "/__corsproxy/inspector.css"),
    ("GET", "/__corsproxy/api/exchanges"),
    ("GET", "/__corsproxy/api/har"),
    ("POST", "/__corsproxy/api/clear"),
    ("GET", "/__corsproxy/nothing-here"),
    ("GET", "/__corsproxy"),
]


@pytest.mark.parametrize("with_token", [True, False], ids=["with the token", "without"])
@pytest.mark.parametrize(("method", "path"), INSPECTOR_URLS)
async def test_no_inspector_url_carries_a_cors_header(
    pair, client, method: str, path: str, with_token: bool
) -> None:
    proxy, _, bearer = await pair()
    headers = {"Origin": ORIGIN, **(bearer if with_token else {})}
    async with client.request(method, proxy.url + path, headers=headers) as resp:
        assert resp.status == 403  # an allowed origin's page is another origin all the same
        assert not [n for n in resp.headers if n.lower().startswith("access-control-")]
    async with client.request(method, proxy.url + path, headers=bearer) as resp:
        assert not [n for n in resp.headers if n.lower().startswith("access-control-")]


@pytest.mark.parametrize("keep_alive", [True, False], ids=["answered early", "via the handler"])
async def test_a_preflight_to_the_inspector_is_never_granted(pair, keep_alive: bool) -> None:
    proxy, seen, _ = await pair()
    close = "" if keep_alive else "Connection: close\r\n"
    preflight = (
        f"OPTIONS /__corsproxy/api/exchanges HTTP/1.1\r\nHost: localhost\r\nOrigin: {ORIGIN}\r\n"
        f"Access-Control-Request-Method: GET\r\nAccess-Control-Request-Headers: authorization\r\n"
        f"{close}\r\n"
    )
    tail = "GET /__corsproxy/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    answer = await raw_request(proxy.port, (preflight + (tail if keep_alive else "")).encode())
    assert answer.startswith(b"HTTP/1.1 403 ")
    assert b"access-control-" not in answer.lower()
    assert seen == []


async def test_the_token_visit_sets_the_cookie_and_goes_to_the_page(pair, client) -> None:
    proxy, _, bearer = await pair()
    token = bearer[AUTH].split()[1]
    url = f"{proxy.url}/__corsproxy/?token={token}"
    async with client.get(url, allow_redirects=False) as resp:
        assert resp.status == 303
        assert resp.headers["Location"] == "/__corsproxy/"
        cookie = resp.headers["Set-Cookie"]
    name = f"corsproxy_inspector_{proxy.port}"
    assert cookie == f"{name}={token}; HttpOnly; SameSite=Strict; Path=/__corsproxy/"
    async with client.get(
        f"{proxy.url}/__corsproxy/", headers={"Cookie": f"{name}={token}"}
    ) as resp:
        assert resp.status == 200
        assert "<title>corsproxy inspector</title>" in await resp.text()
        assert "frame-ancestors 'none'" in resp.headers["Content-Security-Policy"]
    async with client.get(f"{proxy.url}/__corsproxy/?token=wrong{token}") as resp:
        assert resp.status == 403
        assert "inspector: http://.../__corsproxy/?token=..." in await resp.text()


async def test_the_token_is_not_written_to_the_access_log(pair, client) -> None:
    proxy, _, bearer = await pair()
    token = bearer[AUTH].split()[1]
    async with client.get(f"{proxy.url}/__corsproxy/?token={token}", allow_redirects=False):
        pass
    async with client.get(f"{proxy.url}/__corsproxy/?a=1&token={token}x", allow_redirects=False):
        pass
    assert "GET /__corsproxy/?token=… " in proxy.log
    assert "GET /__corsproxy/?a=1&token=… " in proxy.log
    assert token not in proxy.log


async def test_the_host_guard_comes_first(pair, client) -> None:
    proxy, _, bearer = await pair()
    headers = {**bearer, "Host": "evil.test"}
    async with client.get(f"{proxy.url}/__corsproxy/api/exchanges", headers=headers) as resp:
        assert resp.status == 403
        assert (await resp.json())["error"] == "host not allowed"


async def test_the_inspector_turned_off_answers_404(pair, client) -> None:
    proxy, seen, _ = await pair(inspector=Inspector(enabled=False))
    assert proxy.running.proxy.inspector is None
    for path in ("/__corsproxy/", "/__corsproxy/api/exchanges", "/__corsproxy", "/__corsproxy/x"):
        async with client.get(proxy.url + path) as resp:
            assert resp.status == 404, path
    async with client.get(proxy.url + "/__corsproxy/health") as resp:
        assert resp.status == 200
    assert seen == []  # never forwarded upstream either


async def test_the_inspector_own_requests_are_not_kept(pair, client) -> None:
    proxy, _, bearer = await pair()
    for _ in range(3):
        await exchanges(client, proxy, bearer)
    async with client.get(f"{proxy.url}/__corsproxy/health"):
        pass
    assert await exchanges(client, proxy, bearer) == []


async def test_har_download_lists_every_kept_exchange(pair, client) -> None:
    proxy, _, bearer = await pair()
    async with client.get(f"{proxy.url}/a", headers={"Origin": ORIGIN}):
        pass
    async with client.get(f"{proxy.url}/__corsproxy/api/har", headers=bearer) as resp:
        assert resp.status == 200
        disposition = resp.headers["Content-Disposition"]
        document = await resp.json()
    assert disposition.startswith('attachment; filename="corsproxy-')
    assert disposition.endswith('.har"')
    assert document["log"]["version"] == "1.2"
    assert [e["request"]["url"] for e in document["log"]["entries"]] == [
        f"http://127.0.0.1:{proxy.port}/a"
    ]

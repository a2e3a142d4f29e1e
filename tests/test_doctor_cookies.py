"""`corsproxy doctor --credentials` gives each Set-Cookie it receives the cookie verdict
(cors/cookies.py), in text and JSON; without credentials it says the cookies are ignored."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp import web

from corsproxy.doctor import probe

ORIGIN = "http://localhost:5173"  # the backend is on 127.0.0.1: another site
CORS = [
    ("Access-Control-Allow-Origin", ORIGIN),
    ("Access-Control-Allow-Credentials", "true"),
]
COOKIES = ["sid=1; Path=/; SameSite=Lax", "pid=2; Secure; SameSite=None; Partitioned"]


async def login_backend(aiohttp_server: Any) -> str:
    async def handler(request: web.Request) -> web.Response:
        response = web.Response(text="{}")
        for name, value in CORS:
            response.headers.add(name, value)
        for value in COOKIES:
            response.headers.add("Set-Cookie", value)
        return response

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", handler)
    server = await aiohttp_server(app)
    return str(server.make_url("/login"))


async def test_credentials_json_has_a_verdict_per_cookie(aiohttp_server, capsys):
    url = await login_backend(aiohttp_server)
    code = await probe.run_async(url, ORIGIN, "GET", [], True, False, True)
    doc = json.loads(capsys.readouterr().out)
    assert code == 0
    sid, pid = doc["request"]["cookies"]
    assert (sid["name"], sid["cross_site"], sid["page_site"]) == ("sid", True, "http://localhost")
    assert [(b["browser"], b["stored"]) for b in sid["browsers"]] == [
        ("chromium", False),
        ("firefox", False),
        ("safari", False),
    ]
    assert sid["browsers"][0]["reason"].startswith("SameSite=Lax on a cross-site response")
    assert [(b["browser"], b["stored"], b["partition"]) for b in pid["browsers"]] == [
        ("chromium", True, "http://localhost"),
        ("firefox", True, "http://localhost"),
        ("safari", False, None),
    ]


async def test_credentials_text_names_each_browser(aiohttp_server, capsys):
    url = await login_backend(aiohttp_server)
    await probe.run_async(url, ORIGIN, "GET", [], True, False, False)
    text = capsys.readouterr().out
    assert "   cookie sid:\n     ✗ chromium: SameSite=Lax on a cross-site response" in text
    assert (
        "   cookie pid:\n     ✓ chromium: stored and sent back (kept for pages on "
        "http://localhost only)"
    ) in text
    assert "     ✗ safari: Secure over plain http, which Safari refuses even on localhost" in text


@pytest.mark.parametrize("as_json", [True, False], ids=["json", "text"])
async def test_without_credentials_the_cookies_are_ignored(aiohttp_server, capsys, as_json):
    url = await login_backend(aiohttp_server)
    await probe.run_async(url, ORIGIN, "GET", [], False, False, as_json)
    out = capsys.readouterr().out
    if as_json:
        assert json.loads(out)["request"]["cookies"] == "ignored without credentials"
    else:
        assert "! Set-Cookie ignored: the browser stores cookies from this response only" in out
        assert "cookie sid:" not in out

"""Real-server tests for `corsproxy doctor`: small aiohttp backends misconfigured one way each,
diagnosed through probe.run_async()/run() and checked by finding name, exit code and output."""

from __future__ import annotations

import asyncio
import json
import os
import ssl
import sys
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any

import pytest
import trustme
from aiohttp import web
from multidict import CIMultiDict

from corsproxy.doctor import probe

ORIGIN = "http://localhost:5173"
ACAO = "Access-Control-Allow-Origin"
ACAC = "Access-Control-Allow-Credentials"
ACAM = "Access-Control-Allow-Methods"
ACAH = "Access-Control-Allow-Headers"
VARY = ("Vary", "Origin")
Pairs = Sequence[tuple[str, str]]
Serve = Callable[..., Awaitable[Any]]


class Backend:
    """A catch-all aiohttp app that answers OPTIONS and everything else with fixed headers."""

    def __init__(
        self,
        actual: Pairs = (),
        preflight: Pairs = (),
        preflight_status: int = 204,
        status: int = 200,
    ) -> None:
        self.actual, self.preflight = actual, preflight
        self.preflight_status, self.status = preflight_status, status
        self.seen: list[tuple[str, CIMultiDict[str]]] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.seen.append((request.method, CIMultiDict(request.headers)))
        if request.method == "OPTIONS":
            return web.Response(status=self.preflight_status, headers=CIMultiDict(self.preflight))
        return web.Response(status=self.status, text="{}", headers=CIMultiDict(self.actual))

    async def start(self, aiohttp_server: Serve, **kwargs: Any) -> str:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.handle)
        server = await aiohttp_server(app, **kwargs)
        return str(server.make_url("/api"))


async def diagnose_json(
    capsys: pytest.CaptureFixture[str],
    url: str,
    method: str = "GET",
    headers: Sequence[str] = (),
    credentials: bool = False,
    insecure: bool = False,
) -> tuple[int, dict[str, Any]]:
    code = await probe.run_async(url, ORIGIN, method, list(headers), credentials, insecure, True)
    return code, json.loads(capsys.readouterr().out)


def finding_names(doc: dict[str, Any]) -> list[str]:
    return [f["name"] for f in doc["findings"]]


def note_names(doc: dict[str, Any]) -> list[str]:
    return [f["name"] for f in doc["notes"]]


ALLOW = [(ACAO, ORIGIN)]
MISCONFIGURED = [
    pytest.param(
        Backend(),
        "GET",
        [],
        False,
        ["CORSMissingAllowOrigin"],
        id="a backend without CORS headers is missing allow-origin",
    ),
    pytest.param(
        Backend([(ACAO, "http://localhost:3000")]),
        "GET",
        [],
        False,
        ["CORSAllowOriginNotMatchingOrigin"],
        id="a backend that allows another origin does not match",
    ),
    pytest.param(
        Backend([(ACAO, ORIGIN), (ACAO, ORIGIN)]),
        "GET",
        [],
        False,
        ["CORSMultipleAllowOriginNotAllowed"],
        id="a backend that sends allow-origin twice is refused",
    ),
    pytest.param(
        Backend([(ACAO, "*"), (ACAC, "true")]),
        "GET",
        [],
        True,
        ["CORSNotSupportingCredentials"],
        id="a wildcard origin with credentials is refused",
    ),
    pytest.param(
        Backend([(ACAO, ORIGIN), VARY]),
        "GET",
        [],
        True,
        ["CORSMissingAllowCredentials"],
        id="a credentialed request without allow-credentials is refused",
    ),
    pytest.param(
        Backend(ALLOW, ALLOW + [(ACAM, "PUT")], preflight_status=404),
        "PUT",
        [],
        False,
        ["CORSPreflightDidNotSucceed"],
        id="a preflight answered 404 did not succeed",
    ),
    pytest.param(
        Backend(ALLOW, ALLOW + [(ACAM, "PUT")], preflight_status=500),
        "PUT",
        [],
        False,
        ["CORSPreflightDidNotSucceed"],
        id="a preflight answered 500 did not succeed",
    ),
    pytest.param(
        Backend(preflight_status=405),
        "DELETE",
        [],
        False,
        ["CORSMissingAllowOrigin", "CORSPreflightDidNotSucceed"],
        id="a bare 405 preflight fails its origin check first, then its status",
    ),
    pytest.param(
        Backend(ALLOW, ALLOW + [("Location", "/api/")], preflight_status=308),
        "PUT",
        [],
        False,
        ["CORSExternalRedirectNotAllowed"],
        id="a redirected preflight is not allowed",
    ),
    pytest.param(
        Backend(ALLOW, ALLOW + [(ACAM, "GET, POST")]),
        "PUT",
        [],
        False,
        ["CORSMethodNotFound"],
        id="a method the preflight does not allow is not found",
    ),
    pytest.param(
        Backend(ALLOW, ALLOW + [(ACAM, "GET, PATCH")]),
        "patch",
        [],
        False,
        ["CORSMethodNotFound"],
        id="lowercase patch granted as PATCH is not a match",
    ),
    pytest.param(
        Backend([*ALLOW, (ACAC, "true")], [*ALLOW, (ACAC, "true"), (ACAM, "*")]),
        "PUT",
        [],
        True,
        ["CORSMethodNotFound"],
        id="a method wildcard does not count with credentials",
    ),
    pytest.param(
        Backend(ALLOW, ALLOW + [(ACAH, "Content-Type")]),
        "GET",
        ["X-Api-Key: k"],
        False,
        ["CORSMissingAllowHeaderFromPreflight"],
        id="a header the preflight does not allow is missing",
    ),
    pytest.param(
        Backend(ALLOW, ALLOW + [(ACAM, "PUT DELETE")]),
        "PUT",
        [],
        False,
        ["CORSInvalidAllowMethod"],
        id="an Allow-Methods that is not a token list cannot be parsed",
    ),
    pytest.param(
        Backend(ALLOW, ALLOW + [(ACAH, "x-a; x-b")]),
        "GET",
        ["X-A: 1"],
        False,
        ["CORSInvalidAllowHeader"],
        id="an Allow-Headers that is not a token list cannot be parsed",
    ),
]


@pytest.mark.parametrize(("backend", "method", "headers", "credentials", "expected"), MISCONFIGURED)
async def test_misconfigured_backend_is_blocked(
    aiohttp_server: Serve,
    capsys: pytest.CaptureFixture[str],
    backend: Backend,
    method: str,
    headers: list[str],
    credentials: bool,
    expected: list[str],
) -> None:
    url = await backend.start(aiohttp_server)
    code, doc = await diagnose_json(capsys, url, method, headers, credentials)
    assert (code, doc["verdict"], doc["finding"], finding_names(doc)) == (
        1,
        "blocked",
        expected[0],
        expected,
    )
    assert doc["findings"][0]["message"].startswith(
        f"Access to fetch at '{url}' from origin '{ORIGIN}'"
    )


async def test_text_report_explains_and_ends_with_the_verdict(
    aiohttp_server: Serve, capsys: pytest.CaptureFixture[str]
) -> None:
    url = await Backend([("Content-Type", "application/json")]).start(aiohttp_server)
    code = await probe.run_async(url, ORIGIN, "GET", [], False, False, False)
    lines = capsys.readouterr().out.splitlines()
    assert code == 1
    assert lines[-1] == (
        "verdict: blocked — CORSMissingAllowOrigin: No 'Access-Control-Allow-Origin' header is present"
        " on the requested resource."
    )
    assert [line for line in lines if line.startswith("verdict:")] == [lines[-1]]
    assert "   > Origin: http://localhost:5173" in lines
    assert "   < 200 OK" in lines
    assert "   ✗ CORSMissingAllowOrigin: no Access-Control-Allow-Origin header" in lines
    assert (
        "  see:      https://developer.mozilla.org/en-US/docs/Web/HTTP/CORS/Errors/CORSMissingAllowOrigin"
        in lines
    )
    site = url.removesuffix("/api")
    assert f"  fix:      {site} sends no CORS headers at all: put corsproxy in front of it" in (
        " ".join(lines)
    )
    assert f"(corsproxy serve {site}) and call the proxy instead, http://localhost:8080/api" in (
        " ".join(lines)
    )
    assert "cors.allow_origins" not in "\n".join(lines)  # issue 14: the origin is allowed already


async def test_lowercase_patch_is_asked_for_as_the_page_spells_it(
    aiohttp_server: Serve, capsys: pytest.CaptureFixture[str]
) -> None:
    backend = Backend(ALLOW, ALLOW + [(ACAM, "PATCH")])
    code, doc = await diagnose_json(capsys, await backend.start(aiohttp_server), "patch")
    assert code == 1 and [method for method, _ in backend.seen] == ["OPTIONS"]
    assert backend.seen[0][1]["Access-Control-Request-Method"] == "patch"
    assert "case-sensitive" in doc["findings"][0]["detail"]
    assert doc["findings"][0]["message"].endswith(
        "Method patch is not allowed by Access-Control-Allow-Methods in preflight response."
    )


async def test_simple_request_to_a_correct_backend_is_allowed(
    aiohttp_server: Serve, capsys: pytest.CaptureFixture[str]
) -> None:
    backend = Backend([(ACAO, "*"), ("X-Total-Count", "3"), ("Content-Type", "application/json")])
    url = await backend.start(aiohttp_server)
    code = await probe.run_async(url, ORIGIN, "GET", [], False, False, False)
    text = capsys.readouterr().out
    assert code == 0 and text.splitlines()[-1] == "verdict: allowed"
    assert "readable by the page: content-length, content-type" in text
    code, doc = await diagnose_json(capsys, url)
    assert (code, doc["verdict"], doc["finding"], doc["findings"]) == (0, "allowed", None, [])
    assert doc["preflight"]["needed"] is False and doc["preflight"]["request"] is None
    assert note_names(doc) == ["CORSHeaderNotExposed"]
    assert "x-total-count" in doc["readable_headers"]["hidden"]


async def test_credentialed_preflighted_request_sends_what_a_browser_sends(
    aiohttp_server: Serve, capsys: pytest.CaptureFixture[str]
) -> None:
    granted = [(ACAO, ORIGIN), (ACAC, "true"), VARY]
    preflight = [*granted, (ACAM, "PUT"), (ACAH, "Authorization, Content-Type, X-Api-Key")]
    backend = Backend(
        [*granted, ("Access-Control-Expose-Headers", "ETag"), ("ETag", "1")], preflight
    )
    url = await backend.start(aiohttp_server)
    headers = [
        "X-Api-Key: k",
        "Content-Type: application/json",
        "Authorization: Bearer t",
        "Cookie: sid=1",
    ]
    code, doc = await diagnose_json(capsys, url, "put", headers, credentials=True)
    assert (code, doc["verdict"], doc["method"]) == (0, "allowed", "PUT")
    (m1, options), (m2, actual) = backend.seen
    assert (m1, options["Access-Control-Request-Method"], options["Origin"]) == (
        "OPTIONS",
        "PUT",
        ORIGIN,
    )
    assert options["Access-Control-Request-Headers"] == "authorization,content-type,x-api-key"
    assert (
        "Cookie" not in options and "Authorization" not in options and "User-Agent" not in options
    )
    assert (m2, actual["Cookie"], actual["Authorization"], actual["Origin"]) == (
        "PUT",
        "sid=1",
        "Bearer t",
        ORIGIN,
    )
    assert [s["kind"] for s in doc["steps"]] == ["preflight", "request"]
    assert "etag" in doc["readable_headers"]["readable"]


async def test_cookie_is_sent_only_with_credentials(
    aiohttp_server: Serve, capsys: pytest.CaptureFixture[str]
) -> None:
    backend = Backend([(ACAO, "*")])
    code, _ = await diagnose_json(
        capsys, await backend.start(aiohttp_server), headers=["Cookie: sid=1"]
    )
    assert code == 0 and "Cookie" not in backend.seen[0][1]


async def test_notes_do_not_block(
    aiohttp_server: Serve, capsys: pytest.CaptureFixture[str]
) -> None:
    preflight = [*ALLOW, (ACAM, "DELETE"), ("Access-Control-Max-Age", "86400")]
    url = await Backend(ALLOW, preflight).start(aiohttp_server)
    code, doc = await diagnose_json(capsys, url, "DELETE")
    assert (code, doc["verdict"]) == (0, "allowed")
    assert note_names(doc) == ["CORSMaxAgeCapped", "CORSMissingVaryOrigin"]


async def test_same_origin_request_needs_no_cors(
    aiohttp_server: Serve, capsys: pytest.CaptureFixture[str]
) -> None:
    backend = Backend()
    url = await backend.start(aiohttp_server)
    own_origin = url.removesuffix("/api")
    code = await probe.run_async(url, own_origin, "GET", ["X-A: 1"], False, False, True)
    doc = json.loads(capsys.readouterr().out)
    assert (code, doc["verdict"], [s["kind"] for s in doc["steps"]]) == (0, "allowed", ["request"])
    assert doc["steps"][0]["cors"] is False and "Origin" not in backend.seen[0][1]


async def two_origins(aiohttp_server: Serve, first: Backend, second: Backend) -> tuple[str, str]:
    target = await second.start(aiohttp_server)
    first.actual = [*first.actual, ("Location", target)]
    return await first.start(aiohttp_server), target


async def test_redirect_to_another_origin_sends_origin_null(
    aiohttp_server: Serve, capsys: pytest.CaptureFixture[str]
) -> None:
    second = Backend([(ACAO, ORIGIN), VARY])
    url, target = await two_origins(
        aiohttp_server, Backend([(ACAO, ORIGIN), VARY], status=302), second
    )
    code, doc = await diagnose_json(capsys, url)
    assert (code, finding_names(doc)) == (1, ["CORSAllowOriginNotMatchingOrigin"])
    assert second.seen[0][1]["Origin"] == "null"
    assert doc["findings"][0]["message"].startswith(
        f"Access to fetch at '{target}' (redirected from '{url}') from origin '{ORIGIN}'"
    )
    assert "Origin: null" in doc["findings"][0]["detail"]


async def test_redirect_to_another_origin_passes_when_it_allows_any_origin(
    aiohttp_server: Serve, capsys: pytest.CaptureFixture[str]
) -> None:
    url, target = await two_origins(
        aiohttp_server, Backend([(ACAO, "*")], status=307), Backend([(ACAO, "*")])
    )
    code, doc = await diagnose_json(capsys, url)
    assert (code, doc["verdict"], [s["request"]["url"] for s in doc["steps"]]) == (
        0,
        "allowed",
        [url, target],
    )
    assert "'null' from here on" in doc["steps"][0]["note"]


async def test_redirect_response_must_pass_the_cors_check_itself(
    aiohttp_server: Serve, capsys: pytest.CaptureFixture[str]
) -> None:
    second = Backend([(ACAO, "*")])
    url, _ = await two_origins(aiohttp_server, Backend(status=302), second)
    code, doc = await diagnose_json(capsys, url)
    assert (code, finding_names(doc), second.seen) == (1, ["CORSMissingAllowOrigin"], [])


async def test_redirect_to_a_url_with_credentials_is_refused(
    aiohttp_server: Serve, capsys: pytest.CaptureFixture[str]
) -> None:
    second = Backend([(ACAO, "*")])
    target = await second.start(aiohttp_server)
    first = Backend(
        [(ACAO, "*"), ("Location", target.replace("http://", "http://user:secret@"))], status=302
    )
    code, doc = await diagnose_json(capsys, await first.start(aiohttp_server))
    assert (code, finding_names(doc), second.seen) == (1, ["CORSRedirectContainsCredentials"], [])


async def test_preflight_runs_again_after_a_cross_origin_redirect(
    aiohttp_server: Serve, capsys: pytest.CaptureFixture[str]
) -> None:
    tainted = [(ACAO, "null"), (ACAM, "PUT"), (ACAH, "x-api-key")]
    second = Backend([(ACAO, "null")], tainted)
    first = Backend(ALLOW, ALLOW + [(ACAM, "PUT"), (ACAH, "x-api-key")], status=307)
    url, _ = await two_origins(aiohttp_server, first, second)
    code, doc = await diagnose_json(capsys, url, "PUT", ["X-Api-Key: k"])
    assert (code, [s["kind"] for s in doc["steps"]]) == (
        0,
        ["preflight", "request", "preflight", "request"],
    )
    assert [(m, h["Origin"]) for m, h in second.seen] == [("OPTIONS", "null"), ("PUT", "null")]


async def test_non_http_url_is_not_a_cors_request(capsys: pytest.CaptureFixture[str]) -> None:
    code = await probe.run_async("ftp://127.0.0.1/x", ORIGIN, "GET", [], False, False, False)
    lines = capsys.readouterr().out.splitlines()
    assert code == 1
    assert (
        lines[-1]
        == 'verdict: blocked — CORSRequestNotHttp: Fetch API cannot load ftp://127.0.0.1/x. URL scheme "ftp" is not supported.'
    )


@pytest.mark.parametrize(
    "host",
    [
        pytest.param("127.0.0.1", id="a refused IPv4 address"),
        pytest.param("localhost", id="a refused localhost"),
    ],
)
async def test_unreachable_host_is_bad_use(
    unused_tcp_port: int, capsys: pytest.CaptureFixture[str], host: str
) -> None:
    port = unused_tcp_port  # pytest-asyncio's free port: nothing listens on it
    code = await probe.run_async(
        f"http://{host}:{port}/api", ORIGIN, "GET", [], False, False, False
    )
    out, err = capsys.readouterr()
    assert (code, out, err) == (
        2,
        "",
        f"corsproxy doctor: cannot reach http://{host}:{port}: connection refused\n",
    )


async def test_server_that_hangs_up_did_not_succeed(capsys: pytest.CaptureFixture[str]) -> None:
    async def hang_up(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.close()

    server = await asyncio.start_server(hang_up, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server:
        code, doc = await diagnose_json(capsys, f"http://127.0.0.1:{port}/api")
    assert (code, finding_names(doc)) == (1, ["CORSDidNotSucceed"])
    assert (
        doc["findings"][0]["message"] == f"GET http://127.0.0.1:{port}/api net::ERR_EMPTY_RESPONSE"
    )


async def test_untrusted_certificate_fails_unless_insecure(
    aiohttp_server: Serve, capsys: pytest.CaptureFixture[str]
) -> None:
    ca = trustme.CA()
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    url = await Backend([(ACAO, "*")]).start(aiohttp_server, ssl=context)
    assert url.startswith("https://")
    code, doc = await diagnose_json(capsys, url)
    assert (code, finding_names(doc)) == (1, ["CORSDidNotSucceed"])
    assert doc["findings"][0]["message"].endswith("net::ERR_CERT_AUTHORITY_INVALID")
    code, doc = await diagnose_json(capsys, url, insecure=True)
    assert (code, doc["verdict"]) == (0, "allowed")


BAD_USE = [
    pytest.param(
        "http://127.0.0.1:1/",
        ORIGIN,
        "GET",
        ["NoColon"],
        "bad -H 'NoColon': expected 'Name: value'",
        id="a header without a colon",
    ),
    pytest.param(
        "http://127.0.0.1:1/",
        ORIGIN,
        "GET",
        ["Bad Name: x"],
        "bad -H 'Bad Name: x': expected 'Name: value'",
        id="a header name with a space",
    ),
    pytest.param(
        "http://127.0.0.1:1/",
        "localhost:5173",
        "GET",
        [],
        "bad origin 'localhost:5173'",
        id="an origin without a scheme",
    ),
    pytest.param(
        "http://127.0.0.1:1/",
        ORIGIN + "/",
        "GET",
        [],
        "(an origin has no trailing slash)",
        id="an origin with a trailing slash",
    ),
    pytest.param(
        "localhost:8000/api",
        ORIGIN,
        "GET",
        [],
        "bad URL 'localhost:8000/api'",
        id="a URL without a scheme",
    ),
    pytest.param(
        "http://u:p@127.0.0.1:1/", ORIGIN, "GET", [], "user:password@", id="a URL with credentials"
    ),
    pytest.param(
        "http://127.0.0.1:1/",
        ORIGIN,
        "GET",
        ["Origin: http://x"],
        "with --origin",
        id="an Origin header given with -H",
    ),
    pytest.param(
        "http://127.0.0.1:1/",
        ORIGIN,
        "TRACE",
        [],
        "forbidden method TRACE",
        id="a forbidden method",
    ),
]


@pytest.mark.parametrize(("url", "origin", "method", "headers", "message"), BAD_USE)
async def test_bad_use_exits_2_with_a_plain_message(
    capsys: pytest.CaptureFixture[str],
    url: str,
    origin: str,
    method: str,
    headers: list[str],
    message: str,
) -> None:
    code = await probe.run_async(url, origin, method, headers, False, False, False)
    out, err = capsys.readouterr()
    assert (code, out) == (2, "")
    assert err.startswith("corsproxy doctor: ") and message in err and err.count("\n") == 1


async def test_json_document_has_every_key(
    aiohttp_server: Serve, capsys: pytest.CaptureFixture[str]
) -> None:
    url = await Backend(ALLOW, ALLOW + [(ACAM, "PUT")], preflight_status=404).start(aiohttp_server)
    code, doc = await diagnose_json(capsys, url, "PUT")
    assert code == 1
    assert set(doc) == {
        "url",
        "origin",
        "method",
        "credentials",
        "preflight",
        "request",
        "steps",
        "findings",
        "notes",
        "readable_headers",
        "engines",
        "preflight_only",
        "verdict",
        "finding",
    }
    assert (doc["url"], doc["origin"], doc["method"], doc["credentials"]) == (
        url,
        ORIGIN,
        "PUT",
        False,
    )
    preflight = doc["preflight"]
    assert set(preflight) >= {"needed", "reason", "request", "response", "findings"}
    assert (preflight["needed"], preflight["response"]["status"]) == (True, 404)
    assert ["Access-Control-Request-Method", "PUT"] in preflight["request"]["headers"]
    assert [f["name"] for f in preflight["findings"]] == ["CORSPreflightDidNotSucceed"]
    assert doc["request"] is None and doc["readable_headers"] is None
    assert doc["findings"][0]["mdn_url"].endswith("/CORSPreflightDidNotSucceed")
    assert doc["findings"][0]["message"].endswith(
        "Response to preflight request doesn't pass access control check: It does not have HTTP ok status."
    )


async def test_run_is_the_blocking_entry_point(
    aiohttp_server: Serve, capsys: pytest.CaptureFixture[str]
) -> None:
    url = await Backend([(ACAO, "*")]).start(aiohttp_server)
    code = await asyncio.to_thread(probe.run, url, ORIGIN, "GET", [], False, False, False)
    assert (code, capsys.readouterr().out.splitlines()[-1]) == (0, "verdict: allowed")


async def test_module_runs_from_the_command_line(aiohttp_server: Serve) -> None:
    url = await Backend().start(aiohttp_server)
    root = str(Path(__file__).resolve().parents[1])
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "corsproxy",
        "doctor",
        url,
        "--origin",
        ORIGIN,
        "-H",
        "X-A: 1",
        "--json",
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": root},
    )
    out, _ = await process.communicate()
    assert (process.returncode, json.loads(out)["finding"]) == (1, "CORSMissingAllowOrigin")


async def test_a_redirect_loop_stops_after_twenty_redirects(
    aiohttp_server: Serve, capsys: pytest.CaptureFixture[str]
) -> None:
    backend = Backend([(ACAO, "*"), ("Location", "/api")], status=302)
    code, doc = await diagnose_json(capsys, await backend.start(aiohttp_server))
    assert (code, finding_names(doc), len(backend.seen)) == (1, ["CORSDidNotSucceed"], 21)
    assert doc["findings"][0]["message"].endswith("net::ERR_TOO_MANY_REDIRECTS")


async def test_a_redirect_to_a_dead_port_did_not_succeed(
    aiohttp_server: Serve, capsys: pytest.CaptureFixture[str], unused_tcp_port: int
) -> None:
    dead = f"http://127.0.0.1:{unused_tcp_port}/api"
    url = await Backend([(ACAO, "*"), ("Location", dead)], status=307).start(aiohttp_server)
    code, doc = await diagnose_json(capsys, url)
    assert (code, finding_names(doc)) == (1, ["CORSDidNotSucceed"])
    assert doc["findings"][0]["message"] == f"GET {dead} net::ERR_CONNECTION_REFUSED"

"""`corsproxy doctor`, further (SPEC "doctor, further"; issues 14 and 17): a body, the preflight
alone, the notice before a real request, the proxy as the fix for a target without CORS,
Local Network Access, and the engines (Chromium, Firefox) where they differ."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

from corsproxy.cors import judge, localnet
from corsproxy.cors.engines import CHROMIUM, FIREFOX
from corsproxy.doctor import probe
from tests.test_doctor import ACAH, ACAM, ACAO, ALLOW, ORIGIN, VARY, Backend, Serve

GRANT = [(ACAO, ORIGIN), (ACAM, "POST, PUT, DELETE"), (ACAH, "content-type, x-custom, dpr")]


class Recorder(Backend):
    """A Backend that also keeps each request's body."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.bodies: list[bytes] = []

    async def handle(self, request: web.Request) -> web.Response:
        self.bodies.append(await request.read())
        return await super().handle(request)


async def doctor(
    capsys: pytest.CaptureFixture[str], url: str, *args: Any, origin: str = ORIGIN, **options: Any
) -> tuple[int, dict[str, Any], str]:
    method = args[0] if args else "GET"
    headers = args[1] if len(args) > 1 else []
    code = await probe.run_async(url, origin, method, headers, False, False, True, **options)
    out, err = capsys.readouterr()
    return code, json.loads(out), err


# ---- --data, --data-file, --preflight-only, the notice -------------------------------------


async def test_data_is_sent_as_a_string_body_with_text_plain(aiohttp_server: Serve, capsys):
    backend = Recorder(ALLOW + [VARY], GRANT)
    url = await backend.start(aiohttp_server)
    code, doc, err = await doctor(capsys, url, "POST", [], data="héllo")

    assert code == 0 and backend.bodies == ["héllo".encode()]  # a text/plain POST: no preflight
    assert [m for m, _ in backend.seen] == ["POST"]
    assert backend.seen[0][1]["Content-Type"] == "text/plain;charset=UTF-8"
    assert err.splitlines() == [
        f"corsproxy doctor: sending the actual POST {url} now, as the browser would: the server"
        " may act on it (--preflight-only stops before it)"
    ]


async def test_data_file_is_sent_as_bytes_after_the_preflight(
    aiohttp_server: Serve, capsys, tmp_path: Path
):
    backend = Recorder(ALLOW + [VARY], GRANT)
    url = await backend.start(aiohttp_server)
    (tmp_path / "body.json").write_bytes(b'{"a": 1}')
    headers = ["Content-Type: application/json"]
    code, doc, _ = await doctor(capsys, url, "PUT", headers, data_file=str(tmp_path / "body.json"))

    assert code == 0 and [m for m, _ in backend.seen] == ["OPTIONS", "PUT"]
    assert backend.bodies == [b"", b'{"a": 1}']


async def test_preflight_only_sends_the_options_and_nothing_else(aiohttp_server: Serve, capsys):
    """issue 14: a backend that counts requests receives only the OPTIONS."""
    backend = Recorder(ALLOW + [VARY], GRANT)
    url = await backend.start(aiohttp_server)
    code, doc, err = await doctor(
        capsys, url, "DELETE", ["X-Custom: 1"], preflight_only=True, data="x"
    )

    assert [m for m, _ in backend.seen] == ["OPTIONS"]
    assert (code, doc["verdict"], doc["preflight_only"]) == (0, "allowed", True)
    assert [step["kind"] for step in doc["steps"]] == ["preflight"]
    assert err == ""  # nothing real was sent, so no notice


async def test_preflight_only_reports_a_failed_preflight(aiohttp_server: Serve, capsys):
    backend = Backend(ALLOW, [], preflight_status=405)
    url = await backend.start(aiohttp_server)
    code, doc, _ = await doctor(capsys, url, "PUT", preflight_only=True)

    assert (code, doc["finding"]) == (1, "CORSMissingAllowOrigin")
    assert [m for m, _ in backend.seen] == ["OPTIONS"]


async def test_preflight_only_without_a_preflight_sends_nothing(aiohttp_server: Serve, capsys):
    backend = Backend(ALLOW)
    url = await backend.start(aiohttp_server)
    code = await probe.run_async(url, ORIGIN, "GET", [], False, False, False, preflight_only=True)

    assert code == 0 and backend.seen == []
    last = capsys.readouterr().out.splitlines()[-1]
    assert (
        last == "verdict: allowed — no preflight is needed, and nothing was sent (--preflight-only)"
    )


async def test_a_get_gives_no_notice(aiohttp_server: Serve, capsys):
    url = await Backend(ALLOW + [VARY]).start(aiohttp_server)
    code, _, err = await doctor(capsys, url)
    assert (code, err) == (0, "")


@pytest.mark.parametrize(
    ("method", "options", "said"),
    [
        pytest.param("GET", {"data": "x"}, "fetch() refuses a body with GET", id="GET with a body"),
        pytest.param(
            "POST", {"data_file": "/nonexistent/body"}, "cannot read --data-file", id="no such file"
        ),
        pytest.param(
            "POST", {"data": "x", "data_file": "f"}, "not both", id="--data and --data-file"
        ),
    ],
)
async def test_body_bad_use_exits_2(aiohttp_server: Serve, capsys, method, options, said):
    backend = Backend(ALLOW)
    url = await backend.start(aiohttp_server)
    code = await probe.run_async(url, ORIGIN, method, [], False, False, False, **options)
    assert code == 2 and said in capsys.readouterr().err and backend.seen == []


def test_command_line_preflight_only(tmp_path: Path) -> None:
    """The real command: the flags reach doctor, the backend counts only the OPTIONS."""
    script = tmp_path / "backend.py"
    script.write_text(
        "import http.server, sys\n"
        "class H(http.server.BaseHTTPRequestHandler):\n"
        "    def _any(self):\n"
        "        sys.stderr.write('GOT ' + self.command + '\\n'); sys.stderr.flush()\n"
        "        self.send_response(204); self.send_header('Access-Control-Allow-Origin', '*')\n"
        "        self.send_header('Access-Control-Allow-Methods', '*'); self.end_headers()\n"
        "    do_OPTIONS = do_POST = do_DELETE = _any\n"
        "    def log_message(self, *a): pass\n"
        "s = http.server.HTTPServer(('127.0.0.1', 0), H)\n"
        "print(s.server_port, flush=True); s.handle_request(); s.server_close()\n"
    )
    backend = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    port = backend.stdout.readline().strip()  # type: ignore[union-attr]
    url = f"http://127.0.0.1:{port}/api/users/1"
    args = ["doctor", url, "--origin", ORIGIN, "--method", "DELETE", "--preflight-only"]
    done = subprocess.run(
        [sys.executable, "-m", "corsproxy", *args], capture_output=True, text=True
    )
    backend.wait(timeout=10)

    assert done.returncode == 0, done.stdout + done.stderr
    assert backend.stderr.read().splitlines() == ["GOT OPTIONS"]  # type: ignore[union-attr]
    assert done.stdout.splitlines()[-1].startswith("verdict: allowed so far")


# ---- the fix: the proxy in front, and Set-Cookie said once ----------------------------------


async def test_a_refusing_corsproxy_keeps_the_allow_origins_fix(aiohttp_server: Serve, capsys):
    """Vary: Origin and no grant is what corsproxy sends a refused origin: the catalog's fix."""
    url = await Backend([VARY]).start(aiohttp_server)
    _, doc, _ = await doctor(capsys, url)
    assert doc["findings"][0]["fix"].endswith("list the origin in cors.allow_origins.")


async def test_set_cookie_is_not_in_the_expose_headers_note(aiohttp_server: Serve, capsys):
    """issue 14: "Set-Cookie is never readable ..." then "fix: List them in
    Access-Control-Expose-Headers" contradicted itself."""
    cookie = ("Set-Cookie", "sid=1; Path=/")
    url = await Backend(ALLOW + [VARY, cookie]).start(aiohttp_server)
    code = await probe.run_async(url, ORIGIN, "GET", [], False, False, False)
    text = capsys.readouterr().out

    assert code == 0 and "note:" not in text and "List them" not in text
    assert "set-cookie (never readable: the browser stores the cookie itself)" in text

    url = await Backend(ALLOW + [VARY, cookie, ("X-Total", "3")]).start(aiohttp_server)
    _, doc, _ = await doctor(capsys, url)
    [note] = doc["notes"]
    assert note["detail"] == "the page cannot read x-total" and "set-cookie" not in note["detail"]


# ---- Local Network Access -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("origin", "expected"),
    [
        pytest.param("http://192.168.1.20:5173", ("blocked", "allowed"), id="a LAN page over http"),
        pytest.param("http://8.8.8.8", ("blocked", "allowed"), id="a public page over http"),
        pytest.param("https://192.168.1.20:5173", ("allowed", "allowed"), id="a secure LAN page"),
        pytest.param("http://localhost:5173", ("allowed", "allowed"), id="a localhost page"),
        pytest.param("http://127.0.0.2:5173", ("allowed", "allowed"), id="another loopback page"),
    ],
)
async def test_local_network_access(aiohttp_server: Serve, capsys, origin, expected):
    """Nothing is sent to the page's address: doctor only classifies it."""
    backend = Backend([(ACAO, "*")])
    url = await backend.start(aiohttp_server)
    code, doc, _ = await doctor(capsys, url, origin=origin)
    engines = doc["engines"]

    assert (engines["chromium"]["verdict"], engines["firefox"]["verdict"]) == expected
    assert code == (1 if "blocked" in expected else 0)
    if expected[0] == "blocked":
        assert engines["chromium"]["finding"] == "CORSLocalNetworkAccessDenied"
        assert doc["findings"][0]["engines"] == {"chromium": "CORSLocalNetworkAccessDenied"}
        assert "open the page on localhost" in doc["findings"][0]["fix"].lower()
        assert [m for m, _ in backend.seen] == ["GET"]  # Firefox still sends it
    if origin.startswith("https"):
        assert [n["name"] for n in doc["notes"]] == ["CORSLocalNetworkAccessDenied"]


@pytest.mark.parametrize(
    ("address", "space"),
    [
        ("127.0.0.1", "loopback"),
        ("::1", "loopback"),
        ("::ffff:127.0.0.1", "loopback"),
        ("10.1.2.3", "local"),
        ("172.16.0.1", "local"),
        ("192.168.1.20", "local"),
        ("169.254.1.1", "local"),
        ("fd00::1", "local"),
        ("8.8.8.8", "public"),
    ],
)
def test_address_space(address: str, space: str) -> None:
    assert localnet.address_space(address) == space


# ---- the engines ----------------------------------------------------------------------------


async def test_engines_differ_on_a_client_hint(aiohttp_server: Serve, capsys):
    """Chromium sends DPR without a preflight; Firefox preflights it, and the 404 blocks it."""
    backend = Backend(ALLOW + [VARY], ALLOW, preflight_status=404)
    url = await backend.start(aiohttp_server)
    code, doc, _ = await doctor(capsys, url, "GET", ["DPR: 2"])

    assert doc["engines"]["chromium"] == {
        "name": "Chromium 150",
        "verdict": "allowed",
        "finding": None,
        "preflight": False,
    }
    assert doc["engines"]["firefox"] == {
        "name": "Firefox 140 ESR",
        "verdict": "blocked",
        "finding": "CORSPreflightDidNotSucceed",
        "preflight": True,
    }
    assert (code, doc["verdict"]) == (1, "blocked")  # blocked in one engine is blocked
    assert [(s["kind"], s["engines"]) for s in doc["steps"]] == [
        ("preflight", ["firefox"]),
        ("request", ["chromium"]),
    ]


async def test_engines_name_an_invalid_allow_origin_each_their_way(aiohttp_server: Serve, capsys):
    url = await Backend([(ACAO, "localhost")]).start(aiohttp_server)
    code = await probe.run_async(url, ORIGIN, "GET", [], False, False, False)
    lines = capsys.readouterr().out.splitlines()

    assert code == 1
    assert lines[-1].startswith(
        "verdict: blocked — CORSInvalidAllowOrigin (Firefox 140 ESR names it"
        " CORSAllowOriginNotMatchingOrigin): "
    )


async def test_wildcard_with_authorization_is_allowed_with_a_warning(aiohttp_server: Serve, capsys):
    url = await Backend(ALLOW + [VARY], ALLOW + [(ACAH, "*")]).start(aiohttp_server)
    code, doc, _ = await doctor(capsys, url, "GET", ["Authorization: Bearer t"])

    assert (code, doc["verdict"]) == (0, "allowed")
    [warning] = [n for n in doc["notes"] if n["name"] == "CORSWildcardDoesNotCoverAuthorization"]
    assert "expected to enforce" in warning["detail"]


@pytest.mark.parametrize(
    ("headers", "chromium", "firefox", "standard"),
    [
        pytest.param({"DPR": "2"}, False, True, True, id="DPR: Chromium safelists the hint"),
        pytest.param({"Save-Data": "on"}, False, True, True, id="Save-Data on"),
        pytest.param({"Save-Data": "off"}, True, True, True, id="Save-Data off is not safelisted"),
        pytest.param({"Viewport-Width": "x"}, True, True, True, id="a malformed hint"),
        pytest.param({"Range": "BYTES=0-10"}, False, True, True, id="BYTES: Chromium 150 any case"),
        pytest.param(
            {"Range": "bytes=0-" + "9" * 20}, True, True, False, id="a range beyond 64 bits"
        ),
        pytest.param(
            {"Range": f"bytes=0-{2**63 - 1}"}, False, False, False, id="a range of 2**63 - 1"
        ),
    ],
)
def test_engines_preflight_need(headers, chromium, firefox, standard) -> None:
    pairs = list(headers.items())
    assert judge.needs_preflight("GET", pairs, CHROMIUM).needed == chromium
    assert judge.needs_preflight("GET", pairs, FIREFOX).needed == firefox
    assert judge.needs_preflight("GET", pairs).needed == standard

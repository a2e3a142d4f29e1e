"""`corsproxy doctor` and Chromium judge the same request alike (issue 5, point 4).

For each backend that does CORS itself (rightly, or wrongly in one way: servers.CORS_CASES and
the /wrong/ endpoints), the page runs fetch() with a method, headers and credentials mode, and
probe.diagnose() sends the same request from the same origin. The verdicts must agree
(fetch() resolved = allowed, TypeError = blocked); where Chromium blocks, the console message
it logged must be the finding's Chromium sentence, character for character; where it allows,
the response headers JavaScript can read must be those doctor lists as readable.

/cors/preflight-404-granted answers any actual request correctly but fails every preflight,
so a request sent there is allowed exactly when the browser sends no preflight: the rows on
the request-header safelist use it to ask "would Chromium preflight this?".
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from dataclasses import dataclass, field
from typing import Any

import pytest

from corsproxy.doctor import probe
from tests.e2e.conftest import (
    FAILED,
    LAN_HOST,
    REQUIRE_ENV,
    TIMEOUT,
    OpenPage,
    Proxies,
    Servers,
    Tab,
)
from tests.e2e.firefox_console import INSTALL as FIREFOX_INSTALL
from tests.e2e.firefox_console import Firefox, firefox_missing

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

BLOCKED = "has been blocked by CORS policy"
NET_ERROR = "Failed to load resource: net::"
CUSTOM = {"X-Custom": "1"}
PREFLIGHT_FAILS = "/cors/preflight-404-granted"


@dataclass(frozen=True)
class Case:
    """One request and the finding doctor names for it (None: allowed)."""

    path: str  # on the backend, or on the default proxy (via_proxy), or a whole URL
    finding: str | None
    method: str = "GET"
    headers: dict[str, str] = field(default_factory=dict)
    credentials: bool = False
    via_proxy: bool = False
    page_host: str = "localhost"
    bug: str | None = None  # doctor and Chromium disagree: the test is xfail(strict)


def put(path: str, finding: str | None, credentials: bool = False, **more: Any) -> Case:
    """A preflighted request: PUT with a custom header."""
    return Case(path, finding, "PUT", CUSTOM, credentials, **more)


def safelist(headers: dict[str, str], preflighted: bool, method: str = "GET", **more) -> Case:
    """Does this request go without a preflight? (see the module docstring)"""
    finding = "CORSPreflightDidNotSucceed" if preflighted else None
    return Case(PREFLIGHT_FAILS, finding, method, headers, **more)


CASES: dict[str, Case] = {
    # ---- the actual response's CORS check (simple GETs)
    "no Access-Control-Allow-Origin at all": Case("/api/items", "CORSMissingAllowOrigin"),
    "Allow-Origin names another origin": Case(
        "/wrong/other-origin", "CORSAllowOriginNotMatchingOrigin"
    ),
    "Allow-Origin sent twice": Case(
        "/wrong/two-values", "CORSMultipleAllowOriginNotAllowed", credentials=True
    ),
    "'*' with credentials": Case(
        "/wrong/star-with-credentials", "CORSNotSupportingCredentials", credentials=True
    ),
    "'*' without credentials is allowed": Case("/wrong/star-with-credentials", None),
    "a reflected origin without Vary is allowed (a note only)": Case(
        "/wrong/reflect-without-vary", None
    ),
    "Allow-Credentials missing under credentials": Case(
        "/cors/no-credentials", "CORSMissingAllowCredentials", credentials=True
    ),
    "Allow-Credentials missing is fine without credentials": Case("/cors/no-credentials", None),
    "Allow-Credentials: TRUE is not 'true'": Case(
        "/cors/credentials-uppercase", "CORSMissingAllowCredentials", credentials=True
    ),
    "Allow-Credentials sent twice is 'true, true'": Case(
        "/cors/credentials-twice", "CORSMissingAllowCredentials", credentials=True
    ),
    "Allow-Origin with a trailing slash": Case(
        "/cors/trailing-slash", "CORSAllowOriginNotMatchingOrigin"
    ),
    "Allow-Origin in capitals": Case("/cors/uppercase-origin", "CORSAllowOriginNotMatchingOrigin"),
    "Allow-Origin: null for a real origin": Case(
        "/cors/null-origin", "CORSAllowOriginNotMatchingOrigin"
    ),
    "Allow-Origin that is not an origin": Case("/cors/not-an-origin", "CORSInvalidAllowOrigin"),
    "a credentialed GET to a reflecting backend is allowed": Case(
        "/cors/reflect", None, credentials=True
    ),
    # ---- which response headers JavaScript reads
    "Expose-Headers lists one of two custom headers": Case("/cors/expose-some", None),
    "Expose-Headers: * exposes every name without credentials": Case("/cors/expose-star", None),
    "Expose-Headers: * is only a name under credentials": Case(
        "/cors/expose-star", None, credentials=True
    ),
    # ---- the preflight
    "preflight 404 without CORS headers": put("/cors/preflight-404", "CORSMissingAllowOrigin"),
    "preflight 405 without CORS headers": put("/cors/preflight-405", "CORSMissingAllowOrigin"),
    "preflight 404 with the right Allow-Origin": put(
        "/cors/preflight-404-granted", "CORSPreflightDidNotSucceed"
    ),
    "preflight 405 with the right Allow-Origin": put(
        "/cors/preflight-405-granted", "CORSPreflightDidNotSucceed"
    ),
    "preflight redirected": put("/cors/preflight-redirect", "CORSExternalRedirectNotAllowed"),
    "preflight redirected with CORS headers on the 307": put(
        "/cors/preflight-redirect-granted", "CORSExternalRedirectNotAllowed"
    ),
    "preflight 204 without Allow-Origin": put(
        "/cors/preflight-no-origin", "CORSMissingAllowOrigin"
    ),
    "preflight '*' under credentials": put(
        "/cors/preflight-star-origin", "CORSNotSupportingCredentials", credentials=True
    ),
    "preflight without Allow-Credentials under credentials": put(
        "/cors/preflight-no-credentials", "CORSMissingAllowCredentials", credentials=True
    ),
    "Allow-Methods lacks the method": put("/cors/methods-get-post", "CORSMethodNotFound"),
    "Allow-Methods '*' without credentials is allowed": put("/cors/methods-star", None),
    "Allow-Methods '*' is only a name under credentials": put(
        "/cors/methods-star", "CORSMethodNotFound", credentials=True
    ),
    "Allow-Methods that cannot be parsed": put(
        "/cors/methods-semicolons", "CORSInvalidAllowMethod"
    ),
    # Chromium 156 compares the method case-sensitively, as Fetch says (no longer uppercased).
    "lowercase patch against PATCH granted": Case(
        "/cors/methods-uppercase", "CORSMethodNotFound", "patch", CUSTOM
    ),
    "lowercase patch granted as patch is allowed": Case("/cors/reflect", None, "patch", CUSTOM),
    "Allow-Headers lacks the header": put(
        "/cors/headers-content-type", "CORSMissingAllowHeaderFromPreflight"
    ),
    "Allow-Headers '*' without credentials is allowed": put("/cors/headers-star", None),
    "Allow-Headers '*' is only a name under credentials": put(
        "/cors/headers-star", "CORSMissingAllowHeaderFromPreflight", credentials=True
    ),
    "Allow-Headers '*, authorization' covers Authorization": Case(
        "/cors/headers-star-and-authorization",
        None,
        "PUT",
        {"Authorization": "Bearer x", "X-Custom": "1"},
    ),
    "Allow-Headers that cannot be parsed": put(
        "/cors/headers-semicolons", "CORSInvalidAllowHeader"
    ),
    "Max-Age of a day is allowed (a note only)": put("/cors/max-age-a-day", None),
    "a credentialed PUT granted by name is allowed": put("/cors/reflect", None, credentials=True),
    "'*' everywhere allows a PUT without credentials": put("/cors/star", None),
    "a JSON POST whose Content-Type is granted is allowed": Case(
        "/cors/headers-content-type", None, "POST", {"Content-Type": "application/json"}
    ),
    # ---- what needs a preflight at all
    "an Accept of 128 bytes is safelisted": safelist({"Accept": "a/" + "b" * 126}, False),
    "an Accept of 129 bytes is preflighted": safelist({"Accept": "a/" + "b" * 127}, True),
    "an Accept with a quote is preflighted": safelist({"Accept": 'text/"x"'}, True),
    "an Accept-Language of 128 bytes is safelisted": safelist(
        {"Accept-Language": "a" * 128}, False
    ),
    "Accept-Language with an underscore is preflighted": safelist(
        {"Accept-Language": "en_US"}, True
    ),
    "Content-Language with a quote is preflighted": safelist({"Content-Language": 'de"'}, True),
    "Content-Type text/plain with a charset is safelisted": safelist(
        {"Content-Type": "text/plain;charset=utf-8"}, False, "POST"
    ),
    "Content-Type TEXT/PLAIN is safelisted": safelist(
        {"Content-Type": "TEXT/PLAIN"}, False, "POST"
    ),
    "Content-Type multipart/form-data is safelisted": safelist(
        {"Content-Type": "multipart/form-data; boundary=x"}, False, "POST"
    ),
    "Content-Type with a quoted charset is preflighted": safelist(
        {"Content-Type": 'text/plain; charset="utf-8"'}, True, "POST"
    ),
    "Content-Type listing two types is preflighted": safelist(
        {"Content-Type": "text/plain, application/json"}, True, "POST"
    ),
    "a single byte range is safelisted": safelist({"Range": "bytes=0-10"}, False),
    "an open byte range is safelisted": safelist({"Range": "bytes=5-"}, False),
    "two byte ranges are preflighted": safelist({"Range": "bytes=0-10, 20-30"}, True),
    "a suffix byte range is preflighted": safelist({"Range": "bytes=-5"}, True),
    "a reversed byte range is preflighted": safelist({"Range": "bytes=10-5"}, True),
    "a byte range with spaces is preflighted": safelist({"Range": "bytes = 0-10"}, True),
    # Chromium 150 reads the unit in any case (156 preflights it, as Fetch says); Firefox
    # preflights it: doctor names both (the Firefox row sees the preflight fail).
    "the unit BYTES in capitals is safelisted by Chromium 150": safelist(
        {"Range": "BYTES=0-10"}, False
    ),
    "an empty custom header is preflighted": safelist({"X-Empty": ""}, True),
    "HEAD is safelisted": safelist({}, False, "HEAD"),
    "POST without a body is safelisted": safelist({}, False, "POST"),
    "OPTIONS is preflighted": safelist({}, True, "OPTIONS"),
    "delete in lowercase is normalized to DELETE and preflighted": safelist({}, True, "delete"),
    "Put in mixed case is preflighted": safelist({}, True, "Put"),
    # ---- redirects of the actual request
    "redirect to another origin without CORS": Case(
        "/cors/redirect-elsewhere-bare", "CORSMissingAllowOrigin"
    ),
    "redirect to another origin that names the page's origin": Case(
        "/cors/redirect-elsewhere-other-origin", "CORSAllowOriginNotMatchingOrigin"
    ),
    "redirect to another origin that allows '*'": Case("/cors/redirect-elsewhere-star", None),
    "redirect to another origin that grants the 'null' origin, credentialed": Case(
        "/cors/redirect-elsewhere-reflect", None, credentials=True
    ),
    "a redirect without CORS headers of its own": Case(
        "/cors/redirect-without-cors", "CORSMissingAllowOrigin"
    ),
    "a 307 keeps the PUT and preflights again at the new origin": put(
        "/cors/redirect-307-elsewhere-star", None
    ),
    "a 307 to another origin whose preflight fails": put(
        "/cors/redirect-307-elsewhere-bare", "CORSMissingAllowOrigin"
    ),
    "a 303 turns a JSON POST into a simple GET": Case(
        "/cors/redirect-303-elsewhere-star", None, "POST", {"Content-Type": "application/json"}
    ),
    "a redirect with two Location headers": Case(
        "/cors/redirect-two-locations", "CORSDidNotSucceed"
    ),
    "a redirect to a URL with a user and password": Case(
        "/cors/redirect-with-userinfo",
        "CORSRedirectContainsCredentials",
    ),
    "a redirect to a data: URL": Case(
        "/cors/redirect-to-data",
        "CORSDidNotSucceed",
    ),
    # ---- not http at all
    "fetch() of an ftp: URL": Case("ftp://localhost/file", "CORSRequestNotHttp"),
    # ---- where engines may differ (issue 17)
    "Allow-Credentials: True is not 'true'": Case(
        "/cors/credentials-capitalized", "CORSMissingAllowCredentials", credentials=True
    ),
    "a 302 to another origin that refuses the 'null' origin": Case(
        "/cors/redirect-elsewhere-not-null", "CORSMissingAllowOrigin"
    ),
    "a 307 PUT to another origin that refuses the 'null' origin": put(
        "/cors/redirect-307-elsewhere-not-null", "CORSMissingAllowOrigin"
    ),
    "a bad token in Allow-Methods": put("/cors/methods-bad-token", "CORSInvalidAllowMethod"),
    "a bad token in Allow-Headers": put("/cors/headers-bad-token", "CORSInvalidAllowHeader"),
    # Fetch says '*' never covers Authorization; both engines allow it (Firefox warns): doctor
    # says allowed, with a warning.
    "Allow-Headers '*' and Authorization": Case(
        "/cors/headers-star", None, "PUT", {"Authorization": "Bearer x"}
    ),
    "Allow-Headers '*' and Authorization under credentials": Case(
        "/cors/headers-star",
        "CORSMissingAllowHeaderFromPreflight",
        "PUT",
        {"Authorization": "Bearer x"},
        True,
    ),
    # Chromium still safelists these client hints; Firefox (and Fetch) preflight them.
    "the client hint DPR": safelist({"DPR": "2"}, False),
    "the client hint Save-Data": safelist({"Save-Data": "on"}, False),
    "the client hint Device-Memory": safelist({"Device-Memory": "8"}, False),
    "the client hint Viewport-Width": safelist({"Viewport-Width": "800"}, False),
    # Both engines parse range numbers as 64-bit integers and preflight beyond (Fetch would not).
    "a byte range beyond 64 bits": safelist({"Range": "bytes=0-" + "9" * 20}, True),
    "a byte range start beyond 64 bits": safelist({"Range": "bytes=" + "9" * 25 + "-"}, True),
    "a byte range of 19 digits": safelist({"Range": "bytes=0-" + "9" * 18}, False),
    # ---- corsproxy in front of the CORS-less backend
    "corsproxy lets the page read a custom header": Case("/api/items", None, via_proxy=True),
    "corsproxy grants a credentialed PUT": put("/api/echo", None, credentials=True, via_proxy=True),
    "corsproxy grants a credentialed lowercase patch": Case(
        "/api/echo", None, "patch", CUSTOM, credentials=True, via_proxy=True
    ),
    "corsproxy grants Authorization under credentials": Case(
        "/api/echo", None, "DELETE", {"Authorization": "Bearer x"}, True, via_proxy=True
    ),
    "corsproxy grants nothing to a refused origin": Case(
        "/api/items", "CORSMissingAllowOrigin", via_proxy=True, page_host="evil.test"
    ),
}


@dataclass(frozen=True)
class Judged:
    verdict: str  # "allowed" | "blocked"
    sentence: str | None  # why it was blocked, as Chromium's console says it
    readable: list[str] | None  # allowed: the response header names JavaScript can read


async def console_errors(tab: Tab, run: Any) -> tuple[Any, list[str]]:
    """Await run() in the page, then the error messages Chromium logged meanwhile. A marker
    logged afterwards and waited for stands in for "everything logged so far has arrived"."""
    errors: list[str] = []
    marker = f"corsproxy-test-marker-{uuid.uuid4().hex}"

    def seen(message: Any) -> None:
        if message.type == "error":
            errors.append(message.text)

    tab.page.on("console", seen)
    try:
        result = await run()
        async with tab.page.expect_console_message(
            lambda message: message.text == marker, timeout=TIMEOUT * 1000
        ):
            await tab.js("(marker) => console.log(marker)", marker)
    finally:
        tab.page.remove_listener("console", seen)
    return result, errors


def why_blocked(errors: list[str]) -> str | None:
    """The sentence that says why: the CORS one, else fetch()'s own, else the network error."""
    for wanted in (BLOCKED, "Fetch API cannot load", NET_ERROR):
        for text in errors:
            if wanted in text:
                return text
    return None


async def in_chromium(tab: Tab, url: str, case: Case) -> Judged:
    init = {
        "method": case.method,
        "headers": case.headers,
        "credentials": "include" if case.credentials else "same-origin",
    }
    result, errors = await console_errors(tab, lambda: tab.fetch(url, **init))
    if "error" in result:
        assert result == FAILED, result
        return Judged("blocked", why_blocked(errors), None)
    assert why_blocked(errors) is None, errors
    return Judged("allowed", None, sorted(result["headers"]))


async def by_doctor(
    url: str, origin: str, case: Case, engine: str = "chromium"
) -> tuple[Judged, str | None]:
    """doctor's verdict for one engine, in Chromium's words (chromium), and the finding's name
    as that engine names it (Firefox: its console category)."""
    report = await probe.diagnose(
        url, origin, case.method, list(case.headers.items()), case.credentials
    )
    document = json.loads(probe.render_json(report))
    said = document["engines"][engine]
    hit = report.outcome(engine)
    assert said["verdict"] == ("blocked" if hit else "allowed")
    if hit is None:
        assert report.readable is not None
        return Judged("allowed", None, list(report.readable.readable)), None
    exchange, finding = hit
    assert said["finding"] == finding.name_in(engine)
    if engine != "chromium":
        return Judged("blocked", said["finding"], None), said["finding"]
    sentence = finding.message(exchange.url, origin, url)
    if finding.name == "CORSDidNotSucceed":
        # A network error: DevTools shows it as "GET URL net::ERR_...", the sentence doctor
        # renders; the console event's own text, which the test reads, is this.
        sentence = NET_ERROR + finding.value
    return Judged("blocked", sentence, None), finding.name


async def judge_both(
    case: Case, servers: Servers, proxies: Proxies, open_page: OpenPage
) -> tuple[Judged, Judged, str | None]:
    origin = servers.page(case.page_host)
    if "://" in case.path:
        url = case.path
    else:
        url = (proxies["default"].url() if case.via_proxy else servers.backend()) + case.path
    tab = await open_page(origin)
    chromium = await in_chromium(tab, url, case)
    doctors, finding = await by_doctor(url, origin, case)
    return chromium, doctors, finding


def _params() -> list[Any]:
    marks = {name: case.bug for name, case in CASES.items() if case.bug}
    return [
        pytest.param(name, marks=pytest.mark.xfail(strict=True, reason=marks[name]))
        if name in marks
        else name
        for name in CASES
    ]


@pytest.mark.parametrize("name", _params())
async def test_doctor_and_chromium_agree(
    name: str, servers: Servers, proxies: Proxies, open_page: OpenPage
):
    case = CASES[name]
    chromium, doctors, finding = await judge_both(case, servers, proxies, open_page)

    assert chromium == doctors  # verdict, Chromium's sentence, readable header names
    assert finding == case.finding  # and doctor names it as the row expects


# ---- Firefox ---------------------------------------------------------------------------------

FIREFOX_HOSTS = ("app.test", "evil.test", "proxy.test", "api.test", LAN_HOST)
_FETCH = """
const [url, init, done] = arguments;
fetch(url, init).then(async (response) => {
  const headers = {};
  response.headers.forEach((value, name) => { headers[name] = value; });
  done({status: response.status, headers, body: await response.text()});
}, (error) => done({error: `${error.name}: ${error.message}`}));
"""


@pytest.fixture(scope="session")
def firefox() -> Any:
    missing = firefox_missing()
    if missing:
        message = f"Firefox tests: {missing} not found; install: {FIREFOX_INSTALL}"
        if os.environ.get(REQUIRE_ENV) == "1":
            pytest.fail(f"{message} ({REQUIRE_ENV}=1)", pytrace=False)
        pytest.skip(message)
    browser = Firefox.launch(FIREFOX_HOSTS)
    try:
        yield browser
    finally:
        browser.quit()


def _in_firefox_now(firefox: Firefox, origin: str, url: str, case: Case) -> Judged:
    firefox.clear()
    firefox.navigate(origin + "/")
    mark = firefox.console_mark()
    init = {
        "method": case.method,
        "headers": case.headers,
        "credentials": "include" if case.credentials else "same-origin",
    }
    result = firefox.run(_FETCH, url, init)
    errors = [m.name for m in firefox.cors_errors(mark) if not m.warning]
    if "error" not in result:
        assert errors == [], errors
        return Judged("allowed", None, sorted(result["headers"]))
    # Firefox follows a specific reason with a generic CORSDidNotSucceed (in either order):
    # the specific one is why.
    specific = [name for name in errors if name != "CORSDidNotSucceed"]
    return Judged("blocked", (specific or errors or [None])[0], None)


async def in_firefox(firefox: Firefox, origin: str, url: str, case: Case) -> Judged:
    return await asyncio.to_thread(_in_firefox_now, firefox, origin, url, case)


@pytest.mark.parametrize("name", list(CASES))
async def test_doctor_and_firefox_agree(
    name: str, servers: Servers, proxies: Proxies, firefox: Firefox
):
    """The same cases in Firefox: verdict, the console's CORS category (its MDN name) and the
    header names JavaScript reads must be what doctor says for "firefox"."""
    case = CASES[name]
    origin = servers.page(case.page_host)
    if "://" in case.path:
        url = case.path
    else:
        url = (proxies["default"].url() if case.via_proxy else servers.backend()) + case.path
    fox = await in_firefox(firefox, origin, url, case)
    doctors, _ = await by_doctor(url, origin, case, "firefox")

    assert fox == doctors

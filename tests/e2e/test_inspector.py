"""The inspector in headless Chromium: a page on one origin calls the backend through the real
`corsproxy` process while the inspector is open in another tab of the same browser, which must
show each exchange as the browser judged it. Then the other side: no other page, allowed origin
or not, can read the inspector or act through it, with or without a guessed token.

Nothing here sleeps: every wait is Playwright's expect(), which retries until it holds.
"""

from __future__ import annotations

import json
import os
import urllib.request
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio
import yaml

from corsproxy.inspector.web import masked
from tests.e2e.conftest import (
    DIRECT,
    E2E,
    FAILED,
    TIMEOUT,
    LoggedProxy,
    OpenPage,
    Proxies,
    Servers,
    Tab,
    unique,
)

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

SHOWN_MS = 5_000  # each exchange is on the inspector page this soon after the page's fetch()


def expect(locator: Any) -> Any:
    from playwright.async_api import expect as playwright_expect

    return playwright_expect(locator)


def api(proxy: LoggedProxy, token: str, path: str, data: bytes | None = None) -> Any:
    """The inspector's API straight from Python, with the token as a bearer."""
    request = urllib.request.Request(
        f"{proxy.url()}/__corsproxy/api/{path}",
        data=data,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
    )
    with DIRECT.open(request, timeout=TIMEOUT) as answer:
        return json.load(answer)


@dataclass
class Inspected:
    """The app page, the inspector tab beside it, and the five exchanges the page made."""

    proxy: LoggedProxy
    token: str
    app: Tab
    inspector: Any  # the Playwright page showing /__corsproxy/
    paths: dict[str, str]  # kind -> path with its unique query

    def row(self, method: str, kind: str) -> Any:
        locator = self.inspector.locator(f'#rows tr[data-method="{method}"]')
        return locator.filter(has_text=self.paths[kind])

    async def reset(self) -> None:
        """Filters off, nothing selected: as a fresh page would show."""
        await self.inspector.fill("#filter", "")
        for box in ("#only-blocked", "#only-errors", "#hide-preflights"):
            await self.inspector.set_checked(box, False)
        await self.inspector.select_option("#route", "")


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def inspected(browser: Any, servers: Servers, proxies: Proxies) -> AsyncIterator[Inspected]:
    proxy = proxies["inspector"]
    url = proxy.inspector_url()
    token = url.split("token=", 1)[1]
    api(proxy, token, "clear", b"")  # what other tests left
    context = await browser.new_context(viewport={"width": 1500, "height": 1000})
    await context.add_init_script(path=E2E / "static" / "helpers.js")
    try:
        inspector = await context.new_page()
        await inspector.goto(url, timeout=TIMEOUT * 1000)
        await expect(inspector.locator("#live")).to_have_attribute("data-state", "live")
        page = await context.new_page()
        await page.goto(servers.page(), timeout=TIMEOUT * 1000)
        app = Tab(page)
        base = proxy.url()
        paths = {
            "simple": unique("/api/items"),
            "json": unique("/api/echo"),
            "login": unique("/login"),
            "star": unique("/wrong/star-with-credentials"),
            "dead": unique("/dead/items"),
        }
        assert (await app.fetch(base + paths["simple"]))["status"] == 200
        json_post = {"method": "POST", "headers": {"Content-Type": "application/json"}}
        answer = await app.fetch(base + paths["json"], **json_post, body='{"n": 1}')
        assert answer["status"] == 200
        login = await app.fetch(base + paths["login"], method="POST", credentials="include")
        assert login["status"] == 200
        assert (await app.fetch(base + paths["star"], credentials="include"))["status"] == 200
        assert (await app.fetch(base + paths["dead"]))["status"] == 502
        yield Inspected(proxy, token, app, inspector, paths)
    finally:
        await context.close()


ROWS = [
    # (kind, method, decision, what the browser would have done without the proxy)
    ("simple", "GET", "allowed", "CORSMissingAllowOrigin"),
    ("json", "OPTIONS", "preflight", "answered by the proxy"),
    ("json", "POST", "allowed", "CORSMissingAllowOrigin"),
    ("login", "POST", "allowed", "CORSMissingAllowOrigin"),
    ("star", "GET", "allowed", "CORSNotSupportingCredentials"),
    ("dead", "GET", "error", "CORSDidNotSucceed"),
]


@pytest.mark.parametrize(
    ("kind", "method", "decision", "alone"), ROWS, ids=[f"{r[0]} {r[1]}" for r in ROWS]
)
async def test_each_exchange_is_shown_with_its_decision_and_finding(
    inspected: Inspected, kind: str, method: str, decision: str, alone: str
) -> None:
    await inspected.reset()
    row = inspected.row(method, kind)
    await expect(row).to_have_count(1, timeout=SHOWN_MS)
    await expect(row.locator("td.decision")).to_have_text(decision)
    await expect(row.locator("td.alone")).to_contain_text(alone)


async def test_a_preflight_sits_right_under_its_request(inspected: Inspected) -> None:
    await inspected.reset()
    preflight = inspected.row("OPTIONS", "json")
    await expect(preflight).to_have_class("child", timeout=SHOWN_MS)
    above = inspected.inspector.locator("#rows tr", has=inspected.inspector.locator("td.path"))
    order = await above.evaluate_all(
        "rows => rows.map(r => r.dataset.method + ' ' + r.querySelector('.path').textContent)"
    )
    path = inspected.paths["json"]
    assert order.index(f"OPTIONS {path}") == order.index(f"POST {path}") + 1


async def test_the_detail_shows_the_upstreams_header_and_the_delivered_one(
    inspected: Inspected, servers: Servers
) -> None:
    await inspected.reset()
    await inspected.row("GET", "star").click()
    detail = inspected.inspector.locator("#detail")
    allow = detail.locator('table.response tr[data-name="access-control-allow-origin"]')
    await expect(allow.locator('td[data-set="3"]')).to_have_text("*")
    await expect(allow.locator('td[data-set="4"]')).to_have_text(servers.page())
    await expect(allow).to_have_class("cors changed")
    await expect(detail.locator(".finding-name").first).to_have_text("CORSNotSupportingCredentials")
    await expect(detail.locator(".chromium").first).to_contain_text(
        "must not be the wildcard '*' when the request's credentials mode is 'include'"
    )


async def test_cookies_are_masked_until_revealed(inspected: Inspected) -> None:
    await inspected.reset()
    await inspected.row("POST", "login").click()
    detail = inspected.inspector.locator("#detail")
    set_cookie = detail.locator('table.response tr[data-name="set-cookie"] td[data-set="4"]')
    await expect(set_cookie.locator("button.mask")).to_be_visible()
    assert "session=" not in await set_cookie.inner_text()
    await set_cookie.locator("button.mask").click()
    await expect(set_cookie).to_contain_text("session=")


async def test_hide_preflights_hides_the_options_rows(inspected: Inspected) -> None:
    await inspected.reset()
    options = inspected.inspector.locator('#rows tr[data-method="OPTIONS"]')
    await expect(inspected.row("OPTIONS", "json")).to_have_count(1, timeout=SHOWN_MS)
    await inspected.inspector.check("#hide-preflights")
    await expect(options).to_have_count(0)
    await expect(inspected.row("POST", "json")).to_have_count(1)
    await inspected.inspector.uncheck("#hide-preflights")
    await expect(inspected.row("OPTIONS", "json")).to_have_count(1)


async def test_the_filters_narrow_the_list(inspected: Inspected) -> None:
    await inspected.reset()
    rows = inspected.inspector.locator("#rows tr")
    await expect(inspected.row("GET", "dead")).to_have_count(1, timeout=SHOWN_MS)
    await inspected.inspector.fill("#filter", inspected.paths["star"].split("?id=")[1])
    await expect(rows).to_have_count(1)
    await expect(rows.first.locator("td.path")).to_have_text(inspected.paths["star"])
    await inspected.inspector.fill("#filter", "")
    await inspected.inspector.check("#only-errors")
    await expect(rows).to_have_count(1)
    await expect(rows.first.locator("td.decision")).to_have_text("error")
    await inspected.inspector.uncheck("#only-errors")
    await inspected.inspector.check("#only-blocked")
    await expect(inspected.row("OPTIONS", "json")).to_have_count(0)
    await expect(inspected.row("GET", "star")).to_have_count(1)
    await inspected.inspector.uncheck("#only-blocked")
    await inspected.inspector.select_option("#route", "/dead")
    await expect(rows).to_have_count(1)


async def test_the_har_download_is_har_1_2_with_one_entry_per_exchange(
    inspected: Inspected, tmp_path: Path
) -> None:
    await inspected.reset()
    await expect(inspected.row("GET", "dead")).to_have_count(1, timeout=SHOWN_MS)
    async with inspected.inspector.expect_download() as downloading:
        await inspected.inspector.click("#download-har")
    download = await downloading.value
    assert download.suggested_filename.startswith("corsproxy-")
    assert download.suggested_filename.endswith(".har")
    saved = tmp_path / "exchanges.har"
    await download.save_as(saved)
    log = json.loads(saved.read_text())["log"]
    kept = api(inspected.proxy, inspected.token, "exchanges")["exchanges"]
    assert log["version"] == "1.2"
    assert len(log["entries"]) == len(kept)
    for entry, record in zip(log["entries"], kept, strict=True):
        assert entry["request"]["method"] == record["method"]
        assert entry["request"]["url"] == inspected.proxy.url() + record["path"]
        assert entry["response"]["status"] == record["status"]
        sent = [[h["name"], h["value"]] for h in entry["request"]["headers"]]
        got = [[h["name"], h["value"]] for h in entry["response"]["headers"]]
        assert (sent, got) == (record["request_headers"], record["response_headers"])


async def test_replay_adds_a_row_marked_as_a_replay(inspected: Inspected) -> None:
    await inspected.reset()
    await inspected.row("POST", "json").click()
    await inspected.inspector.click("#replay")
    replayed = inspected.row("POST", "json").filter(
        has=inspected.inspector.locator(".replay-badge")
    )
    await expect(replayed).to_have_count(1, timeout=SHOWN_MS)
    await expect(replayed.locator("td.decision")).to_contain_text("allowed")
    kept = api(inspected.proxy, inspected.token, "exchanges")["exchanges"]
    again = [r for r in kept if r["replay"] and r["path"] == inspected.paths["json"]]
    assert len(again) == 1 and again[0]["request_body"]["text"] == '{"n": 1}'


# ---- no other page can read it -----------------------------------------------------------------


@pytest.mark.parametrize("who", ["allowed localhost page", "refused origin's page"])
async def test_other_pages_cannot_read_the_inspector_or_act_through_it(
    servers: Servers, proxies: Proxies, open_page: OpenPage, context: Any, who: str
) -> None:
    """Even with the user logged into the inspector in another tab of the same browser (its
    cookie is then in the jar), a page of another origin reads nothing, guessed token or not,
    and its fire-and-forget POSTs change nothing: the proxy answers each of them 403."""
    proxy = proxies["inspector"]
    url = proxy.inspector_url()
    token = url.split("token=", 1)[1]
    own = await context.new_page()
    await own.goto(url, timeout=TIMEOUT * 1000)  # the user's own tab: the cookie is set
    await expect(own.locator("#live")).to_have_attribute("data-state", "live")
    origin = servers.page() if who.startswith("allowed") else servers.page("evil.test")
    page = await open_page(origin)
    kept_before = len(api(proxy, token, "exchanges")["exchanges"])
    base = proxy.url() + "/__corsproxy"
    for target in ("/", "/api/exchanges", "/api/events", "/api/har", "/inspector.js"):
        for query, headers in (
            ("", {}),
            ("token=guess", {}),
            (f"token={token}", {}),  # even the right token: another page's request is refused
            ("", {"Authorization": "Bearer guess"}),
        ):
            probe = f"{base}{target}?{query}&probe={uuid.uuid4().hex[:8]}".replace("?&", "?")
            result = await page.fetch(probe, credentials="include", headers=headers)
            assert result == FAILED, (probe, result)
            method = "OPTIONS" if headers else "GET"  # a custom header: preflighted first
            [line] = await proxy.logged(method, masked(probe.removeprefix(proxy.url())))
            assert " -> 403 " in line, line
            assert token not in line
        # What CORS does not stop: a request sent without reading the answer.
        blind = f"{base}/api/clear?probe={uuid.uuid4().hex[:8]}"
        await page.fetch(blind, method="POST", mode="no-cors", credentials="include")
        [line] = await proxy.logged("POST", blind.removeprefix(proxy.url()))
        assert " -> 403 " in line, line
    assert len(api(proxy, token, "exchanges")["exchanges"]) >= kept_before  # nothing cleared


async def test_a_config_reload_shows_as_a_marker_in_the_list(
    inspected: Inspected, proxies: Proxies
) -> None:
    """The config file saved under the running proxy (as editors do: a new file renamed over
    it): the open page shows the reload as a marker above the exchanges made before it, and
    a file with a mistake as a refused one; the proxy keeps serving either way."""
    await inspected.reset()
    path = proxies.directory / "inspector.yaml"
    config = yaml.safe_load(path.read_text())
    config["cors"] = {"allow_origins": ["localhost", "http://reload.test"]}
    markers = inspected.inspector.locator("#rows tr.reload-marker")
    for count, text in enumerate(
        (yaml.safe_dump(config, sort_keys=False), "cors: {allow_origins: [nope]}\n"), 1
    ):
        saved = path.with_suffix(".saving")
        saved.write_text(text)
        os.replace(saved, path)
        await expect(markers).to_have_count(count, timeout=SHOWN_MS)
    await expect(markers.nth(0)).to_have_attribute("data-ok", "false")  # newest on top
    await expect(markers.nth(0)).to_contain_text("config not reloaded")
    await expect(markers.nth(1)).to_have_attribute("data-ok", "true")
    await expect(markers.nth(1)).to_contain_text("http://reload.test")
    assert (await inspected.app.fetch(inspected.proxy.url() + unique("/api/items")))[
        "status"
    ] == 200

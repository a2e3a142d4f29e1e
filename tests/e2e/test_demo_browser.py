"""The demo page in headless Chromium: `corsproxy demo` (a real process) serves it, the page
runs every card, and each card's request is blocked straight to the backend and allowed
through the proxy, with the finding `corsproxy doctor` names for it.

The page is loaded once for the module; each test reads one card's data-* attributes and text.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import pytest
import pytest_asyncio

from tests.test_demo import DemoProcess

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]

TIMEOUT_MS = 30_000
# card -> (the finding doctor names for the direct request, text the proxied side must show)
EXPECTED = {
    "simple": ("CORSMissingAllowOrigin", ["200 OK", "Hello from the backend!"]),
    "preflight": ("CORSMissingAllowOrigin", ["201 Created", '"text":"hi"']),
    "authorization": ("CORSMissingAllowOrigin", ["200 OK", '"updated":true']),
    "credentials": ("CORSMissingAllowOrigin", ['"logged_in":true', '"cookie":"demo_session=']),
    "expose": ("CORSMissingAllowOrigin", ['response.headers.get("X-Total-Count") → "42"']),
    "error": ("CORSMissingAllowOrigin", ["500 Internal Server Error", "database is not answering"]),
}


@dataclass
class Shown:
    """The demo page after every card ran, and what the browser requested to draw it."""

    demo: DemoProcess
    page: Any
    requested: list[str]

    async def result(self, card: str) -> dict[str, str]:
        selector = f'.result[data-card="{card}"]'
        return await self.page.eval_on_selector(selector, "e => ({...e.dataset})")

    async def text(self, card: str, side: str) -> str:
        return await self.page.inner_text(f'.result[data-card="{card}"] .side.{side}')


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def shown(browser: Any) -> AsyncIterator[Shown]:
    running = DemoProcess(["--port-base", "0"])
    context = await browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = await context.new_page()
        requested: list[str] = []
        page.on("request", lambda request: requested.append(request.url))
        await page.goto(running.url("page"), timeout=TIMEOUT_MS)
        await page.wait_for_selector("body[data-done='true']", timeout=TIMEOUT_MS)
        yield Shown(running, page, requested)
    finally:
        await context.close()
        running.stop()


@pytest.mark.parametrize("card", EXPECTED)
async def test_each_card_is_blocked_direct_and_allowed_through_the_proxy(shown: Shown, card: str):
    finding, proxied_text = EXPECTED[card]
    result = await shown.result(card)

    assert (result["direct"], result["proxied"]) == ("blocked", "allowed")
    assert result["finding"] == finding
    assert (result["doctorDirect"], result["doctorProxied"]) == ("blocked", "allowed")
    direct = await shown.text(card, "direct")
    assert "TypeError: Failed to fetch" in direct and finding in direct
    proxied = await shown.text(card, "proxied")
    for expected in proxied_text:
        assert expected in proxied


async def test_every_card_ran(shown: Shown):
    cards = await shown.page.eval_on_selector_all(".result", "els => els.map(e => e.dataset.card)")
    assert cards == list(EXPECTED)
    summary = await shown.page.inner_text("#summary")
    assert summary.startswith("Done: all 6 requests were blocked straight to the backend")


async def test_the_preflight_cards_show_what_was_asked_and_what_the_proxy_granted(shown: Shown):
    text = await shown.page.inner_text('article[data-card="authorization"] [data-preflight]')
    assert "Access-Control-Request-Method: PUT" in text
    assert "Access-Control-Request-Headers: authorization,content-type" in text
    assert "405 Method Not Allowed" in text  # the backend
    assert "204 No Content" in text and "Access-Control-Allow-Methods: PUT" in text


async def test_everything_comes_from_the_three_local_servers(shown: Shown):
    local = {f"localhost:{port}" for port in shown.demo.ports.values()}
    elsewhere = [url for url in shown.requested if urlsplit(url).netloc not in local]
    assert elsewhere == []


async def test_run_again_runs_every_card_again(shown: Shown):
    page = shown.page
    runs = int(await page.get_attribute("body", "data-runs"))
    await page.click("#run")
    await page.wait_for_selector(
        f"body[data-runs='{runs + 1}'][data-done='true']", state="attached", timeout=TIMEOUT_MS
    )
    for card in EXPECTED:
        result = await shown.result(card)
        assert (result["direct"], result["proxied"]) == ("blocked", "allowed"), card


async def test_the_link_opens_the_inspector_with_the_pages_requests(shown: Shown):
    """The link goes from the demo page's origin to the proxy's: the inspector takes its token
    from that navigation and then shows every request the cards made through the proxy."""
    from playwright.async_api import expect

    link = shown.page.locator("#inspector")
    await expect(link).to_have_text("see these requests in the inspector")
    async with shown.page.context.expect_page() as opened:
        await link.click()
    inspector = await opened.value
    rows = inspector.locator('#rows tr[data-method="GET"]').filter(has_text="/api/hello")
    await expect(rows.first).to_be_visible(timeout=TIMEOUT_MS)
    assert inspector.url == f"http://localhost:{shown.demo.ports['proxy']}/__corsproxy/"
    await inspector.close()

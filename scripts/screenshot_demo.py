"""Make docs/demo.png: start `corsproxy demo` in-process on free ports, open its page in
headless Chromium (Playwright), wait until every card has run, save a full-page screenshot.

    python scripts/screenshot_demo.py [--out docs/demo.png] [--width 1280] [--port-base 8700]

The README's screenshot comes from this script, never drawn by hand.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import sys
from pathlib import Path

from playwright.async_api import async_playwright

from corsproxy.demo import app

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parent.parent


async def screenshot(out: Path, width: int, chromium: str, port_base: int) -> list[str]:
    """Write the PNG; returns the cards whose results were not blocked-then-allowed."""
    running = await app.start(port_base, log_stream=io.StringIO())  # no proxy log wanted
    if running.moved:
        print(f"screenshot_demo: {running.banner()[0].removeprefix('corsproxy demo: ')}")
    try:
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            page = await browser.new_page(viewport={"width": width, "height": 900})
            await page.goto(running.page_url)
            await page.wait_for_selector("body[data-done='true']", timeout=30_000)
            await page.screenshot(path=str(out), full_page=True)
            wrong = await page.eval_on_selector_all(
                ".result",
                "els => els.filter(e => e.dataset.direct !== 'blocked'"
                " || e.dataset.proxied !== 'allowed').map(e => e.dataset.card)",
            )
            await browser.close()
    finally:
        await running.stop()
    return wrong


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "demo.png")
    parser.add_argument("--width", type=int, default=1280)
    parser.add_argument("--chromium", default=CHROMIUM)
    parser.add_argument(
        "--port-base",
        type=int,
        default=app.DEFAULT_PORT_BASE,
        help="the demo's ports, as in the README (busy ones are swapped); 0 for any",
    )
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    wrong = asyncio.run(screenshot(args.out, args.width, args.chromium, args.port_base))
    if wrong:
        print(
            f"screenshot_demo: cards not blocked-then-allowed: {', '.join(wrong)}", file=sys.stderr
        )
        return 1
    print(f"screenshot_demo: wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

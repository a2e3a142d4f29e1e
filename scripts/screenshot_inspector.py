"""Make docs/inspector.png: start `corsproxy demo` in-process on free ports, let its page run
every card in headless Chromium (Playwright), open the proxy's inspector in another tab, select
the preflighted JSON POST and save a screenshot of the page as it looks.

    python scripts/screenshot_inspector.py [--out docs/inspector.png] [--width 1600]

The README's screenshot of the inspector comes from this script, never drawn by hand.
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
SELECT = "POST /api/notes"  # the row shown in the detail pane: a JSON POST after its preflight


async def screenshot(out: Path, width: int, height: int, chromium: str, dark: bool) -> str | None:
    """Write the PNG; returns what went wrong, or None."""
    running = await app.start(0, log_stream=io.StringIO())  # no proxy log wanted
    try:
        if running.inspector_url is None:
            return "the demo's proxy has no inspector"
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            context = await browser.new_context(
                viewport={"width": width, "height": height},
                color_scheme="dark" if dark else "light",
            )
            demo = await context.new_page()
            await demo.goto(running.page_url)
            await demo.wait_for_selector("body[data-done='true']", timeout=30_000)
            page = await context.new_page()
            await page.goto(running.inspector_url)
            method, path = SELECT.split(" ", 1)
            row = page.locator(f'#rows tr[data-method="{method}"]', has_text=path).first
            await row.wait_for(timeout=10_000)
            await row.click()
            await page.locator("#detail .head").wait_for()
            await page.screenshot(path=str(out))
            await browser.close()
    finally:
        await running.stop()
    return None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "inspector.png")
    parser.add_argument("--width", type=int, default=1600)
    parser.add_argument("--height", type=int, default=1000)
    parser.add_argument("--dark", action="store_true", help="the page's dark colour scheme")
    parser.add_argument("--chromium", default=CHROMIUM)
    args = parser.parse_args()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    wrong = asyncio.run(screenshot(args.out, args.width, args.height, args.chromium, args.dark))
    if wrong:
        print(f"screenshot_inspector: {wrong}", file=sys.stderr)
        return 1
    print(f"screenshot_inspector: wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

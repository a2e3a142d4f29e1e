"""What the upstream sends, as the page reads it: errors, a dead upstream, the backend's own
wrong CORS headers, a gzip body, large bodies each way. Direct fails; through the proxy it reads.
"""

from __future__ import annotations

import hashlib
import json

import pytest

from tests.e2e.conftest import FAILED, OpenPage, Proxies, Servers, Site, unique
from tests.e2e.servers import DOWNLOAD_SIZE, GZIP_TEXT, pattern

pytestmark = [pytest.mark.browser, pytest.mark.asyncio(loop_scope="session")]
UPLOAD_SIZE = 5 * 1024 * 1024


@pytest.mark.parametrize(
    ("path", "status", "body"),
    [
        ("/error/500", 500, '{"error": "database on fire"}'),
        ("/no/such/thing", 404, "404: Not Found"),
    ],
    ids=["upstream 500", "upstream 404"],
)
async def test_upstream_error_bodies_are_readable(
    site: Site, open_page: OpenPage, path: str, status: int, body: str
):
    """An error page without CORS headers is a TypeError; through the proxy JS reads it."""
    tab = await open_page(site.page)

    assert await tab.fetch(site.backend + path) == FAILED
    answer = await tab.fetch(site.proxy + path)

    assert (answer["status"], answer["body"]) == (status, body)


async def test_upstream_down_gives_a_readable_502(
    servers: Servers, proxies: Proxies, open_page: OpenPage
):
    """Connection refused: directly a TypeError; through the proxy a 502 whose JSON says why."""
    tab = await open_page(servers.page())

    assert await tab.fetch(f"http://localhost:{servers.dead_port}/api/items") == FAILED
    answer = await tab.fetch(proxies["dead upstream"].url() + "/api/items")

    assert answer["status"] == 502
    assert answer["headers"]["content-type"].startswith("application/json")
    failure = json.loads(answer["body"])
    assert failure["error"] and str(servers.dead_port) in json.dumps(failure)


@pytest.mark.parametrize(
    "kind",
    ["star-with-credentials", "other-origin", "two-values"],
    ids=["'*' with credentials", "another origin", "two values"],
)
async def test_upstreams_wrong_cors_headers_are_corrected(
    site: Site, open_page: OpenPage, kind: str
):
    """Access-Control-Allow-Origin sent wrong by the backend itself (on a credentialed
    request): Chromium blocks it directly; the proxy replaces it rather than adding a second."""
    tab = await open_page(site.page)
    path = unique(f"/wrong/{kind}")

    assert await tab.fetch(site.backend + path, credentials="include") == FAILED
    status, body = await tab.fetch_json(site.proxy + path, credentials="include")

    assert (status, body["kind"]) == (200, kind)
    [line] = await site.log.logged("GET", path)
    assert "fixed: Access-Control-Allow-Origin" in line, line  # and the log says so


async def test_gzip_body_is_decoded_by_the_browser(site: Site, open_page: OpenPage):
    """Content-Encoding: gzip passes through untouched; Chromium decodes it for the page."""
    tab = await open_page(site.page)

    assert await tab.fetch(site.backend + "/gzip") == FAILED
    answer = await tab.fetch(site.proxy + "/gzip")

    assert (answer["status"], answer["body"]) == (200, GZIP_TEXT)


async def test_20_mib_download_arrives_intact(
    servers: Servers, proxies: Proxies, open_page: OpenPage
):
    """A localhost page (crypto.subtle needs a secure context) hashes what it received."""
    tab = await open_page(servers.page())
    expected = hashlib.sha256(pattern(DOWNLOAD_SIZE)).hexdigest()

    assert await tab.js("(url) => download(url)", servers.backend() + "/download") == FAILED
    got = await tab.js("(url) => download(url)", proxies["default"].url() + "/download")

    assert got == {"status": 200, "size": DOWNLOAD_SIZE, "sha256": expected}


async def test_5_mib_upload_arrives_intact(servers: Servers, proxies: Proxies, open_page: OpenPage):
    """The page builds the bytes, hashes them, uploads them (preflighted: octet-stream);
    the backend answers with the size and hash of what it received."""
    tab = await open_page(servers.page())
    expected = hashlib.sha256(pattern(UPLOAD_SIZE)).hexdigest()
    upload = "([url, size]) => upload(url, size)"

    direct = await tab.js(upload, [servers.backend() + "/upload", UPLOAD_SIZE])
    assert direct == {"sent": expected, **FAILED}
    answer = await tab.js(upload, [proxies["default"].url() + "/upload", UPLOAD_SIZE])

    assert (answer["sent"], answer["status"]) == (expected, 200)
    assert json.loads(answer["body"]) == {"size": UPLOAD_SIZE, "sha256": expected}

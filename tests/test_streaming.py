"""Bodies of any size stream through a real proxy process in constant memory."""

from __future__ import annotations

import hashlib

import aiohttp
import pytest
from aiohttp import web

from tests.conftest import free_port
from tests.proc import ProxyProcess

pytestmark = pytest.mark.slow
TOTAL = 256 * 1024 * 1024
BLOCK = bytes(range(256)) * 1024  # 256 KiB, not compressible to nothing, same every time
GROWTH_LIMIT_KIB = 64 * 1024


def expected_digest() -> str:
    digest = hashlib.sha256()
    for _ in range(TOTAL // len(BLOCK)):
        digest.update(BLOCK)
    return digest.hexdigest()


def big_app() -> web.Application:
    async def download(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/octet-stream"})
        response.content_length = TOTAL
        await response.prepare(request)
        for _ in range(TOTAL // len(BLOCK)):
            await response.write(BLOCK)
        return response

    async def upload(request: web.Request) -> web.Response:
        digest, size = hashlib.sha256(), 0
        async for chunk in request.content.iter_chunked(1 << 20):
            digest.update(chunk)
            size += len(chunk)
        return web.json_response({"size": size, "sha256": digest.hexdigest()})

    app = web.Application(client_max_size=0)
    app.router.add_get("/download", download)
    app.router.add_post("/upload", upload)
    return app


@pytest.fixture
async def proxy_process(aiohttp_server):
    """A real `corsproxy serve` process in front of big_app(); stopped (exit 0) afterwards."""
    upstream = await aiohttp_server(big_app())
    port = free_port()
    proxy = ProxyProcess(
        [
            "serve",
            f"http://127.0.0.1:{upstream.port}",
            "--port",
            str(port),
            "--log-level",
            "warning",
        ]
    )
    proxy.url = f"http://127.0.0.1:{port}"
    try:
        yield proxy
    finally:
        code, output = proxy.stop()
    assert code == 0, output


def blocks(total: int):
    """An upload body of `total` bytes, produced block by block."""

    async def body():
        for _ in range(total // len(BLOCK)):
            yield BLOCK

    return body()


async def test_256_mib_each_way_in_constant_memory(proxy_process):
    url = proxy_process.url
    async with aiohttp.ClientSession(auto_decompress=False) as client:
        async with client.get(url + "/__corsproxy/health") as resp:
            assert resp.status == 200
        baseline = proxy_process.status("VmHWM")

        digest, size = hashlib.sha256(), 0
        async with client.get(
            url + "/download", headers={"Origin": "http://localhost:5173"}
        ) as resp:
            assert resp.headers["Access-Control-Allow-Origin"] == "http://localhost:5173"
            async for chunk in resp.content.iter_chunked(1 << 20):
                digest.update(chunk)
                size += len(chunk)
        assert (size, digest.hexdigest()) == (TOTAL, expected_digest())

        async with client.post(url + "/upload", data=blocks(TOTAL)) as resp:
            assert await resp.json() == {"size": TOTAL, "sha256": expected_digest()}
        growth = proxy_process.status("VmHWM") - baseline
    assert growth < GROWTH_LIMIT_KIB, f"peak memory grew by {growth} KiB"


async def test_a_1_gib_upload_streams_through_in_constant_memory(proxy_process):
    gib = 1024 * 1024 * 1024
    async with aiohttp.ClientSession() as client:
        async with client.get(proxy_process.url + "/__corsproxy/health") as resp:
            assert resp.status == 200
        baseline = proxy_process.status("VmHWM")
        async with client.post(proxy_process.url + "/upload", data=blocks(gib)) as resp:
            assert (await resp.json())["size"] == gib
        growth = proxy_process.status("VmHWM") - baseline
    assert growth < GROWTH_LIMIT_KIB, f"peak memory grew by {growth} KiB"

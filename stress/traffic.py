"""The soak's kinds of traffic, one coroutine each: send it through the proxy, check the answer,
return an Outcome saying what happened. No judgement about restarts here (soak.py does that).

Results: "ok" (the right answer, whole), "gateway" (a readable 502/504: JSON with an error and
the CORS headers), "aborted" (the proxy cut a response it had started), "hangup" (we hung up, on
purpose), "bad" (anything else: a wrong status or body, a silent truncation, no answer).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import aiohttp

from stress.harness import ORIGIN
from stress.upstream import CHUNK, DOWNLOAD_SIZE, ITEM, PATTERN, pattern_digest

SSE_EVENTS = 20
WS_MESSAGES = 20
UPLOAD_SIZE = 8 * 1024 * 1024
DIGEST = {size: pattern_digest(size) for size in (DOWNLOAD_SIZE, UPLOAD_SIZE)}
HEADERS = {"Origin": ORIGIN}


@dataclass(frozen=True, slots=True)
class Outcome:
    kind: str
    started: float
    ended: float
    result: str
    detail: str = ""


class Verdict(Exception):
    """Raised inside a kind of traffic to end it with a result other than ok."""

    def __init__(self, result: str, detail: str) -> None:
        super().__init__(detail)
        self.result, self.detail = result, detail


Action = Callable[[aiohttp.ClientSession, str], Awaitable[None]]


async def timed(kind: str, action: Action, session: aiohttp.ClientSession, url: str) -> Outcome:
    """Run one request of a kind, at most 60 s (a request never answered is a lost request)."""
    started = time.monotonic()
    try:
        async with asyncio.timeout(60):
            await action(session, url)
        result, detail = "ok", ""
    except Verdict as verdict:
        result, detail = verdict.result, verdict.detail
    except TimeoutError:
        result, detail = "bad", "no answer within 60 s"
    except aiohttp.ClientPayloadError as exc:
        result, detail = "aborted", f"response cut: {exc!r}"
    except aiohttp.ClientConnectorError as exc:  # the proxy itself must always take connections
        result, detail = "bad", f"could not connect to the proxy: {exc!r}"
    except (aiohttp.ClientError, ConnectionError) as exc:
        result, detail = "aborted", f"connection failed: {exc!r}"
    return Outcome(kind, started, time.monotonic(), result, detail)


async def expect(response: aiohttp.ClientResponse, status: int) -> None:
    """Check status and the CORS grant; a 502/504 must be readable JSON with the grant too."""
    granted = response.headers.get("Access-Control-Allow-Origin") == ORIGIN
    if response.status in (502, 504):
        body = await response.read()
        try:
            readable = "error" in json.loads(body)
        except ValueError:
            readable = False
        if readable and granted:
            raise Verdict("gateway", f"{response.status} {body[:120]!r}")
        raise Verdict("bad", f"unreadable {response.status}: {body[:120]!r} granted={granted}")
    if response.status != status:
        raise Verdict("bad", f"status {response.status}, wanted {status}")
    if not granted:
        raise Verdict("bad", f"no CORS grant: {dict(response.headers)}")


async def get(session: aiohttp.ClientSession, url: str) -> None:
    async with session.get(url + "/item", headers=HEADERS) as response:
        await expect(response, 200)
        if await response.read() != ITEM:
            raise Verdict("bad", "GET body differs")


async def post(session: aiohttp.ClientSession, url: str) -> None:
    body = os.urandom(int.from_bytes(os.urandom(2)) + 1)
    headers = {**HEADERS, "Content-Type": "application/octet-stream"}
    async with session.post(url + "/echo", data=body, headers=headers) as response:
        await expect(response, 200)
        await _same_body(response, len(body), hashlib.sha256(body).hexdigest())


async def preflight(session: aiohttp.ClientSession, url: str) -> None:
    headers = {
        **HEADERS,
        "Access-Control-Request-Method": "PATCH",
        "Access-Control-Request-Headers": "content-type, x-token",
    }
    async with session.options(url + "/echo", headers=headers) as response:
        if (
            response.status != 204
            or response.headers.get("Access-Control-Allow-Methods") != "PATCH"
        ):
            raise Verdict("bad", f"preflight: {response.status} {dict(response.headers)}")
        await expect(response, 204)


async def sse(session: aiohttp.ClientSession, url: str) -> None:
    async with session.get(f"{url}/sse?events={SSE_EVENTS}&gap=0.05", headers=HEADERS) as response:
        await expect(response, 200)
        seen = [line async for line in response.content if line.startswith(b"data: ")]
    wanted = [f"data: event {n}\n".encode() for n in range(SSE_EVENTS)]
    if seen != wanted:
        raise Verdict("bad", f"SSE events: got {len(seen)} of {SSE_EVENTS}, silently cut")


async def websocket(session: aiohttp.ClientSession, url: str) -> None:
    try:
        ws = await session.ws_connect(url + "/ws", origin=ORIGIN)
    except aiohttp.WSServerHandshakeError as exc:
        result = "gateway" if exc.status in (502, 504) else "bad"
        raise Verdict(result, f"WebSocket upgrade answered {exc.status}") from None
    async with ws:
        for number in range(WS_MESSAGES):
            await _ws_round_trip(ws, number)
        await ws.close()
    if ws.close_code != 1000:
        raise Verdict("bad", f"WebSocket closed with {ws.close_code}")


async def _ws_round_trip(ws: aiohttp.ClientWebSocketResponse, number: int) -> None:
    sent: str | bytes = f"message {number}" if number % 2 else os.urandom(number * 100 + 1)
    await (ws.send_str(sent) if isinstance(sent, str) else ws.send_bytes(sent))
    message = await ws.receive()
    if message.type is aiohttp.WSMsgType.CLOSE and message.data in (1001, 1011):
        # 1001: the upstream went away (a graceful restart); 1011: it vanished (a crash).
        raise Verdict("aborted", f"WebSocket closed {message.data} after {number} messages")
    if message.data != sent:
        raise Verdict("bad", f"WebSocket echo differs: {message.type} {message.data!r:.80}")


async def download(session: aiohttp.ClientSession, url: str) -> None:
    async with session.get(url + "/download", headers=HEADERS) as response:
        await expect(response, 200)
        digest, length = hashlib.sha256(), 0
        async for chunk in response.content.iter_chunked(CHUNK):
            digest.update(chunk)
            length += len(chunk)
    if length != DOWNLOAD_SIZE or digest.hexdigest() != DIGEST[DOWNLOAD_SIZE]:
        raise Verdict("bad", f"download: {length} bytes, digest differs or silently cut")


async def _pattern(size: int) -> AsyncIterator[bytes]:
    for start in range(0, size, CHUNK):
        yield PATTERN[: min(CHUNK, size - start)]


async def upload(session: aiohttp.ClientSession, url: str) -> None:
    headers = {**HEADERS, "Content-Type": "application/octet-stream"}
    async with session.post(url + "/upload", data=_pattern(UPLOAD_SIZE), headers=headers) as r:
        await expect(r, 200)
        await _same_body(r, UPLOAD_SIZE, DIGEST[UPLOAD_SIZE])


async def _same_body(response: aiohttp.ClientResponse, length: int, sha: str) -> None:
    summary = json.loads(await response.read())
    if summary != {"length": length, "sha256": sha}:
        raise Verdict("bad", f"upstream received {summary}, sent {length} bytes")


async def hangup_mid_request(session: aiohttp.ClientSession, url: str) -> None:
    """Announce a 4 MiB upload, send 256 KiB of it, hang up."""
    reader, writer = await _connect(url)
    head = (
        f"POST /upload HTTP/1.1\r\nHost: {url[7:]}\r\nOrigin: {ORIGIN}\r\n"
        f"Content-Length: {4 * 1024 * 1024}\r\n\r\n"
    )
    writer.write(head.encode() + PATTERN * 4)
    await writer.drain()
    writer.transport.abort()
    raise Verdict("hangup", "hung up after 256 KiB of a 4 MiB upload")


async def hangup_mid_response(session: aiohttp.ClientSession, url: str) -> None:
    """Ask for 8 MiB, read the head and 1 MiB of it, hang up."""
    reader, writer = await _connect(url)
    writer.write(f"GET /download HTTP/1.1\r\nHost: {url[7:]}\r\nOrigin: {ORIGIN}\r\n\r\n".encode())
    try:
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        if status == 502:
            raise Verdict("gateway", "502 before the download began")
        if status != 200:
            raise Verdict("bad", f"status {status}")
        await reader.readexactly(1024 * 1024)
    except asyncio.IncompleteReadError as exc:
        raise Verdict("aborted", f"cut after {len(exc.partial)} bytes") from None
    finally:
        writer.transport.abort()
    raise Verdict("hangup", "hung up after 1 MiB of an 8 MiB download")


async def _connect(url: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    host, port = url[7:].rsplit(":", 1)
    return await asyncio.open_connection(host, int(port))


# kind -> (action, workers, pause between requests in s, touches the upstream)
KINDS: dict[str, tuple[Action, int, float, bool]] = {
    "get": (get, 4, 0.02, True),
    "post": (post, 2, 0.02, True),
    "preflight": (preflight, 2, 0.02, False),
    "sse": (sse, 2, 0.1, True),
    "websocket": (websocket, 2, 0.1, True),
    "download": (download, 1, 0.5, True),
    "upload": (upload, 1, 0.5, True),
    "hangup_mid_request": (hangup_mid_request, 1, 0.5, True),
    "hangup_mid_response": (hangup_mid_response, 1, 0.5, True),
}

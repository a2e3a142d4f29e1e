"""A preflight whose Access-Control-Request-Headers comes on several lines is read as their
comma-joined value (RFC 9110 §5.3), on the early answer and on the usual way alike."""

from __future__ import annotations

import re

import pytest
from aiohttp import web

from corsproxy.cors import policy
from tests.conftest import ORIGIN, raw_request


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        pytest.param([], None, id="a header not sent is None"),
        pytest.param(["x-a"], "x-a", id="one line is its value"),
        pytest.param(["", "x-a"], ", x-a", id="an empty first line still joins"),
        pytest.param(["x-a, x-b", "x-c"], "x-a, x-b, x-c", id="lines join with a comma"),
    ],
)
def test_joined(values: list[str], expected: str | None) -> None:
    assert policy.joined(values) == expected


def preflight(port: int, lines: list[str], close: bool) -> bytes:
    head = [
        "OPTIONS /api HTTP/1.1",
        f"Host: 127.0.0.1:{port}",
        f"Origin: {ORIGIN}",
        "Access-Control-Request-Method: PUT",
        *(f"Access-Control-Request-Headers: {value}" for value in lines),
    ]
    head += ["Connection: close"] if close else []
    return ("\r\n".join(head) + "\r\n\r\n").encode()


def allow_headers(data: bytes) -> list[str | None]:
    """Each response's Access-Control-Allow-Headers (None when absent), in order."""
    answers = re.split(rb"(?=HTTP/1\.1 \d{3} )", data)
    out = []
    for answer in filter(None, answers):
        assert answer.startswith(b"HTTP/1.1 204 "), answer
        found = re.search(rb"(?im)^access-control-allow-headers: *(.*?)\r$", answer)
        out.append(found[1].decode() if found else None)
    return out


@pytest.mark.parametrize(
    ("lines", "granted"),
    [
        pytest.param(["", "x-custom"], "x-custom", id="an empty first line, the name on the next"),
        pytest.param(
            ["content-type", "x-custom"], "content-type, x-custom", id="one name on each line"
        ),
    ],
)
async def test_every_line_is_granted(aiohttp_server, start_proxy, lines, granted) -> None:
    """The first preflight takes the early answer (keep-alive), the second the usual way
    (Connection: close); a raw socket, because clients join repeated headers themselves."""
    seen: list[str] = []

    async def upstream(request: web.Request) -> web.Response:
        seen.append(request.method)
        return web.Response(text="not for preflights")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", upstream)
    proxy = await start_proxy(str((await aiohttp_server(app)).make_url("")).rstrip("/"))

    data = preflight(proxy.port, lines, close=False) + preflight(proxy.port, lines, close=True)
    answers = allow_headers(await raw_request(proxy.port, data))

    assert answers == [granted, granted]
    assert seen == []  # answered by the proxy, never forwarded

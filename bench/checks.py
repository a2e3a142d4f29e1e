"""Before measuring, one request of each case per target, as a browser would judge it.

check() returns the problems found (empty when the target answers correctly): the right
status and body, the CORS headers the target promises, and none at all from the upstream.
"""

from __future__ import annotations

import http.client
import ssl
from urllib.parse import urlsplit

from drive import BIG_BYTES, ORIGIN
from nginx_conf import ITEM_JSON
from targets import Target


def fetch(url: str, method: str, headers: dict[str, str], body: bytes | None = None):
    """(status, headers with lower-case names, body length, first 256 bytes of the body)."""
    parts = urlsplit(url)
    connection: http.client.HTTPConnection
    if parts.scheme == "https":  # corsproxy --https: a certificate from the bench's own authority
        unverified = ssl._create_unverified_context()
        connection = http.client.HTTPSConnection(
            parts.hostname or "", parts.port, timeout=30, context=unverified
        )
    else:
        connection = http.client.HTTPConnection(parts.hostname or "", parts.port, timeout=30)
    try:
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        connection.request(method, target, body=body, headers={"Origin": ORIGIN, **headers})
        response = connection.getresponse()
        head, length = b"", 0
        while chunk := response.read(1 << 20):
            head = head or chunk[:256]
            length += len(chunk)
        names = {name.lower(): value for name, value in response.getheaders()}
        return response.status, names, length, head
    finally:
        connection.close()


def cors_problems(target: Target, headers: dict[str, str], what: str) -> list[str]:
    allow = headers.get("access-control-allow-origin")
    if not target.cors:
        return [f"{what}: upstream sent Access-Control-Allow-Origin {allow!r}"] if allow else []
    expected = ORIGIN if target.echoes_origin else "*"
    problems = [] if allow == expected else [f"{what}: Allow-Origin {allow!r}, not {expected!r}"]
    credentials = headers.get("access-control-allow-credentials")
    if target.credentials and credentials != "true":
        problems.append(f"{what}: Allow-Credentials {credentials!r}, not 'true'")
    if target.echoes_origin and "origin" not in headers.get("vary", "").lower():
        problems.append(f"{what}: no Vary: Origin")
    return problems


def check_get(target: Target) -> list[str]:
    status, headers, _, body = fetch(target.url("/api/item"), "GET", {})
    wrong = status != 200 or body != ITEM_JSON.encode()
    problems = [f"GET /api/item: {status} {body[:80]!r}"] if wrong else []
    return problems + cors_problems(target, headers, "GET /api/item")


def check_preflight(target: Target) -> list[str]:
    ask = {"Access-Control-Request-Method": "PUT", "Access-Control-Request-Headers": "content-type"}
    status, headers, _, _ = fetch(target.url("/api/item"), "OPTIONS", ask)
    problems = [] if 200 <= status < 300 else [f"preflight: status {status}"]
    methods = headers.get("access-control-allow-methods", "")
    if target.cors and "PUT" not in methods.upper() and methods != "*":
        problems.append(f"preflight: Allow-Methods {methods!r} does not grant PUT")
    return problems + cors_problems(target, headers, "preflight")


def check_post(target: Target) -> list[str]:
    status, headers, _, _ = fetch(target.url("/sink"), "POST", {}, b"x" * 1024)
    problems = [] if status == 200 else [f"POST /sink: status {status}"]
    return problems + cors_problems(target, headers, "POST /sink")


def check_download(target: Target) -> list[str]:
    status, headers, length, _ = fetch(target.url("/big"), "GET", {})
    wrong = status != 200 or length != BIG_BYTES
    problems = [f"GET /big: status {status}, {length:,} bytes, not {BIG_BYTES:,}"] if wrong else []
    return problems + cors_problems(target, headers, "GET /big")


def check(target: Target) -> list[str]:
    """Every problem with the target's answers to the four cases; empty when all is right."""
    checks = (check_get, check_preflight, check_post, check_download)
    return [problem for one in checks for problem in one(target)]

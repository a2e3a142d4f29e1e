"""The kept exchanges as a HAR 1.2 document (http://www.softwareishard.com/blog/har-12-spec/),
for Chrome DevTools' and Firefox's "Import HAR". web.py serves it at /__corsproxy/api/har.

Each exchange is one entry: the request as the browser sent it, the response as the browser
received it. What only corsproxy knows (its decision, the upstream's own headers, the verdict
without the proxy) goes in `_corsproxy`: HAR allows custom fields that start with "_".
Pure: records in, a dict out.
"""

from __future__ import annotations

from datetime import datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from corsproxy import __version__

Record = dict[str, Any]


def filename(now: datetime) -> str:
    """`corsproxy-2025-03-14-150926.har`: sorts by time, no characters a file system refuses."""
    return f"corsproxy-{now:%Y-%m-%d}-{now:%H%M%S}.har"


def document(records: list[Record]) -> dict[str, Any]:
    """{"log": {...}} with one entry per exchange, oldest first."""
    return {
        "log": {
            "version": "1.2",
            "creator": {"name": "corsproxy", "version": __version__},
            "pages": [],
            "entries": [entry(record) for record in records],
        }
    }


def _headers(pairs: list[list[str]] | None) -> list[dict[str, str]]:
    return [{"name": name, "value": value} for name, value in pairs or []]


def _cookies(pairs: list[list[str]] | None, header: str) -> list[dict[str, str]]:
    """Cookie (request) or Set-Cookie (response) headers as HAR's name/value cookie list."""
    found = []
    for name, value in pairs or []:
        if name.lower() != header:
            continue
        parts = value.split(";") if header == "cookie" else value.split(";", 1)[:1]
        for part in parts:
            key, eq, val = part.strip().partition("=")
            if eq:
                found.append({"name": key, "value": val})
    return found


def _value(pairs: list[list[str]] | None, lower: str) -> str | None:
    for name, value in pairs or []:
        if name.lower() == lower:
            return value
    return None


def _reason(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


def entry(record: Record) -> dict[str, Any]:
    sent = record["request_headers"]
    received = record["response_headers"]
    url = record["url"]
    total = float(record["duration_ms"])
    wait = record["timings"].get("upstream_head_ms")
    wait = total if wait is None else min(float(wait), total)
    request: dict[str, Any] = {
        "method": record["method"],
        "url": url,
        "httpVersion": "HTTP/1.1",
        "cookies": _cookies(sent, "cookie"),
        "headers": _headers(sent),
        "queryString": [
            {"name": n, "value": v}
            for n, v in parse_qsl(urlsplit(url).query, keep_blank_values=True)
        ],
        "headersSize": -1,
        "bodySize": -1,
    }
    body = record.get("request_body")
    if body is not None:
        request["postData"] = {"mimeType": body["content_type"], "text": body["text"]}
        request["bodySize"] = body["size"]
    answer = record.get("response_body")
    content: dict[str, Any] = {
        "size": answer["size"] if answer else 0,
        "mimeType": _value(received, "content-type") or "",
    }
    if answer is not None:
        content["text"] = answer["text"]
        if answer["truncated"]:
            content["comment"] = "only the first bytes were kept (inspector.body_preview)"
    return {
        "startedDateTime": record["time"],
        "time": total,
        "request": request,
        "response": {
            "status": record["status"],
            "statusText": _reason(record["status"]),
            "httpVersion": "HTTP/1.1",
            "cookies": _cookies(received, "set-cookie"),
            "headers": _headers(received),
            "content": content,
            "redirectURL": _value(received, "location") or "",
            "headersSize": -1,
            "bodySize": answer["size"] if answer else -1,
        },
        "cache": {},
        "timings": {"send": 0, "wait": wait, "receive": max(total - wait, 0.0)},
        "comment": f"{record['decision']}: {record['reason']}",
        "_corsproxy": {
            key: record[key]
            for key in (
                "id",
                "decision",
                "reason",
                "route",
                "origin",
                "without_proxy",
                "corrections",
                "upstream_url",
                "upstream_request_headers",
                "upstream_response_headers",
                "cookies",
                "pair",
                "replay",
            )
        },
    }

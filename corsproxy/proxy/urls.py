"""Absolute URLs split into origin and the rest, the one way the proxy does it.

Routing (a request target in absolute form), the Referer sent upstream and the Location
rewrite all need the same cut; doing it in one place keeps `http://h?q=/x` from being cut at
the slash inside its query by one of them.
"""

from __future__ import annotations


def split_absolute(url: str) -> tuple[str, str]:
    """('scheme://authority', rest): rest is '' or starts with '/' or '?'."""
    start = url.find("://") + 3
    cut = min((i for i in (url.find("/", start), url.find("?", start)) if i >= 0), default=len(url))
    return url[:cut], url[cut:]


def path_and_query(url: str) -> str:
    """The path and query of an absolute URL, '/' for an empty path: `http://h?q` -> `/?q`."""
    rest = split_absolute(url)[1]
    return rest if rest.startswith("/") else "/" + rest

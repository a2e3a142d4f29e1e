"""Hints for the log line when the upstream's answer looks like a known backend behaviour.

proxy._respond() asks after the upstream answered. Pure: plain values in, words out.
"""

from __future__ import annotations

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS", "TRACE"})  # RFC 9110 §9.2.1


def origin_check_hint(
    method: str, status: int, allowed: bool, origin_header: str, route_index: int
) -> str | None:
    """A 403 to an allowed page's unsafe request, its Origin passed on as the page sent it.

    Django (CSRF_TRUSTED_ORIGINS), Spring Security, Rails (forgery protection's origin check)
    and Go 1.25's http.CrossOriginProtection refuse an unsafe request whose Origin or
    Sec-Fetch-Site says it comes from another site than their own. The page's origin is
    another site for them, so `origin_header: upstream` (the backend's own origin, no
    Sec-Fetch-*) is the fix; the proxy does so only for allowed pages, so the check still
    stops the rest. https://pkg.go.dev/net/http#CrossOriginProtection
    """
    if status != 403 or not allowed or origin_header != "keep":
        return None
    if method.upper() in SAFE_METHODS:
        return None
    return (
        f"a 403 to a {method} from an allowed page looks like the backend's origin check "
        "(Django CSRF, Spring Security, Rails, Go's http.CrossOriginProtection); "
        f"routes[{route_index}].origin_header: upstream presents the backend's own origin"
    )

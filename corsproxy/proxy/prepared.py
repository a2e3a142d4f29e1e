"""What each route needs per request, worked out once when the settings are compiled."""

from __future__ import annotations

from dataclasses import dataclass

from corsproxy.proxy import headerrules, rewrite
from corsproxy.proxy.routing import CompiledRoute


@dataclass(frozen=True, slots=True)
class Prepared:
    """What each route needs per request, built once: client options and the rewrite map."""

    index: int  # its place in the config, for messages such as "raise timeout on routes[1]"
    scheme: str  # http or https, for the upstream pool
    ssl: bool  # False: accept any certificate (verify_tls: false)
    rewrite_map: rewrite.RouteMap
    request_rules: headerrules.Compiled | None  # request_headers; None when it has none
    response_rules: headerrules.Compiled | None


def prepare(route: CompiledRoute, index: int) -> Prepared:
    settings = route.route
    return Prepared(
        index=index,
        scheme=route.upstream_origin.split(":", 1)[0].lower(),
        ssl=settings.verify_tls,
        rewrite_map=rewrite.RouteMap(
            route.upstream_origin.lower() + route.base[len(route.upstream_origin) :],
            route.prefix,
            settings.strip_prefix,
        ),
        request_rules=headerrules.compile_rules(settings.request_headers),
        response_rules=headerrules.compile_rules(settings.response_headers),
    )

"""Sites as browsers compare them for cookies: scheme plus registrable domain.

Used by proxy/rewrite.py (is the page cross-site to the proxy?) and cors/cookies.py (will the
browser keep the cookie?). Pure. A *site* (HTML "schemelessly same site" with the scheme kept,
as Chromium's SchemefulSite and Firefox's schemeful SameSite do) is `scheme://registrable
domain`; an IP address, `localhost` or a one-label name has none, and is its own site.

No public-suffix-list dependency (its 300 KiB change weekly, and a development proxy meets a
handful of names): the registrable domain is the last two labels, or three below the short
list of multi-label public suffixes developers meet (country second levels such as co.uk,
hosting suffixes such as github.io or vercel.app). A name under a suffix not in the list is
taken as one site with its neighbours; the pages this proxy serves are nearly always
localhost, 127.0.0.1, a LAN name or a *.test name, where the rule is exact. Unknown top-level
names (.test, .localhost, .lan) follow the PSL's implicit "*" rule as Chromium and Firefox do:
a.app.test and b.app.test are one site, app.test and proxy.test two.
See https://developer.mozilla.org/en-US/docs/Glossary/Site and
https://chromium.googlesource.com/chromium/src/+/main/net/base/schemeful_site.h
"""

from __future__ import annotations

import ipaddress

from corsproxy.cors.origins import parse_origin

# Multi-label public suffixes (from publicsuffix.org) a development setup is likely to meet.
MULTI_LABEL_SUFFIXES = frozenset(
    """
    co.uk org.uk ac.uk gov.uk me.uk ltd.uk plc.uk net.uk
    com.au net.au org.au edu.au gov.au co.nz org.nz net.nz
    co.jp ne.jp or.jp ac.jp go.jp co.kr or.kr com.cn net.cn org.cn com.hk com.tw com.sg
    co.in net.in org.in com.br net.br org.br com.mx com.ar co.za com.tr com.pl co.il
    github.io gitlab.io vercel.app netlify.app pages.dev workers.dev web.app firebaseapp.com
    herokuapp.com appspot.com azurewebsites.net cloudfront.net amazonaws.com onrender.com
    fly.dev ngrok.io ngrok-free.app ngrok.app trycloudflare.com loca.lt repl.co glitch.me
    """.split()
)


def is_ip(host: str) -> bool:
    """An IPv4 address, or an IPv6 address with or without its brackets."""
    try:
        ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return False
    return True


def registrable_domain(host: str) -> str:
    """The host's registrable domain, or the host itself when it has none (see the module)."""
    host = host.lower().rstrip(".")
    if is_ip(host):
        return host
    labels = host.split(".")
    if len(labels) <= 2:
        return host
    if ".".join(labels[-2:]) in MULTI_LABEL_SUFFIXES:
        return ".".join(labels[-3:])
    return ".".join(labels[-2:])


def is_public_suffix(domain: str) -> bool:
    """A name nobody may set a cookie for as a Domain: a top-level name or a listed suffix."""
    domain = domain.lower().strip(".")
    return (
        "." not in domain and domain != "localhost" and not is_ip(domain)
    ) or domain in MULTI_LABEL_SUFFIXES


def site_of(scheme: str, host: str) -> str:
    """`scheme://registrable-domain`, e.g. site_of("http", "api.example.com") ->
    "http://example.com"; the port never counts."""
    return f"{scheme.lower()}://{registrable_domain(host)}"


def site_of_origin(origin: str) -> str | None:
    """The site of a serialized origin; None for `null` or anything that is not an origin."""
    parsed = parse_origin(origin)
    return None if parsed is None else site_of(parsed.scheme, parsed.host)


def host_only(authority: str) -> str:
    """The host of a Host header value, lowercased, without the port; IPv6 keeps brackets."""
    value = authority.strip().lower()
    if value.startswith("["):
        return value[: value.find("]") + 1] if "]" in value else value
    name, sep, port = value.rpartition(":")
    return name if sep and port.isdigit() else value

"""Header rules per route: `request_headers` and `response_headers`, each `set` and `remove`.

Read at config load (config/file.py: names checked, `${NAME}` expanded from the environment it is
given), compiled once per route by the Proxy, applied to plain header lists: the request's after
headers.for_upstream() when request_withheld() allows, the response's after headers.for_client()
and before policy.finish(), so the CORS rules have the last word. Pure: no aiohttp, no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from corsproxy.config.checks import Invalid, check_header_name, expected, got
from corsproxy.config.model import HeaderRules
from corsproxy.cors.policy import Verdict

Headers = list[tuple[str, str]]

# Headers the proxy itself owns: a rule that changed them would break framing, routing or CORS.
_OWNED = {
    "host": "the proxy sends each route's Host itself (see host_header)",
    "content-length": "the proxy frames each body itself",
    "transfer-encoding": "the proxy frames each body itself",
    "connection": "it belongs to one connection, not to the request or the response",
    "upgrade": "the proxy handles WebSocket upgrades itself (see websocket)",
}
_CORS_OWNED = "the CORS rules own the Access-Control-* headers (see the cors section)"
# RFC 9110 §5.5: a field value has no control characters but horizontal tab; C1 ones neither.
_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f-\x9f]")
# `$${` is a literal `${`; `${NAME}` and `${NAME:-default}` are references (a default cannot
# hold another `${`); any other `${` is a mistake worth refusing rather than sending as is.
_PIECE = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-((?:(?!\$\{)[^}])*))?\}|\$\{")
_REFERENCE_FORM = (
    "${NAME} or ${NAME:-default} (NAME of letters, digits and _; $${ for a literal ${)"
)
# Sec-Fetch-Site values (Fetch Metadata Request Headers §2.4) that no other page can cause:
# a page of the proxy's own origin, or the user (address bar, bookmark). A browser page cannot
# set Sec-* headers itself, so a value it sends is the browser's word.
_OWN_FETCH_SITES = frozenset({"same-origin", "none"})


def check_name(value: object) -> str:
    """A header name a rule may set or remove: a token, and none the proxy owns."""
    if value == "*":
        raise expected("a header name such as X-Api-Key (rules have no wildcard)", value)
    name = check_header_name(value)
    lower = name.lower()
    why = _CORS_OWNED if lower.startswith("access-control-") else _OWNED.get(lower)
    if why is not None:
        raise Invalid(f"{name} cannot be set or removed by a header rule: {why}")
    return name


def read_value(value: object, env: Mapping[str, str]) -> tuple[str, str]:
    """A `set` value as written (the template, safe to show) and as sent (expanded from env)."""
    if value is None:
        raise Invalid(
            "expected a header value; got nothing (to drop the header, list it under remove)"
        )
    if not isinstance(value, str):
        # Quoting keeps what was typed: YAML reads 010 as 8, 1.10 as 1.1 and yes as true.
        tail = "" if isinstance(value, list | dict) else " (write it in quotes)"
        raise Invalid(f"expected a header value as text; got {got(value)}{tail}")
    if _CONTROL.search(value):
        raise expected("a header value without control characters", value)
    return value, expand(value, env)


def expand(template: str, env: Mapping[str, str]) -> str:
    """`${NAME}` and `${NAME:-default}` replaced from env, `$${` made `${`.

    As in a shell, `:-` also covers a variable set to nothing. Without a default, an unset or
    empty variable is refused: an `Authorization: Bearer ` sent by mistake helps nobody.
    """
    out: list[str] = []
    last = 0
    for match in _PIECE.finditer(template):
        out.append(template[last : match.start()])
        last = match.end()
        name, default = match.group(1), match.group(2)
        if match.group(0) == "$${":
            out.append("${")
        elif name is None:
            raise expected(_REFERENCE_FORM, _snippet(template, match.start()))
        elif env.get(name, "") != "":
            out.append(_checked(name, env[name]))
        elif default is not None:
            out.append(default)
        else:
            state = "is empty" if name in env else "is not set"
            raise Invalid(
                f"${{{name}}} {state} in the environment; set it, "
                f"or give a default: ${{{name}:-value}}"
            )
    out.append(template[last:])
    return "".join(out)


def _checked(name: str, value: str) -> str:
    """A variable's value; refused if a header cannot hold it, and never shown (it is a secret)."""
    bad = _CONTROL.search(value)
    if bad is not None:
        raise Invalid(
            f"the value of ${{{name}}} contains a control character (U+{ord(bad.group()):04X}), "
            "which a header value cannot carry"
        )
    return value


def _snippet(template: str, start: int) -> str:
    """The malformed reference: from its `${` to the next `}`, or a little of what follows."""
    end = template.find("}", start)
    return template[start : end + 1] if 0 <= end < start + 40 else template[start : start + 20]


@dataclass(frozen=True, slots=True)
class Compiled:
    """One direction's rules, ready for the hot path: names to drop, fields to append."""

    drop: frozenset[str]  # lowercase: every name removed, and every name set (replaced)
    add: tuple[tuple[str, str], ...]  # (name, value as sent)
    masks: tuple[tuple[str, str, str], ...]  # (lowercase name, value as sent, as written)

    def apply(self, headers: Sequence[tuple[str, str]]) -> Headers:
        """Set replaces every field of that name; remove drops them all."""
        kept = [(name, value) for name, value in headers if name.lower() not in self.drop]
        return kept + list(self.add)

    def mask(self, headers: Sequence[tuple[str, str]]) -> Headers:
        """The headers as they may be shown (log, inspector): an expanded value as written."""
        shown = []
        for name, value in headers:
            lower = name.lower()
            for masked, sent, written in self.masks:
                if lower == masked and value == sent:
                    value = written
                    break
            shown.append((name, value))
        return shown


def compile_rules(rules: HeaderRules) -> Compiled | None:
    """None when the route has no such rules, so the hot path skips them at no cost."""
    if not rules:
        return None
    names = [header.name for header in rules.set] + list(rules.remove)
    return Compiled(
        drop=frozenset(name.lower() for name in names),
        add=tuple((header.name, header.value) for header in rules.set),
        masks=tuple(
            (header.name.lower(), header.value, header.template)
            for header in rules.set
            if header.value != header.template
        ),
    )


def request_withheld(verdict: Verdict, fetch_site: Sequence[str]) -> str | None:
    """Why a request must not get the route's request rules, or None when it may.

    A page on a refused origin cannot read the answers, but it can still send: a `text/plain`
    POST, a form, an `<img>`, a link. Injected credentials must never ride on those. An allowed
    origin may; so may a request without Origin that no other page caused (curl, scripts, the
    address bar, a page of the proxy's own origin). A no-cors GET or a navigation carries no
    Origin, so Sec-Fetch-Site tells; `same-site` is another origin too, and cannot be checked.
    """
    if verdict is Verdict.ALLOWED:
        return None
    if verdict is not Verdict.NOT_CORS:
        return "origin refused"
    others = [site for site in fetch_site if site.strip() not in _OWN_FETCH_SITES]
    if others:
        return f"no Origin, and Sec-Fetch-Site: {', '.join(others)} says another page sent it"
    return None


def on_request(
    rules: Compiled | None, verdict: Verdict, fetch_site: Sequence[str], headers: Headers
) -> tuple[Headers, str | None]:
    """The headers to send upstream, and a log note when the rules were withheld."""
    if rules is None:
        return headers, None
    why = request_withheld(verdict, fetch_site)
    if why is not None:
        return headers, f"request_headers withheld: {why}"
    return rules.apply(headers), None


def on_response(rules: Compiled | None, headers: Headers) -> Headers:
    """The upstream's headers with the route's response rules applied (before the CORS step)."""
    return headers if rules is None else rules.apply(headers)


def shown(rules: Compiled | None, sent: Headers) -> Headers:
    """The headers as the log and the inspector may show them: `${NAME}` values as written."""
    return sent if rules is None or not rules.masks else rules.mask(sent)

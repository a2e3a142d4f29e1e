"""Origin matching: `cors.allow_origins` entries compiled once into an OriginMatcher.

The first CORS step of every request: policy.decide() asks OriginMatcher.match(origin header).
Every comparison works on a strictly parsed origin (scheme, host, port), never on raw text,
so lookalikes such as `http://localhost.evil.example` or `http://localhost@evil.example`
cannot slip past a prefix or substring test.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

# An origin as browsers serialise it (WHATWG HTML "ASCII serialization of an origin"):
# lowercase scheme, "://", lowercase host (DNS name, IPv4 or [IPv6]), optional ":port".
# No userinfo, no path, no trailing slash, no whitespace.
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_ORIGIN_RE = re.compile(
    rf"(?P<scheme>[a-z][a-z0-9+.-]*)://"
    rf"(?P<host>\[[0-9a-f:.]+\]|{_LABEL}(?:\.{_LABEL})*)"
    r"(?::(?P<port>[1-9][0-9]{0,4}))?"
)
_LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "[::1]"})
_CACHE_LIMIT = 4096


@dataclass(frozen=True, slots=True)
class Origin:
    """A parsed `Origin` header value; `port` is None when the browser sent none."""

    scheme: str
    host: str
    port: int | None


def parse_origin(value: str) -> Origin | None:
    """Parse one serialised origin; None for anything a browser would not send."""
    found = _ORIGIN_RE.fullmatch(value)
    if found is None:
        return None
    port = found["port"]
    if port is not None and int(port) > 65535:
        return None
    return Origin(found["scheme"], found["host"], int(port) if port else None)


def is_loopback_host(host: str) -> bool:
    """localhost, *.localhost, 127.0.0.1 or [::1]: names that never leave the machine."""
    return host in _LOOPBACK_HOSTS or host.endswith(".localhost")


@dataclass(frozen=True, slots=True)
class _Wildcard:
    """`https://*.example.com[:port]`: one or more labels below the domain, never the bare one."""

    scheme: str
    suffix: str  # ".example.com"
    port: int | None


@dataclass(frozen=True, slots=True)
class OriginMatch:
    """Which `allow_origins` entry let an origin in, and what to send back for it."""

    entry: str
    any_origin: bool  # matched by "*": "*" may be sent when credentials are off


class OriginMatcher:
    """All `allow_origins` entries of one policy, compiled; match() is the only question."""

    def __init__(self, entries: tuple[str, ...]) -> None:
        self.entries = entries
        self._exact: dict[str, str] = {}
        self._wildcards: list[tuple[_Wildcard, str]] = []
        self._regexes: list[tuple[re.Pattern[str], str]] = []
        self._localhost = "localhost" in entries
        self._any = "*" in entries
        self._null = "null" in entries
        self._cache: dict[str, OriginMatch | None] = {}
        for entry in entries:
            compiled = compile_allow_entry(entry)
            if isinstance(compiled, str):
                self._exact[compiled] = entry
            elif isinstance(compiled, _Wildcard):
                self._wildcards.append((compiled, entry))
            elif isinstance(compiled, re.Pattern):
                self._regexes.append((compiled, entry))

    def match(self, origin: str) -> OriginMatch | None:
        """The entry that allows this `Origin` header value, or None if it is refused."""
        try:
            return self._cache[origin]
        except KeyError:
            pass
        found = self._match(origin)
        if len(self._cache) < _CACHE_LIMIT:
            self._cache[origin] = found
        return found

    def _match(self, origin: str) -> OriginMatch | None:
        if origin == "null":
            # The opaque origin of sandboxed iframes and file:// pages: shared by every such
            # page, so only an explicit "null" entry lets it in (never "*").
            return OriginMatch("null", False) if self._null else None
        parsed = parse_origin(origin)
        if parsed is None:
            return None
        if self._any:
            return OriginMatch("*", True)
        if origin in self._exact:
            return OriginMatch(self._exact[origin], False)
        if self._localhost and parsed.scheme in ("http", "https") and is_loopback_host(parsed.host):
            return OriginMatch("localhost", False)
        for wildcard, entry in self._wildcards:
            if (
                parsed.scheme == wildcard.scheme
                and parsed.port == wildcard.port
                and parsed.host.endswith(wildcard.suffix)
                and len(parsed.host) > len(wildcard.suffix)
            ):
                return OriginMatch(entry, False)
        for pattern, entry in self._regexes:
            if pattern.fullmatch(origin):
                return OriginMatch(entry, False)
        return None

    def describe(self) -> str:
        """The entries as the start-up line and log lines show them."""
        return ", ".join(self.entries) or "none"


class EntryError(ValueError):
    """Why an `allow_origins` entry is refused, and the entry meant, when it can be guessed."""

    def __init__(self, reason: str, meant: str | None = None, echo: bool = True) -> None:
        self.reason, self.meant = reason, meant
        self.echo = echo  # False: the entry holds a password, never shown again
        super().__init__(reason + (f"; did you mean {meant!r}?" if meant else ""))


def _with_scheme(entry: str) -> str | None:
    """`localhost:5173` -> `http://localhost:5173`; `app.example.com` -> `https://...`."""
    host = entry.split(":", 1)[0].lower()
    local = "." not in host or host.endswith(".localhost") or host.replace(".", "").isdigit()
    meant = f"{'http' if local else 'https'}://{entry.lower()}"
    return meant if parse_origin(meant) is not None else None


def compile_allow_entry(entry: str) -> str | _Wildcard | re.Pattern[str] | None:
    """Compile one `allow_origins` entry; raise ValueError with the reason in plain words.

    Returns the canonical origin for an exact entry, a wildcard or a regex; None for the
    keywords "*", "localhost" and "null", which OriginMatcher handles itself. An EntryError
    carries the entry probably meant, when there is one.
    """
    if entry in ("*", "localhost", "null"):
        return None
    if entry.startswith("regex:"):
        try:
            return re.compile(entry[len("regex:") :])
        except re.error as exc:
            raise EntryError(f"invalid regular expression: {exc}") from None
    if entry != entry.strip():
        raise EntryError("an origin has no surrounding spaces", entry.strip() or None)
    if "://" not in entry:
        raise EntryError(
            "an origin is scheme://host[:port], e.g. 'http://localhost:5173', "
            "or one of '*', 'localhost', 'null', 'regex:...'",
            _with_scheme(entry),
        )
    scheme, rest = entry.split("://", 1)
    authority, sep, path = rest.partition("/")
    if sep:
        raise EntryError(
            "an origin has no path or trailing slash (browsers never send one)",
            f"{scheme}://{authority}",
        )
    if "@" in authority:
        meant = f"{scheme}://{authority.rsplit('@', 1)[1]}"
        raise EntryError("an origin has no user name or password", meant, echo=False)
    if authority.startswith("*."):
        wildcard = parse_origin(f"{scheme.lower()}://x{authority[1:].lower()}")
        if wildcard is None:
            raise EntryError("expected a wildcard origin such as 'https://*.example.com'")
        return _Wildcard(wildcard.scheme, wildcard.host[1:], wildcard.port)
    if "*" in authority:
        raise EntryError("'*' is allowed only as the first label, as in 'https://*.example.com'")
    canonical = f"{scheme}://{authority}".lower()
    if parse_origin(canonical) is None:
        raise EntryError("expected an origin such as 'https://app.example.com:8443'")
    return canonical

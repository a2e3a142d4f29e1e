"""Pure checks for single config values: each returns the clean value or raises Invalid.

Shared by the YAML file, the environment and the flags, so a bad port reads the same from all three.
"""

from __future__ import annotations

import ipaddress
import math
import os
import re
import socket
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, TypeGuard
from urllib.parse import urlsplit

from corsproxy.cors.fetch import is_token  # RFC 9110 §5.6.2: methods and field names are tokens

LOG_LEVELS = ("debug", "info", "warning", "error")
_LABEL = r"[A-Za-z0-9_](?:[A-Za-z0-9_-]*[A-Za-z0-9_])?"
_HOST_NAME = re.compile(rf"{_LABEL}(?:\.{_LABEL})*")
_COOKIE_DOMAIN = re.compile(rf"\.?{_LABEL}(?:\.{_LABEL})*")

Check = Callable[[Any], Any]


@dataclass(frozen=True)
class Problem:
    """One bad setting; str() is the line printed: `FILE:LINE: key.path: message`."""

    source: str | None  # the file, the environment variable or the flag it came from
    line: int | None
    path: str  # dotted key path such as routes[0].cookies.samesite; "" for the file itself
    message: str

    def __str__(self) -> str:
        where = self.source or ""
        if self.source and self.line is not None:
            where = f"{self.source}:{self.line}"
        path = self.path if self.path.isprintable() else repr(self.path)
        parts = [part for part in (where, path, self.message) if part]
        return ": ".join(parts)


class Invalid(ValueError):
    """A refused value; str() is the reason, written to follow `key.path: `."""


def got(value: object) -> str:
    """Quote a refused value the way the user typed it, for the `; got ...` tail."""
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return repr(value)
    if isinstance(value, list):
        return "a list" if value else "an empty list"
    if isinstance(value, dict):
        return "a mapping"
    return str(value)


def expected(what: str, value: object) -> Invalid:
    """The one shape of a type error: `expected WHAT; got VALUE`."""
    return Invalid(f"expected {what}; got {got(value)}")


def is_int(value: object) -> TypeGuard[int]:
    """YAML's true/false are Python ints; a port of `true` must still be refused."""
    return isinstance(value, int) and not isinstance(value, bool)


def check_bool(value: object) -> bool:
    """Only YAML booleans: the string 'false' is truthy and would silently mean the opposite."""
    if isinstance(value, bool):
        return value
    raise expected("true or false", value)


def check_port(value: object) -> int:
    if is_int(value) and 1 <= value <= 65535:
        return value
    raise expected("an integer from 1 to 65535", value)


MAX_WORKERS = 64


def workers_check(reuse_port: bool) -> Check:
    """`listen.workers`: processes serving one port, which takes SO_REUSEPORT from the platform."""

    def check(value: object) -> int:
        if not (is_int(value) and 1 <= value <= MAX_WORKERS):
            what = f"a number of processes from 1 to {MAX_WORKERS}"
            if is_int(value) and value > MAX_WORKERS:
                what += " (more processes than CPU cores only cost memory)"
            raise expected(what, value)
        if value > 1 and not reuse_port:
            raise Invalid(
                f"{value} workers need SO_REUSEPORT (Linux), which this platform lacks; use 1"
            )
        return value

    return check


check_workers = workers_check(hasattr(socket, "SO_REUSEPORT"))


def check_seconds(value: object) -> float:
    """Timeouts: zero or infinity would mean "wait forever" by accident."""
    try:
        if (isinstance(value, float) or is_int(value)) and math.isfinite(value) and value > 0:
            return float(value)
    except OverflowError:  # an integer too large for a float
        pass
    raise expected("a positive number of seconds", value)


def check_max_age(value: object) -> int:
    if is_int(value) and 0 <= value <= 86400:
        return value
    why = " (browsers cap it far lower: Chrome at 7200 s, Firefox at 86400 s)"
    raise expected(
        "an integer from 0 to 86400" + (why if is_int(value) and value > 0 else ""), value
    )


def one_of(*choices: str) -> Check:
    """An enum spelt exactly as the spec lists it."""

    def check(value: object) -> str:
        if isinstance(value, str) and value in choices:
            return value
        raise expected("one of " + ", ".join(choices), value)

    return check


def cookie_rules_warning(secure: str, samesite: str) -> str | None:
    """Accepted, but `secure: strip` defeats what samesite auto or none is for: a cross-site
    page's cookie needs SameSite=None, which browsers refuse without Secure."""
    if secure != "strip" or samesite not in ("auto", "none"):
        return None
    return (
        f"samesite {samesite} with secure strip: without Secure a cookie cannot be SameSite=None,"
        " so a cross-site page's login cookie is refused; use secure: auto"
    )


def check_log_level(value: object) -> str:
    if isinstance(value, str) and value.lower() in LOG_LEVELS:
        return value.lower()
    raise expected("one of " + ", ".join(LOG_LEVELS), value)


def _ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def check_listen_host(value: object) -> str:
    """The address to bind; brackets around an IPv6 address are dropped, as bind() wants."""
    if isinstance(value, str):
        host = value[1:-1] if value.startswith("[") and value.endswith("]") else value
        if _ip(host) or _HOST_NAME.fullmatch(host):
            return host
    raise expected("a host name or IP address to listen on, such as 127.0.0.1 or 0.0.0.0", value)


def check_host_name(value: object) -> str:
    """An allowed Host header name, lowercased, IPv6 in brackets as the Host header writes it."""
    if isinstance(value, str):
        host = value[1:-1] if value.startswith("[") and value.endswith("]") else value
        if ":" in host and _ip(host):
            return f"[{host.lower()}]"
        if _ip(host) or _HOST_NAME.fullmatch(host):
            return host.lower()
    raise expected("a host name without scheme, port or path, such as myapp.test", value)


def check_cookie_domain(value: object) -> str:
    if isinstance(value, str) and (value in ("strip", "keep") or _COOKIE_DOMAIN.fullmatch(value)):
        return value if value in ("strip", "keep") else value.lower()
    raise expected(
        "strip, keep or a domain without scheme, port or path, such as .example.test", value
    )


def check_upstream(value: object) -> str:
    """A base URL; its path is kept as a base path, a trailing slash dropped."""
    example = "an http:// or https:// URL such as http://localhost:8000"
    if not isinstance(value, str):
        raise expected(example, value)
    try:
        parts = urlsplit(value.strip())
    except ValueError:  # e.g. an unclosed "[" or characters that change under NFKC
        raise expected(example, value) from None
    if parts.scheme.lower() not in ("http", "https") or re.search(r"\s", value.strip()):
        raise Invalid(f"{expected(example, value)}{_guess_scheme(value)}")
    if parts.username is not None or parts.password is not None:
        # Never echo a password back into a terminal or a log.
        raise Invalid(
            "expected no user name or password in the URL; "
            "the browser's own credentials are forwarded"
        )
    if not parts.hostname:
        raise expected("a URL with a host, such as http://localhost:8000", value)
    if parts.query or value.rstrip().endswith("?"):
        raise expected("no query string in an upstream (each request brings its own)", value)
    if parts.fragment or "#" in value:
        raise expected("no #fragment in an upstream", value)
    try:
        parts.port  # noqa: B018 - urlsplit only validates the port when asked
    except ValueError:
        raise expected("a port from 1 to 65535 in the URL", value) from None
    return f"{parts.scheme.lower()}://{parts.netloc}{parts.path.rstrip('/')}"


def _guess_scheme(value: str) -> str:
    """`localhost:8000` is a URL without its scheme far more often than a scheme of its own:
    http:// for a local host or an address, https:// for a domain name (a remote API)."""
    if "://" in value:
        return ""
    guess = "http://" + value.strip()
    try:
        check_upstream(guess)
    except Invalid:
        return ""
    host = urlsplit(guess).hostname or ""
    local = host == "localhost" or host.endswith(".localhost") or "." not in host
    if not local and not re.fullmatch(r"[0-9.]+|[0-9a-f:]+", host):
        guess = "https://" + value.strip()
    return f"; did you mean {guess}?"


def check_prefix(value: object) -> str:
    if not isinstance(value, str) or not value.startswith("/"):
        raise expected("a path starting with /, such as /api", value)
    if value != "/" and value.endswith("/"):
        raise expected(f"no trailing slash (write {value.rstrip('/') or '/'!r})", value)
    if re.search(r"[?#\s]|//", value):
        raise expected("a plain path without query, fragment, spaces or empty segments", value)
    return value


def tokens_check(kind: str, example: str) -> Check:
    """A method or header name: an RFC 9110 token; "*" is only meaningful as the whole value."""

    def check(value: object) -> str:
        if value == "*":
            raise Invalid(
                f'expected a {kind} such as {example}; "*" means any only on its own, not in a list'
            )
        if isinstance(value, str) and is_token(value):
            return value
        raise expected(f"a {kind} such as {example} (letters, digits and !#$%&'*+-.^_`|~)", value)

    return check


check_method = tokens_check("method name", "PATCH")
check_header_name = tokens_check("header name", "X-Request-Id")


def check_origin_entry(value: object) -> str:
    """An allow_origins entry; origins.py owns the grammar and says what is wrong in words."""
    from corsproxy.cors.origins import EntryError, compile_allow_entry  # the one place that knows

    if not isinstance(value, str):
        raise expected('an origin such as http://localhost:5173, "localhost" or "*"', value)
    try:
        compile_allow_entry(value)
    except EntryError as error:  # the reason, the value as given, then the guess: as elsewhere
        meant = f"; did you mean {error.meant!r}?" if error.meant else ""
        shown = f"; got {got(value)}" if error.echo else ""
        raise Invalid(f"{error.reason}{shown}{meant}") from None
    return value


def readable_file(base_dir: str) -> Check:
    """A file that opens now, relative to the config file's folder, so `check` catches typos."""

    def check(value: object) -> str:
        if not isinstance(value, str) or not value.strip():
            raise expected("the path of a PEM file", value)
        path = os.path.join(base_dir, os.path.expanduser(value))
        try:
            with open(path, "rb"):
                pass
        except OSError as error:
            raise Invalid(f"cannot read {path!r}: {error.strerror}") from None
        except ValueError:  # a NUL byte in the path
            raise expected("the path of a PEM file", value) from None
        return path

    return check


def check_tls_auto(value: object) -> str:
    """`listen.tls: auto`, the one word it takes; files are given as a mapping."""
    if value == "auto":
        return "auto"
    raise expected("auto, or a mapping such as {cert: cert.pem, key: key.pem}", value)


def check_https_flag(value: object) -> str | None:
    """--https (True) means `listen.tls: auto`; absent (None or False) leaves listen.tls alone."""
    return "auto" if value is True else None


def check_tls_pair(cert: str, key: str) -> None:
    """Load the pair now, so a wrong or mismatched file is a config error, not a crash later."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        # An encrypted key would make OpenSSL prompt on the terminal; answer with no password.
        context.load_cert_chain(cert, key, password=lambda: b"")
    except ssl.SSLError as error:
        detail = re.sub(r"^\[[^\]]*\]\s*|\s*\(_ssl\.c:\d+\)$", "", str(error.strerror or error))
        if error.reason == "KEY_VALUES_MISMATCH":
            raise Invalid(
                f"the key does not belong to the certificate (OpenSSL: {detail})"
            ) from None
        raise Invalid(
            f"the certificate and key cannot be loaded (OpenSSL: {detail}); "
            "both must be PEM files, the key without a passphrase"
        ) from None


@lru_cache(maxsize=256)
def compile_path_glob(pattern: str) -> re.Pattern[str]:
    """`cors.rules` paths to a regex for fullmatch: `*` stays in one segment, `**` spans any depth.

    A `**` segment may also match nothing, so `/public/**` covers `/public` itself too.
    """
    if not pattern.startswith("/"):
        raise expected("a path pattern starting with /, such as /public/**", pattern)
    regex = ""
    for segment in pattern.split("/")[1:]:
        if segment == "**":
            regex += "(?:/.*)?"
        elif "**" in segment:
            raise expected("** only as a whole segment, such as /api/**", pattern)
        else:
            regex += "/" + "[^/]*".join(re.escape(part) for part in segment.split("*"))
    return re.compile(regex or "/")


def check_path_glob(value: object) -> str:
    if not isinstance(value, str):
        raise expected("a path pattern starting with /, such as /public/**", value)
    compile_path_glob(value)
    return value


# The inspector's token goes into a URL and a cookie as it is: URL-safe characters only, and
# long enough to be unguessable (128 bits is 22 characters of base64url).
_INSPECTOR_TOKEN = re.compile(r"[A-Za-z0-9_.~-]{22,}")
MAX_KEEP = 100_000
MAX_BODY_PREVIEW = 1024 * 1024


def check_inspector_token(value: object) -> str:
    """A fixed inspector token (Docker, bookmarks): as hard to guess as the generated ones."""
    if isinstance(value, str) and _INSPECTOR_TOKEN.fullmatch(value):
        return value
    shown = "a token" if isinstance(value, str) else got(value)  # never echo a secret
    raise Invalid(
        "expected at least 22 characters from A-Z a-z 0-9 _ . ~ - (128 random bits), such as "
        f"the output of: python -c 'import secrets; print(secrets.token_urlsafe(24))'; got {shown}"
        + (f" of {len(value)} characters" if isinstance(value, str) else "")
    )


def check_keep(value: object) -> int:
    if is_int(value) and 1 <= value <= MAX_KEEP:
        return value
    raise expected(f"a number of exchanges from 1 to {MAX_KEEP:,}", value)


def check_body_preview(value: object) -> int:
    if is_int(value) and 0 <= value <= MAX_BODY_PREVIEW:
        return value
    raise expected(f"a number of bytes from 0 (no bodies) to {MAX_BODY_PREVIEW}", value)

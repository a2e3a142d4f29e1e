"""What the user typed, checked the way fetch() checks it: the page's origin, the URL, the
-H headers and the body. Every problem is a DoctorError, which run() prints (exit 2)."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlsplit

from corsproxy.cors import judge
from corsproxy.cors.fetch import is_token


class DoctorError(Exception):
    """Bad use, or a host that cannot be reached at all: run() prints it and exits 2."""


def parse_origin(text: str) -> str:
    """The page's origin as a browser serializes it; DoctorError when it is not an origin."""
    if text == "null":
        return text
    problem = f"bad origin {text!r}: expected scheme://host[:port], e.g. http://localhost:5173"
    try:
        parts = urlsplit(text)
        port = parts.port
    except ValueError:
        raise DoctorError(problem) from None
    if parts.path == "/" and not (parts.query or parts.fragment):
        raise DoctorError(f"{problem} (an origin has no trailing slash)")
    if not parts.hostname or parts.path or parts.query or parts.fragment or "@" in parts.netloc:
        raise DoctorError(problem)
    if parts.scheme.lower() in ("http", "https"):
        return judge.url_origin(text)
    return f"{parts.scheme.lower()}://{parts.hostname}" + (f":{port}" if port else "")


def parse_header_arg(text: str) -> tuple[str, str]:
    """One -H argument, 'Name: value', as fetch() would take it; DoctorError when malformed."""
    name, colon, value = text.partition(":")
    value = value.strip(" \t")
    if not colon or not is_token(name):
        raise DoctorError(f"bad -H {text!r}: expected 'Name: value'")
    if any(c in value for c in "\r\n\0") or not value.isascii() and not _latin1(value):
        raise DoctorError(f"bad -H {text!r}: the value must be one line of Latin-1 text")
    return name, value


def _latin1(text: str) -> bool:
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


def check_url(url: str) -> str:
    parts = urlsplit(url)
    if "://" not in url or not parts.scheme:
        raise DoctorError(
            f"bad URL {url!r}: give an absolute URL such as http://localhost:8000/api"
        )
    if parts.scheme.lower() in ("http", "https") and judge.url_origin(url) == "null":
        raise DoctorError(f"bad URL {url!r}: it has no valid host and port")
    if parts.username is not None or parts.password is not None:
        raise DoctorError(f"bad URL {url!r}: fetch() refuses URLs with user:password@ in them")
    return url


def body_of(
    data: str | None, data_file: str | None, headers: list[tuple[str, str]]
) -> tuple[bytes | None, list[tuple[str, str]]]:
    """--data is a string body: fetch() adds Content-Type: text/plain;charset=UTF-8 unless the
    page set one. --data-file is raw bytes (a Blob without a type): no Content-Type added."""
    if data is not None and data_file is not None:
        raise DoctorError("give --data or --data-file, not both")
    if data_file is not None:
        try:
            return Path(data_file).read_bytes(), headers
        except OSError as error:
            raise DoctorError(f"cannot read --data-file {data_file}: {error.strerror}") from None
    if data is None:
        return None, headers
    if not any(name.lower() == "content-type" for name, _ in headers):
        headers = [*headers, ("Content-Type", "text/plain;charset=UTF-8")]
    return data.encode("utf-8"), headers

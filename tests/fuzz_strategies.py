"""Hypothesis strategies for tests/test_fuzz.py: origins and their near misses, allow_origins
entries, cors sections, upstream header lists, YAML documents and the doctor's judge inputs.

Each strategy mixes the shapes the spec names (so the interesting branches are reached) with
arbitrary text (so nothing is assumed about what a browser, a backend or a user will send).
"""

from __future__ import annotations

import operator
import re
import string

from hypothesis import strategies as st

from corsproxy.config.model import Cookies, Cors, CorsRule
from corsproxy.proxy.rewrite import BrowserSide, RouteMap

# --- text ---------------------------------------------------------------------------------

# What an HTTP header value decoded as latin-1 can hold: no CR, LF or NUL (the parser splits
# or refuses on those), anything else up to 0xFF, controls and `²` included.
HEADER_CHARS = st.characters(
    min_codepoint=0x01, max_codepoint=0xFF, exclude_characters="\r\n"
) | st.sampled_from("\t ,;=")
header_text = st.text(HEADER_CHARS, max_size=30)
TOKEN_CHARS = "!#$%&'*+-.^_`|~" + string.digits + string.ascii_letters
TOKEN = st.text(TOKEN_CHARS, min_size=1, max_size=12)


CASE_CHOICES = st.integers(0, 68)


def recase(text: str, choice: int) -> str:
    """Choice 0-4: as written, lower, upper, title, swapped; 5 and up: one letter flipped."""
    if choice < 5:
        return [text, text.lower(), text.upper(), text.title(), text.swapcase()][choice]
    i = choice % max(len(text), 1)
    return text[:i] + text[i : i + 1].swapcase() + text[i + 1 :]


def random_case(text: str) -> st.SearchStrategy[str]:
    return CASE_CHOICES.map(lambda choice: recase(text, choice))


def any_case(names: list[str]) -> st.SearchStrategy[str]:
    return st.builds(recase, st.sampled_from(names), CASE_CHOICES)


# --- origins ------------------------------------------------------------------------------

_ALNUM = st.text("abcdefghijklmnopqrstuvwxyz0123456789", min_size=1, max_size=6)
DNS_LABEL = st.builds(
    lambda head, tail: f"{head}-{tail}" if tail else head, _ALNUM, st.just("") | _ALNUM
) | st.sampled_from(["a" * 63, "xn--bcher-kva", "0", "a--b"])
PORT = st.integers(1, 65535).map(lambda port: f":{port}")
OPTIONAL_PORT = st.just("") | PORT

LOCALHOST_HOSTS = st.sampled_from(["localhost", "127.0.0.1", "[::1]"]) | st.lists(
    DNS_LABEL, min_size=1, max_size=3
).map(lambda labels: ".".join(labels) + ".localhost")
localhost_origins = st.builds(
    lambda scheme, host, port: f"{scheme}://{host}{port}",
    st.sampled_from(["http", "https"]),
    LOCALHOST_HOSTS,
    OPTIONAL_PORT,
)

NEAR_MISS_HOSTS = [
    "127.0.0.2", "0.0.0.0", "127.1", "127.0.0.1.", "2130706433", "0x7f.0.0.1", "[::]",
    "[0:0:0:0:0:0:0:1]", "[::ffff:127.0.0.1]", "[::2]", "localhost.", "LOCALHOST", "Localhost",
    "localhost.evil.example", "localhost.localdomain", "evil-localhost", "localhostx",
    "xlocalhost", "evillocalhost", "localhost..", ".localhost", "a..localhost", "-a.localhost",
    "a-.localhost", "a_b.localhost", "l\u043ecalhost", "\uff4cocalhost", "local host",
    "localhost%2e", "127.0.0.1.nip.io", "a" * 64 + ".localhost", "evil.example",
]  # fmt: skip
NEAR_MISS_SCHEMES = ["ws", "wss", "ftp", "file", "chrome-extension", "HTTP", "Https", "htt", ""]
NEAR_MISS_PORTS = [":0", ":65536", ":99999", ":080", ":", ":-1", ": 80", ":80:80", ":+80",
                   ":\u0668\u0660", ":\u00b2", ":1e3"]  # fmt: skip
SUFFIXES = [
    "/",
    " ",
    "\n",
    "\r\n",
    "\t",
    "\x00",
    "#",
    "?",
    "/path",
    ".",
    ",",
    ":",
    "%00",
    "\u2028",
    ", http://localhost:5173",
    ",http://evil.example",
    " http://localhost",
    "@evil.example",
    ".evil.example",
    "-evil.example",
    "evil.example",
]
PREFIXES = [" ", "\n", "\t", "x", "http://evil.example,", "null,"]
USERINFO = ["user@", "user:pw@", "evil.example@", "localhost@", ":@", "@"]


def _split_origin(origin: str) -> tuple[str, str, str]:
    """(scheme, host, ':port' or '') of an origin this module generated."""
    scheme, _, rest = origin.partition("://")
    if rest.startswith("["):
        host, _, port = rest.partition("]")
        return scheme, host + "]", port
    host, colon, port = rest.partition(":")
    return scheme, host, colon + port


@st.composite
def mutated(draw: st.DrawFn, origin: str) -> str:
    """An origin bent by one or two of the edits that turn a grant into a lookalike."""
    for _ in range(draw(st.integers(1, 2))):
        scheme, host, port = _split_origin(origin)
        edit = draw(st.integers(0, 9))
        if edit == 0:
            origin = f"{draw(st.sampled_from(NEAR_MISS_SCHEMES))}://{host}{port}"
        elif edit == 1:
            origin = f"{scheme}://{draw(st.sampled_from(NEAR_MISS_HOSTS))}{port}"
        elif edit == 2:
            origin = f"{scheme}://{host}{draw(st.sampled_from(NEAR_MISS_PORTS))}"
        elif edit == 3:
            origin += draw(st.sampled_from(SUFFIXES))
        elif edit == 4:
            origin = draw(st.sampled_from(PREFIXES)) + origin
        elif edit == 5:
            origin = f"{scheme}://{draw(st.sampled_from(USERINFO))}{host}{port}"
        elif edit == 6:
            other = draw(localhost_origins | generic_origins)
            origin = draw(st.sampled_from([", ", ",", " "])).join([origin, other])
        elif edit == 7 and origin:
            i = draw(st.integers(0, len(origin) - 1))
            origin = origin[:i] + origin[i].upper() + origin[i + 1 :]
        elif edit == 8:
            i = draw(st.integers(0, len(origin)))
            origin = origin[:i] + draw(st.characters(max_codepoint=0x2030)) + origin[i:]
        elif origin:
            i = draw(st.integers(0, len(origin) - 1))
            origin = origin[:i] + origin[i + 1 :]
    return origin


localhost_near_misses = localhost_origins.flatmap(mutated)

_SCHEME_CHARS = string.ascii_lowercase + string.digits + "+.-"
SCHEMES = st.sampled_from(["http", "https", "ws", "chrome-extension", "moz-extension"]) | (
    st.builds(
        operator.add, st.sampled_from(string.ascii_lowercase), st.text(_SCHEME_CHARS, max_size=8)
    )
)
GENERIC_HOSTS = (
    st.lists(DNS_LABEL, min_size=1, max_size=4).map(".".join)
    | st.ip_addresses(v=4).map(str)
    | st.ip_addresses(v=6).map(lambda ip: f"[{ip}]")
)
generic_origins = st.builds(
    lambda scheme, host, port: f"{scheme}://{host}{port}", SCHEMES, GENERIC_HOSTS, OPTIONAL_PORT
)


# --- allow_origins entries, each with a "seed": an origin the entry is about ---------------------


@st.composite
def entries_with_seeds(draw: st.DrawFn) -> tuple[str, str]:
    """(an allow_origins entry that compiles, an origin near what it grants)."""
    kind = draw(st.sampled_from(["localhost", "*", "null", "exact", "wildcard", "regex"]))
    if kind == "localhost":
        return kind, draw(localhost_origins)
    if kind == "*":
        return kind, draw(generic_origins | localhost_origins)
    if kind == "null":
        return kind, "null"
    if kind == "exact":
        origin = draw(generic_origins)
        return draw(random_case(origin)), origin
    if kind == "wildcard":
        scheme = draw(st.sampled_from(["http", "https"]) | SCHEMES)
        domain = ".".join(draw(st.lists(DNS_LABEL, min_size=1, max_size=3)))
        port = draw(OPTIONAL_PORT)
        below = ".".join(draw(st.lists(DNS_LABEL, min_size=1, max_size=2)))
        entry = draw(random_case(f"{scheme}://*.{domain}{port}"))
        return entry, f"{scheme}://{below}.{domain}{port}"
    origin = draw(generic_origins | localhost_origins)
    pattern = draw(
        st.sampled_from(
            [
                re.escape(origin),  # no anchors: fullmatch must still hold it to the whole
                "^" + re.escape(origin),  # a prefix test in disguise
                re.escape(origin) + "$",  # `$` also matches before a trailing newline
                "^" + re.escape(origin) + "$",
                re.escape(origin) + "(:[0-9]+)?",
                r"^https?://[a-z0-9.-]+\.dev$",
                r"http://localhost:[0-9]+",
                r"https?://(.*\.)?example\.com",
                ".*",
            ]
        )
    )
    return f"regex:{pattern}", origin


allow_entries = entries_with_seeds().map(lambda pair: pair[0])

# --- cors sections and requests -----------------------------------------------------------

HEADER_NAMES = st.sampled_from(["Content-Type", "X-Api-Key", "Authorization", "X-Request-Id"])
name_lists = st.just("*") | st.lists(HEADER_NAMES | TOKEN, max_size=3).map(tuple)
method_lists = st.just("*") | st.lists(
    st.sampled_from(["GET", "POST", "PUT", "DELETE", "patch"]) | TOKEN, max_size=3
).map(tuple)
entry_lists = st.lists(entries_with_seeds(), max_size=4)
PATH_GLOBS = st.sampled_from(["/public/**", "/api/*", "/x", "/**", "/api/**/admin"])


@st.composite
def cors_sections(draw: st.DrawFn) -> tuple[Cors, list[str]]:
    """A `cors` section as settings.load() could build it, rules included; and the seeds of
    its allow_origins entries (origins near what they grant), so grants are often reached."""
    seeds: list[str] = []

    def origins(pairs: list[tuple[str, str]]) -> tuple[str, ...]:
        seeds.extend(seed for _, seed in pairs)
        return tuple(entry for entry, _ in pairs)

    origin_lists = entry_lists.map(origins)
    rules = draw(
        st.lists(
            st.builds(
                CorsRule,
                paths=st.lists(PATH_GLOBS, min_size=1, max_size=2).map(tuple),
                allow_origins=st.none() | origin_lists,
                allow_methods=st.none() | method_lists,
                allow_headers=st.none() | name_lists,
                expose_headers=st.none() | name_lists,
                allow_credentials=st.none() | st.booleans(),
                max_age=st.none() | st.integers(0, 86400),
                allow_private_network=st.none() | st.booleans(),
            ),
            max_size=2,
        )
    )
    cors = Cors(
        allow_origins=draw(origin_lists),
        allow_methods=draw(method_lists),
        allow_headers=draw(name_lists),
        expose_headers=draw(name_lists),
        allow_credentials=draw(st.booleans()),
        max_age=draw(st.integers(0, 86400)),
        allow_private_network=draw(st.booleans()),
        rules=tuple(rules),
    )
    return cors, seeds


request_paths = st.sampled_from(
    ["/", "/x", "/public", "/public/a/b", "/api/v1", "/api/a/admin"]
) | (st.text(max_size=12).map(lambda text: "/" + text))
request_methods = st.sampled_from(["GET", "POST", "PUT", "OPTIONS", "options", "patch"]) | TOKEN


@st.composite
def request_origins(draw: st.DrawFn, seeds: list[str]) -> str | None:
    """The Origin header of a request: absent, a seed, a bent seed, or anything."""
    choices = [st.none(), localhost_origins, localhost_near_misses, generic_origins, st.text()]
    choices += [st.sampled_from(["null", "NULL", " null"])]
    if seeds:
        seed = st.sampled_from(seeds)
        choices += [seed, seed.flatmap(mutated)]
    return draw(st.one_of(choices))


# --- upstream response headers ------------------------------------------------------------

CORS_RESPONSE_NAMES = [
    "Access-Control-Allow-Origin", "Access-Control-Allow-Credentials",
    "Access-Control-Allow-Methods", "Access-Control-Allow-Headers",
    "Access-Control-Expose-Headers", "Access-Control-Max-Age",
    "Access-Control-Allow-Private-Network", "Access-Control-Request-Method",
    "Access-Control-Allow-Origins", "Access-Control-Foo",
]  # fmt: skip
OTHER_NAMES = [
    "Vary", "Set-Cookie", "Location", "Content-Location", "Content-Type", "Content-Length",
    "Connection", "Keep-Alive", "Transfer-Encoding", "Upgrade", "Trailer", "TE",
    "Proxy-Connection", "Date", "ETag", "X-Request-Id", "Cache-Control", "Set-Cookie2",
]  # fmt: skip
VARY_TOKENS = st.sampled_from(
    ["Origin", "origin", "ORIGIN", "Accept-Encoding", "*", "Cookie", " ", "", "origin "]
)
COOKIE_ATTRIBUTES = (
    st.sampled_from(
        [
            "Domain=backend.example",
            "domain=.example.com",
            "Path=/",
            "path=/a",
            "Secure",
            "secure",
            "SameSite=None",
            "samesite=lax",
            "SameSite=Strict",
            "HttpOnly",
            "Max-Age=0",
            "Expires=Wed, 21 Oct 2015 07:28:00 GMT",
            "",
            "=",
        ]  # fmt: skip
    )
    | header_text
)
cookies_values = st.builds(
    lambda pair, attrs, sep: sep.join([pair, *attrs]),
    st.sampled_from(["sid=abc", "a=", "=b", "", "x"]) | header_text,
    st.lists(COOKIE_ATTRIBUTES, max_size=4),
    st.sampled_from(["; ", ";", " ; "]),
)
LOCATIONS = (
    st.sampled_from(
        [
            "/login",
            "/api/x?y=1",
            "//localhost:8000/x",
            "http://localhost:8000/a?b",
            "http://localhost:8000",
            "http://LOCALHOST:8000/",
            "https://staging.example.com/base/z",
            "https://staging.example.com/basement",
            "http://elsewhere.example/",
            "relative",
            "?q",
            "http://[",
            "http://localhost:8000?x",
            "",
        ]  # fmt: skip
    )
    | header_text
)
ACAO_VALUES = st.sampled_from(
    ["*", "null", "http://localhost:5173", "http://evil.example", "a, b", "", "http://["]
)


def value_for(name: str) -> st.SearchStrategy[str]:
    """A header value shaped like the header's own syntax, or arbitrary latin-1 text."""
    lower = name.lower()
    if lower == "vary":
        shaped = st.lists(VARY_TOKENS | TOKEN, max_size=4).map(", ".join)
    elif lower == "access-control-allow-origin":
        shaped = ACAO_VALUES | localhost_origins
    elif lower == "set-cookie":
        shaped = cookies_values
    elif lower in ("location", "content-location"):
        shaped = LOCATIONS
    elif lower == "connection":
        names = st.sampled_from(["keep-alive", "close", "Upgrade", "X-Request-Id", "Vary"])
        shaped = st.lists(names | TOKEN, max_size=3).map(", ".join)
    else:
        shaped = st.sampled_from(["true", "True", "*", "GET, PUT", "600", "x"])
    return shaped | header_text


header_names = any_case(CORS_RESPONSE_NAMES + OTHER_NAMES) | TOKEN
one_header = header_names.flatmap(lambda name: st.tuples(st.just(name), value_for(name)))
upstream_headers = st.lists(one_header, max_size=12)

route_maps = st.builds(
    RouteMap,
    base=st.sampled_from(
        ["http://localhost:8000", "http://localhost:8000/base", "https://staging.example.com/base"]
    ),
    prefix=st.sampled_from(["", "/api", "/stg"]),
    strip_prefix=st.booleans(),
)
browser_sides = st.builds(
    BrowserSide,
    scheme=st.sampled_from(["http", "https"]),
    host=st.sampled_from(["localhost:8080", "127.0.0.1:8080", "[::1]:8080", "devbox.lan:8080"])
    | header_text,
)
cookie_rules = st.builds(
    Cookies,
    domain=st.sampled_from(["strip", "keep", "proxy.test", ".example.test"]),
    secure=st.sampled_from(["auto", "keep", "strip"]),
    samesite=st.sampled_from(["auto", "keep", "lax", "strict", "none"]),
)
statuses = st.sampled_from([200, 201, 204, 301, 302, 303, 307, 308, 404, 500]) | st.integers(
    100, 599
)

# --- the doctor's judge -------------------------------------------------------------------

judge_origins = (
    localhost_origins | generic_origins | st.sampled_from(["null", "http://["]) | st.text()
)
TOKEN_LISTS = st.lists(TOKEN | st.sampled_from(["PUT", "put", "*", ""]), max_size=3).map(", ".join)
MAX_AGES = st.sampled_from(["600", "7201", "-1", "\u00b2", "9" * 5000, "1e3", " 60"]) | header_text


def judge_headers(origin: str) -> st.SearchStrategy[list[tuple[str, str]]]:
    """A response close to one the browser accepts for origin, any field missing, bent or
    sent twice, in any order, with arbitrary others among them."""
    near = [origin, "*", "null", origin + "/", origin.upper(), "http://[", "http://a:99999"]
    field = st.one_of(
        st.tuples(any_case(["Access-Control-Allow-Origin"]), st.sampled_from(near) | ACAO_VALUES),
        st.tuples(st.just("Access-Control-Allow-Credentials"), st.sampled_from(["true", "True"])),
        st.tuples(any_case(["Access-Control-Allow-Methods"]), TOKEN_LISTS),
        st.tuples(
            st.just("Access-Control-Allow-Headers"), st.sampled_from(["*", "x-api-key", "a b", ","])
        ),
        st.tuples(
            st.just("Access-Control-Expose-Headers"), st.sampled_from(["*", "x-request-id", "a b"])
        ),
        st.tuples(any_case(["Access-Control-Max-Age"]), MAX_AGES),
        st.tuples(st.just("Vary"), value_for("vary")),
        st.tuples(st.just("Location"), LOCATIONS),
        one_header,
        st.tuples(st.text(max_size=8), st.text(max_size=12)),
    )

    def passing(max_age: str, keep: int) -> list[tuple[str, str]]:
        return [
            ("Access-Control-Allow-Origin", origin),
            ("Access-Control-Allow-Methods", "PUT, *"),
            ("Access-Control-Allow-Credentials", "true"),
            ("Access-Control-Allow-Headers", "*, x-api-key, authorization"),
            ("Access-Control-Max-Age", max_age),
        ][:keep]

    core = st.builds(passing, MAX_AGES, st.sampled_from([5, 5, 4, 1, 0]))
    return st.tuples(core, st.lists(field, max_size=8)).map(lambda pair: pair[0] + pair[1])


request_header_lists = st.lists(
    st.tuples(
        any_case(["Content-Type", "Accept", "Range", "Accept-Language", "Cookie", "Sec-X"])
        | TOKEN
        | st.text(max_size=8),
        st.sampled_from(["text/plain", "application/json", "bytes=0-", "bytes=\u00b2-"])
        | st.text(),
    ),
    max_size=4,
)

# --- config files -------------------------------------------------------------------------

# The keys SPEC.md documents, by section (plus routes' read_timeout from issue 9).
LISTEN_KEYS = {
    "host": None,
    "port": None,
    "allowed_hosts": None,
    "tls": {"cert": None, "key": None},
}
COOKIE_KEYS = {"domain": None, "secure": None, "samesite": None}
ROUTE_KEYS = {
    "prefix": None, "upstream": None, "strip_prefix": None, "host_header": None,
    "origin_header": None, "verify_tls": None, "timeout": None, "read_timeout": None,
    "websocket": None, "cookies": COOKIE_KEYS, "redirects": None,
}  # fmt: skip
RULE_FIELDS = {
    "allow_origins": None, "allow_methods": None, "allow_headers": None,
    "expose_headers": None, "allow_credentials": None, "max_age": None,
    "allow_private_network": None,
}  # fmt: skip
CORS_KEYS = {
    **RULE_FIELDS,
    "dangerously_allow_any_origin_with_credentials": None,
    "rules": [{"paths": None, **RULE_FIELDS}],
}
CONFIG_SCHEMA = {
    "listen": LISTEN_KEYS,
    "upstream": None,
    "routes": [ROUTE_KEYS],
    "cors": CORS_KEYS,
    "log_level": None,
}


def _all_keys(schema: object) -> set[str]:
    if isinstance(schema, list):
        return _all_keys(schema[0])
    if isinstance(schema, dict):
        return set(schema).union(*(_all_keys(v) for v in schema.values()))
    return set()


ALL_KEYS = sorted(_all_keys(CONFIG_SCHEMA))
PLAUSIBLE_VALUES = st.sampled_from(
    [
        "http://localhost:8000",
        "https://api.example.com/base/",
        "http://[::1]:8000",
        "http://[::1",
        "http://u:p@x",
        "http://x:99999",
        "http://a\u2100b",
        "ftp://x",
        "localhost",
        "*",
        "null",
        "https://*.example.com",
        "http://localhost:5173/",
        "regex:^https://.*\\.dev$",
        "regex:(",
        "GET",
        "X-Api-Key",
        "/api",
        "/",
        "/api/",
        "/public/**",
        "/a/**b",
        "api",
        "strip",
        "keep",
        "auto",
        "lax",
        "none",
        "Strict",
        "upstream",
        "client",
        "rewrite",
        "info",
        "DEBUG",
        "cert.pem",
        "key.pem",
        "other-key.pem",
        "garbage.pem",
        "missing.pem",
        "",
        " ",
        "~",
        "~nobody/x",
        "0.0.0.0",
        "::",
        "[::1]",
        "myapp.test",
        ".example.test",
        "127.0.0.1",
        "a\x00b",
    ]  # fmt: skip
)
yaml_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(-(10**400), 10**400),
    st.floats(),
    PLAUSIBLE_VALUES,
    st.text(max_size=20),
)
yaml_keys = st.sampled_from(ALL_KEYS) | st.text(max_size=10) | st.integers() | st.none()
junk = st.recursive(
    yaml_scalars,
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(yaml_keys, kids, max_size=3),
    max_leaves=8,
)


url_values = PLAUSIBLE_VALUES | st.builds(
    lambda scheme, authority, tail: f"{scheme}://{authority}{tail}",
    st.sampled_from(["http", "https", "HTTP", "ftp", ""]),
    GENERIC_HOSTS | st.text("[]:@.ab01%\u2100\uff03 \x00", max_size=8),
    st.sampled_from(["", "/", "/base/", "?q", "#f", ":99999", ":0", ":8000", " x"]),
)
numbers = st.one_of(
    st.integers(-(10**400), 10**400), st.integers(), st.floats(), st.booleans(), st.text(max_size=3)
)
file_paths = st.sampled_from(
    ["cert.pem", "key.pem", "other-key.pem", "garbage.pem", "missing.pem", "~", "", " ", "."]
) | st.text(max_size=5)
# Leaf keys whose values are worth shaping like the real thing.
LEAVES = {
    "upstream": url_values,
    "port": numbers,
    "timeout": numbers,
    "read_timeout": numbers,
    "max_age": numbers,
    "cert": file_paths,
    "key": file_paths,
}


def shaped(schema: object, key: str = "") -> st.SearchStrategy[object]:
    """A value following the schema's keys (some missing, some extra), or junk in its place."""
    if isinstance(schema, list):
        return st.lists(shaped(schema[0]), max_size=3) | junk
    if isinstance(schema, dict):
        known = st.fixed_dictionaries({}, optional={k: shaped(v, k) for k, v in schema.items()})
        extra = st.dictionaries(yaml_keys, junk, max_size=2)
        both = st.tuples(extra, known).map(lambda pair: {**pair[1], **pair[0]})
        return both | junk
    return LEAVES.get(key, yaml_scalars) | yaml_scalars | junk


config_documents = shaped(CONFIG_SCHEMA)

# YAML text that the dumper never writes: tags, anchors, odd numbers, dates, flow syntax.
SCALAR_FRAGMENTS = st.sampled_from(
    [
        "!!int x",
        "!!float x",
        "!!bool x",
        "!!timestamp x",
        "!!binary @@",
        "!!null x",
        "!!str 1",
        "!!set {a}",
        "!!omap [a]",
        "!!python/name:os.system",
        "!custom x",
        "&a 1",
        "*a",
        "*undefined",
        "[",
        "{",
        "'",
        '"\\x"',
        "|",
        ">",
        "%YAML 1.1",
        "---",
        "...",
        "? a",
        "- a",
        "a: b: c",
        "\t",
        "~",
        "0x_",
        "0b_",
        "0o8",
        "1_000",
        "._",
        "190:20:30",
        "2001-02-30",
        "2001-12-14t21:59:43.10-05:00",
        "2001-1-1 25:61:61",
        ".inf",
        "-.nan",
        "0x7f",
        "true",
        "No",
        "@x",
        "`x",
    ]  # fmt: skip
)
NUMERIC_LOOKING = st.from_regex(r"[-+]?(0x|0b|0o|0|\.|)[0-9a-f_]{0,3}(\.[0-9_]*)?", fullmatch=True)
DATE_LOOKING = st.from_regex(
    r"[0-9]{4}-[0-9]{1,2}-[0-9]{1,2}([Tt ][0-9]{1,2}:[0-9]{2}:[0-9]{2}(\.[0-9]+)?)?", fullmatch=True
)
yaml_lines = st.builds(
    lambda indent, key, sep, value: f"{indent}{key}{sep}{value}",
    st.sampled_from(["", "  ", "    ", "- ", "  - ", "\t"]),
    st.sampled_from(ALL_KEYS) | st.text(max_size=6),
    st.sampled_from([": ", ":", " ", ": &a ", ": !!str ", ": <<: "]),
    SCALAR_FRAGMENTS | NUMERIC_LOOKING | DATE_LOOKING | PLAUSIBLE_VALUES | st.text(max_size=8),
)
nested = st.integers(1, 3000).map(lambda depth: "upstream: " + "[" * depth + "]" * depth)
config_texts = st.one_of(
    st.lists(yaml_lines, max_size=8).map("\n".join),
    st.text(),
    nested,
)

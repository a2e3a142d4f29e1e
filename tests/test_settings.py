"""Table tests for settings.load(): every message asserted whole, file name and line included."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from corsproxy.config.describe import describe
from corsproxy.config.load import ConfigError, Overrides, load
from corsproxy.config.model import (
    Cors,
    CorsRule,
    Inspector,
    Problem,
    Route,
    Settings,
    compile_path_glob,
    effective_cors,
)

EXAMPLE = Path(__file__).resolve().parent.parent / "config.example.yaml"
UP = "upstream: http://localhost:8000\n"  # line 1 of most files below, so they need no route
ANY_RISK = (
    "is refused: any web site you visit could read your logged-in responses through the proxy; "
    "list the origins, set allow_credentials: false, "
    "or set dangerously_allow_any_origin_with_credentials: true"
)


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Relative names, so messages read `corsproxy.yaml:3: ...` as a user would see them."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def write(text: str, name: str = "corsproxy.yaml") -> str:
    Path(name).write_text(textwrap.dedent(text), encoding="utf-8")
    return name


def load_file(text: str, env: dict[str, str] | None = None, **flags: object) -> Settings:
    return load(Overrides(config=write(text), **flags), env or {})


def problems(text: str | None, env: dict[str, str] | None = None, **flags: object) -> list[str]:
    config = write(text) if text is not None else None
    with pytest.raises(ConfigError) as caught:
        load(Overrides(config=config, **flags), env or {})
    return [str(problem) for problem in caught.value.problems]


ONE_BAD_VALUE = [
    (
        "port as a string is refused",
        UP + "listen:\n  port: '8080'\n",
        "corsproxy.yaml:3: listen.port: expected an integer from 1 to 65535; got '8080'",
    ),
    (
        "port true is refused because a boolean is not an integer",
        UP + "listen:\n  port: true\n",
        "corsproxy.yaml:3: listen.port: expected an integer from 1 to 65535; got true",
    ),
    (
        "port 0 is refused",
        UP + "listen: {port: 0}\n",
        "corsproxy.yaml:2: listen.port: expected an integer from 1 to 65535; got 0",
    ),
    (
        "port above 65535 is refused",
        UP + "listen:\n  port: 70000\n",
        "corsproxy.yaml:3: listen.port: expected an integer from 1 to 65535; got 70000",
    ),
    (
        "an empty port is refused rather than defaulted",
        UP + "listen:\n  port:\n",
        "corsproxy.yaml:3: listen.port: expected an integer from 1 to 65535; got nothing",
    ),
    (
        "zero workers are refused",
        UP + "listen:\n  workers: 0\n",
        "corsproxy.yaml:3: listen.workers: expected a number of processes from 1 to 64; got 0",
    ),
    (
        "negative workers are refused",
        UP + "listen: {workers: -2}\n",
        "corsproxy.yaml:2: listen.workers: expected a number of processes from 1 to 64; got -2",
    ),
    (
        "workers as a fraction are refused",
        UP + "listen:\n  workers: 2.5\n",
        "corsproxy.yaml:3: listen.workers: expected a number of processes from 1 to 64; got 2.5",
    ),
    (
        "workers as a word are refused",
        UP + "listen:\n  workers: auto\n",
        "corsproxy.yaml:3: listen.workers: expected a number of processes from 1 to 64; got 'auto'",
    ),
    (
        "workers true is refused because a boolean is not an integer",
        UP + "listen:\n  workers: true\n",
        "corsproxy.yaml:3: listen.workers: expected a number of processes from 1 to 64; got true",
    ),
    (
        "more than 64 workers are refused, saying why",
        UP + "listen:\n  workers: 65\n",
        "corsproxy.yaml:3: listen.workers: expected a number of processes from 1 to 64 (more processes than CPU cores only "
        "cost memory); got 65",
    ),
    (
        "listen host with a scheme is refused",
        UP + "listen:\n  host: http://0.0.0.0\n",
        "corsproxy.yaml:3: listen.host: expected a host name or IP address to listen on, such as "
        "127.0.0.1 or 0.0.0.0; got 'http://0.0.0.0'",
    ),
    (
        "allowed host with a port is refused",
        UP + "listen:\n  allowed_hosts: [a.test, b.test:80]\n",
        "corsproxy.yaml:3: listen.allowed_hosts[1]: expected a host name without scheme, port or "
        "path, such as myapp.test; got 'b.test:80'",
    ),
    (
        "allowed hosts as a number is refused",
        UP + "listen:\n  allowed_hosts: 5\n",
        "corsproxy.yaml:3: listen.allowed_hosts: expected a list of host names such as [myapp.test]; "
        "got 5",
    ),
    (
        "upstream without a scheme is refused",
        "upstream: localhost:8000\n",
        "corsproxy.yaml:1: upstream: expected an http:// or https:// URL such as "
        "http://localhost:8000; got 'localhost:8000'; did you mean http://localhost:8000?",
    ),
    (
        "an ftp upstream is refused",
        "upstream: ftp://files.test\n",
        "corsproxy.yaml:1: upstream: expected an http:// or https:// URL such as "
        "http://localhost:8000; got 'ftp://files.test'",
    ),
    (
        "upstream with a query is refused",
        "upstream: http://localhost:8000/?debug=1\n",
        "corsproxy.yaml:1: upstream: expected no query string in an upstream (each request brings "
        "its own); got 'http://localhost:8000/?debug=1'",
    ),
    (
        "upstream with a fragment is refused",
        "upstream: 'http://localhost:8000/#top'\n",
        "corsproxy.yaml:1: upstream: expected no #fragment in an upstream; "
        "got 'http://localhost:8000/#top'",
    ),
    (
        "upstream with a password is refused without echoing it",
        "upstream: http://me:pw@x.test\n",
        "corsproxy.yaml:1: upstream: expected no user name or password in the URL; the browser's "
        "own credentials are forwarded",
    ),
    (
        "upstream without a host is refused",
        "upstream: http:///api\n",
        "corsproxy.yaml:1: upstream: expected a URL with a host, such as http://localhost:8000; "
        "got 'http:///api'",
    ),
    (
        "upstream with a bad port is refused",
        "upstream: http://localhost:99999\n",
        "corsproxy.yaml:1: upstream: expected a port from 1 to 65535 in the URL; "
        "got 'http://localhost:99999'",
    ),
    (
        "route prefix without a leading slash is refused",
        "routes:\n  - prefix: api\n    upstream: http://localhost:8000\n",
        "corsproxy.yaml:2: routes[0].prefix: expected a path starting with /, such as /api; got 'api'",
    ),
    (
        "route prefix with a trailing slash is refused",
        "routes:\n  - prefix: /api/\n    upstream: http://localhost:8000\n",
        "corsproxy.yaml:2: routes[0].prefix: expected no trailing slash (write '/api'); got '/api/'",
    ),
    (
        "route prefix with a query is refused",
        "routes:\n  - prefix: /api?x\n    upstream: http://localhost:8000\n",
        "corsproxy.yaml:2: routes[0].prefix: expected a plain path without query, fragment, spaces "
        "or empty segments; got '/api?x'",
    ),
    (
        "route without an upstream is refused",
        UP + "routes:\n  - prefix: /api\n",
        "corsproxy.yaml:3: routes[0].upstream: missing; expected an http:// or https:// URL such as "
        "http://localhost:8000",
    ),
    (
        "route without a prefix is refused",
        UP + "routes:\n  - upstream: http://localhost:9000\n",
        "corsproxy.yaml:3: routes[0].prefix: missing; expected a path starting with /, such as /api",
    ),
    (
        "strip_prefix as the string 'true' is refused",
        UP + "routes:\n  - prefix: /a\n    upstream: http://a.test\n    strip_prefix: 'true'\n",
        "corsproxy.yaml:5: routes[0].strip_prefix: expected true or false; got 'true'",
    ),
    (
        "verify_tls as 0 is refused",
        UP + "routes:\n  - prefix: /a\n    upstream: http://a.test\n    verify_tls: 0\n",
        "corsproxy.yaml:5: routes[0].verify_tls: expected true or false; got 0",
    ),
    (
        "a zero timeout is refused",
        UP + "routes:\n  - prefix: /a\n    upstream: http://a.test\n    timeout: 0\n",
        "corsproxy.yaml:5: routes[0].timeout: expected a positive number of seconds; got 0",
    ),
    (
        "a timeout in words is refused",
        UP + "routes:\n  - prefix: /a\n    upstream: http://a.test\n    timeout: 30s\n",
        "corsproxy.yaml:5: routes[0].timeout: expected a positive number of seconds; got '30s'",
    ),
    (
        "a negative read_timeout is refused",
        UP + "routes:\n  - prefix: /a\n    upstream: http://a.test\n    read_timeout: -1.5\n",
        "corsproxy.yaml:5: routes[0].read_timeout: expected a positive number of seconds; got -1.5",
    ),
    (
        "an unknown host_header is refused",
        UP + "routes:\n  - prefix: /a\n    upstream: http://a.test\n    host_header: proxy\n",
        "corsproxy.yaml:5: routes[0].host_header: expected one of upstream, client; got 'proxy'",
    ),
    (
        "an unknown origin_header is refused",
        UP + "routes:\n  - prefix: /a\n    upstream: http://a.test\n    origin_header: drop\n",
        "corsproxy.yaml:5: routes[0].origin_header: expected one of keep, strip, upstream; got 'drop'",
    ),
    (
        "enums are spelt exactly, so Lax is refused",
        UP + "routes:\n  - {prefix: /a, upstream: http://a.test, cookies: {samesite: Lax}}\n",
        "corsproxy.yaml:3: routes[0].cookies.samesite: expected one of auto, keep, lax, strict, none; "
        "got 'Lax'",
    ),
    (
        "an unknown samesite is refused on its own line",
        "upstream: http://localhost:3000\nroutes:\n  - prefix: /api\n    upstream: http://localhost:8000\n"
        "    strip_prefix: true\n    cookies:\n      samesite: loose\n",
        "corsproxy.yaml:7: routes[0].cookies.samesite: expected one of auto, keep, lax, strict, none; "
        "got 'loose'",
    ),
    (
        "an unknown cookies.secure is refused",
        UP + "routes:\n  - {prefix: /a, upstream: http://a.test, cookies: {secure: never}}\n",
        "corsproxy.yaml:3: routes[0].cookies.secure: expected one of auto, keep, strip; got 'never'",
    ),
    (
        "a cookie domain with a scheme is refused",
        UP
        + "routes:\n  - {prefix: /a, upstream: http://a.test, cookies: {domain: 'http://a.test'}}\n",
        "corsproxy.yaml:3: routes[0].cookies.domain: expected strip, keep or a domain without scheme, "
        "port or path, such as .example.test; got 'http://a.test'",
    ),
    (
        "an unknown redirects value is refused",
        UP + "routes:\n  - {prefix: /a, upstream: http://a.test, redirects: follow}\n",
        "corsproxy.yaml:3: routes[0].redirects: expected one of rewrite, keep; got 'follow'",
    ),
    (
        "an origin with a trailing slash is refused with the reason",
        UP + "cors:\n  allow_origins: [localhost, 'http://localhost:5173/']\n",
        "corsproxy.yaml:3: cors.allow_origins[1]: an origin has no path or trailing slash (browsers "
        "never send one); got 'http://localhost:5173/'; did you mean 'http://localhost:5173'?",
    ),
    (
        "an origin with a password is refused without showing the password again",
        UP + "cors:\n  allow_origins: ['http://me:secret@app.example.com']\n",
        "corsproxy.yaml:3: cors.allow_origins[0]: an origin has no user name or password; "
        "did you mean 'http://app.example.com'?",
    ),
    (
        "an origin that is a number is refused",
        UP + "cors:\n  allow_origins:\n    - 5173\n",
        "corsproxy.yaml:4: cors.allow_origins[0]: expected an origin such as http://localhost:5173, "
        '"localhost" or "*"; got 5173',
    ),
    (
        "methods written as one comma string are refused",
        UP + "cors:\n  allow_methods: GET, POST\n",
        "corsproxy.yaml:3: cors.allow_methods: expected a method name such as PATCH (letters, digits "
        "and !#$%&'*+-.^_`|~); got 'GET, POST'",
    ),
    (
        "a header name with a space is refused",
        UP + "cors:\n  allow_headers: [X-Ok, X Bad]\n",
        "corsproxy.yaml:3: cors.allow_headers[1]: expected a header name such as X-Request-Id "
        "(letters, digits and !#$%&'*+-.^_`|~); got 'X Bad'",
    ),
    (
        "a star inside a methods list is refused",
        UP + "cors:\n  allow_methods: [GET, '*']\n",
        'corsproxy.yaml:3: cors.allow_methods[1]: expected a method name such as PATCH; "*" means '
        "any only on its own, not in a list",
    ),
    (
        "expose_headers as a mapping is refused",
        UP + "cors:\n  expose_headers: {a: 1}\n",
        'corsproxy.yaml:3: cors.expose_headers: expected "*" or a list of header names; '
        "got a mapping",
    ),
    (
        "allow_credentials as the string 'yes' is refused",
        UP + "cors:\n  allow_credentials: 'yes'\n",
        "corsproxy.yaml:3: cors.allow_credentials: expected true or false; got 'yes'",
    ),
    (
        "max_age above a day is refused with the browsers' caps",
        UP + "cors:\n  max_age: 90000\n",
        "corsproxy.yaml:3: cors.max_age: expected an integer from 0 to 86400 (browsers cap it far "
        "lower: Chrome at 7200 s, Firefox at 86400 s); got 90000",
    ),
    (
        "a fractional max_age is refused",
        UP + "cors:\n  max_age: 1.5\n",
        "corsproxy.yaml:3: cors.max_age: expected an integer from 0 to 86400; got 1.5",
    ),
    (
        "an unknown log level is refused",
        UP + "log_level: verbose\n",
        "corsproxy.yaml:2: log_level: expected one of debug, info, warning, error; got 'verbose'",
    ),
    (
        "a rule with an empty paths list is refused",
        UP + "cors:\n  rules:\n    - paths: []\n",
        "corsproxy.yaml:4: cors.rules[0].paths: expected a non-empty list of path patterns such as "
        "[/public/**]; got an empty list",
    ),
    (
        "a rule path without a leading slash is refused",
        UP + "cors:\n  rules:\n    - paths: [api/*]\n",
        "corsproxy.yaml:4: cors.rules[0].paths[0]: expected a path pattern starting with /, such as "
        "/public/**; got 'api/*'",
    ),
    (
        "a double star inside a segment is refused",
        UP + "cors:\n  rules:\n    - paths: ['/a**']\n",
        "corsproxy.yaml:4: cors.rules[0].paths[0]: expected ** only as a whole segment, such as "
        "/api/**; got '/a**'",
    ),
    (
        "a rule without paths is refused",
        UP + "cors:\n  rules:\n    - allow_credentials: false\n",
        "corsproxy.yaml:4: cors.rules[0].paths: missing; expected a non-empty list of path patterns "
        "such as [/public/**]",
    ),
    (
        "a listen section that is a list is refused",
        UP + "listen:\n  - port: 1\n",
        "corsproxy.yaml:3: listen: expected a mapping of keys; got a list",
    ),
    (
        "routes that are a mapping are refused",
        UP + "routes:\n  prefix: /api\n",
        "corsproxy.yaml:3: routes: expected a list; got a mapping",
    ),
    (
        "a file that is a list at the top is refused",
        "- upstream: http://localhost:8000\n",
        "corsproxy.yaml:1: expected a mapping of keys; got a list",
    ),
    (
        "a key given twice is refused",
        UP + "listen:\n  port: 1\n  port: 2\n",
        "corsproxy.yaml:4: listen.port: duplicate key; first given on line 3",
    ),
    (
        "an inspector that is neither a boolean nor a mapping is refused",
        UP + "inspector: disabled\n",
        "corsproxy.yaml:2: inspector: expected true, false or a mapping of keys such as {keep: 500}; got 'disabled'",
    ),
    (
        "a short inspector token is refused without being echoed",
        UP + "inspector:\n  token: hunter2\n",
        "corsproxy.yaml:3: inspector.token: expected at least 22 characters from A-Z a-z 0-9 _ . ~ -"
        " (128 random bits), such as the output of: python -c 'import secrets; "
        "print(secrets.token_urlsafe(24))'; got a token of 7 characters",
    ),
    (
        "an inspector keep of zero is refused",
        UP + "inspector: {keep: 0}\n",
        "corsproxy.yaml:2: inspector.keep: expected a number of exchanges from 1 to 100,000; got 0",
    ),
    (
        "a negative body preview is refused",
        UP + "inspector: {body_preview: -1}\n",
        "corsproxy.yaml:2: inspector.body_preview: expected a number of bytes from 0 (no bodies) to"
        " 1048576; got -1",
    ),
    (
        "an unknown inspector key is refused with a suggestion",
        UP + "inspector: {kept: 10}\n",
        "corsproxy.yaml:2: inspector.kept: unknown key; did you mean 'keep'?",
    ),
]


@pytest.mark.parametrize(
    ("text", "message"), [r[1:] for r in ONE_BAD_VALUE], ids=[r[0] for r in ONE_BAD_VALUE]
)
def test_one_bad_value_gives_one_exact_message(text: str, message: str) -> None:
    assert problems(text) == [message]


UNKNOWN_KEYS = [
    (
        "rules at the top level point to cors.rules rather than routes",
        UP + "rules: []\n",
        "corsproxy.yaml:2: rules: unknown key; did you mean 'cors.rules'?",
    ),
    (
        "a typo in a listen key suggests the right one",
        UP + "listen:\n  prot: 8080\n",
        "corsproxy.yaml:3: listen.prot: unknown key; did you mean 'port'?",
    ),
    (
        "a typo in a route key suggests the right one",
        "routes:\n  - prefix: /\n    upstream: http://a.test\n    strip_prefx: true\n",
        "corsproxy.yaml:4: routes[0].strip_prefx: unknown key; did you mean 'strip_prefix'?",
    ),
    (
        "a singular allow_origin suggests allow_origins",
        UP + "cors:\n  allow_origin: [localhost]\n",
        "corsproxy.yaml:3: cors.allow_origin: unknown key; did you mean 'allow_origins'?",
    ),
    (
        "port at the top level points to listen.port",
        UP + "port: 8080\n",
        "corsproxy.yaml:2: port: unknown key; did you mean 'listen.port'?",
    ),
    (
        "workers at the top level points to listen.workers",
        UP + "workers: 4\n",
        "corsproxy.yaml:2: workers: unknown key; did you mean 'listen.workers'?",
    ),
    (
        "a typo in workers suggests the right key",
        UP + "listen:\n  worker: 4\n",
        "corsproxy.yaml:3: listen.worker: unknown key; did you mean 'workers'?",
    ),
    (
        "allow_origins at the top level points to cors",
        UP + "allow_origins: [localhost]\n",
        "corsproxy.yaml:2: allow_origins: unknown key; did you mean 'cors.allow_origins'?",
    ),
    (
        "a typo in a rule key suggests the right one",
        UP + "cors:\n  rules:\n    - paths: [/a]\n      origins: ['*']\n",
        "corsproxy.yaml:5: cors.rules[0].origins: unknown key; did you mean 'allow_origins'?",
    ),
    (
        "a key with no near match lists the valid ones",
        UP + "listen:\n  bind: x\n",
        "corsproxy.yaml:3: listen.bind: unknown key; expected one of host, port, workers, allowed_hosts, tls",
    ),
    (
        "an unknown key under a block value is reported on the key's own line",
        UP + "listen:\n  zzz:\n    - 1\n",
        "corsproxy.yaml:3: listen.zzz: unknown key; expected one of host, port, workers, allowed_hosts, tls",
    ),
]


@pytest.mark.parametrize(
    ("text", "message"), [r[1:] for r in UNKNOWN_KEYS], ids=[r[0] for r in UNKNOWN_KEYS]
)
def test_unknown_keys_are_refused_with_a_suggestion(text: str, message: str) -> None:
    assert problems(text) == [message]


MALFORMED = [
    (
        "a value after a value is not YAML",
        "upstream: a: b\n",
        "corsproxy.yaml:1: not valid YAML: mapping values are not allowed here",
    ),
    (
        "an unclosed list is not YAML",
        UP + "cors:\n  allow_origins: [localhost\n",
        "corsproxy.yaml:3: not valid YAML: the '[' on this line is never closed with ']'",
    ),
    (
        "an unclosed list followed by more keys names the line of its '[' only",
        UP + "cors:\n  allow_origins: [http://a.example\n  max_age: 5\nlisten:\n  port: 3\n",
        "corsproxy.yaml:3: not valid YAML: the '[' on this line is never closed with ']'",
    ),
    (
        "an unclosed mapping names the line of its '{'",
        UP + "cors: {max_age: 5\nlisten: 2\n",
        "corsproxy.yaml:2: not valid YAML: the '{' on this line is never closed with '}'",
    ),
    (
        "an unclosed quote names the line it opens on",
        'upstream: "http://localhost:8000\ncors:\n  max_age: 5\n',
        "corsproxy.yaml:1: not valid YAML: the quote that opens on this line is never closed",
    ),
    (
        "a line indented wrongly is named alone, without the line its block starts on",
        UP + "cors:\n  max_age: 5\n allow_credentials: true\n",
        "corsproxy.yaml:4: not valid YAML: expected <block end>, but found '<block mapping start>' "
        "(while parsing a block mapping)",
    ),
    (
        "a tab for indentation is not YAML and says so",
        UP + "listen:\n\tport: 1\n",
        "corsproxy.yaml:3: not valid YAML: found character '\\t' that cannot start any token "
        "(while scanning for the next token); indent with spaces, not tabs",
    ),
    (
        "two documents are refused",
        UP + "---\nlog_level: info\n",
        "corsproxy.yaml:2: not valid YAML: a second document starts here; use one",
    ),
    (
        "a Python object tag is refused",
        "upstream: !!python/object:os.system x\n",
        "corsproxy.yaml:1: cannot use this YAML value: could not determine a constructor for the "
        "tag 'tag:yaml.org,2002:python/object:os.system'",
    ),
]


@pytest.mark.parametrize(
    ("text", "message"), [r[1:] for r in MALFORMED], ids=[r[0] for r in MALFORMED]
)
def test_malformed_yaml_is_one_problem_with_its_line(text: str, message: str) -> None:
    assert problems(text) == [message]


def test_every_problem_in_a_file_is_reported_in_line_order() -> None:
    text = """\
        listen:
          prot: 8080
          host: "http://x"
        upstream: http://localhost:8000/
        routes:
          - prefix: /api/
            upstream: localhost:9000
          - prefix: /
            upstream: http://localhost:3000
        cors:
          max_age: -1
        log_level: verbose
        """
    assert problems(text, {"CORSPROXY_PORT": "abc"}, port=70000) == [
        "corsproxy.yaml:2: listen.prot: unknown key; did you mean 'port'?",
        "corsproxy.yaml:3: listen.host: expected a host name or IP address to listen on, such as "
        "127.0.0.1 or 0.0.0.0; got 'http://x'",
        "corsproxy.yaml:6: routes[0].prefix: expected no trailing slash (write '/api'); got '/api/'",
        "corsproxy.yaml:7: routes[0].upstream: expected an http:// or https:// URL such as "
        "http://localhost:8000; got 'localhost:9000'; did you mean http://localhost:9000?",
        "corsproxy.yaml:8: routes[1].prefix: duplicate prefix '/'; the top-level upstream on line 4 "
        "already uses it",
        "corsproxy.yaml:11: cors.max_age: expected an integer from 0 to 86400; got -1",
        "corsproxy.yaml:12: log_level: expected one of debug, info, warning, error; got 'verbose'",
        "CORSPROXY_PORT: listen.port: expected an integer from 1 to 65535; got 'abc'",
        "--port: listen.port: expected an integer from 1 to 65535; got 70000",
    ]


def test_routes_that_are_not_a_list_are_reported_once() -> None:
    assert problems("routes: /api\n") == ["corsproxy.yaml:1: routes: expected a list; got '/api'"]


def test_two_routes_with_one_prefix_are_refused() -> None:
    text = (
        UP + "routes:\n  - {prefix: /api, upstream: http://a.test}\n"
        "  - {prefix: /api, upstream: http://b.test}\n"
    )
    assert problems(text) == [
        "corsproxy.yaml:4: routes[1].prefix: duplicate prefix '/api'; routes[0] on line 3 already "
        "uses it"
    ]


BAD_ENV_AND_FLAGS = [
    (
        "a port in words from the environment is refused",
        {"CORSPROXY_PORT": "abc"},
        {},
        "CORSPROXY_PORT: listen.port: expected an integer from 1 to 65535; got 'abc'",
    ),
    (
        "a port flag out of range is refused",
        {},
        {"port": 0},
        "--port: listen.port: expected an integer from 1 to 65535; got 0",
    ),
    (
        "a port flag given as text is checked like the environment",
        {},
        {"port": "80a"},
        "--port: listen.port: expected an integer from 1 to 65535; got '80a'",
    ),
    (
        "zero workers from the environment are refused",
        {"CORSPROXY_WORKERS": "0"},
        {},
        "CORSPROXY_WORKERS: listen.workers: expected a number of processes from 1 to 64; got 0",
    ),
    (
        "negative workers from the environment are refused",
        {"CORSPROXY_WORKERS": "-1"},
        {},
        "CORSPROXY_WORKERS: listen.workers: expected a number of processes from 1 to 64; got '-1'",
    ),
    (
        "a workers flag in words is refused",
        {},
        {"workers": "four"},
        "--workers: listen.workers: expected a number of processes from 1 to 64; got 'four'",
    ),
    (
        "a workers flag above 64 is refused",
        {},
        {"workers": "100"},
        "--workers: listen.workers: expected a number of processes from 1 to 64 (more processes than CPU cores only cost "
        "memory); got 100",
    ),
    (
        "an upstream from the environment without scheme is refused",
        {"CORSPROXY_UPSTREAM": "localhost:8000"},
        {},
        "CORSPROXY_UPSTREAM: upstream: expected an http:// or https:// URL such as "
        "http://localhost:8000; got 'localhost:8000'; did you mean http://localhost:8000?",
    ),
    (
        "an upstream argument without scheme is refused",
        {},
        {"upstream": "localhost:8000"},
        "UPSTREAM: upstream: expected an http:// or https:// URL such as http://localhost:8000; "
        "got 'localhost:8000'; did you mean http://localhost:8000?",
    ),
    (
        "a bad host flag is refused",
        {},
        {"host": "0.0.0.0:80"},
        "--host: listen.host: expected a host name or IP address to listen on, such as 127.0.0.1 "
        "or 0.0.0.0; got '0.0.0.0:80'",
    ),
    (
        "a bad log level from the environment is refused",
        {"CORSPROXY_LOG_LEVEL": "loud"},
        {},
        "CORSPROXY_LOG_LEVEL: log_level: expected one of debug, info, warning, error; got 'loud'",
    ),
    (
        "the second of several origins in the environment is named by its index",
        {"CORSPROXY_ALLOW_ORIGINS": "localhost, http://a.test/"},
        {},
        "CORSPROXY_ALLOW_ORIGINS: cors.allow_origins[1]: an origin has no path or trailing slash "
        "(browsers never send one); got 'http://a.test/'; did you mean 'http://a.test'?",
    ),
    (
        "a bad origin flag is refused",
        {},
        {"allow_origins": ("a.test",)},
        "--allow-origin: cors.allow_origins[0]: an origin is scheme://host[:port], e.g. "
        "'http://localhost:5173', or one of '*', 'localhost', 'null', 'regex:...'; got 'a.test'; "
        "did you mean 'https://a.test'?",
    ),
]


@pytest.mark.parametrize(
    ("env", "flags", "message"),
    [r[1:] for r in BAD_ENV_AND_FLAGS],
    ids=[r[0] for r in BAD_ENV_AND_FLAGS],
)
def test_bad_environment_and_flags_name_their_source(env: dict, flags: dict, message: str) -> None:
    flags = {"upstream": "http://localhost:8000"} | flags
    assert problems(UP, env, **flags) == [message]


def test_missing_file_names_the_path_and_the_reason() -> None:
    with pytest.raises(ConfigError) as caught:
        load(Overrides(config="nope.yaml"), {})
    assert [str(p) for p in caught.value.problems] == [
        "nope.yaml: cannot read the config file (named by --config): No such file or directory"
    ]


def test_a_folder_given_as_config_from_the_environment_is_refused(in_tmp: Path) -> None:
    (in_tmp / "conf").mkdir()
    with pytest.raises(ConfigError) as caught:
        load(Overrides(upstream="http://localhost:8000"), {"CORSPROXY_CONFIG": "conf"})
    assert [str(p) for p in caught.value.problems] == [
        "conf: cannot read the config file (named by CORSPROXY_CONFIG): Is a directory"
    ]


NO_UPSTREAM = (
    "upstream: no upstream configured; give one, e.g. corsproxy serve http://localhost:8000"
)


def test_no_upstream_anywhere_is_one_problem() -> None:
    with pytest.raises(ConfigError) as caught:
        load(Overrides(), {})
    assert [str(p) for p in caught.value.problems] == [NO_UPSTREAM]


def test_no_upstream_in_a_file_names_the_file() -> None:
    assert problems("listen: {port: 9000}\n") == [f"corsproxy.yaml: {NO_UPSTREAM}"]


DANGEROUS = [
    (
        "star with credentials on by default is refused",
        UP + "cors:\n  allow_origins: ['*']\n",
        [
            'corsproxy.yaml:3: cors.allow_origins: "*" in allow_origins together with '
            f"allow_credentials: true (the default) {ANY_RISK}"
        ],
    ),
    (
        "star with credentials switched on is refused",
        UP + "cors:\n  allow_credentials: true\n  allow_origins: '*'\n",
        [
            'corsproxy.yaml:4: cors.allow_origins: "*" in allow_origins together with '
            f"allow_credentials: true {ANY_RISK}"
        ],
    ),
    (
        "a rule with star inheriting credentials is refused",
        UP + "cors:\n  rules:\n    - paths: [/public/**]\n      allow_origins: ['*']\n",
        [
            'corsproxy.yaml:5: cors.rules[0].allow_origins: "*" in allow_origins together with '
            f"allow_credentials: true (the default) {ANY_RISK}"
        ],
    ),
    (
        "a rule switching credentials on under an inherited star is refused",
        UP + "cors:\n  allow_origins: ['*']\n  allow_credentials: false\n  rules:\n"
        "    - paths: [/me]\n      allow_credentials: true\n",
        [
            'corsproxy.yaml:7: cors.rules[0].allow_credentials: "*" in allow_origins (inherited from '
            f"cors) together with allow_credentials: true {ANY_RISK}"
        ],
    ),
]


@pytest.mark.parametrize(
    ("text", "expected"), [r[1:] for r in DANGEROUS], ids=[r[0] for r in DANGEROUS]
)
def test_any_origin_with_credentials_is_refused(text: str, expected: list[str]) -> None:
    assert problems(text) == expected


def test_any_origin_from_the_environment_is_refused_naming_the_variable() -> None:
    assert problems(UP, {"CORSPROXY_ALLOW_ORIGINS": "*"}) == [
        'CORSPROXY_ALLOW_ORIGINS: cors.allow_origins: "*" in allow_origins together with '
        f"allow_credentials: true (the default) {ANY_RISK}"
    ]


ACCEPTED_STAR = [
    (
        "star without credentials is accepted",
        "cors:\n  allow_origins: ['*']\n  allow_credentials: false\n",
        (),
    ),
    (
        "a public rule with star and no credentials is accepted",
        "cors:\n  rules:\n    - paths: [/public/**]\n      allow_origins: ['*']\n"
        "      allow_credentials: false\n",
        (),
    ),
    (
        "the dangerous flag accepts star with credentials but warns",
        "cors:\n  allow_origins: ['*']\n  dangerously_allow_any_origin_with_credentials: true\n",
        (
            "corsproxy.yaml:4: cors.dangerously_allow_any_origin_with_credentials: any web site you "
            "visit can read your logged-in responses through the proxy",
        ),
    ),
]


@pytest.mark.parametrize(
    ("text", "warnings"), [r[1:] for r in ACCEPTED_STAR], ids=[r[0] for r in ACCEPTED_STAR]
)
def test_any_origin_is_accepted_when_safe_or_forced(text: str, warnings: tuple) -> None:
    assert load_file(UP + text).warnings == warnings


def test_max_age_above_chrome_cap_is_accepted_with_a_warning() -> None:
    settings = load_file(
        UP + "cors:\n  max_age: 10000\n  rules:\n    - paths: [/a]\n      max_age: 7201\n"
    )
    assert settings.cors.max_age == 10000
    assert settings.warnings == (
        "corsproxy.yaml:3: cors.max_age: 10000 s is above 7200 s, the most Chrome honours; "
        "Chrome will ask again after 7200 s",
        "corsproxy.yaml:6: cors.rules[0].max_age: 7201 s is above 7200 s, the most Chrome "
        "honours; Chrome will ask again after 7200 s",
    )


def test_cookie_defaults_are_auto() -> None:
    cookies = load_file(UP).routes[0].cookies
    assert (cookies.domain, cookies.secure, cookies.samesite) == ("strip", "auto", "auto")


@pytest.mark.parametrize("samesite", ["auto", "none"])
def test_secure_strip_with_samesite_auto_or_none_is_accepted_with_a_warning(samesite: str) -> None:
    settings = load_file(
        "routes:\n  - prefix: /\n    upstream: http://localhost:8000\n    cookies:\n"
        f"      secure: strip\n      samesite: {samesite}\n"
    )
    assert settings.routes[0].cookies.samesite == samesite
    assert settings.warnings == (
        f"corsproxy.yaml:5: routes[0].cookies.secure: samesite {samesite} with secure strip: "
        "without Secure a cookie cannot be SameSite=None, so a cross-site page's login cookie "
        "is refused; use secure: auto",
    )


def test_secure_strip_with_samesite_lax_is_quiet() -> None:
    settings = load_file(
        "routes:\n  - prefix: /\n    upstream: http://localhost:8000\n    cookies:\n"
        "      secure: strip\n      samesite: lax\n"
    )
    assert settings.warnings == ()


FILE = (
    UP
    + "listen:\n  host: file.test\n  port: 8001\n  workers: 3\ncors:\n  allow_origins: [http://file.test]\n"
    "log_level: warning\n"
)
ENV = {
    "CORSPROXY_UPSTREAM": "http://env.test",
    "CORSPROXY_HOST": "env.test",
    "CORSPROXY_PORT": "8002",
    "CORSPROXY_WORKERS": " 4 ",
    "CORSPROXY_ALLOW_ORIGINS": "http://env.test, http://env2.test",
    "CORSPROXY_LOG_LEVEL": "ERROR",
}
FLAGS = {
    "upstream": "http://flag.test",
    "host": "flag.test",
    "port": 8003,
    "workers": "5",  # as typed after --workers
    "allow_origins": ("http://flag.test",),
    "log_level": "debug",
}
GETTERS = {
    "host": lambda s: s.listen.host,
    "port": lambda s: s.listen.port,
    "workers": lambda s: s.listen.workers,
    "upstream": lambda s: [(r.prefix, r.upstream) for r in s.routes],
    "allow_origins": lambda s: s.cors.allow_origins,
    "log_level": lambda s: s.log_level,
}
PRECEDENCE = [
    ("host", "127.0.0.1", "file.test", "env.test", "flag.test"),
    ("port", 8080, 8001, 8002, 8003),
    ("workers", 1, 3, 4, 5),
    (
        "upstream",
        None,
        [("/", "http://localhost:8000")],
        [("/", "http://env.test")],
        [("/", "http://flag.test")],
    ),
    (
        "allow_origins",
        ("localhost",),
        ("http://file.test",),
        ("http://env.test", "http://env2.test"),
        ("http://flag.test",),
    ),
    ("log_level", "info", "warning", "error", "debug"),
]
LAYERS = [
    ("defaults", None, {}, {}),
    ("the file beats the defaults", FILE, {}, {}),
    ("the environment beats the file", FILE, ENV, {}),
    ("a flag beats the environment", FILE, ENV, FLAGS),
]
PRECEDENCE_ROWS = [
    pytest.param(
        key, text, env, {k: v for k, v in flags.items() if k == key}, want, id=f"{key}: {layer}"
    )
    for key, *wants in PRECEDENCE
    for (layer, text, env, flags), want in zip(LAYERS, wants, strict=True)
    if want is not None
]


@pytest.mark.parametrize(("key", "text", "env", "flags", "want"), PRECEDENCE_ROWS)
def test_flags_beat_environment_beats_file_beats_defaults(
    key: str, text: str | None, env: dict, flags: dict, want: object
) -> None:
    env = {k: v for k, v in env.items() if k.endswith(key.upper())}
    if text is None:
        flags = {"upstream": "http://localhost:8000"} | flags
    config = write(text) if text else None
    assert GETTERS[key](load(Overrides(config=config, **flags), env)) == want


CONFIG_ROWS = [
    ("no config given means defaults", {}, {}, 8080),
    ("CORSPROXY_CONFIG names the file", {"CORSPROXY_CONFIG": "env.yaml"}, {}, 2222),
    (
        "--config beats CORSPROXY_CONFIG",
        {"CORSPROXY_CONFIG": "env.yaml"},
        {"config": "flag.yaml"},
        1111,
    ),
    ("a blank CORSPROXY_CONFIG counts as unset", {"CORSPROXY_CONFIG": "  "}, {}, 8080),
]


@pytest.mark.parametrize(
    ("env", "flags", "port"), [r[1:] for r in CONFIG_ROWS], ids=[r[0] for r in CONFIG_ROWS]
)
def test_which_config_file_is_read(env: dict, flags: dict, port: int) -> None:
    write(UP + "listen: {port: 1111}\n", "flag.yaml")
    write(UP + "listen: {port: 2222}\n", "env.yaml")
    settings = load(Overrides(upstream="http://localhost:8000", **flags), env)
    assert settings.listen.port == port
    assert settings.source == flags.get("config", env.get("CORSPROXY_CONFIG", "").strip() or None)


def test_an_upstream_flag_replaces_only_the_root_route() -> None:
    text = (
        "routes:\n  - {prefix: /api, upstream: http://api.test, strip_prefix: true}\n"
        "  - {prefix: /, upstream: http://old.test, websocket: false}\n"
    )
    settings = load_file(text, upstream="http://new.test/")
    assert settings.routes == (
        Route("/api", "http://api.test", strip_prefix=True),
        Route("/", "http://new.test"),
    )


def test_origins_in_the_environment_are_split_on_commas_and_trimmed() -> None:
    settings = load_file(UP, {"CORSPROXY_ALLOW_ORIGINS": " http://a.test ,, localhost ,"})
    assert settings.cors.allow_origins == ("http://a.test", "localhost")


def test_blank_environment_variables_count_as_unset() -> None:
    env = {"CORSPROXY_PORT": "", "CORSPROXY_HOST": " ", "CORSPROXY_ALLOW_ORIGINS": " , "}
    settings = load_file(UP, env)
    assert (settings.listen.host, settings.listen.port) == ("127.0.0.1", 8080)
    assert settings.cors.allow_origins == ("localhost",)


NORMALIZED = [
    (
        "an upstream's trailing slash is dropped and its base path kept",
        "upstream: HTTP://localhost:8000/v1/\n",
        lambda s: s.routes[0].upstream,
        "http://localhost:8000/v1",
    ),
    (
        "allowed hosts are lowercased and IPv6 is bracketed",
        UP + "listen:\n  allowed_hosts: [MyApp.Test, '::1', 10.0.0.2]\n",
        lambda s: s.listen.allowed_hosts,
        ("myapp.test", "[::1]", "10.0.0.2"),
    ),
    (
        "a bracketed IPv6 listen host loses its brackets for bind",
        UP + "listen: {host: '[::]'}\n",
        lambda s: s.listen.host,
        "::",
    ),
    (
        "one origin as a plain string is a one-item list",
        UP + "cors: {allow_origins: 'null'}\n",
        lambda s: s.cors.allow_origins,
        ("null",),
    ),
    (
        "a methods list keeps the case it was written in",
        UP + "cors: {allow_methods: [get, PATCH]}\n",
        lambda s: s.cors.allow_methods,
        ("get", "PATCH"),
    ),
    (
        "the log level is case-insensitive",
        UP + "log_level: DEBUG\n",
        lambda s: s.log_level,
        "debug",
    ),
    (
        "empty sections mean the defaults",
        UP + "listen:\ncors:\nroutes:\n",
        lambda s: s,
        Settings(routes=(Route("/", "http://localhost:8000"),), source="corsproxy.yaml"),
    ),
    (
        "YAML merge keys share route options",
        "routes:\n  - &a {prefix: /a, upstream: http://a.test, verify_tls: false, timeout: 5}\n"
        "  - {<<: *a, prefix: /b, timeout: 7}\n",
        lambda s: [(r.prefix, r.verify_tls, r.timeout) for r in s.routes],
        [("/a", False, 5.0), ("/b", False, 7.0)],
    ),
    (
        "a cookie domain keeps its leading dot",
        UP + "routes:\n  - {prefix: /a, upstream: http://a.test, cookies: {domain: .App.Test}}\n",
        lambda s: s.routes[0].cookies.domain,
        ".app.test",
    ),
    (
        "the inspector is on by default with a token made at start",
        UP,
        lambda s: s.inspector,
        Inspector(enabled=True, token=None, keep=500, body_preview=16384),
    ),
    (
        "inspector: false turns it off",
        UP + "inspector: false\n",
        lambda s: s.inspector.enabled,
        False,
    ),
    (
        "the inspector's keys are read",
        UP + "inspector:\n  token: " + "t" * 22 + "\n  keep: 50\n  body_preview: 0\n",
        lambda s: s.inspector,
        Inspector(enabled=True, token="t" * 22, keep=50, body_preview=0),
    ),
    (
        "a null token means a new one at each start",
        UP + "inspector:\n  token: null\n",
        lambda s: s.inspector.token,
        None,
    ),
]


@pytest.mark.parametrize(
    ("text", "get", "want"), [r[1:] for r in NORMALIZED], ids=[r[0] for r in NORMALIZED]
)
def test_valid_values_are_read_and_normalized(text: str, get, want: object) -> None:
    assert get(load_file(text)) == want


def test_an_empty_file_is_all_defaults() -> None:
    settings = load_file("", upstream="http://localhost:8000")
    assert settings == Settings(
        routes=(Route("/", "http://localhost:8000"),), source="corsproxy.yaml"
    )


def test_rules_are_read_with_only_the_fields_they_set() -> None:
    text = (
        UP + "cors:\n  rules:\n    - paths: /public/**\n      allow_origins: ['*']\n"
        "      allow_credentials: false\n"
    )
    rule = load_file(text).cors.rules[0]
    assert rule == CorsRule(paths=("/public/**",), allow_origins=("*",), allow_credentials=False)


def test_a_rule_overrides_field_by_field_and_inherits_the_rest() -> None:
    cors = Cors(
        allow_origins=("localhost",),
        allow_methods=("GET",),
        max_age=60,
        rules=(CorsRule(paths=("/a",)),),
    )
    rule = CorsRule(paths=("/public/**",), allow_origins=("*",), allow_credentials=False)
    assert effective_cors(cors, rule) == Cors(
        allow_origins=("*",), allow_methods=("GET",), max_age=60, allow_credentials=False
    )


GLOBS = [
    ("a star stays within one segment", "/api/*", "/api/users", True),
    ("a star does not cross a slash", "/api/*", "/api/users/1", False),
    ("a star needs its own segment to exist", "/api/*", "/api", False),
    ("a double star spans any depth", "/public/**", "/public/a/b/c.js", True),
    ("a trailing double star covers the folder itself", "/public/**", "/public", True),
    ("a double star does not match a longer name", "/public/**", "/publicity", False),
    ("a middle double star may match no segment", "/a/**/b", "/a/b", True),
    ("a middle double star matches several segments", "/a/**/b", "/a/x/y/b", True),
    ("a star inside a segment matches a suffix", "/files/*.json", "/files/data.json", True),
    ("regex characters are literal", "/v1.0/(x)", "/v1x0/(x)", False),
    ("the whole path must match", "/health", "/health/extra", False),
]


@pytest.mark.parametrize(
    ("pattern", "path", "matches"), [r[1:] for r in GLOBS], ids=[r[0] for r in GLOBS]
)
def test_path_globs(pattern: str, path: str, matches: bool) -> None:
    assert bool(compile_path_glob(pattern).fullmatch(path)) is matches


def test_problem_renders_without_the_parts_it_lacks() -> None:
    assert str(Problem("f.yaml", 3, "a.b", "m")) == "f.yaml:3: a.b: m"
    assert str(Problem("--port", None, "listen.port", "m")) == "--port: listen.port: m"
    assert str(Problem(None, None, "upstream", "m")) == "upstream: m"


def test_the_example_file_loads_cleanly() -> None:
    settings = load(Overrides(config=str(EXAMPLE)), {})
    assert settings.warnings == ()
    assert [r.prefix for r in settings.routes] == ["/api", "/auth", "/"]


def test_describe_spells_out_the_route_table() -> None:
    text = (
        "upstream: http://localhost:3000\nroutes:\n"
        "  - {prefix: /api, upstream: http://localhost:8000, strip_prefix: true, timeout: 2.5}\n"
        "cors:\n  max_age: 9000\n"
    )
    out = describe(load_file(text))
    assert (
        "\nroutes (longest prefix wins):\n"
        "  /api  -> http://localhost:8000   (/api/users goes to http://localhost:8000/users)\n"
        "           strip_prefix: true, host_header: upstream, origin_header: keep\n"
        "           verify_tls: true, websocket: true, redirects: rewrite, timeout: 2.5s, "
        "read_timeout: 300s\n"
        "           cookies: domain strip, secure auto, samesite auto\n"
        "  /     -> http://localhost:3000   (/users goes to http://localhost:3000/users)\n" in out
    )
    assert '\n  allow_origins: [localhost]\n  allow_methods: "*"\n' in out
    assert (
        "\n  port: 8080\n  workers: 1   # processes serving the port, each with its own pool\n"
        in out
    )
    assert out.endswith(
        "\nwarnings:\n  corsproxy.yaml:5: cors.max_age: 9000 s is above 7200 s, the most Chrome "
        "honours; Chrome will ask again after 7200 s\n"
    )


def test_describe_shows_rules_with_only_their_own_fields() -> None:
    text = (
        UP + "cors:\n  rules:\n    - paths: ['/public/**']\n      allow_origins: ['*']\n"
        "      allow_credentials: false\n"
    )
    assert (
        "  rules:   # the first whose paths match wins; unset fields come from cors\n"
        '    - paths: ["/public/**"]\n      allow_origins: ["*"]\n'
        "      allow_credentials: false\n" in describe(load_file(text))
    )


@pytest.fixture
def tls_files(in_tmp: Path) -> tuple[str, str]:
    """A real certificate and key in certs/, next to which the config file refers to them."""
    trustme = pytest.importorskip("trustme")
    cert = trustme.CA().issue_cert("localhost")
    (in_tmp / "certs").mkdir()
    cert.cert_chain_pems[0].write_to_path(str(in_tmp / "certs" / "cert.pem"))
    cert.private_key_pem.write_to_path(str(in_tmp / "certs" / "key.pem"))
    return "cert.pem", "key.pem"


def test_tls_files_are_found_next_to_the_config_file(in_tmp: Path, tls_files) -> None:
    (in_tmp / "certs" / "corsproxy.yaml").write_text(
        UP + "listen:\n  tls: {cert: cert.pem, key: key.pem}\n"
    )
    settings = load(Overrides(config="certs/corsproxy.yaml"), {})
    assert (settings.listen.tls.cert, settings.listen.tls.key) == (
        "certs/cert.pem",
        "certs/key.pem",
    )


def test_tls_without_a_key_is_refused(in_tmp: Path) -> None:
    (in_tmp / "cert.pem").write_text("")
    assert problems(UP + "listen:\n  tls:\n    cert: cert.pem\n") == [
        "corsproxy.yaml:3: listen.tls.key: missing; expected the path of the PEM private key file"
    ]


def test_tls_files_that_are_missing_are_each_named(in_tmp: Path) -> None:
    assert problems(UP + "listen:\n  tls:\n    cert: c.pem\n    key: k.pem\n") == [
        "corsproxy.yaml:4: listen.tls.cert: cannot read 'c.pem': No such file or directory",
        "corsproxy.yaml:5: listen.tls.key: cannot read 'k.pem': No such file or directory",
    ]


def test_a_key_that_is_not_the_certificates_is_refused(in_tmp: Path, tls_files) -> None:
    trustme = pytest.importorskip("trustme")
    trustme.CA().issue_cert("other.test").private_key_pem.write_to_path("other-key.pem")
    text = UP + "listen:\n  tls:\n    cert: certs/cert.pem\n    key: other-key.pem\n"
    assert problems(text) == [
        "corsproxy.yaml:3: listen.tls: the key does not belong to the certificate "
        "(OpenSSL: key values mismatch)"
    ]


def test_a_key_that_is_not_pem_is_refused(in_tmp: Path, tls_files) -> None:
    (in_tmp / "certs" / "key.pem").write_text("not a key\n")
    text = UP + "listen:\n  tls:\n    cert: certs/cert.pem\n    key: certs/key.pem\n"
    assert problems(text) == [
        "corsproxy.yaml:3: listen.tls: the certificate and key cannot be loaded (OpenSSL: PEM lib); "
        "both must be PEM files, the key without a passphrase"
    ]


REUSE_PORT = [
    ("one worker needs nothing of the platform", 1, False, None),
    ("several workers where SO_REUSEPORT exists", 4, True, None),
    (
        "several workers without SO_REUSEPORT are refused",
        2,
        False,
        "2 workers need SO_REUSEPORT (Linux), which this platform lacks; use 1",
    ),
]


@pytest.mark.parametrize(
    ("workers", "reuse_port", "message"),
    [r[1:] for r in REUSE_PORT],
    ids=[r[0] for r in REUSE_PORT],
)
def test_workers_need_so_reuseport(workers: int, reuse_port: bool, message: str | None) -> None:
    from corsproxy.config.checks import Invalid, workers_check

    check = workers_check(reuse_port)
    if message is None:
        assert check(workers) == workers
    else:
        with pytest.raises(Invalid) as caught:
            check(workers)
        assert str(caught.value) == message


def test_no_inspector_flag_and_the_token_variable_beat_the_file() -> None:
    text = UP + "inspector:\n  token: " + "f" * 22 + "\n"
    env = {"CORSPROXY_INSPECTOR_TOKEN": "e" * 22}
    assert load_file(text, env).inspector.token == "e" * 22
    assert load_file(text, env, inspector=False).inspector.enabled is False
    assert load_file(UP + "inspector: false\n").inspector.enabled is False


def test_describe_never_prints_the_token() -> None:
    out = describe(load_file(UP + "inspector:\n  token: " + "s" * 22 + "\n"))
    assert "s" * 22 not in out
    assert "\ninspector:   # the page at /__corsproxy/" in out
    assert "\n  token: set (not shown)\n  keep: 500   # exchanges kept\n" in out
    assert "\ninspector: false" in describe(load_file(UP + "inspector: false\n"))

"""Table tests for header rules: `${NAME}` expansion, name and value checks with their exact
messages (alone and through the real loader, file and line included), the refused-page
predicate, and set/remove applied to header lists."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from corsproxy.config.checks import Invalid
from corsproxy.config.describe import describe
from corsproxy.config.load import ConfigError, Overrides, load
from corsproxy.config.model import HeaderRules, SetHeader
from corsproxy.cors.policy import Verdict
from corsproxy.proxy import headerrules

SECRET = "s3cr3t-t0ken"
ENV = {"API_TOKEN": SECRET, "EMPTY": "", "REGION": "eu"}


def rows(table):
    """(ids, values) for pytest.mark.parametrize from rows whose first item is a sentence."""
    return {"argvalues": [row[1:] for row in table], "ids": [row[0] for row in table]}


# ---- expansion ------------------------------------------------------------------------------

EXPANDED = [
    ("text without a reference is kept as written", "no-store", "no-store"),
    ("a set variable is replaced", "Bearer ${API_TOKEN}", f"Bearer {SECRET}"),
    ("a default is ignored when the variable is set", "${REGION:-us}", "eu"),
    ("a default is used when the variable is unset", "${API_KEY:-dev-key}", "dev-key"),
    ("a default is used when the variable is empty, as in a shell", "${EMPTY:-x}", "x"),
    ("an empty default gives an empty value", "${API_KEY:-}", ""),
    ("a default may hold colons, dashes and a lone $", "${NOPE:-a:-b$c}", "a:-b$c"),
    ("several references in one value", "${REGION}/${API_TOKEN}", f"eu/{SECRET}"),
    ("$${ is a literal ${", "$${API_TOKEN}", "${API_TOKEN}"),
    ("a $ not followed by { is literal", "cost: $5 or $$", "cost: $5 or $$"),
    ("a lone } is literal", "a}b", "a}b"),
]


@pytest.mark.parametrize(("template", "value"), **rows(EXPANDED))
def test_expansion(template: str, value: str) -> None:
    assert headerrules.expand(template, ENV) == value


NOT_EXPANDED = [
    (
        "an unset variable without a default is refused",
        "Bearer ${API_KEY}",
        {},
        "${API_KEY} is not set in the environment; set it, or give a default: ${API_KEY:-value}",
    ),
    (
        "an empty variable without a default is refused",
        "Bearer ${EMPTY}",
        ENV,
        "${EMPTY} is empty in the environment; set it, or give a default: ${EMPTY:-value}",
    ),
    (
        "a name with a space is not a reference",
        "Bearer ${API TOKEN}",
        ENV,
        "expected ${NAME} or ${NAME:-default} (NAME of letters, digits and _; $${ for a literal"
        " ${); got '${API TOKEN}'",
    ),
    (
        "an unclosed reference is refused",
        "Bearer ${API_TOKEN",
        ENV,
        "expected ${NAME} or ${NAME:-default} (NAME of letters, digits and _; $${ for a literal"
        " ${); got '${API_TOKEN'",
    ),
    (
        "a name starting with a digit is refused",
        "${1PASSWORD}",
        ENV,
        "expected ${NAME} or ${NAME:-default} (NAME of letters, digits and _; $${ for a literal"
        " ${); got '${1PASSWORD}'",
    ),
    (
        "a nested reference in a default is refused",
        "${A:-${B}}",
        ENV,
        "expected ${NAME} or ${NAME:-default} (NAME of letters, digits and _; $${ for a literal"
        " ${); got '${A:-${B}'",
    ),
    (
        "shell's other operators are not taken for defaults",
        "${API_KEY-x}",
        ENV,
        "expected ${NAME} or ${NAME:-default} (NAME of letters, digits and _; $${ for a literal"
        " ${); got '${API_KEY-x}'",
    ),
    (
        "a line break in the variable is refused without showing the value",
        "Bearer ${API_TOKEN}",
        {"API_TOKEN": SECRET + "\n"},
        "the value of ${API_TOKEN} contains a control character (U+000A), "
        "which a header value cannot carry",
    ),
    (
        "a NUL in the variable is refused",
        "${API_TOKEN}",
        {"API_TOKEN": "a\x00b"},
        "the value of ${API_TOKEN} contains a control character (U+0000), "
        "which a header value cannot carry",
    ),
]


@pytest.mark.parametrize(("template", "env", "message"), **rows(NOT_EXPANDED))
def test_expansion_refused(template: str, env: dict[str, str], message: str) -> None:
    with pytest.raises(Invalid) as caught:
        headerrules.expand(template, env)
    assert str(caught.value) == message
    assert SECRET not in message


# ---- names and values ------------------------------------------------------------------------

NAMES_REFUSED = [
    (
        "a name with a space",
        "X Api Key",
        "expected a header name such as X-Request-Id (letters, digits and !#$%&'*+-.^_`|~); "
        "got 'X Api Key'",
    ),
    ("a name with a colon", "X-Api:", None),
    ("an empty name", "", None),
    ("a number for a name", 7, None),
    (
        "a wildcard",
        "*",
        "expected a header name such as X-Api-Key (rules have no wildcard); got '*'",
    ),
    (
        "Host",
        "host",
        "host cannot be set or removed by a header rule: "
        "the proxy sends each route's Host itself (see host_header)",
    ),
    (
        "Content-Length",
        "Content-Length",
        "Content-Length cannot be set or removed by a header rule: "
        "the proxy frames each body itself",
    ),
    (
        "Transfer-Encoding",
        "Transfer-Encoding",
        "Transfer-Encoding cannot be set or removed by a header rule: "
        "the proxy frames each body itself",
    ),
    (
        "Connection",
        "Connection",
        "Connection cannot be set or removed by a header rule: "
        "it belongs to one connection, not to the request or the response",
    ),
    (
        "Upgrade",
        "UPGRADE",
        "UPGRADE cannot be set or removed by a header rule: "
        "the proxy handles WebSocket upgrades itself (see websocket)",
    ),
    (
        "Access-Control-Allow-Origin",
        "Access-Control-Allow-Origin",
        "Access-Control-Allow-Origin cannot be set or removed by a header rule: "
        "the CORS rules own the Access-Control-* headers (see the cors section)",
    ),
    (
        "any Access-Control-* name, in any case",
        "access-control-request-headers",
        "access-control-request-headers cannot be set or removed by a header rule: "
        "the CORS rules own the Access-Control-* headers (see the cors section)",
    ),
]


@pytest.mark.parametrize(("name", "message"), **rows(NAMES_REFUSED))
def test_names_refused(name: object, message: str | None) -> None:
    with pytest.raises(Invalid) as caught:
        headerrules.check_name(name)
    if message is not None:
        assert str(caught.value) == message


@pytest.mark.parametrize(
    "name", ["Authorization", "X-Api-Key", "Cookie", "Origin", "Vary", "Cache-Control", "X-A.b"]
)
def test_names_accepted(name: str) -> None:
    assert headerrules.check_name(name) == name


VALUES_REFUSED = [
    (
        "nothing",
        None,
        "expected a header value; got nothing (to drop the header, list it under remove)",
    ),
    ("a number", 2, "expected a header value as text; got 2 (write it in quotes)"),
    ("a boolean", True, "expected a header value as text; got true (write it in quotes)"),
    ("a float", 1.1, "expected a header value as text; got 1.1 (write it in quotes)"),
    ("a list", ["a"], "expected a header value as text; got a list"),
    (
        "a line break written in the file",
        "a\nb",
        "expected a header value without control characters; got 'a\\nb'",
    ),
    (
        "a C1 control character",
        "a\x85b",
        "expected a header value without control characters; got 'a\\x85b'",
    ),
]


@pytest.mark.parametrize(("value", "message"), **rows(VALUES_REFUSED))
def test_values_refused(value: object, message: str) -> None:
    with pytest.raises(Invalid) as caught:
        headerrules.read_value(value, ENV)
    assert str(caught.value) == message


def test_a_value_keeps_its_template_beside_the_expanded_value() -> None:
    assert headerrules.read_value("Bearer ${API_TOKEN}", ENV) == (
        "Bearer ${API_TOKEN}",
        f"Bearer {SECRET}",
    )
    assert headerrules.read_value("a\tb", {}) == ("a\tb", "a\tb")  # a tab is allowed


# ---- through the loader: file, line, key path ----------------------------------------------

ROUTE = "routes:\n  - prefix: /api\n    upstream: http://localhost:8000\n"  # lines 1-3


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def load_text(text: str, env: dict[str, str] | None = None):
    Path("corsproxy.yaml").write_text(textwrap.dedent(text), encoding="utf-8")
    return load(Overrides(config="corsproxy.yaml"), ENV if env is None else env)


def problems(text: str, env: dict[str, str] | None = None) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_text(text, env)
    return [str(problem) for problem in caught.value.problems]


LOADER_REFUSES = [
    (
        "an unset variable names itself, the file, the line and the key",
        ROUTE + "    request_headers:\n      set:\n        Authorization: 'Bearer ${API_TOKEN}'\n",
        {},
        [
            "corsproxy.yaml:6: routes[0].request_headers.set.Authorization: ${API_TOKEN} is not "
            "set in the environment; set it, or give a default: ${API_TOKEN:-value}"
        ],
    ),
    (
        "the spec's flow style: each entry named, on its line",
        ROUTE + "    request_headers:\n"
        '      set: {Authorization: "Bearer ${API_TOKEN}", X-Api-Key: "${API_KEY}"}\n',
        {"API_TOKEN": "t"},
        [
            "corsproxy.yaml:5: routes[0].request_headers.set.X-Api-Key: ${API_KEY} is not set in "
            "the environment; set it, or give a default: ${API_KEY:-value}"
        ],
    ),
    (
        "a forbidden name under set and under remove, both directions",
        ROUTE + "    request_headers:\n      set: {Host: example.com}\n"
        "    response_headers:\n      remove: [Vary, Access-Control-Allow-Origin]\n",
        None,
        [
            "corsproxy.yaml:5: routes[0].request_headers.set.Host: Host cannot be set or removed "
            "by a header rule: the proxy sends each route's Host itself (see host_header)",
            "corsproxy.yaml:7: routes[0].response_headers.remove[1]: Access-Control-Allow-Origin "
            "cannot be set or removed by a header rule: the CORS rules own the Access-Control-* "
            "headers (see the cors section)",
        ],
    ),
    (
        "a name twice in another case",
        ROUTE + "    request_headers:\n      set:\n        X-Api-Key: a\n        x-api-key: b\n",
        None,
        [
            "corsproxy.yaml:7: routes[0].request_headers.set.x-api-key: x-api-key is already "
            "under set on line 6; name each header once (names ignore case)"
        ],
    ),
    (
        "a name both set and removed",
        ROUTE + "    response_headers:\n      set: {Cache-Control: no-store}\n"
        "      remove:\n        - cache-control\n",
        None,
        [
            "corsproxy.yaml:7: routes[0].response_headers.remove[0]: cache-control is already "
            "under set on line 5; name each header once (names ignore case)"
        ],
    ),
    (
        "set as a list",
        ROUTE + "    request_headers:\n      set: [Authorization]\n",
        None,
        [
            "corsproxy.yaml:5: routes[0].request_headers.set: expected a mapping of header names "
            "to values, such as {Cache-Control: no-store}; got a list"
        ],
    ),
    (
        "an unknown key beside set and remove",
        ROUTE + "    request_headers:\n      add: {X-A: b}\n",
        None,
        [
            "corsproxy.yaml:5: routes[0].request_headers.add: unknown key; "
            "expected one of set, remove"
        ],
    ),
    (
        "a number as a value",
        ROUTE + "    request_headers:\n      set:\n        X-Api-Version: 2\n",
        None,
        [
            "corsproxy.yaml:6: routes[0].request_headers.set.X-Api-Version: expected a header "
            "value as text; got 2 (write it in quotes)"
        ],
    ),
    (
        "a remove entry that is not a name",
        ROUTE + "    request_headers:\n      remove: [Cookie, 'Set Cookie']\n",
        None,
        [
            "corsproxy.yaml:5: routes[0].request_headers.remove[1]: expected a header name such "
            "as X-Request-Id (letters, digits and !#$%&'*+-.^_`|~); got 'Set Cookie'"
        ],
    ),
]


@pytest.mark.parametrize(("text", "env", "expected"), **rows(LOADER_REFUSES))
def test_the_loader_refuses(text: str, env: dict[str, str] | None, expected: list[str]) -> None:
    assert problems(text, env) == expected


def test_the_loader_builds_rules_with_values_and_templates() -> None:
    text = ROUTE + (
        "    request_headers:\n"
        '      set: {Authorization: "Bearer ${API_TOKEN}", X-Api-Key: "${API_KEY:-dev-key}"}\n'
        "      remove: Cookie\n"
        "    response_headers:\n"
        "      set: {Cache-Control: no-store}\n"
        "      remove: [Content-Security-Policy]\n"
    )
    [route] = load_text(text).routes
    assert route.request_headers == HeaderRules(
        set=(
            SetHeader("Authorization", "Bearer ${API_TOKEN}", f"Bearer {SECRET}"),
            SetHeader("X-Api-Key", "${API_KEY:-dev-key}", "dev-key"),
        ),
        remove=("Cookie",),
    )
    assert route.response_headers == HeaderRules(
        set=(SetHeader("Cache-Control", "no-store", "no-store"),),
        remove=("Content-Security-Policy",),
    )


def test_check_and_repr_show_the_template_never_the_secret() -> None:
    text = ROUTE + "    request_headers:\n      set: {Authorization: 'Bearer ${API_TOKEN}'}\n"
    settings = load_text(text)
    out = describe(settings)
    assert '           request_headers: set Authorization: "Bearer ${API_TOKEN}"\n' in out, out
    assert SECRET not in out
    assert SECRET not in repr(settings)


def test_no_rules_leave_check_as_it_was() -> None:
    out = describe(load_text(ROUTE))
    assert "request_headers" not in out and "response_headers" not in out


RISK = (
    'corsproxy.yaml:5: routes[0].request_headers.set: "*" in allow_origins lets every web site '
    "you visit send requests that carry these headers; list the origins that may use them"
)
INJECTING = ROUTE + "    request_headers:\n      set: {X-Api-Key: k}\n"  # route /api, line 5
NO_CREDENTIALS = "cors:\n  allow_credentials: false\n"
ANY_ORIGIN_WARNINGS = [
    ("listed origins only", INJECTING, {}, ()),
    ('"*" for every path', INJECTING + NO_CREDENTIALS + "  allow_origins: ['*']\n", {}, (RISK,)),
    (
        '"*" from the environment',
        INJECTING + NO_CREDENTIALS,
        {"CORSPROXY_ALLOW_ORIGINS": "*"},
        (RISK,),
    ),
    (
        '"*" in a rule for paths under the route',
        INJECTING + NO_CREDENTIALS + "  rules:\n    - {paths: ['/api/public/**'], "
        "allow_origins: ['*']}\n",
        {},
        (RISK,),
    ),
    (
        '"*" in a rule for other paths only',
        INJECTING + NO_CREDENTIALS + "  rules:\n    - {paths: ['/public/**', '/apix'], "
        "allow_origins: ['*']}\n",
        {},
        (),
    ),
    (
        "no request rules to worry about",
        ROUTE + NO_CREDENTIALS + "  allow_origins: ['*']\n",
        {},
        (),
    ),
]


@pytest.mark.parametrize(("text", "env", "warnings"), **rows(ANY_ORIGIN_WARNINGS))
def test_injecting_for_any_origin_is_warned_about(
    text: str, env: dict[str, str], warnings: tuple[str, ...]
) -> None:
    assert load_text(text, env).warnings == warnings


# ---- who gets the request rules --------------------------------------------------------------

WITHHELD = [
    ("an allowed origin's request", Verdict.ALLOWED, (), None),
    ("an allowed origin's cross-site request", Verdict.ALLOWED, ("cross-site",), None),
    ("a refused origin's request", Verdict.REFUSED, (), "origin refused"),
    (
        "a refused origin's request, whatever Sec-Fetch-Site says",
        Verdict.REFUSED,
        ("same-origin",),
        "origin refused",
    ),
    ("curl: no Origin, no Sec-Fetch-Site", Verdict.NOT_CORS, (), None),
    ("the address bar: no Origin, Sec-Fetch-Site none", Verdict.NOT_CORS, ("none",), None),
    (
        "a page of the proxy's own origin: Sec-Fetch-Site same-origin",
        Verdict.NOT_CORS,
        ("same-origin",),
        None,
    ),
    (
        "another site's no-cors GET or link: no Origin, cross-site",
        Verdict.NOT_CORS,
        ("cross-site",),
        "no Origin, and Sec-Fetch-Site: cross-site says another page sent it",
    ),
    (
        "another origin of the same site: no Origin, same-site",
        Verdict.NOT_CORS,
        ("same-site",),
        "no Origin, and Sec-Fetch-Site: same-site says another page sent it",
    ),
    (
        "a value no browser sends is not trusted",
        Verdict.NOT_CORS,
        ("Same-Origin",),
        "no Origin, and Sec-Fetch-Site: Same-Origin says another page sent it",
    ),
    (
        "two Sec-Fetch-Site fields, one cross-site",
        Verdict.NOT_CORS,
        ("same-origin", "cross-site"),
        "no Origin, and Sec-Fetch-Site: cross-site says another page sent it",
    ),
]


@pytest.mark.parametrize(("verdict", "fetch_site", "why"), **rows(WITHHELD))
def test_request_rules_are_withheld_from_pages_that_cannot_be_checked(
    verdict: Verdict, fetch_site: tuple[str, ...], why: str | None
) -> None:
    assert headerrules.request_withheld(verdict, fetch_site) == why


# ---- applying the rules ----------------------------------------------------------------------

RULES = HeaderRules(
    set=(
        SetHeader("Authorization", "Bearer ${API_TOKEN}", f"Bearer {SECRET}"),
        SetHeader("Cache-Control", "no-store", "no-store"),
    ),
    remove=("Cookie",),
)
COMPILED = headerrules.compile_rules(RULES)

ADDED = [("Authorization", f"Bearer {SECRET}"), ("Cache-Control", "no-store")]
APPLIED = [
    ("nothing to replace: the set headers are added", [("Accept", "*/*")], [("Accept", "*/*")]),
    (
        "set replaces every field of that name, whatever its case",
        [("authorization", "Bearer page's"), ("Accept", "*/*"), ("CACHE-CONTROL", "max-age=9")],
        [("Accept", "*/*")],
    ),
    ("remove drops every field of that name", [("Cookie", "a=1"), ("cookie", "b=2")], []),
]


@pytest.mark.parametrize(("given", "kept"), **rows(APPLIED))
def test_set_replaces_and_remove_drops(
    given: list[tuple[str, str]], kept: list[tuple[str, str]]
) -> None:
    assert COMPILED.apply(given) == [*kept, *ADDED]


def test_no_rules_compile_to_nothing_and_change_nothing() -> None:
    given = [("Cookie", "a=1")]
    assert headerrules.compile_rules(HeaderRules()) is None
    assert headerrules.on_response(None, given) is given
    assert headerrules.on_request(None, Verdict.REFUSED, (), given) == (given, None)


def test_on_request_applies_or_says_why_not() -> None:
    given = [("Cookie", "a=1")]
    sent = [("Authorization", f"Bearer {SECRET}"), ("Cache-Control", "no-store")]
    assert headerrules.on_request(COMPILED, Verdict.ALLOWED, (), given) == (sent, None)
    assert headerrules.on_request(COMPILED, Verdict.REFUSED, (), given) == (
        given,
        "request_headers withheld: origin refused",
    )


def test_mask_shows_injected_values_as_written() -> None:
    sent = [
        ("Authorization", f"Bearer {SECRET}"),
        ("Authorization", "Bearer the page's own"),  # not ours: shown as it is
        ("Cache-Control", "no-store"),
        ("Cookie", "a=1"),
    ]
    assert COMPILED.mask(sent) == [
        ("Authorization", "Bearer ${API_TOKEN}"),
        ("Authorization", "Bearer the page's own"),
        ("Cache-Control", "no-store"),
        ("Cookie", "a=1"),
    ]

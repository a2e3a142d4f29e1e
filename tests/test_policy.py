"""Table tests for the CORS engine: each row compares the whole Access-Control-* and Vary set."""

from __future__ import annotations

import pytest
from multidict import CIMultiDict

from corsproxy.config.model import Cors, CorsRule
from corsproxy.cors import policy

O = "http://localhost:5173"
PV = {"origin", "access-control-request-method", "access-control-request-headers"}


def whole_set(headers: list[tuple[str, str]]) -> dict[str, object]:
    from tests.conftest import cors_headers

    return cors_headers(CIMultiDict(headers))


def preflight(
    cors: Cors,
    origin: str | None,
    method: str,
    asked: str | None = None,
    pna: str | None = None,
    path: str = "/x",
):
    compiled = policy.compile_policy(cors).for_path(path)
    return policy.decide(compiled, "OPTIONS", origin, method, asked, pna)


def actual(
    cors: Cors,
    origin: str | None,
    upstream: list[tuple[str, str]],
    path: str = "/x",
    method: str = "GET",
):
    compiled = policy.compile_policy(cors).for_path(path)
    decision = policy.decide(compiled, method, origin)
    return decision, policy.finish(decision, upstream)


def granted(origin=O, creds=True, **extra):
    out: dict[str, object] = {"access-control-allow-origin": origin}
    if creds:
        out["access-control-allow-credentials"] = "true"
    out.update(extra)
    return out


def test_a_lowercase_method_is_echoed_with_its_case() -> None:
    """whole_set() lower-cases list values, so the case is checked on the raw header here."""
    decision = preflight(Cors(), O, "patch")
    methods = [v for n, v in decision.headers if n.lower() == "access-control-allow-methods"]
    assert methods == ["patch"]


PREFLIGHT_ROWS = [
    (
        "default config grants a localhost preflight, echoing method and headers",
        Cors(),
        O,
        "PUT",
        "content-type,x-api-key",
        None,
        granted(
            **{
                "access-control-allow-methods": {"put"},
                "access-control-allow-headers": {"content-type", "x-api-key"},
                "access-control-max-age": "600",
                "vary": PV,
            }
        ),
    ),
    (
        "lowercase method is granted",
        Cors(),
        O,
        "patch",
        None,
        None,
        granted(
            **{
                "access-control-allow-methods": {"patch"},
                "access-control-max-age": "600",
                "vary": PV,
            }
        ),
    ),
    (
        "no requested headers means no Allow-Headers under *",
        Cors(),
        O,
        "DELETE",
        None,
        None,
        granted(
            **{
                "access-control-allow-methods": {"delete"},
                "access-control-max-age": "600",
                "vary": PV,
            }
        ),
    ),
    (
        "explicit method list is sent as configured",
        Cors(allow_methods=("GET", "POST", "PATCH")),
        O,
        "PATCH",
        None,
        None,
        granted(
            **{
                "access-control-allow-methods": {"get", "post", "patch"},
                "access-control-max-age": "600",
                "vary": PV,
            }
        ),
    ),
    (
        "method outside the list still gets the list, so the console names it",
        Cors(allow_methods=("GET",)),
        O,
        "DELETE",
        None,
        None,
        granted(
            **{"access-control-allow-methods": {"get"}, "access-control-max-age": "600", "vary": PV}
        ),
    ),
    (
        "explicit header list is sent as configured",
        Cors(allow_headers=("Content-Type", "Authorization")),
        O,
        "POST",
        "authorization",
        None,
        granted(
            **{
                "access-control-allow-methods": {"post"},
                "access-control-allow-headers": {"content-type", "authorization"},
                "access-control-max-age": "600",
                "vary": PV,
            }
        ),
    ),
    (
        "header outside the list still gets the list",
        Cors(allow_headers=("Content-Type",)),
        O,
        "POST",
        "x-secret",
        None,
        granted(
            **{
                "access-control-allow-methods": {"post"},
                "access-control-allow-headers": {"content-type"},
                "access-control-max-age": "600",
                "vary": PV,
            }
        ),
    ),
    (
        "credentials off: no Allow-Credentials, origin still echoed",
        Cors(allow_credentials=False),
        O,
        "PUT",
        None,
        None,
        granted(
            creds=False,
            **{
                "access-control-allow-methods": {"put"},
                "access-control-max-age": "600",
                "vary": PV,
            },
        ),
    ),
    (
        "any origin without credentials answers *",
        Cors(allow_origins=("*",), allow_credentials=False),
        "https://anything.example",
        "PUT",
        None,
        None,
        granted(
            "*",
            creds=False,
            **{
                "access-control-allow-methods": {"put"},
                "access-control-max-age": "600",
                "vary": PV,
            },
        ),
    ),
    (
        "any origin with credentials (dangerous flag) echoes, never *",
        Cors(allow_origins=("*",), dangerously_allow_any_origin_with_credentials=True),
        "https://anything.example",
        "PUT",
        None,
        None,
        granted(
            "https://anything.example",
            **{
                "access-control-allow-methods": {"put"},
                "access-control-max-age": "600",
                "vary": PV,
            },
        ),
    ),
    (
        "max_age is sent as configured",
        Cors(max_age=7200),
        O,
        "PUT",
        None,
        None,
        granted(
            **{
                "access-control-allow-methods": {"put"},
                "access-control-max-age": "7200",
                "vary": PV,
            }
        ),
    ),
    (
        "max_age zero is sent as 0",
        Cors(max_age=0),
        O,
        "PUT",
        None,
        None,
        granted(
            **{"access-control-allow-methods": {"put"}, "access-control-max-age": "0", "vary": PV}
        ),
    ),
    (
        "private network asked and enabled is granted",
        Cors(allow_private_network=True),
        O,
        "GET",
        None,
        "true",
        granted(
            **{
                "access-control-allow-methods": {"get"},
                "access-control-max-age": "600",
                "access-control-allow-private-network": "true",
                "vary": PV,
            }
        ),
    ),
    (
        "private network asked but disabled is not granted",
        Cors(),
        O,
        "GET",
        None,
        "true",
        granted(
            **{"access-control-allow-methods": {"get"}, "access-control-max-age": "600", "vary": PV}
        ),
    ),
    (
        "private network enabled but not asked is not sent",
        Cors(allow_private_network=True),
        O,
        "GET",
        None,
        None,
        granted(
            **{"access-control-allow-methods": {"get"}, "access-control-max-age": "600", "vary": PV}
        ),
    ),
    (
        "exact origin entry is granted",
        Cors(allow_origins=("https://app.example.com",)),
        "https://app.example.com",
        "PUT",
        None,
        None,
        granted(
            "https://app.example.com",
            **{
                "access-control-allow-methods": {"put"},
                "access-control-max-age": "600",
                "vary": PV,
            },
        ),
    ),
    (
        "subdomain wildcard grants a subdomain",
        Cors(allow_origins=("https://*.example.com",)),
        "https://a.b.example.com",
        "PUT",
        None,
        None,
        granted(
            "https://a.b.example.com",
            **{
                "access-control-allow-methods": {"put"},
                "access-control-max-age": "600",
                "vary": PV,
            },
        ),
    ),
    (
        "null origin granted when named",
        Cors(allow_origins=("null",)),
        "null",
        "PUT",
        None,
        None,
        granted(
            "null",
            **{
                "access-control-allow-methods": {"put"},
                "access-control-max-age": "600",
                "vary": PV,
            },
        ),
    ),
    (
        "requested headers are echoed verbatim, spaces trimmed",
        Cors(),
        O,
        "POST",
        "X-A, x-b",
        None,
        granted(
            **{
                "access-control-allow-methods": {"post"},
                "access-control-allow-headers": {"x-a", "x-b"},
                "access-control-max-age": "600",
                "vary": PV,
            }
        ),
    ),
]
REFUSED_PREFLIGHTS = [
    ("lookalike host is refused", "http://localhost.evil.example"),
    ("hyphenated lookalike is refused", "http://evil-localhost:5173"),
    ("userinfo trick is refused", "http://localhost@evil.example"),
    ("port-shaped subdomain is refused", "http://localhost:5173.evil.example"),
    ("trailing slash is refused", "http://localhost:5173/"),
    ("null is refused unless named", "null"),
    ("two origins in one header are refused", "http://localhost:5173, http://localhost:3000"),
    ("127.0.0.2 is not localhost", "http://127.0.0.2:5173"),
]


@pytest.mark.parametrize(
    "cors,origin,method,asked,pna,expected",
    [row[1:] for row in PREFLIGHT_ROWS],
    ids=[row[0] for row in PREFLIGHT_ROWS],
)
def test_preflight(cors, origin, method, asked, pna, expected):
    decision = preflight(cors, origin, method, asked, pna)
    assert decision.verdict is policy.Verdict.PREFLIGHT
    assert whole_set(list(decision.headers)) == expected


@pytest.mark.parametrize(
    "origin", [r[1] for r in REFUSED_PREFLIGHTS], ids=[r[0] for r in REFUSED_PREFLIGHTS]
)
def test_refused_preflight_grants_nothing(origin):
    decision = preflight(Cors(), origin, "PUT", "x-a")
    assert decision.verdict is policy.Verdict.PREFLIGHT_REFUSED
    assert decision.headers == ()
    assert "not in cors.allow_origins (localhost)" in decision.reason


ACAO, ACAC, ACEH = (
    "Access-Control-Allow-Origin",
    "Access-Control-Allow-Credentials",
    "Access-Control-Expose-Headers",
)
JSON = ("Content-Type", "application/json")
ACTUAL_ROWS = [
    (
        "backend without CORS gets origin, credentials and Vary",
        Cors(),
        O,
        [JSON],
        granted(vary={"origin"}),
    ),
    (
        "custom headers are exposed by name",
        Cors(),
        O,
        [JSON, ("X-Total-Count", "3"), ("ETag", '"a"')],
        granted(vary={"origin"}, **{"access-control-expose-headers": {"x-total-count", "etag"}}),
    ),
    (
        "safelisted headers are not listed",
        Cors(),
        O,
        [
            JSON,
            ("Content-Length", "2"),
            ("Cache-Control", "no-store"),
            ("Content-Language", "en"),
            ("Expires", "0"),
            ("Last-Modified", "x"),
            ("Pragma", "no-cache"),
        ],
        granted(vary={"origin"}),
    ),
    (
        "Set-Cookie is never exposed",
        Cors(),
        O,
        [JSON, ("Set-Cookie", "a=1"), ("X-Id", "1")],
        granted(vary={"origin"}, **{"access-control-expose-headers": {"x-id"}}),
    ),
    (
        "a header sent twice is exposed once",
        Cors(),
        O,
        [("X-Id", "1"), ("x-id", "2")],
        granted(vary={"origin"}, **{"access-control-expose-headers": {"x-id"}}),
    ),
    (
        "explicit expose list is sent as configured",
        Cors(expose_headers=("X-Total-Count",)),
        O,
        [JSON, ("X-Other", "1")],
        granted(vary={"origin"}, **{"access-control-expose-headers": {"x-total-count"}}),
    ),
    (
        "empty expose list sends nothing",
        Cors(expose_headers=()),
        O,
        [JSON, ("X-Other", "1")],
        granted(vary={"origin"}),
    ),
    (
        "upstream * with credentials is replaced by the origin",
        Cors(),
        O,
        [(ACAO, "*")],
        granted(vary={"origin"}),
    ),
    (
        "upstream two origin values become one",
        Cors(),
        O,
        [(ACAO, "http://a.example"), (ACAO, O)],
        granted(vary={"origin"}),
    ),
    (
        "upstream other origin is replaced",
        Cors(),
        O,
        [(ACAO, "http://other.example")],
        granted(vary={"origin"}),
    ),
    (
        "upstream Allow-Credentials false is replaced",
        Cors(),
        O,
        [(ACAO, O), (ACAC, "false")],
        granted(vary={"origin"}),
    ),
    (
        "upstream Allow-Credentials is dropped when credentials are off",
        Cors(allow_credentials=False),
        O,
        [(ACAO, O), (ACAC, "true")],
        granted(creds=False, vary={"origin"}),
    ),
    (
        "upstream expose list is replaced by the response's own names",
        Cors(),
        O,
        [(ACEH, "X-Gone"), ("X-Here", "1")],
        granted(vary={"origin"}, **{"access-control-expose-headers": {"x-here"}}),
    ),
    (
        "upstream Vary is merged with Origin",
        Cors(),
        O,
        [("Vary", "Accept-Encoding")],
        granted(vary={"accept-encoding", "origin"}, **{"access-control-expose-headers": {"vary"}}),
    ),
    (
        "upstream Vary Origin is not duplicated",
        Cors(),
        O,
        [("Vary", "origin, Accept")],
        granted(vary={"origin", "accept"}, **{"access-control-expose-headers": {"vary"}}),
    ),
    (
        "upstream Vary * is kept as *",
        Cors(),
        O,
        [("Vary", "*")],
        granted(vary={"*"}, **{"access-control-expose-headers": {"vary"}}),
    ),
    (
        "any origin without credentials gets *",
        Cors(allow_origins=("*",), allow_credentials=False),
        "https://x.example",
        [],
        granted("*", creds=False, vary={"origin"}),
    ),
    ("refused origin gets only Vary", Cors(), "http://evil.test", [JSON], {"vary": {"origin"}}),
    (
        "refused origin loses the upstream's own grant",
        Cors(),
        "http://evil.test",
        [(ACAO, "*"), (ACAC, "true")],
        {"vary": {"origin"}},
    ),
    (
        "no Origin leaves upstream CORS alone and merges Vary",
        Cors(),
        None,
        [(ACAO, "*")],
        {"access-control-allow-origin": "*", "vary": {"origin"}},
    ),
    ("no Origin, no CORS: only Vary", Cors(), None, [JSON], {"vary": {"origin"}}),
    (
        "regex entry matches the whole origin",
        Cors(allow_origins=(r"regex:^https://[a-z]+\.dev$",)),
        "https://app.dev",
        [],
        granted("https://app.dev", vary={"origin"}),
    ),
    (
        "regex entry does not match a longer origin",
        Cors(allow_origins=(r"regex:https://[a-z]+\.dev",)),
        "https://app.dev.evil.example",
        [],
        {"vary": {"origin"}},
    ),
    (
        "wildcard does not match the bare domain",
        Cors(allow_origins=("https://*.example.com",)),
        "https://example.com",
        [],
        {"vary": {"origin"}},
    ),
    (
        "wildcard does not match another scheme",
        Cors(allow_origins=("https://*.example.com",)),
        "http://a.example.com",
        [],
        {"vary": {"origin"}},
    ),
]


@pytest.mark.parametrize(
    "cors,origin,upstream,expected", [r[1:] for r in ACTUAL_ROWS], ids=[r[0] for r in ACTUAL_ROWS]
)
def test_actual_response(cors, origin, upstream, expected):
    _, finished = actual(cors, origin, upstream)
    assert whole_set(finished.headers) == expected


RULES = Cors(
    rules=(
        CorsRule(paths=("/public/**",), allow_origins=("*",), allow_credentials=False),
        CorsRule(paths=("/admin/*",), allow_methods=("GET",)),
    )
)
RULE_ROWS = [
    (
        "a public path is open to any origin without credentials",
        "/public/a/b",
        "https://site.example",
        granted("*", creds=False, vary={"origin"}),
    ),
    (
        "a non-matching path keeps the defaults",
        "/private",
        "https://site.example",
        {"vary": {"origin"}},
    ),
    ("a rule inherits the fields it does not set", "/admin/users", O, granted(vary={"origin"})),
    ("a single-star rule does not cross segments", "/admin/users/1", O, granted(vary={"origin"})),
]


@pytest.mark.parametrize(
    "path,origin,expected", [r[1:] for r in RULE_ROWS], ids=[r[0] for r in RULE_ROWS]
)
def test_rules_override_field_by_field(path, origin, expected):
    _, finished = actual(RULES, origin, [], path=path)
    assert whole_set(finished.headers) == expected


def test_rule_methods_apply_only_on_its_paths():
    compiled = policy.compile_policy(RULES)
    on_rule = policy.decide(compiled.for_path("/admin/x"), "OPTIONS", O, "DELETE")
    off_rule = policy.decide(compiled.for_path("/admin/x/y"), "OPTIONS", O, "DELETE")
    assert dict(on_rule.headers)["Access-Control-Allow-Methods"] == "GET"
    assert dict(off_rule.headers)["Access-Control-Allow-Methods"] == "DELETE"


CORRECTION_ROWS = [
    (
        "star with credentials is named",
        [(ACAO, "*")],
        ("fixed: Access-Control-Allow-Origin '*' -> 'http://localhost:5173' (credentials)",),
    ),
    ("matching upstream value is no correction", [(ACAO, O), (ACAC, "true")], ()),
    (
        "an upstream header the rule does not send is removed",
        [(ACAO, O), ("Access-Control-Allow-Methods", "GET")],
        ("removed: Access-Control-Allow-Methods 'GET'",),
    ),
]


@pytest.mark.parametrize(
    "upstream,expected", [r[1:] for r in CORRECTION_ROWS], ids=[r[0] for r in CORRECTION_ROWS]
)
def test_corrections_are_described(upstream, expected):
    _, finished = actual(Cors(), O, upstream)
    assert finished.corrections == expected


def test_refused_origin_reason_says_how_to_allow_it():
    decision, _ = actual(Cors(), "http://evil.test", [])
    assert decision.reason == (
        "origin 'http://evil.test' is not in cors.allow_origins (localhost); add it there "
        "(or pass --allow-origin http://evil.test) to allow it"
    )


def test_a_rule_that_refuses_names_itself():
    compiled = policy.compile_policy(RULES).for_path("/admin/x")
    strict = policy.compile_policy(
        Cors(rules=(CorsRule(paths=("/admin/**",), allow_origins=("https://admin.example.com",)),))
    )
    decision = policy.decide(strict.for_path("/admin/x"), "GET", O)
    assert decision.reason.startswith(
        "origin 'http://localhost:5173' is not in cors.rules[0].allow_origins "
        "(https://admin.example.com); add it there"
    )
    assert compiled.where == "cors.rules[1]"

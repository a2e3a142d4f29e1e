"""config/diff.py: what a reload changed, in words (pure; Settings in, words out)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from corsproxy.config.diff import changes, rejected_lines, reloaded_lines
from corsproxy.config.model import (
    Cookies,
    Cors,
    CorsRule,
    HeaderRules,
    Inspector,
    Listen,
    Problem,
    Route,
    SetHeader,
    Settings,
)

API = Route("/", "http://localhost:8000")
BASE = Settings(routes=(API,), inspector=Inspector(token="t0"))
AUTH = Route("/auth", "http://localhost:9000")


def with_cors(**fields: object) -> Settings:
    return replace(BASE, cors=replace(BASE.cors, **fields))


def token_header(value: str) -> HeaderRules:
    return HeaderRules(set=(SetHeader("Authorization", "Bearer ${T}", value),))


ROWS = [
    ("a route added is named", replace(BASE, routes=(API, AUTH)), "route /auth added"),
    ("a route removed is named", replace(BASE, routes=()), "route / removed"),
    (
        "an origin added shows the list before and after",
        with_cors(allow_origins=("localhost", "https://app.example.com")),
        "cors.allow_origins: [localhost] -> [localhost, https://app.example.com]",
    ),
    (
        "a cookie setting of a route is named with its prefix",
        replace(BASE, routes=(replace(API, cookies=Cookies(samesite="none")),)),
        "route /: cookies.samesite: auto -> none",
    ),
    ("log_level is applied", replace(BASE, log_level="debug"), "log_level: info -> debug"),
    ("reload: false is applied", replace(BASE, reload=False), "reload: true -> false"),
    (
        "a listen key that needs a restart says so",
        replace(BASE, listen=Listen(port=9999)),
        "listen.port changed: restart to apply",
    ),
    (
        "allowed_hosts is applied, unlike the other listen keys",
        replace(BASE, listen=Listen(allowed_hosts=("myapp.test",))),
        "listen.allowed_hosts: (none) -> [myapp.test]",
    ),
    (
        "an inspector key needs a restart (the inspector outlives the reload)",
        replace(BASE, inspector=Inspector(token="t0", keep=10)),
        "inspector.keep changed: restart to apply",
    ),
    ("a token the file does not fix is no change", replace(BASE, inspector=Inspector()), ""),
    (
        "a new fixed token is named, never shown",
        replace(BASE, inspector=Inspector(token="secret-2")),
        "inspector.token changed: restart to apply",
    ),
    (
        "a cors rule added is named by its place and paths",
        with_cors(rules=(CorsRule(paths=("/public/*",), allow_origins=("*",)),)),
        'cors.rules[0] added (paths ["/public/*"])',
    ),
    (
        "header rules are shown as written, never expanded",
        replace(BASE, routes=(replace(API, request_headers=token_header("Bearer s3cret")),)),
        'route /: request_headers: (none) -> set Authorization: "Bearer ${T}"',
    ),
]


@pytest.mark.parametrize(("new", "words"), [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_changes_in_words(new: Settings, words: str) -> None:
    assert changes(BASE, new).words() == words
    assert "s3cret" not in changes(BASE, new).words()


def test_an_environment_value_that_changed_is_said_without_the_values() -> None:
    old = replace(BASE, routes=(replace(API, request_headers=token_header("Bearer one")),))
    new = replace(BASE, routes=(replace(API, request_headers=token_header("Bearer two")),))
    words = changes(old, new).words()
    assert words == "route /: request_headers: values from the environment changed (not shown)"


NARROWER = [
    ("an origin removed is narrower", Cors(allow_origins=()), 600),
    ("a method list instead of * is narrower", Cors(allow_methods=("GET",)), 600),
    ("credentials turned off are narrower", Cors(allow_credentials=False), 600),
    ("an origin added is not narrower", Cors(allow_origins=("localhost", "a.test")), None),
    ("* in place of a list is not narrower", Cors(allow_origins=("*",)), None),
    (
        "a rule that grants less for its paths is narrower, by the old max_age",
        Cors(rules=(CorsRule(paths=("/x/*",), allow_origins=()),)),
        600,
    ),
]


@pytest.mark.parametrize(
    ("cors", "seconds"), [r[1:] for r in NARROWER], ids=[r[0] for r in NARROWER]
)
def test_narrower_rules_are_found(cors: Cors, seconds: int | None) -> None:
    assert changes(BASE, replace(BASE, cors=cors)).cached_seconds == seconds


def test_the_lines_for_a_narrower_reload_carry_the_preflight_cache_note() -> None:
    found = changes(BASE, with_cors(allow_origins=("http://app.test",), max_age=30))
    assert reloaded_lines("corsproxy.yaml", found) == [
        "corsproxy: reloaded corsproxy.yaml: cors.allow_origins: [localhost] -> "
        "[http://app.test]; cors.max_age: 600 -> 30",
        "corsproxy: the CORS rules are narrower now: browsers may keep using cached preflight "
        "answers for up to 600 seconds (max_age)",
    ]


def test_a_file_that_changes_no_setting_says_so_and_which_flags_win() -> None:
    lines = reloaded_lines("c.yaml", changes(BASE, BASE), merged=("--port over its listen.port",))
    assert lines == ["corsproxy: reloaded c.yaml: no setting changed (--port over its listen.port)"]


def test_a_refused_reload_counts_its_problems_then_lists_them() -> None:
    problems = [
        Problem("c.yaml", 3, "cors.max_age", "expected a number"),
        Problem("c.yaml", 5, "x", "y"),
    ]
    assert rejected_lines("c.yaml", problems) == [
        "corsproxy: c.yaml not reloaded (2 problems); still serving the previous config",
        "c.yaml:3: cors.max_age: expected a number",
        "c.yaml:5: x: y",
    ]

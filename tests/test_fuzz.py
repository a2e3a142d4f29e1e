"""Property tests (issue 9, point 4): the pure modules never raise on hostile input and never
grant what the rules do not. Strategies live in tests/fuzz_strategies.py.

Profiles: `ci` (the default: deterministic, sized for the suite) and `thorough` (20 times the
examples, a fresh random seed each run):  HYPOTHESIS_PROFILE=thorough pytest tests/test_fuzz.py
"""

from __future__ import annotations

import os
import re
import string
from pathlib import Path

import pytest
import trustme
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from corsproxy.config.describe import describe
from corsproxy.config.load import ConfigError, Overrides, load
from corsproxy.config.model import Cookies, Cors, Settings
from corsproxy.cors import cookies, judge
from corsproxy.cors.fetch import needs_preflight, url_origin
from corsproxy.cors.origins import OriginMatcher, compile_allow_entry, parse_origin
from corsproxy.cors.policy import Verdict, compile_policy, decide, finish, merge_vary
from corsproxy.proxy.headers import for_client, for_upstream
from corsproxy.proxy.rewrite import (
    BrowserSide,
    RouteMap,
    response_headers,
    rewrite_cookie,
    rewrite_location,
)
from tests import fuzz_strategies as fs

Headers = list[tuple[str, str]]

settings.register_profile(
    "ci",
    deadline=None,
    derandomize=True,  # the same examples on every run: CI stays green or red for a reason
    database=None,  # nothing written into the work tree
    print_blob=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("thorough", settings.get_profile("ci"), derandomize=False)
PROFILE = os.environ.get("HYPOTHESIS_PROFILE", "ci")
settings.load_profile(PROFILE)
SCALE = 20 if PROFILE == "thorough" else 1


def examples(n: int) -> settings:
    """n examples in the ci profile, 20 n in the thorough one."""
    return settings(max_examples=n * SCALE)


# --- reference oracles, written from SPEC.md alone (not from corsproxy/origins.py) ---------

_DNS_CHARS = frozenset(string.ascii_lowercase + string.digits + "-")
_DIGITS = frozenset(string.digits)
_LABEL = r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?"
_SERIALIZED = re.compile(r"[a-z][a-z0-9+.-]*://[^\s,;/@?#\\]+", re.ASCII)


def is_dns_label(label: str) -> bool:
    return 1 <= len(label) <= 63 and set(label) <= _DNS_CHARS and "-" not in (label[0], label[-1])


def is_port(text: str) -> bool:
    """1-65535 written as a browser writes it: decimal digits, no sign, no leading zero."""
    return bool(text) and set(text) <= _DIGITS and text[0] != "0" and int(text) <= 65535


def localhost_grants(origin: str) -> bool:
    """SPEC.md's `localhost`: http(s); localhost, *.localhost, 127.0.0.1 or [::1]; any port."""
    scheme, sep, rest = origin.partition("://")
    if not sep or scheme not in ("http", "https"):
        return False
    if rest.startswith("[::1]"):
        host, tail = "[::1]", rest[len("[::1]") :]
    else:
        host, colon, port = rest.partition(":")
        tail = colon + port
    if tail and not (tail.startswith(":") and is_port(tail[1:])):
        return False
    if host in ("localhost", "127.0.0.1", "[::1]"):
        return True
    below = host.removesuffix(".localhost")
    return below != host and all(is_dns_label(label) for label in below.split("."))


def wildcard_grants(entry: str, origin: str) -> bool:
    """`scheme://*.domain[:port]`: one or more DNS labels in front of the domain, same port."""
    scheme, _, rest = entry.lower().partition("://")
    domain, colon, port = rest[len("*.") :].partition(":")
    pattern = rf"{re.escape(scheme)}://(?:{_LABEL}\.)+{re.escape(domain)}{re.escape(colon + port)}"
    return re.fullmatch(pattern, origin) is not None


def entry_grants(entry: str, origin: str) -> bool:
    """Whether one allow_origins entry may grant this Origin header value at all."""
    if entry == "null" or origin == "null":
        return entry == origin == "null"
    if entry == "*":
        return _SERIALIZED.fullmatch(origin) is not None
    if entry == "localhost":
        return localhost_grants(origin)
    if entry.startswith("regex:"):
        found = re.fullmatch(entry[len("regex:") :], origin)
        return found is not None and _SERIALIZED.fullmatch(origin) is not None
    if "://*." in entry:
        return wildcard_grants(entry, origin)
    return origin == entry.lower()


def is_precise(entry: str) -> bool:
    """Entries whose oracle above is exact both ways (`*` and regex are over-approximated)."""
    return entry != "*" and not entry.startswith("regex:")


# --- origins ------------------------------------------------------------------------------

origin_candidates = st.one_of(
    fs.localhost_origins,
    fs.localhost_near_misses,
    fs.generic_origins,
    fs.generic_origins.flatmap(fs.mutated),
    st.sampled_from(["null", "NULL", "", "http://", "://", "http://localhost\n"]),
    st.text(),
)


@examples(600)
@given(text=origin_candidates)
def test_parse_origin_never_raises_and_what_it_accepts_serializes_back(text: str) -> None:
    parsed = parse_origin(text)
    if parsed is not None:
        port = "" if parsed.port is None else f":{parsed.port}"
        assert f"{parsed.scheme}://{parsed.host}{port}" == text


@examples(500)
@given(entry=fs.allow_entries | origin_candidates | st.text().map(lambda t: "regex:" + t))
def test_compile_allow_entry_returns_or_raises_value_error_only(entry: str) -> None:
    try:
        compile_allow_entry(entry)
    except ValueError as error:
        assert str(error).strip()


@examples(800)
@given(origin=origin_candidates)
def test_localhost_grants_exactly_the_forms_spec_lists(origin: str) -> None:
    found = OriginMatcher(("localhost",)).match(origin)
    assert (found is not None) == localhost_grants(origin), origin


@examples(200)
@given(origin=fs.localhost_origins)
def test_every_form_spec_lists_for_localhost_is_granted(origin: str) -> None:
    assert localhost_grants(origin)  # the oracle agrees with the generator...
    assert OriginMatcher(("localhost",)).match(origin) is not None  # ...and so does the code


@examples(500)
@given(pairs=st.lists(fs.entries_with_seeds(), max_size=4), data=st.data())
def test_matcher_grants_only_what_a_configured_entry_grants(
    pairs: list[tuple[str, str]], data: st.DataObject
) -> None:
    entries = tuple(entry for entry, _ in pairs)
    for entry in entries:
        compile_allow_entry(entry)  # every generated entry is a valid one
    seeds = [seed for _, seed in pairs]
    origin = data.draw(fs.request_origins(seeds).filter(lambda o: o is not None), label="origin")
    found = OriginMatcher(entries).match(origin)
    if found is not None:
        assert found.entry in entries
        assert entry_grants(found.entry, origin), (found.entry, origin)
    if origin == "null":
        assert (found is not None) == ("null" in entries)  # `*` never grants null
    if any(entry_grants(e, origin) for e in entries if is_precise(e)):
        assert found is not None, origin


# --- config loading -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def config_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder with a real certificate pair, a foreign key and a non-PEM file beside the config."""
    folder = tmp_path_factory.mktemp("fuzz-config")
    ca = trustme.CA()
    issued = ca.issue_cert("localhost")
    issued.cert_chain_pems[0].write_to_path(str(folder / "cert.pem"))
    issued.private_key_pem.write_to_path(str(folder / "key.pem"))
    ca.issue_cert("other.test").private_key_pem.write_to_path(str(folder / "other-key.pem"))
    (folder / "garbage.pem").write_text("-----BEGIN CERTIFICATE-----\nnot base64\n")
    return folder


def assert_loads_or_explains(path: Path) -> None:
    """Settings (that describe and compile), or a ConfigError of one-line problems."""
    try:
        loaded = load(Overrides(config=str(path)), env={})
    except ConfigError as error:
        assert error.problems
        for problem in error.problems:
            line = str(problem)
            assert line.strip() and "\n" not in line and "\r" not in line, repr(line)
        return
    assert isinstance(loaded, Settings)
    assert describe(loaded)
    compile_policy(loaded.cors)


@examples(300)
@given(document=fs.config_documents, unicode=st.booleans())
@example(document={"upstream": "http://[::1"}, unicode=False)
@example(document={"upstream": "http://a\u2100b"}, unicode=False)
@example(document={"routes": [{"timeout": 10**309}]}, unicode=False)
@example(document={"listen": {"tls": {"cert": "\x00"}}}, unicode=False)
@example(document={"\n": None}, unicode=False)
def test_any_yaml_document_yields_settings_or_config_errors(
    config_dir: Path, document: object, unicode: bool
) -> None:
    import yaml

    path = config_dir / "corsproxy.yaml"
    path.write_text(yaml.safe_dump(document, sort_keys=False, allow_unicode=unicode), "utf-8")
    assert_loads_or_explains(path)


@examples(400)
@given(content=fs.config_texts | st.binary())
@example(content="\x1f")
@example(content="a: !!int x")
@example(content="a: 0x_")
@example(content="a: 2001-02-30")
@example(content="a: !!timestamp x")
@example(content="[" * 3000)
def test_any_text_or_bytes_as_a_config_file_yield_settings_or_config_errors(
    config_dir: Path, content: str | bytes
) -> None:
    path = config_dir / "corsproxy.yaml"
    path.write_bytes(content if isinstance(content, bytes) else content.encode("utf-8"))
    assert_loads_or_explains(path)


# --- response rewriting -------------------------------------------------------------------

GRANT_NAMES = frozenset(name.lower() for name in fs.CORS_RESPONSE_NAMES[:7])
# Fetch standard, "CORS-safelisted response-header name".
SAFELISTED_RESPONSE = frozenset(
    "cache-control content-language content-length content-type expires last-modified pragma".split()
)
HOP_BY_HOP = frozenset(  # RFC 9110 §7.6.1, plus the ones Go's httputil lists
    "connection proxy-connection keep-alive te trailer transfer-encoding upgrade"
    " proxy-authenticate proxy-authorization".split()
)


def values(headers: list[tuple[str, str]], lower_name: str) -> list[str]:
    return [value for name, value in headers if name.lower() == lower_name]


def is_cors_field(name: str) -> bool:
    return name.lower().startswith("access-control-") or name.lower() == "vary"


def end_to_end(upstream: list[tuple[str, str]]) -> list[tuple[str, str]]:
    named = {t.strip().lower() for v in values(upstream, "connection") for t in v.split(",")}
    return [(n, v) for n, v in upstream if n.lower() not in HOP_BY_HOP and n.lower() not in named]


def assert_vary_merged(headers: list[tuple[str, str]]) -> None:
    """One Vary field, no token twice (case-insensitive), Origin among them unless `*`."""
    vary = values(headers, "vary")
    assert len(vary) == 1, vary
    tokens = [token.strip() for token in vary[0].split(",") if token.strip()]
    lowered = [token.lower() for token in tokens]
    assert len(lowered) == len(set(lowered)), tokens
    assert tokens == ["*"] or "origin" in lowered, tokens


def assert_one_grant(headers: list[tuple[str, str]], origin: str, credentials: bool) -> None:
    """One Allow-Origin field, the request's origin (or `*` without credentials), no list."""
    allow = values(headers, "access-control-allow-origin")
    assert allow in ([origin], ["*"]), allow
    assert "," not in allow[0]
    allowed_credentials = values(headers, "access-control-allow-credentials")
    assert allowed_credentials == (["true"] if credentials else []), allowed_credentials
    assert not (allow == ["*"] and allowed_credentials), "`*` together with credentials"


def assert_exposed_once(headers: Headers, listed_by_proxy: bool) -> None:
    """Each owned field at most once; under expose_headers "*", Expose-Headers names each
    header once and none that JavaScript reads anyway (safelisted) or never can (Set-Cookie)."""
    for name in GRANT_NAMES:
        assert len(values(headers, name)) <= 1, (name, headers)
    exposed = values(headers, "access-control-expose-headers")
    assert len(exposed) <= 1, exposed
    tokens = [t.strip().lower() for t in "".join(exposed).split(",") if t.strip()]
    if listed_by_proxy:  # an explicit list is sent as configured
        assert len(tokens) == len(set(tokens)), tokens
        assert not set(tokens) & (SAFELISTED_RESPONSE | {"set-cookie", "set-cookie2"}), tokens


@examples(200)
@given(section=fs.cors_sections(), data=st.data())
def test_finished_response_keeps_every_cors_invariant_and_every_other_header(
    section: tuple[Cors, list[str]], data: st.DataObject
) -> None:
    cors, seeds = section
    rule = compile_policy(cors).for_path(data.draw(fs.request_paths, label="path"))
    origin = data.draw(fs.request_origins(seeds), label="origin")
    decision = decide(rule, data.draw(fs.request_methods, label="method"), origin)
    upstream = data.draw(fs.upstream_headers, label="upstream")
    status = data.draw(fs.statuses, label="status")
    redirects = data.draw(st.sampled_from(["rewrite", "keep"]), label="redirects")
    client = for_client(upstream)
    assert client == end_to_end(upstream)
    finished = finish(decision, client).headers
    out, _ = response_headers(
        finished,
        status,
        data.draw(fs.cookie_rules, label="cookies"),
        redirects,
        data.draw(fs.browser_sides, label="browser"),
        data.draw(fs.route_maps, label="route"),
        tuple(data.draw(st.lists(fs.route_maps, max_size=2), label="routes")),
        page=decision.origin if decision.verdict is Verdict.ALLOWED else None,
    )
    assert_vary_merged(out)
    if origin is None:  # not a CORS request: the upstream's own CORS fields pass untouched
        theirs = [(n, v) for n, v in client if is_cors_field(n) and n.lower() != "vary"]
        assert [(n, v) for n, v in out if is_cors_field(n) and n.lower() != "vary"] == theirs
    elif decision.verdict is Verdict.REFUSED:
        assert not [n for n, _ in out if n.lower() in GRANT_NAMES], out
    else:
        assert decision.verdict is Verdict.ALLOWED
        assert_one_grant(out, origin, rule.credentials)
        assert_exposed_once(out, decision.expose_all)
    kept = [(n, v) for n, v in client if not is_cors_field(n)]
    sent = [(n, v) for n, v in out if not is_cors_field(n)]
    assert [n for n, _ in sent] == [n for n, _ in kept]
    rewritable = {"set-cookie"}
    if redirects == "rewrite" and (status == 201 or 300 <= status < 400):
        rewritable |= {"location", "content-location"}
    for (name, before), (_, after) in zip(kept, sent, strict=True):
        assert after == before or name.lower() in rewritable, (name, before, after)


@examples(150)
@given(section=fs.cors_sections(), data=st.data())
def test_preflight_answer_grants_once_or_nothing(
    section: tuple[Cors, list[str]], data: st.DataObject
) -> None:
    cors, seeds = section
    rule = compile_policy(cors).for_path(data.draw(fs.request_paths, label="path"))
    origin = data.draw(fs.request_origins(seeds).filter(lambda o: o is not None), label="origin")
    decision = decide(
        rule,
        "OPTIONS",
        origin,
        data.draw(fs.request_methods | st.text(max_size=8), label="request method"),
        data.draw(st.none() | fs.TOKEN_LISTS | fs.header_text, label="request headers"),
        data.draw(st.sampled_from([None, "true", "True", ""]), label="private network"),
    )
    headers = list(decision.headers)
    if decision.verdict is Verdict.PREFLIGHT_REFUSED:
        assert headers == []
        return
    assert decision.verdict is Verdict.PREFLIGHT
    assert_one_grant(headers, origin, rule.credentials)
    assert_vary_merged(headers)
    names = [name.lower() for name, _ in headers]
    assert len(names) == len(set(names)), names


@examples(200)
@given(headers=fs.upstream_headers, token=fs.VARY_TOKENS | fs.TOKEN)
def test_merge_vary_leaves_one_vary_with_each_token_once(headers: Headers, token: str) -> None:
    merged = merge_vary(headers, token)
    vary = values(merged, "vary")
    assert len(vary) == 1
    tokens = [t.strip().lower() for t in vary[0].split(",") if t.strip()]
    assert len(tokens) == len(set(tokens)), tokens
    assert tokens == ["*"] or not token.strip() or token.strip().lower() in tokens
    assert [h for h in merged if h[0].lower() != "vary"] == [
        h for h in headers if h[0].lower() != "vary"
    ]


@examples(300)
@given(
    cookie=fs.cookies_values | st.text(),
    location=fs.LOCATIONS | st.text(),
    rules=fs.cookie_rules,
    browser=fs.browser_sides,
    route=fs.route_maps,
    routes=st.lists(fs.route_maps, max_size=2),
    page=st.none() | st.sampled_from(["http://127.0.0.1:5173", "null"]) | st.text(),
)
def test_cookie_and_location_rewrites_never_raise_nor_add_a_line_break(
    cookie: str,
    location: str,
    rules: Cookies,
    browser: BrowserSide,
    route: RouteMap,
    routes: list[RouteMap],
    page: str | None,
) -> None:
    value, _ = rewrite_cookie(cookie, rules, browser, route, page)
    cookies.verdict(value, cookies.Where(page, browser.scheme, browser.host))  # nor this
    assert ("\n" in value) <= ("\n" in cookie) and ("\r" in value) <= ("\r" in cookie)
    moved = rewrite_location(location, browser, route, tuple(routes))
    assert moved is None or ("\n" in moved) <= ("\n" in location + browser.host)


REQUEST_NAMES = [
    "Host", "Origin", "Referer", "Connection", "Keep-Alive", "TE", "Upgrade", "Expect",
    "X-Forwarded-For", "X-Forwarded-Host", "X-Forwarded-Proto", "Sec-Fetch-Site",
    "Sec-Fetch-Mode", "Sec-Fetch-Dest", "Cookie", "Authorization", "Proxy-Authorization",
]  # fmt: skip
SET_BY_PROXY = {"host", "x-forwarded-host", "x-forwarded-proto", "x-forwarded-for", "expect"}


@examples(300)
@given(
    headers=st.lists(
        st.tuples(fs.any_case(REQUEST_NAMES) | fs.header_names, fs.header_text), max_size=10
    ),
    host=st.sampled_from(["localhost:8000", "api.test"]),
    client_host=st.none() | st.sampled_from(["localhost:8080"]),
    client_ip=st.none() | st.sampled_from(["127.0.0.1", "::1"]),
    scheme=st.sampled_from(["http", "https"]),
    origin=st.none() | fs.localhost_origins,
    mode=st.sampled_from(["keep", "strip", "upstream"]),
)
def test_request_headers_for_upstream_drop_hop_by_hop_and_set_host_once(
    headers: Headers,
    host: str,
    client_host: str | None,
    client_ip: str | None,
    scheme: str,
    origin: str | None,
    mode: str,
) -> None:
    out = for_upstream(
        headers,
        host=host,
        client_host=client_host,
        client_ip=client_ip,
        scheme=scheme,
        origin=origin,
        origin_mode=mode,
        upstream_origin="http://localhost:8000",
    )
    assert values(out, "host") == [host]
    assert values(out, "x-forwarded-proto") == [scheme]
    assert values(out, "x-forwarded-host") == ([client_host] if client_host else [])
    if client_ip:  # the browser's own X-Forwarded-For is extended, never sent twice
        assert len(values(out, "x-forwarded-for")) == 1
    hidden = {"origin", "referer", "sec-fetch-site", "sec-fetch-mode", "sec-fetch-dest"}
    rewritten = hidden if mode != "keep" and origin is not None else set()
    if rewritten:
        assert not [n for n, _ in out if n.lower().startswith("sec-fetch-")]
        wanted = ["http://localhost:8000"] if mode == "upstream" else []
        assert values(out, "origin") == wanted
        assert all(v.startswith("http://localhost:8000/") for v in values(out, "referer"))
    dropped = SET_BY_PROXY - ({"x-forwarded-for"} if not client_ip else set()) | rewritten
    passed = [(n, v) for n, v in end_to_end(headers) if n.lower() not in dropped]
    assert [(n, v) for n, v in out if n.lower() not in dropped] == passed


# --- the doctor's judge -------------------------------------------------------------------

_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


@examples(500)
@given(url=fs.LOCATIONS | fs.judge_origins | st.text())
@example(url="http://[")
def test_url_origin_never_raises(url: str) -> None:
    assert isinstance(url_origin(url), str)


def with_headers(origins: st.SearchStrategy[str]) -> st.SearchStrategy[tuple[str, Headers]]:
    """(origin, a response close to one a browser accepts for it)."""
    return origins.flatmap(lambda origin: st.tuples(st.just(origin), fs.judge_headers(origin)))


@examples(500)
@given(case=with_headers(fs.judge_origins), credentials=st.booleans())
@example(case=("http://a", [("Access-Control-Allow-Origin", "http://[")]), credentials=False)
def test_judge_check_cors_never_raises(case: tuple[str, Headers], credentials: bool) -> None:
    origin, headers = case
    found = judge.check_cors(origin, credentials, headers)
    assert all(isinstance(finding, judge.Finding) for finding in found)


@examples(500)
@given(
    case=with_headers(fs.judge_origins),
    credentials=st.booleans(),
    method=fs.request_methods | st.text(max_size=8),
    names=st.lists(fs.HEADER_NAMES | fs.TOKEN | st.text(max_size=8), max_size=3),
    status=fs.statuses | st.integers(),
    redirected=st.booleans(),
)
@example(
    case=(
        "http://a",
        [("Access-Control-Allow-Origin", "http://a"), ("Access-Control-Max-Age", "\u00b2")],
    ),
    credentials=False,
    method="GET",
    names=[],
    status=204,
    redirected=False,
)
@example(
    case=(
        "http://a",
        [("Access-Control-Allow-Origin", "http://a"), ("Access-Control-Max-Age", "9" * 4301)],
    ),
    credentials=False,
    method="GET",
    names=[],
    status=204,
    redirected=False,
)
def test_judge_check_preflight_never_raises(
    case: tuple[str, Headers],
    credentials: bool,
    method: str,
    names: list[str],
    status: int,
    redirected: bool,
) -> None:
    origin, headers = case
    found = judge.check_preflight(origin, credentials, method, names, status, headers, redirected)
    assert all(isinstance(finding, judge.Finding) for finding in found)


@examples(150)
@given(case=with_headers(fs.judge_origins), credentials=st.booleans())
def test_judge_readable_headers_never_raises(case: tuple[str, Headers], credentials: bool) -> None:
    _, headers = case
    result = judge.readable_headers(credentials, headers)
    present = {name.lower() for name, _ in headers}
    assert set(result.readable) | set(result.hidden) == present
    assert not set(result.readable) & set(result.hidden)


@examples(500)
@given(
    case=with_headers(fs.judge_origins),
    urls=st.lists(fs.LOCATIONS | fs.generic_origins | st.text(), min_size=1, max_size=22),
    status=fs.statuses | st.integers(),
    method=fs.request_methods,
)
@example(
    case=("http://a", [("Location", "http://[")]), urls=["http://a/"], status=302, method="GET"
)
def test_judge_check_redirect_never_raises(
    case: tuple[str, Headers], urls: list[str], status: int, method: str
) -> None:
    origin, headers = case
    step = judge.check_redirect(origin, urls, status, headers, method)
    assert isinstance(step, judge.RedirectStep)


@examples(400)
@given(method=fs.request_methods | st.text(max_size=8), headers=fs.request_header_lists)
def test_needs_preflight_raises_only_for_methods_fetch_refuses(
    method: str, headers: Headers
) -> None:
    try:
        need = needs_preflight(method, headers)
    except ValueError:
        assert not _TOKEN.fullmatch(method) or method.upper() in ("CONNECT", "TRACE", "TRACK")
        return
    assert need.needed == (need.method not in ("GET", "HEAD", "POST") or bool(need.unsafe_headers))

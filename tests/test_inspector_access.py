"""Who may read the inspector (inspector/access.py): one row per kind of visitor."""

from __future__ import annotations

import pytest

from corsproxy.inspector.access import (
    HANDOFF,
    LOGIN,
    Asked,
    cookie_name,
    cookie_value,
    decide,
    login_cookie,
    new_token,
)

TOKEN = "k8Qz1x9mVt2Lw7YbN4cR0sPd3FhJ6gUe"
COOKIE = cookie_name(8080)
OWN = "http://localhost:8080"
GRANTED = "granted"


def ask(path: str = "/__corsproxy/api/exchanges", **headers: str | None) -> Asked:
    return Asked(path, own_origin=OWN, **headers)  # type: ignore[arg-type]


ROWS = [
    ("the page URL with the right token logs in", ask(f"/__corsproxy/?token={TOKEN}"), 303),
    ("the page URL with a wrong token is refused", ask("/__corsproxy/?token=guess"), 403),
    ("an empty token is refused", ask("/__corsproxy/?token="), 403),
    (
        "the token given twice is refused",
        ask(f"/__corsproxy/?token={TOKEN}&token={TOKEN}"),
        403,
    ),
    (
        "a token in the query of an API URL does not count",
        ask(f"/__corsproxy/api/har?token={TOKEN}"),
        403,
    ),
    ("nothing at all is refused", ask(), 403),
    ("the page without a token or cookie is refused", ask("/__corsproxy/"), 403),
    ("the right cookie is granted", ask(cookie=f"{COOKIE}={TOKEN}"), GRANTED),
    (
        "the right cookie among others is granted",
        ask(cookie=f"a=1; {COOKIE}={TOKEN}; b=2"),
        GRANTED,
    ),
    ("a wrong cookie is refused", ask(cookie=f"{COOKIE}=guess"), 403),
    (
        "another proxy's cookie (another port) does not count",
        ask(cookie=f"{cookie_name(8081)}={TOKEN}"),
        403,
    ),
    ("the right bearer token is granted", ask(authorization=f"Bearer {TOKEN}"), GRANTED),
    ("the bearer scheme is case-insensitive", ask(authorization=f"bearer {TOKEN}"), GRANTED),
    ("a wrong bearer token is refused", ask(authorization="Bearer guess"), 403),
    ("basic auth is not a token", ask(authorization=f"Basic {TOKEN}"), 403),
    (
        "a same-origin request with the cookie is granted",
        ask(cookie=f"{COOKIE}={TOKEN}", sec_fetch_site="same-origin", origin=OWN),
        GRANTED,
    ),
    (
        "a typed or bookmarked visit (Sec-Fetch-Site none) logs in",
        ask(f"/__corsproxy/?token={TOKEN}", sec_fetch_site="none"),
        303,
    ),
    (
        "a same-site page is refused even with the cookie",
        ask(cookie=f"{COOKIE}={TOKEN}", sec_fetch_site="same-site"),
        403,
    ),
    (
        "a cross-site page is refused even with the bearer token",
        ask(authorization=f"Bearer {TOKEN}", sec_fetch_site="cross-site"),
        403,
    ),
    (
        "a same-site fetch of the tokened page URL is refused",
        ask(f"/__corsproxy/?token={TOKEN}", sec_fetch_site="same-site", sec_fetch_mode="cors"),
        403,
    ),
    (
        "a same-site iframe of the tokened page URL is refused",
        ask(
            f"/__corsproxy/?token={TOKEN}",
            sec_fetch_site="same-site",
            sec_fetch_mode="navigate",
            sec_fetch_dest="iframe",
        ),
        403,
    ),
    (
        "a link from another site to the tokened page URL hands the cookie over",
        ask(
            f"/__corsproxy/?token={TOKEN}",
            sec_fetch_site="cross-site",
            sec_fetch_mode="navigate",
            sec_fetch_dest="document",
        ),
        200,
    ),
    (
        "a link from another site with a wrong token is refused",
        ask(
            "/__corsproxy/?token=guess",
            sec_fetch_site="same-site",
            sec_fetch_mode="navigate",
            sec_fetch_dest="document",
        ),
        403,
    ),
    (
        "a link from another site to an API URL is refused",
        ask(
            f"/__corsproxy/api/exchanges?token={TOKEN}",
            sec_fetch_site="same-site",
            sec_fetch_mode="navigate",
            sec_fetch_dest="document",
            cookie=f"{COOKIE}={TOKEN}",
        ),
        403,
    ),
    (
        "a request from another origin without fetch metadata is refused",
        ask(cookie=f"{COOKIE}={TOKEN}", origin="http://localhost:5173"),
        403,
    ),
    (
        "an opaque origin is refused",
        ask(cookie=f"{COOKIE}={TOKEN}", origin="null"),
        403,
    ),
    (
        "the inspector's own origin in another letter case is its own",
        ask(cookie=f"{COOKIE}={TOKEN}", origin="http://LOCALHOST:8080"),
        GRANTED,
    ),
]


@pytest.mark.parametrize(("asked", "want"), [r[1:] for r in ROWS], ids=[r[0] for r in ROWS])
def test_access(asked: Asked, want: int | str) -> None:
    decided = decide(asked, TOKEN, COOKIE)
    if want == GRANTED:
        assert decided.granted and decided.status == 200
        return
    assert not decided.granted
    assert decided.status == want
    if want == 303:
        assert decided is LOGIN
    if want == 200:
        assert decided is HANDOFF
    if want == 403:
        assert "`inspector: http://.../__corsproxy/?token=...`" in decided.reason


def test_refusals_say_why() -> None:
    site = decide(ask(sec_fetch_site="cross-site"), TOKEN, COOKIE).reason
    assert site.startswith(
        "refused: a request from another site's page (Sec-Fetch-Site: cross-site)"
    )
    origin = decide(ask(origin="http://evil.test"), TOKEN, COOKIE).reason
    assert origin.startswith(
        "refused: a request from another origin's page (Origin: http://evil.test)"
    )
    assert decide(ask("/__corsproxy/?token=x"), TOKEN, COOKIE).reason.startswith(
        "refused: wrong token"
    )


def test_tokens_are_new_unguessable_and_url_safe() -> None:
    tokens = {new_token() for _ in range(100)}
    assert len(tokens) == 100
    for token in tokens:
        assert len(token) >= 22  # 128 bits or more in base64url
        assert token.replace("-", "").replace("_", "").isalnum()


def test_the_cookie_is_httponly_strict_and_scoped_to_the_inspector() -> None:
    assert login_cookie(COOKIE, TOKEN, https=False) == (
        f"corsproxy_inspector_8080={TOKEN}; HttpOnly; SameSite=Strict; Path=/__corsproxy/"
    )
    assert login_cookie(COOKIE, TOKEN, https=True).endswith("; Path=/__corsproxy/; Secure")


def test_cookie_values_are_read_by_exact_name() -> None:
    assert cookie_value("a=1; corsproxy_inspector_80=x", "corsproxy_inspector_80") == "x"
    assert cookie_value("xcorsproxy_inspector_80=x", "corsproxy_inspector_80") is None
    assert cookie_value(None, "a") is None

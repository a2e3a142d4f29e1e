"""`listen.tls: auto` and `serve --https` in the settings (config/file.py, model.py, checks.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from corsproxy.config.describe import describe
from corsproxy.config.load import ConfigError, Overrides, load
from corsproxy.config.model import TLS

UP = "upstream: http://localhost:8000\n"


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path


def settings(text: str | None, **flags: object):
    if text is not None:
        Path("corsproxy.yaml").write_text(text)
    config = "corsproxy.yaml" if text is not None else None
    env = {} if text is not None else {"CORSPROXY_UPSTREAM": "http://localhost:8000"}
    return load(Overrides(config=config, **flags), env)


def problems(text: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        settings(text)
    return [str(problem) for problem in caught.value.problems]


VALID = {
    "listen.tls: auto in the file": (UP + "listen:\n  tls: auto\n", {}, "auto"),
    "--https alone": (None, {"https": True}, "auto"),
    "--https over the file's own certificate files": (
        UP + "listen:\n  tls: {cert: c.pem, key: k.pem}\n",
        {"https": True},
        "auto",
    ),
    "no flag, no key: plain http": (UP, {}, None),
    "--https not given (None) leaves the file's auto alone": (
        UP + "listen:\n  tls: auto\n",
        {"https": None},
        "auto",
    ),
    "an empty tls key: plain http, as before": (UP + "listen:\n  tls:\n", {}, None),
}


@pytest.mark.parametrize("text, flags, expected", VALID.values(), ids=VALID.keys())
def test_tls_auto_is_read(text, flags, expected, tls_pair) -> None:
    assert settings(text, **flags).listen.tls == expected


@pytest.fixture
def tls_pair(in_tmp: Path) -> None:
    """c.pem and k.pem, a real pair, for the row where --https replaces them."""
    trustme = pytest.importorskip("trustme")
    cert = trustme.CA().issue_cert("localhost")
    cert.cert_chain_pems[0].write_to_path(str(in_tmp / "c.pem"))
    cert.private_key_pem.write_to_path(str(in_tmp / "k.pem"))


REFUSED = {
    "another word": (
        UP + "listen:\n  tls: https\n",
        "corsproxy.yaml:3: listen.tls: expected auto, or a mapping such as "
        "{cert: cert.pem, key: key.pem}; got 'https'",
    ),
    "true": (
        UP + "listen:\n  tls: true\n",
        "corsproxy.yaml:3: listen.tls: expected auto, or a mapping such as "
        "{cert: cert.pem, key: key.pem}; got true",
    ),
    "Auto in capitals": (
        UP + "listen:\n  tls: Auto\n",
        "corsproxy.yaml:3: listen.tls: expected auto, or a mapping such as "
        "{cert: cert.pem, key: key.pem}; got 'Auto'",
    ),
    "a list": (
        UP + "listen:\n  tls: [auto]\n",
        "corsproxy.yaml:3: listen.tls: expected auto, or a mapping such as "
        "{cert: cert.pem, key: key.pem}; got a list",
    ),
}


@pytest.mark.parametrize("text, message", REFUSED.values(), ids=REFUSED.keys())
def test_other_tls_values_are_refused(text: str, message: str) -> None:
    assert problems(text) == [message]


def test_check_says_where_the_certificate_comes_from() -> None:
    assert (
        "  tls: auto   # a certificate from the local authority; see corsproxy trust --print"
        in (describe(settings(UP + "listen: {tls: auto}\n")).splitlines())
    )


def test_files_keep_working_as_before(tls_pair) -> None:
    tls = settings(UP + "listen:\n  tls: {cert: c.pem, key: k.pem}\n").listen.tls
    assert tls == TLS("c.pem", "k.pem")

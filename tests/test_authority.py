"""The local authority and the leaf `listen.tls: auto` serves (corsproxy/tls/authority.py, leaf.py).

Every test points CORSPROXY_HOME at a temporary folder: this machine's own authority (and mkcert's)
is never read or written.
"""

from __future__ import annotations

import datetime as dt
import os
import stat
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from corsproxy.tls import AuthorityError
from corsproxy.tls.authority import create_authority, data_home, load_authority
from corsproxy.tls.leaf import (
    LEAF_DAYS,
    LeafFacts,
    issue_leaf,
    leaf_for,
    read_leaf,
    reissue_reason,
    start_notes,
    wanted_names,
)

NOW = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
DAY = dt.timedelta(days=1)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """A user with nothing yet: an empty CORSPROXY_HOME and no mkcert on PATH."""
    return {"CORSPROXY_HOME": str(tmp_path / "home"), "HOME": str(tmp_path), "PATH": ""}


# ---- where the authority lives ---------------------------------------------------------------

HOMES = {
    "CORSPROXY_HOME wins over everything": (
        {"CORSPROXY_HOME": "/data", "XDG_DATA_HOME": "/x", "HOME": "/h"},
        "linux",
        "/data",
    ),
    "Linux: the XDG data folder when set": (
        {"XDG_DATA_HOME": "/x", "HOME": "/h"},
        "linux",
        "/x/corsproxy",
    ),
    "Linux: ~/.local/share by default": ({"HOME": "/h"}, "linux", "/h/.local/share/corsproxy"),
    "Linux: a relative XDG_DATA_HOME is ignored, as the XDG spec says": (
        {"XDG_DATA_HOME": "rel", "HOME": "/h"},
        "linux",
        "/h/.local/share/corsproxy",
    ),
    "an empty CORSPROXY_HOME counts as unset": (
        {"CORSPROXY_HOME": " ", "HOME": "/h"},
        "linux",
        "/h/.local/share/corsproxy",
    ),
    "macOS: Application Support": (
        {"HOME": "/Users/u"},
        "darwin",
        "/Users/u/Library/Application Support/corsproxy",
    ),
}


@pytest.mark.parametrize("env_in, platform, expected", HOMES.values(), ids=HOMES.keys())
def test_data_home(env_in: dict[str, str], platform: str, expected: str) -> None:
    assert data_home(env_in, platform) == Path(expected)


# ---- the names a leaf is for ---------------------------------------------------------------

NAMES = {
    "the loopback names for the default listen host": (
        "127.0.0.1",
        (),
        (),
        ("localhost", "127.0.0.1", "::1"),
    ),
    "a LAN listen address is added": (
        "192.168.1.20",
        (),
        (),
        ("localhost", "127.0.0.1", "::1", "192.168.1.20"),
    ),
    "allowed hosts are added, lowercased, IPv6 without brackets": (
        "127.0.0.1",
        ("MyApp.test", "[FE80::1]"),
        (),
        ("localhost", "127.0.0.1", "::1", "myapp.test", "fe80::1"),
    ),
    "all interfaces (0.0.0.0): this machine's addresses instead of 0.0.0.0": (
        "0.0.0.0",
        (),
        ("192.168.1.20", "2001:db8::20"),
        ("localhost", "127.0.0.1", "::1", "192.168.1.20", "2001:db8::20"),
    ),
    "all interfaces (::) too": (
        "::",
        (),
        ("10.0.0.5",),
        ("localhost", "127.0.0.1", "::1", "10.0.0.5"),
    ),
    "a name given twice is listed once": (
        "localhost",
        ("localhost", "127.0.0.1"),
        (),
        ("localhost", "127.0.0.1", "::1"),
    ),
    "machine addresses are not added for a fixed listen host": (
        "127.0.0.1",
        (),
        ("192.168.1.20",),
        ("localhost", "127.0.0.1", "::1"),
    ),
}


@pytest.mark.parametrize("host, allowed, machine, expected", NAMES.values(), ids=NAMES.keys())
def test_wanted_names(host, allowed, machine, expected) -> None:
    assert wanted_names(host, allowed, machine) == expected


# ---- when a stored leaf is reissued ---------------------------------------------------------

LOOPBACK = ("localhost", "127.0.0.1", "::1")


def facts(names=LOOPBACK, not_before=NOW - DAY, not_after=NOW + 400 * DAY, ours=True):
    return LeafFacts(frozenset(names), not_before, not_after, ours)


REISSUE = {
    "none stored: issue one": (None, LOOPBACK, "there was none yet"),
    "stored and fitting: keep it": (facts(), LOOPBACK, None),
    "the same names in another order: keep it": (facts(), ("::1", "localhost", "127.0.0.1"), None),
    "a name was added": (facts(), (*LOOPBACK, "myapp.test"), "the names changed: +myapp.test"),
    "a name was dropped": (
        facts((*LOOPBACK, "10.0.0.5")),
        LOOPBACK,
        "the names changed: -10.0.0.5",
    ),
    "expired": (facts(not_after=NOW - DAY), LOOPBACK, "the one there expired on 2026-02-28"),
    "expires in 29 days": (
        facts(not_after=NOW + 29 * DAY),
        LOOPBACK,
        "the one there expires on 2026-03-30",
    ),
    "expires in 31 days: keep it": (facts(not_after=NOW + 31 * DAY), LOOPBACK, None),
    "signed by another authority": (
        facts(ours=False),
        LOOPBACK,
        "the one there was signed by another authority",
    ),
    "not valid yet (the clock went back)": (
        facts(not_before=NOW + DAY),
        LOOPBACK,
        "the one there is not valid yet (was the clock changed?)",
    ),
    "unreadable: the reason passes through": (
        "the one there could not be read",
        LOOPBACK,
        "the one there could not be read",
    ),
}


@pytest.mark.parametrize("stored, wanted, expected", REISSUE.values(), ids=REISSUE.keys())
def test_reissue_reason(stored, wanted, expected) -> None:
    assert reissue_reason(stored, wanted, NOW) == expected


# ---- the certificates themselves ------------------------------------------------------------


@pytest.fixture
def authority(tmp_path: Path):
    home = tmp_path / "home"
    home.mkdir()
    return create_authority(home, NOW)


def ext(cert: x509.Certificate, kind):
    return cert.extensions.get_extension_for_class(kind)


def san(cert: x509.Certificate) -> tuple[list[str], list[str]]:
    names = ext(cert, x509.SubjectAlternativeName).value
    return (
        names.get_values_for_type(x509.DNSName),
        [ip.compressed for ip in names.get_values_for_type(x509.IPAddress)],
    )


LEAF_FACTS = {
    "DNS names are DNS SANs": (
        lambda c: san(c)[0],
        ["localhost", "myapp.test"],
    ),
    "IP addresses are IP SANs, not DNS names": (
        lambda c: san(c)[1],
        ["127.0.0.1", "::1", "192.168.1.20"],
    ),
    "valid at most 825 days (Apple's limit)": (
        lambda c: (c.not_valid_after_utc - c.not_valid_before_utc) <= dt.timedelta(days=825),
        True,
    ),
    "valid now, and for LEAF_DAYS less the hour it is backdated": (
        lambda c: (c.not_valid_before_utc <= NOW, c.not_valid_after_utc - NOW),
        (True, dt.timedelta(days=LEAF_DAYS) - dt.timedelta(hours=1)),
    ),
    "not an authority itself (critical basicConstraints CA:FALSE)": (
        lambda c: (ext(c, x509.BasicConstraints).critical, ext(c, x509.BasicConstraints).value.ca),
        (True, False),
    ),
    "key usage: digital signature only, critical": (
        lambda c: (
            ext(c, x509.KeyUsage).critical,
            ext(c, x509.KeyUsage).value.digital_signature,
            ext(c, x509.KeyUsage).value.key_cert_sign,
        ),
        (True, True, False),
    ),
    "extended key usage: serverAuth only": (
        lambda c: list(ext(c, x509.ExtendedKeyUsage).value),
        [ExtendedKeyUsageOID.SERVER_AUTH],
    ),
    "the first name is the subject's common name": (
        lambda c: c.subject.rfc4514_string().split(",")[0],
        "CN=localhost",
    ),
}


@pytest.mark.parametrize("read, expected", LEAF_FACTS.values(), ids=LEAF_FACTS.keys())
def test_the_leaf_certificate(authority, read, expected) -> None:
    names = ("localhost", "127.0.0.1", "::1", "myapp.test", "192.168.1.20")
    cert, _ = issue_leaf(authority, names, NOW)
    cert.verify_directly_issued_by(authority.cert)
    assert read(cert) == expected


CA_FACTS = {
    "an authority that may sign leaves only (critical CA:TRUE, pathlen 0)": (
        lambda c: (
            ext(c, x509.BasicConstraints).critical,
            ext(c, x509.BasicConstraints).value.ca,
            ext(c, x509.BasicConstraints).value.path_length,
        ),
        (True, True, 0),
    ),
    "key usage: certificate and CRL signing, critical": (
        lambda c: (
            ext(c, x509.KeyUsage).critical,
            ext(c, x509.KeyUsage).value.key_cert_sign,
            ext(c, x509.KeyUsage).value.crl_sign,
        ),
        (True, True, True),
    ),
    "self-signed": (lambda c: c.issuer == c.subject, True),
    "valid about ten years": (
        lambda c: (c.not_valid_after_utc - c.not_valid_before_utc).days,
        3650,
    ),
    "named so a user can tell whose it is": (
        lambda c: c.subject.rfc4514_string().startswith("CN=corsproxy local CA "),
        True,
    ),
}


@pytest.mark.parametrize("read, expected", CA_FACTS.values(), ids=CA_FACTS.keys())
def test_the_authority_certificate(authority, read, expected) -> None:
    assert read(authority.cert) == expected


def test_a_leaf_never_outlives_its_authority(authority) -> None:
    late = authority.cert.not_valid_after_utc - 100 * DAY
    cert, _ = issue_leaf(authority, LOOPBACK, late)
    assert cert.not_valid_after_utc == authority.cert.not_valid_after_utc


# ---- on disk: created once, private, reissued when it must be --------------------------------


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_the_authority_is_created_once_with_a_private_key(env) -> None:
    first = load_authority(env, NOW)
    home = Path(env["CORSPROXY_HOME"])
    assert first.created and first.kind == "corsproxy"
    assert stat.S_IMODE(os.stat(home).st_mode) == 0o700
    assert stat.S_IMODE(os.stat(home / "ca-key.pem").st_mode) == 0o600
    again = load_authority(env, NOW)
    assert not again.created and again.fingerprint == first.fingerprint


def test_the_leaf_is_kept_then_reissued_for_new_names(env) -> None:
    first = leaf_for("127.0.0.1", (), env, NOW)
    assert first.issued_because == "there was none yet"
    assert stat.S_IMODE(os.stat(first.path).st_mode) == 0o600
    kept = leaf_for("127.0.0.1", (), env, NOW + DAY)
    assert kept.issued_because is None and kept.not_after == first.not_after
    renamed = leaf_for("127.0.0.1", ("myapp.test",), env, NOW + DAY)
    assert renamed.issued_because == "the names changed: +myapp.test"
    stored = read_leaf(renamed.path, renamed.authority)
    assert isinstance(stored, LeafFacts) and "myapp.test" in stored.names


def test_a_leaf_near_its_end_is_reissued(env) -> None:
    first = leaf_for("127.0.0.1", (), env, NOW)
    later = first.not_after - 10 * DAY
    renewed = leaf_for("127.0.0.1", (), env, later)
    assert renewed.issued_because == f"the one there expires on {first.not_after:%Y-%m-%d}"
    assert renewed.not_after > first.not_after


def test_a_leaf_of_another_authority_is_reissued(env, tmp_path: Path) -> None:
    leaf_for("127.0.0.1", (), env, NOW)
    home = Path(env["CORSPROXY_HOME"])
    (home / "ca.pem").unlink()
    (home / "ca-key.pem").unlink()
    again = leaf_for("127.0.0.1", (), env, NOW)
    assert again.authority.created
    assert again.issued_because == "the one there was signed by another authority"


def test_a_damaged_leaf_is_reissued(env) -> None:
    first = leaf_for("127.0.0.1", (), env, NOW)
    first.path.write_text("not a certificate")
    assert leaf_for("127.0.0.1", (), env, NOW).issued_because == "the one there could not be read"


def test_half_an_authority_is_an_error_that_says_how_to_start_afresh(env) -> None:
    load_authority(env, NOW)
    home = Path(env["CORSPROXY_HOME"])
    (home / "ca-key.pem").unlink()
    with pytest.raises(AuthorityError) as error:
        load_authority(env, NOW)
    assert f"cannot read {home / 'ca-key.pem'}: no such file or directory; remove " in str(
        error.value
    )


def test_an_expired_authority_is_an_error(env) -> None:
    load_authority(env, NOW)
    with pytest.raises(AuthorityError, match="expired on 2036-"):
        load_authority(env, NOW + 3651 * DAY)


def test_an_unwritable_home_is_an_error_naming_the_variable(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    env = {"CORSPROXY_HOME": str(blocker / "home"), "PATH": ""}
    with pytest.raises(AuthorityError, match="set CORSPROXY_HOME to a folder you can write"):
        load_authority(env, NOW)


# ---- mkcert's authority, when there is one ----------------------------------------------------


def fake_mkcert(bin_dir: Path, caroot: Path) -> None:
    """An `mkcert` on PATH that answers -CAROOT as the real one does."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    script = bin_dir / "mkcert"
    script.write_text(f'#!/bin/sh\n[ "$1" = -CAROOT ] && echo "{caroot}"\n')
    script.chmod(0o755)


@pytest.mark.skipif(sys.platform == "win32", reason="a shell script stands in for mkcert")
def test_mkcerts_authority_is_used_when_it_exists(env, tmp_path: Path) -> None:
    caroot = tmp_path / "mkcert"
    caroot.mkdir()
    made = create_authority(caroot, NOW)  # stands in for mkcert's rootCA.pem / rootCA-key.pem
    made.cert_path.rename(caroot / "rootCA.pem")
    made.key_path.rename(caroot / "rootCA-key.pem")
    fake_mkcert(tmp_path / "bin", caroot)
    env = {**env, "PATH": str(tmp_path / "bin")}
    leaf = leaf_for("127.0.0.1", (), env, NOW)
    assert leaf.authority.kind == "mkcert"
    assert leaf.authority.describe() == f"mkcert's authority {caroot / 'rootCA.pem'}"
    assert not (Path(env["CORSPROXY_HOME"]) / "ca.pem").exists()  # no second authority
    stored = read_leaf(leaf.path, leaf.authority)
    assert isinstance(stored, LeafFacts) and stored.by_authority


@pytest.mark.skipif(sys.platform == "win32", reason="a shell script stands in for mkcert")
def test_mkcert_without_an_authority_yet_is_not_used(env, tmp_path: Path) -> None:
    fake_mkcert(tmp_path / "bin", tmp_path / "empty")
    authority = load_authority({**env, "PATH": str(tmp_path / "bin")}, NOW)
    assert authority.kind == "corsproxy"


def test_ip_names_compare_in_their_short_form(env) -> None:
    leaf = leaf_for("127.0.0.1", ("[2001:DB8:0:0::1]",), env, NOW)
    assert "2001:db8::1" in leaf.names
    assert leaf_for("127.0.0.1", ("[2001:db8::1]",), env, NOW).issued_because is None


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX permissions")
def test_a_key_others_can_read_is_warned_about_at_start(env) -> None:
    leaf = leaf_for("127.0.0.1", (), env, NOW)
    assert not any("warning" in note for note in start_notes(leaf))
    leaf.authority.key_path.chmod(0o644)
    key = leaf.authority.key_path
    assert start_notes(leaf)[-1] == (
        f"corsproxy: warning: {key} can be read by other users, who could then make "
        f"certificates your browsers trust; chmod 600 {key}"
    )


@pytest.mark.skipif(sys.platform == "win32", reason="a shell script stands in for mkcert")
def test_the_start_notes_name_mkcert_and_how_it_is_trusted(env, tmp_path: Path) -> None:
    caroot = tmp_path / "mkcert"
    caroot.mkdir()
    made = create_authority(caroot, NOW)
    made.cert_path.rename(caroot / "rootCA.pem")
    made.key_path.rename(caroot / "rootCA-key.pem")
    fake_mkcert(tmp_path / "bin", caroot)
    leaf = leaf_for("127.0.0.1", (), {**env, "PATH": str(tmp_path / "bin")}, NOW)
    assert start_notes(leaf) == [
        "corsproxy: https certificate for localhost, 127.0.0.1, ::1 (until "
        f"{leaf.not_after:%Y-%m-%d}; issued now: there was none yet), signed by mkcert's "
        f"authority {caroot / 'rootCA.pem'}",
        "corsproxy: browsers trust it once `mkcert -install` (or `corsproxy trust`) has run",
    ]

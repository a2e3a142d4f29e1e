"""`corsproxy trust`: the plan per platform (tls/stores.py, pure) and real runs against NSS
databases in a temporary HOME (tls/trust.py).

This machine's own stores are never touched: every run gets HOME, CORSPROXY_HOME and mkcert's
CAROOT in temporary folders, and --system is only ever planned or printed, never run.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from corsproxy.tls.stores import CA, NSS_TOOLS, Machine, plan
from corsproxy.tls.trust import shell
from tests.proc import corsproxy_command

CA_PEM = Path("/h/.local/share/corsproxy/ca.pem")
FACTS = CA(
    CA_PEM, "corsproxy local CA u@box 0123456789ab", "0123456789ab" + "f" * 52, "a1" * 20, "7f"
)
NICK = "'corsproxy local CA u@box 0123456789ab'"
HOME = Path("/h")
LINUX_TOOLS = frozenset({"certutil", "update-ca-certificates"})


def machine(**changes) -> Machine:
    facts = {
        "platform": "linux",
        "home": HOME,
        "tools": LINUX_TOOLS,
        "chromium_nssdb": True,
        "firefox_profiles": (HOME / ".mozilla/firefox/abc.default-esr",),
        "root": False,
    }
    return Machine(**{**facts, **changes})


def rendered(system: bool = False, uninstall: bool = False, **changes) -> list[str]:
    """Each step as one line: `store: skipped: why | command && command`."""
    steps = plan(FACTS, machine(**changes), system, uninstall)
    lines = []
    for step in steps:
        commands = " && ".join(shell(c, machine(**changes).platform) for c in step.commands)
        why = f"skipped: {step.skipped} | " if step.skipped else ""
        lines.append(f"{step.store}: {why}{commands}")
    return lines


ADD_CHROMIUM = f"certutil -d sql:/h/.pki/nssdb -A -t C,, -n {NICK} -i {CA_PEM}"
FIREFOX = "Firefox (profile /h/.mozilla/firefox/abc.default-esr)"
ADD_FIREFOX = f"certutil -d sql:/h/.mozilla/firefox/abc.default-esr -A -t C,, -n {NICK} -i {CA_PEM}"
DEBIAN_CRT = "/usr/local/share/ca-certificates/corsproxy-0123456789ab.crt"
SYSTEM_LATER = (
    "system store: skipped: only with --system; curl, Python, Node and other programs read it; "
    "Chromium and Firefox on Linux read the NSS databases above instead | "
)

PLANS = {
    "Linux: Chromium's database and each Firefox profile; the system store only with --system": (
        {},
        [
            f"Chromium (NSS database /h/.pki/nssdb): {ADD_CHROMIUM}",
            f"{FIREFOX}: {ADD_FIREFOX}",
            f"{SYSTEM_LATER}cp {CA_PEM} {DEBIAN_CRT} && update-ca-certificates",
        ],
    ),
    "Linux without ~/.pki/nssdb: it is made first, empty password, as Chromium would": (
        {"chromium_nssdb": False, "firefox_profiles": ()},
        [
            "Chromium (NSS database /h/.pki/nssdb): mkdir -p -m 700 /h/.pki/nssdb && "
            f"certutil -d sql:/h/.pki/nssdb -N --empty-password && {ADD_CHROMIUM}",
            "Firefox: skipped: no Firefox profile with a cert9.db under /h/.mozilla/firefox "
            "(start Firefox once, then run corsproxy trust again) | ",
            f"{SYSTEM_LATER}cp {CA_PEM} {DEBIAN_CRT} && update-ca-certificates",
        ],
    ),
    "Linux without certutil: skipped, saying which package has it, the command kept": (
        {"tools": frozenset({"update-ca-certificates"})},
        [
            f"Chromium (NSS database /h/.pki/nssdb): skipped: {NSS_TOOLS} | {ADD_CHROMIUM}",
            f"{FIREFOX}: skipped: {NSS_TOOLS} | {ADD_FIREFOX}",
            f"{SYSTEM_LATER}cp {CA_PEM} {DEBIAN_CRT} && update-ca-certificates",
        ],
    ),
    "--system as root on Debian: copied, then update-ca-certificates": (
        {"system": True, "root": True, "firefox_profiles": ()},
        [
            f"Chromium (NSS database /h/.pki/nssdb): {ADD_CHROMIUM}",
            "Firefox: skipped: no Firefox profile with a cert9.db under /h/.mozilla/firefox "
            "(start Firefox once, then run corsproxy trust again) | ",
            f"system store: cp {CA_PEM} {DEBIAN_CRT} && update-ca-certificates",
        ],
    ),
    "--system without root: skipped, the commands given with sudo": (
        {"system": True, "firefox_profiles": ()},
        [
            f"Chromium (NSS database /h/.pki/nssdb): {ADD_CHROMIUM}",
            "Firefox: skipped: no Firefox profile with a cert9.db under /h/.mozilla/firefox "
            "(start Firefox once, then run corsproxy trust again) | ",
            f"system store: skipped: needs root; run as root | sudo cp {CA_PEM} {DEBIAN_CRT} && "
            "sudo update-ca-certificates",
        ],
    ),
    "--uninstall: deleted by nickname; the system store's copy removed and rebuilt": (
        {"uninstall": True, "system": True, "root": True, "firefox_profiles": ()},
        [
            f"Chromium (NSS database /h/.pki/nssdb): certutil -d sql:/h/.pki/nssdb -D -n {NICK}",
            "Firefox: skipped: no Firefox profile with a cert9.db under /h/.mozilla/firefox | ",
            f"system store: rm -f {DEBIAN_CRT} && update-ca-certificates --fresh",
        ],
    ),
    "--uninstall without ~/.pki/nssdb: nothing is made": (
        {"uninstall": True, "chromium_nssdb": False, "firefox_profiles": ()},
        [
            "Chromium (NSS database /h/.pki/nssdb): skipped: no NSS database at /h/.pki/nssdb | ",
            "Firefox: skipped: no Firefox profile with a cert9.db under /h/.mozilla/firefox | ",
            f"{SYSTEM_LATER}rm -f {DEBIAN_CRT} && update-ca-certificates --fresh",
        ],
    ),
    "Fedora's system store": (
        {"system": True, "root": True, "tools": frozenset({"certutil", "update-ca-trust"})},
        [
            f"Chromium (NSS database /h/.pki/nssdb): {ADD_CHROMIUM}",
            f"{FIREFOX}: {ADD_FIREFOX}",
            f"system store: cp {CA_PEM} /etc/pki/ca-trust/source/anchors/corsproxy-0123456789ab.pem"
            " && update-ca-trust extract",
        ],
    ),
    "p11-kit's trust command elsewhere (Arch)": (
        {"system": True, "root": True, "tools": frozenset({"certutil", "trust"})},
        [
            f"Chromium (NSS database /h/.pki/nssdb): {ADD_CHROMIUM}",
            f"{FIREFOX}: {ADD_FIREFOX}",
            f"system store: trust anchor --store {CA_PEM}",
        ],
    ),
    "no known system tool: said so": (
        {"system": True, "root": True, "tools": frozenset({"certutil"}), "firefox_profiles": ()},
        [
            f"Chromium (NSS database /h/.pki/nssdb): {ADD_CHROMIUM}",
            "Firefox: skipped: no Firefox profile with a cert9.db under /h/.mozilla/firefox "
            "(start Firefox once, then run corsproxy trust again) | ",
            "system store: skipped: no update-ca-certificates, update-ca-trust or trust command | ",
        ],
    ),
    "macOS: the login keychain, no NSS": (
        {"platform": "darwin", "tools": frozenset({"security"})},
        [
            "macOS login keychain: security add-trusted-cert -r trustRoot -k "
            f"/h/Library/Keychains/login.keychain-db {CA_PEM}",
            "system store: skipped: only with --system; curl, Python, Node and other programs "
            "read it; Safari and Chrome read the login keychain above too | security "
            f"add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain {CA_PEM}",
        ],
    ),
    "macOS --uninstall: trust setting removed, then the certificate by its SHA-1": (
        {"platform": "darwin", "uninstall": True},
        [
            f"macOS login keychain: security remove-trusted-cert {CA_PEM} && security "
            f"delete-certificate -Z {'a1' * 20} /h/Library/Keychains/login.keychain-db",
            "system store: skipped: only with --system; curl, Python, Node and other programs "
            "read it; Safari and Chrome read the login keychain above too | "
            f"security remove-trusted-cert -d {CA_PEM} && security delete-certificate -Z "
            f"{'a1' * 20} /Library/Keychains/System.keychain",
        ],
    ),
    "Windows: the user's Root store; the machine's with --system (tried: no root test there)": (
        {"platform": "win32", "system": True, "tools": frozenset()},
        [
            f"Windows user store (Root): certutil -user -addstore Root {CA_PEM}",
            f"system store: certutil -addstore -f Root {CA_PEM}",
        ],
    ),
    "Windows --uninstall: by serial number": (
        {"platform": "win32", "uninstall": True},
        [
            "Windows user store (Root): certutil -user -delstore Root 7f",
            "system store: skipped: only with --system; curl, Python, Node and other programs "
            "read it; browsers read the user store above too | certutil -delstore Root 7f",
        ],
    ),
}


@pytest.mark.parametrize("changes, expected", PLANS.values(), ids=PLANS.keys())
def test_plan(changes: dict, expected: list[str]) -> None:
    assert rendered(**changes) == expected


# ---- real runs, in a temporary HOME ----------------------------------------------------------

needs_certutil = pytest.mark.skipif(
    shutil.which("certutil") is None, reason="certutil not found (apt install libnss3-tools)"
)


@pytest.fixture
def user(tmp_path: Path) -> dict[str, str]:
    """The environment of a user whose HOME, data folder and mkcert CAROOT are temporary."""
    (tmp_path / "caroot").mkdir()
    return {
        "HOME": str(tmp_path / "home"),
        "CORSPROXY_HOME": str(tmp_path / "data"),
        "CAROOT": str(tmp_path / "caroot"),  # a real mkcert, if installed, finds no authority
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "LANG": "C.UTF-8",
    }


def trust(env: dict[str, str], *flags: str) -> tuple[int, str]:
    done = subprocess.run(
        [*corsproxy_command(), "trust", *flags], env=env, capture_output=True, text=True, timeout=60
    )
    return done.returncode, done.stdout + done.stderr


def listed(database: Path) -> str:
    done = subprocess.run(
        ["certutil", "-L", "-d", f"sql:{database}"], capture_output=True, text=True, check=True
    )
    return done.stdout


def new_profile(home: Path, name: str) -> Path:
    """A Firefox profile folder with its NSS database, as Firefox leaves it after a first start."""
    profile = home / ".mozilla" / "firefox" / name
    profile.mkdir(parents=True)
    subprocess.run(
        ["certutil", "-N", "--empty-password", "-d", f"sql:{profile}"], check=True, timeout=30
    )
    return profile


def heading(env: dict[str, str]) -> tuple[str, str]:
    """The authority's path and NSS nickname, as the tests' own process reads them."""
    from corsproxy.tls.authority import load_authority

    authority = load_authority(env)
    return str(authority.cert_path), authority.nickname


@needs_certutil  # without it, each NSS store's commands come with the reason they were skipped
def test_print_shows_the_commands_and_changes_nothing(user: dict[str, str]) -> None:
    status, output = trust(user, "--print")
    home, data = user["HOME"], user["CORSPROXY_HOME"]
    path, nickname = heading(user)
    lines = output.splitlines()
    assert status == 0
    assert lines[0] == f"corsproxy's local authority {data}/ca.pem (created now)"
    assert lines[1].startswith("  SHA-256 fingerprint: ") and len(lines[1]) == 23 + 95
    assert lines[2:] == [
        f"  Chromium (NSS database {home}/.pki/nssdb):",
        f"    mkdir -p -m 700 {home}/.pki/nssdb",
        f"    certutil -d sql:{home}/.pki/nssdb -N --empty-password",
        f"    certutil -d sql:{home}/.pki/nssdb -A -t C,, -n '{nickname}' -i {path}",
        f"  Firefox: skipped: no Firefox profile with a cert9.db under {home}/.mozilla/firefox "
        "(start Firefox once, then run corsproxy trust again)",
        *lines[7:],  # the system store: depends on this machine's tools
    ]
    assert lines[7].startswith("  system store:")
    assert not Path(home, ".pki").exists()


@needs_certutil
def test_trust_fills_chromiums_and_firefoxs_databases_and_uninstall_empties_them(
    user: dict[str, str],
) -> None:
    home = Path(user["HOME"])
    profile = new_profile(home, "abc.default-esr")
    status, output = trust(user)
    _, nickname = heading(user)
    assert status == 0, output
    assert f"  Chromium (NSS database {home}/.pki/nssdb): done" in output.splitlines()
    assert f"  Firefox (profile {profile}): done" in output.splitlines()
    for database in (home / ".pki" / "nssdb", profile):
        assert f"{nickname:<60} C,," in listed(database)

    status, output = trust(user)  # again: nothing to do
    assert f"  Firefox (profile {profile}): done (it was there already)" in output.splitlines()

    status, output = trust(user, "--uninstall")
    assert status == 0, output
    assert f"  Chromium (NSS database {home}/.pki/nssdb): removed" in output.splitlines()
    assert f"  Firefox (profile {profile}): removed" in output.splitlines()
    for database in (home / ".pki" / "nssdb", profile):
        assert nickname not in listed(database)
    assert Path(user["CORSPROXY_HOME"], "ca.pem").exists()  # the authority itself stays


def test_without_certutil_each_store_says_why_and_what_to_run(
    user: dict[str, str], tmp_path: Path
) -> None:
    (tmp_path / "bin").mkdir()
    status, output = trust({**user, "PATH": str(tmp_path / "bin")})
    home = user["HOME"]
    assert status == 0
    assert f"  Chromium (NSS database {home}/.pki/nssdb): skipped: {NSS_TOOLS}" in output
    assert f"    to do it yourself: mkdir -p -m 700 {home}/.pki/nssdb && certutil" in output
    assert not Path(home, ".pki").exists()


def test_uninstall_without_an_authority_makes_none(user: dict[str, str]) -> None:
    status, output = trust(user, "--uninstall")
    assert (status, output) == (
        0,
        f"corsproxy trust: no local authority in {user['CORSPROXY_HOME']}: nothing to remove\n",
    )
    assert not Path(user["CORSPROXY_HOME"]).exists()

"""Which trust stores `corsproxy trust` touches on this machine, and the exact commands for each.

Pure: trust.py gathers the facts (a Machine) and runs or prints the Steps planned here, so every
platform's plan is table-tested on any machine. The user's own stores are planned always; the
system store only with --system (it needs root, and says so otherwise).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

Command = tuple[str, ...]
NSS_TOOLS = (
    "certutil not found; install it (Debian/Ubuntu: apt install libnss3-tools, "
    "Fedora: dnf install nss-tools, Arch: pacman -S nss, macOS: brew install nss), "
    "then run corsproxy trust again"
)


@dataclass(frozen=True)
class Machine:
    """The facts a plan depends on, gathered by trust.probe()."""

    platform: str  # sys.platform: linux, darwin, win32
    home: Path
    tools: frozenset[str]  # the commands found on PATH among those plans use
    chromium_nssdb: bool  # ~/.pki/nssdb/cert9.db exists
    firefox_profiles: tuple[Path, ...]  # profile folders that hold a cert9.db
    root: bool  # may write the system store (POSIX: effective uid 0)


@dataclass(frozen=True)
class CA:
    """What the commands need to name the authority."""

    path: Path
    nickname: str  # its name in NSS databases
    fingerprint: str  # SHA-256, hex
    sha1: str  # hex: what macOS' `security delete-certificate -Z` takes
    serial: str  # hex: what Windows' `certutil -delstore` takes


@dataclass(frozen=True)
class Step:
    """One store: the commands that add (or remove) the authority, in order.

    skipped: why they are not run (the user may run them); present: a command whose success
    means the authority is in the store already (NSS only), so the step can say so.
    """

    store: str
    commands: tuple[Command, ...] = ()
    skipped: str | None = None
    present: Command | None = None


def plan(ca: CA, machine: Machine, system: bool, uninstall: bool) -> list[Step]:
    """The user's stores on this platform, then the system store."""
    steps: list[Step] = []
    if machine.platform.startswith("linux") or machine.platform.startswith("freebsd"):
        steps += _nss_steps(ca, machine, uninstall)
    elif machine.platform == "darwin":
        keychain = str(machine.home / "Library" / "Keychains" / "login.keychain-db")
        add: Command = ("security", "add-trusted-cert", "-r", "trustRoot", "-k", keychain)
        remove: tuple[Command, ...] = (
            ("security", "remove-trusted-cert", str(ca.path)),
            ("security", "delete-certificate", "-Z", ca.sha1, keychain),
        )
        steps.append(Step("macOS login keychain", remove if uninstall else ((*add, str(ca.path)),)))
    elif machine.platform == "win32":
        user: Command = ("certutil", "-user")
        removed = (*user, "-delstore", "Root", ca.serial)
        added = (*user, "-addstore", "Root", str(ca.path))
        steps.append(Step("Windows user store (Root)", (removed if uninstall else added,)))
    steps.append(_system_step(ca, machine, system, uninstall))
    return steps


def _nss_steps(ca: CA, machine: Machine, uninstall: bool) -> list[Step]:
    """Chromium's ~/.pki/nssdb (made when missing) and each Firefox profile's database."""
    chromium = machine.home / ".pki" / "nssdb"
    steps = [_nss_step(f"Chromium (NSS database {chromium})", chromium, ca, uninstall)]
    if not machine.chromium_nssdb:
        if uninstall:
            steps[0] = Step(steps[0].store, skipped=f"no NSS database at {chromium}")
        else:
            made = (
                ("mkdir", "-p", "-m", "700", str(chromium)),
                ("certutil", "-d", f"sql:{chromium}", "-N", "--empty-password"),
            )
            steps[0] = Step(steps[0].store, made + steps[0].commands, present=None)
    for profile in machine.firefox_profiles:
        steps.append(_nss_step(f"Firefox (profile {profile})", profile, ca, uninstall))
    if not machine.firefox_profiles:
        where = machine.home / ".mozilla" / "firefox"
        why = f"no Firefox profile with a cert9.db under {where}"
        if not uninstall:
            why += " (start Firefox once, then run corsproxy trust again)"
        steps.append(Step("Firefox", skipped=why))
    if "certutil" not in machine.tools:
        steps = [s if s.skipped else Step(s.store, s.commands, NSS_TOOLS) for s in steps]
    return steps


def _nss_step(store: str, folder: Path, ca: CA, uninstall: bool) -> Step:
    database = f"sql:{folder}"
    present = ("certutil", "-d", database, "-L", "-n", ca.nickname)
    if uninstall:
        return Step(store, (("certutil", "-d", database, "-D", "-n", ca.nickname),), None, present)
    # C,, : a trusted authority for TLS server certificates (not for e-mail or code signing).
    add = ("certutil", "-d", database, "-A", "-t", "C,,", "-n", ca.nickname, "-i", str(ca.path))
    return Step(store, (add,), None, present)


_SYSTEM_READERS = "curl, Python, Node and other programs read it"
_BROWSERS = {
    "linux": "Chromium and Firefox on Linux read the NSS databases above instead",
    "darwin": "Safari and Chrome read the login keychain above too",
    "win32": "browsers read the user store above too",
}


def _system_step(ca: CA, machine: Machine, system: bool, uninstall: bool) -> Step:
    """The system-wide store: only with --system, and only as root (Windows: as administrator,
    which only trying tells)."""
    store = "system store"
    commands = _system_commands(ca, machine, uninstall)
    if commands is None:
        return Step(store, skipped="no update-ca-certificates, update-ca-trust or trust command")
    if not system:
        kind = "linux" if machine.platform.startswith("linux") else machine.platform
        why = "; ".join(filter(None, ("only with --system", _SYSTEM_READERS, _BROWSERS.get(kind))))
        return Step(store, commands, why)
    if not machine.root and machine.platform != "win32":
        return Step(store, tuple(("sudo", *c) for c in commands), "needs root; run as root")
    return Step(store, commands)


def _system_commands(ca: CA, machine: Machine, uninstall: bool) -> tuple[Command, ...] | None:
    path, fp = str(ca.path), ca.fingerprint[:12]
    if machine.platform == "darwin":
        keychain = "/Library/Keychains/System.keychain"
        if uninstall:
            return (
                ("security", "remove-trusted-cert", "-d", path),
                ("security", "delete-certificate", "-Z", ca.sha1, keychain),
            )
        return (("security", "add-trusted-cert", "-d", "-r", "trustRoot", "-k", keychain, path),)
    if machine.platform == "win32":
        return (
            (("certutil", "-delstore", "Root", ca.serial),)
            if uninstall
            else (("certutil", "-addstore", "-f", "Root", path),)
        )
    if "update-ca-certificates" in machine.tools:  # Debian, Ubuntu, Alpine
        target = f"/usr/local/share/ca-certificates/corsproxy-{fp}.crt"
        if uninstall:
            return (("rm", "-f", target), ("update-ca-certificates", "--fresh"))
        return (("cp", path, target), ("update-ca-certificates",))
    if "update-ca-trust" in machine.tools:  # Fedora, RHEL
        target = f"/etc/pki/ca-trust/source/anchors/corsproxy-{fp}.pem"
        first = ("rm", "-f", target) if uninstall else ("cp", path, target)
        return (first, ("update-ca-trust", "extract"))
    if "trust" in machine.tools:  # p11-kit: Arch and others
        return (("trust", "anchor", "--remove" if uninstall else "--store", path),)
    return None

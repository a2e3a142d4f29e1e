"""`corsproxy trust [--system] [--print] [--uninstall]`: make this user's browsers trust the
local authority, or stop trusting it.

stores.plan() says what to do per store; this module gathers the facts about the machine, then
runs the commands (or prints them) and says, per store, done, skipped and why, or what to run.
Only HOME's stores are touched unless --system is given.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TextIO

from cryptography.hazmat.primitives import hashes

from corsproxy.tls.authority import (
    CA_FILE,
    CA_KEY_FILE,
    Authority,
    AuthorityError,
    data_home,
    load_authority,
    mkcert_root,
)
from corsproxy.tls.stores import CA, Command, Machine, Step, plan

TOOLS = ("certutil", "security", "update-ca-certificates", "update-ca-trust", "trust")
FIREFOX_ROOTS = (  # under HOME: the packaged, snap and flatpak Firefox
    Path(".mozilla", "firefox"),
    Path("snap", "firefox", "common", ".mozilla", "firefox"),
    Path(".var", "app", "org.mozilla.firefox", ".mozilla", "firefox"),
)
TIMEOUT = 60.0  # seconds per command: macOS and Windows may show a dialog that asks the user


def probe(env: Mapping[str, str], platform: str = sys.platform) -> Machine:
    """This machine's facts for stores.plan(); HOME is read from `env`, so tests point it at a
    temporary folder and never touch the real stores."""
    home = Path(env.get("HOME") or env.get("USERPROFILE") or Path.home())
    path = env.get("PATH")
    tools = frozenset(tool for tool in TOOLS if shutil.which(tool, path=path))
    profiles = sorted(
        {db.parent for root in FIREFOX_ROOTS for db in (home / root).glob("*/cert9.db")}
    )
    root = hasattr(os, "geteuid") and os.geteuid() == 0
    return Machine(
        platform,
        home,
        tools,
        (home / ".pki" / "nssdb" / "cert9.db").is_file(),
        tuple(profiles),
        root,
    )


def ca_facts(authority: Authority) -> CA:
    cert = authority.cert
    return CA(
        authority.cert_path,
        authority.nickname,
        authority.fingerprint,
        cert.fingerprint(hashes.SHA1()).hex(),  # noqa: S303  # the key macOS looks it up by
        format(cert.serial_number, "x"),
    )


def run(
    system: bool,
    print_only: bool,
    uninstall: bool,
    env: Mapping[str, str] = os.environ,
    out: TextIO = sys.stdout,
) -> int:
    """0 when every store is done or skipped; 1 when a command failed; 2 when the authority
    cannot be had."""
    if uninstall and mkcert_root(env) is None:
        home = data_home(env)
        if not (home / CA_FILE).exists():
            print(f"corsproxy trust: no local authority in {home}: nothing to remove", file=out)
            return 0
    try:
        authority = load_authority(env)
    except AuthorityError as error:
        print(f"corsproxy trust: {error}", file=sys.stderr)
        return 2
    machine = probe(env)
    steps = plan(ca_facts(authority), machine, system, uninstall)
    print(_heading(authority), file=out)
    if print_only:
        for step in steps:
            _print_step(step, machine.platform, out)
        return 0
    failed = False
    for step in steps:
        failed |= not _run_step(step, uninstall, machine.platform, out)
    if not uninstall:
        print("Restart the browsers that are open, for them to see it.", file=out)
    else:
        print(
            f"The authority's files stay in {authority.cert_path.parent}; "
            f"delete {CA_FILE} and {CA_KEY_FILE} there to make a new one on the next start.",
            file=out,
        )
    return 1 if failed else 0


def _heading(authority: Authority) -> str:
    created = " (created now)" if authority.created else ""
    fingerprint = ":".join(
        authority.fingerprint[i : i + 2] for i in range(0, len(authority.fingerprint), 2)
    )
    return f"{authority.describe()}{created}\n  SHA-256 fingerprint: {fingerprint.upper()}"


def shell(command: Command, platform: str) -> str:
    """A command as the user would type it in their shell."""
    if platform == "win32":
        return subprocess.list2cmdline(command)
    return shlex.join(command)


def _print_step(step: Step, platform: str, out: TextIO) -> None:
    if step.skipped and not step.commands:
        print(f"  {step.store}: skipped: {step.skipped}", file=out)
        return
    print(f"  {step.store}:", file=out)
    if step.skipped:
        print(f"    # {step.skipped}", file=out)
    for command in step.commands:
        print(f"    {shell(command, platform)}", file=out)


def _run_step(step: Step, uninstall: bool, platform: str, out: TextIO) -> bool:
    """Run one store's commands; False when one failed. Says what happened on one line, and the
    commands to run by hand when it did not happen."""
    if step.skipped:
        print(f"  {step.store}: skipped: {step.skipped}", file=out)
        _print_commands(step.commands, platform, out, "to do it yourself")
        return True
    if step.present is not None:
        there = _call(step.present)[0] == 0
        if there and not uninstall:
            print(f"  {step.store}: done (it was there already)", file=out)
            return True
        if not there and uninstall:
            print(f"  {step.store}: done (it was not there)", file=out)
            return True
    for i, command in enumerate(step.commands):
        status, detail = _call(command)
        if status != 0:
            print(f"  {step.store}: failed: {shell(command, platform)}: {detail}", file=out)
            _print_commands(step.commands[i:], platform, out, "run it yourself")
            return False
    print(f"  {step.store}: {'removed' if uninstall else 'done'}", file=out)
    return True


def _print_commands(commands: Sequence[Command], platform: str, out: TextIO, what: str) -> None:
    if commands:
        print(f"    {what}: " + " && ".join(shell(c, platform) for c in commands), file=out)


def _call(command: Command) -> tuple[int, str]:
    """(exit status, the last line it printed on stderr or stdout)."""
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT)
    except (OSError, subprocess.SubprocessError) as error:
        return 127, str(error)
    said = (done.stderr.strip() or done.stdout.strip()).splitlines()
    return done.returncode, said[-1] if said else f"exit status {done.returncode}"

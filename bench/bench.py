"""corsproxy side by side with nginx and the Node CORS proxies, driven by wrk; a markdown table.

usage: python bench/bench.py [--peers] [--seconds 10] [--rounds 3]

Starts an upstream without CORS (nginx, or bench/upstream.py when nginx is absent) and the
targets in front of it: corsproxy with its access log on, and when installed nginx with a
careful CORS config, cors-anywhere and local-cors-proxy. Every target is checked with one
request per case, then measured: targets interleaved (their order rotated each round),
several rounds, medians, and every ratio taken within one round. --peers installs nginx and
wrk (apt) and the Node peers (npm, into bench/.peers).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path

import checks
import report
import targets
from drive import CASES, Sample, measure
from targets import Target

HERE = Path(__file__).resolve().parent
ADD_PEERS = "add it with: python bench/bench.py --peers"
Starter = tuple[str, bool, Callable[[], Target]]  # (name, installed, start)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", action="store_true", help="install nginx, wrk, Node peers")
    parser.add_argument("--seconds", type=int, default=10, help="length of one wrk run")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=2, help="seconds of GET per target first")
    parser.add_argument(
        "--workers",
        type=int,
        default=os.cpu_count() or 1,
        metavar="N",
        help="also measure `corsproxy serve --workers N` (default: one per core; 1: skip)",
    )
    parser.add_argument(
        "--corsproxy-arg",
        action="append",
        default=[],
        metavar="ARG",
        help="extra argument for corsproxy serve (repeatable), e.g. --corsproxy-arg=--workers=2",
    )
    parser.add_argument(
        "--corsproxy-row",
        action="append",
        default=[],
        metavar="FLAGS",
        help="one more corsproxy row with these serve flags (repeatable), named after them, "
        "e.g. --corsproxy-row=--no-inspector or --corsproxy-row='--https --workers=2'",
    )
    parser.add_argument(
        "--corsproxy-command",
        action="append",
        default=[],
        metavar="LABEL=COMMAND",
        help="one more corsproxy row run by COMMAND instead of `python -m corsproxy`, named "
        "`corsproxy LABEL`, e.g. --corsproxy-command='at 4404143=/tmp/old/.venv/bin/corsproxy'",
    )
    parser.add_argument(
        "--inspector-open",
        action="store_true",
        help="one more corsproxy row with a subscriber on the inspector's event stream",
    )
    parser.add_argument(
        "--nginx-buffers",
        default="",
        metavar="SIZE",
        help="proxy buffers for the nginx target, e.g. 64k (default: nginx's own, 4k)",
    )
    parser.add_argument("--json", type=Path, help="also write every sample to this file")
    parser.add_argument(
        "--table-from", type=Path, metavar="JSON", help="print the table of an earlier --json run"
    )
    return parser.parse_args()


def start_all(workdir: Path, options: argparse.Namespace, found: list[Target]) -> list[str]:
    """The upstream, then each target that is installed, into found; lines for those skipped."""
    upstream = targets.start_upstream(workdir)
    found.append(upstream)
    up = int(upstream.base.rsplit(":", 1)[1])
    skipped: list[str] = []
    starters: list[Starter] = [
        (
            "nginx",
            bool(targets.nginx_binary()),
            lambda: targets.start_nginx_cors(workdir, up, options.nginx_buffers),
        ),
        ("corsproxy", True, lambda: targets.start_corsproxy(workdir, up, options.corsproxy_arg)),
        (
            "corsproxy with workers",
            options.workers > 1,
            lambda: targets.start_corsproxy(
                workdir, up, [*options.corsproxy_arg, f"--workers={options.workers}"]
            ),
        ),
        *corsproxy_rows(workdir, up, options),
        ("reference proxy", True, lambda: targets.start_reference(workdir, up)),
        (
            "cors-anywhere",
            bool(targets.node_peer("cors-anywhere")),
            lambda: targets.start_cors_anywhere(workdir, up),
        ),
        (
            "local-cors-proxy",
            bool(targets.node_peer("local-cors-proxy")),
            lambda: targets.start_local_cors_proxy(workdir, up),
        ),
    ]
    for name, installed, start in starters:
        if installed:
            found.append(start())
        else:
            skipped.append(f"skipped {name}: not installed ({ADD_PEERS})")
    return skipped


def corsproxy_rows(workdir: Path, up: int, options: argparse.Namespace) -> list[Starter]:
    """One starter per --corsproxy-row: the common --corsproxy-arg flags, then the row's own."""

    def starter(flags: str) -> Callable[[], Target]:
        extra = [*options.corsproxy_arg, *shlex.split(flags)]
        return lambda: targets.start_corsproxy(workdir, up, extra, label=flags)

    def other(label: str, command: str) -> Callable[[], Target]:
        args = shlex.split(command)
        return lambda: targets.start_corsproxy(workdir, up, options.corsproxy_arg, label, args)

    def watched() -> Target:
        label = "inspector page open"
        return targets.watch_inspector(
            targets.start_corsproxy(workdir, up, options.corsproxy_arg, label)
        )

    rows: list[Starter] = [(f"corsproxy {f}", True, starter(f)) for f in options.corsproxy_row]
    if options.inspector_open:
        rows.append(("corsproxy inspector page open", True, watched))
    for spec in options.corsproxy_command:
        label, _, command = spec.partition("=")
        rows.append((f"corsproxy {label}", True, other(label, command)))
    return rows


def checked(found: list[Target]) -> tuple[list[Target], list[str]]:
    """The targets that answer every case correctly, and a line for each one that does not."""
    good, dropped = [], []
    for target in found:
        problems = checks.check(target)
        if problems:
            dropped.append(f"dropped {target.name}: " + "; ".join(problems))
        else:
            good.append(target)
    return good, dropped


def run_rounds(upstream: Target, found: list[Target], options: argparse.Namespace) -> report.Rounds:
    """Round after round: each case, each target in an order rotated every round."""
    rounds: report.Rounds = []
    warm = next(c for c in CASES if c.key == "get64")
    for target in found if options.warmup > 0 else []:
        measure(target.pid, [], target.url(warm.path), warm, options.warmup)
    for number in range(options.rounds):
        shift = number % len(found)
        order = found[shift:] + found[:shift]
        round_: dict[str, dict[str, Sample]] = {}
        for case in CASES:
            for target in order:
                others = [] if target is upstream else [upstream.pid]
                sample = measure(target.pid, others, target.url(case.path), case, options.seconds)
                round_.setdefault(case.key, {})[target.name] = sample
                progress(number, options.rounds, case.key, target.name, sample)
        rounds.append(round_)
    return rounds


def progress(number: int, total: int, case: str, name: str, sample: Sample) -> None:
    figure = f"{sample.mb_per_s:,.0f} MB/s" if case == "download" else f"{sample.rps:,.0f} req/s"
    print(f"round {number + 1}/{total} {case:<12} {name:<26} {figure}", file=sys.stderr)


def command_output(args: list[str]) -> str:
    try:
        done = subprocess.run(args, capture_output=True, text=True, timeout=10, check=False)
    except OSError:
        return "?"
    return (done.stdout + done.stderr).strip().splitlines()[0] if done.stdout + done.stderr else "?"


def machine_line() -> str:
    """The machine (CPU model from /proc/cpuinfo: figures differ by machine kind) and commit."""
    model = "?"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    commit = command_output(["git", "-C", str(HERE), "describe", "--always", "--dirty"])
    return (
        f"machine: {platform.node()}, {len(os.sched_getaffinity(0))} cores ({model}), "
        f"Linux {platform.release()}; corsproxy at {commit}"
    )


def machine_lines(found: list[Target]) -> list[str]:
    """Where and what was measured: machine, commit, versions, corsproxy's start-up line."""
    lines = [machine_line(), f"wrk: {command_output(['wrk', '-v'])}"]
    if nginx := targets.nginx_binary():
        lines.append(f"nginx: {command_output([nginx, '-v'])}")
    if shutil.which("node") and any("Node" in t.name for t in found):
        lines.append(f"node: {command_output(['node', '--version'])}")
    for target in found:
        lines += target.notes
        if target.name.startswith("corsproxy"):
            lines.append(f"{target.name} start-up line: {startup_line(target)}")
    return lines


def startup_line(target: Target) -> str:
    """corsproxy's first line; it says whether uvloop is in use (if it does not, we check)."""
    text = target.log.read_text(errors="replace").splitlines()
    line = next((t for t in text if t.startswith("corsproxy:")), "(none seen)")
    if "uvloop" not in line:
        try:
            import uvloop  # noqa: F401
        except ImportError:
            line += "  [line does not name the event loop; uvloop not importable]"
        else:
            line += "  [line does not name the event loop; uvloop is importable]"
    return line


def access_log_line(target: Target, rounds: report.Rounds) -> str:
    """How many lines corsproxy's access log got, against the requests it was sent."""
    sent = sum(c[target.name].requests for r in rounds for c in r.values() if target.name in c)
    lines = 0
    with target.log.open("rb") as log:
        while chunk := log.read(1 << 24):
            lines += chunk.count(b"\n")
    return (
        f"{target.name} access log (--log-level info, to a file): {lines:,} lines"
        f" for {sent:,} requests measured (plus the warm-up and checks)"
    )


def foreign_load(rounds: report.Rounds) -> str:
    """How much CPU processes outside the benchmark took while wrk ran (0 on a quiet machine)."""
    loads = sorted(s.foreign_cpu for r in rounds for c in r.values() for s in c.values())
    disturbed = sum(load >= 0.1 for load in loads)
    verdict = "quiet" if not disturbed else f"{disturbed} of {len(loads)} runs disturbed"
    return (
        f"other processes' CPU while wrk ran: median {loads[len(loads) // 2]:.2f} cores,"
        f" at most {loads[-1]:.2f} ({verdict}; 0.1 cores or more counts as disturbed)"
    )


def busy_neighbours() -> list[str]:
    """Heavy jobs we know of on this machine (the soak test) that would disturb the figures."""
    done = subprocess.run(["pgrep", "-af", "stress/soak.py"], capture_output=True, text=True)
    return [f"warning: a soak test is running: {line}" for line in done.stdout.splitlines()]


def bench(workdir: Path, options: argparse.Namespace) -> tuple[report.Rounds, list[str], list[str]]:
    """Start, check, measure, stop: the rounds, the target names measured, notes for the table."""
    targets.prepare_files(workdir)
    started: list[Target] = []
    try:
        skipped = start_all(workdir, options, started)
        found, dropped = checked(started)
        for line in skipped + dropped:
            print(line, file=sys.stderr)
        if started[0] not in found:
            raise SystemExit("bench: the upstream itself answers wrongly; nothing measured")
        rounds = run_rounds(started[0], found, options)
        notes = machine_lines(found) + skipped + dropped
        notes += [access_log_line(t, rounds) for t in found if t.name.startswith("corsproxy")]
    finally:
        for target in reversed(started):
            targets.stop_target(target)
    return rounds, [t.name for t in found], notes


def print_results(rounds: report.Rounds, names: list[str], notes: list[str]) -> None:
    print(report.table(rounds, names))
    print()
    print("\n".join(f"- {line}" for line in notes))


def save(path: Path, rounds: report.Rounds, names: list[str], notes: list[str]) -> None:
    raw = [{c: {n: asdict(s) for n, s in t.items()} for c, t in r.items()} for r in rounds]
    path.write_text(json.dumps({"names": names, "notes": notes, "rounds": raw}, indent=1))


def load(path: Path) -> tuple[report.Rounds, list[str], list[str]]:
    saved = json.loads(path.read_text())
    rounds = [
        {c: {n: Sample(**s) for n, s in t.items()} for c, t in r.items()} for r in saved["rounds"]
    ]
    names = saved.get("names") or list(rounds[0][CASES[0].key])
    return rounds, names, saved["notes"]


def main() -> int:
    options = parse_args()
    if options.table_from:
        print_results(*load(options.table_from))
        return 0
    begun = time.monotonic()
    if options.peers:
        targets.install_peers()
    if shutil.which("wrk") is None:
        print(f"bench: needs wrk (apt-get install -y wrk, or {ADD_PEERS})", file=sys.stderr)
        return 2
    warnings = busy_neighbours()
    print("\n".join(warnings), file=sys.stderr)
    with tempfile.TemporaryDirectory(prefix="corsproxy-bench-") as tmp:
        rounds, names, notes = bench(Path(tmp), options)
    notes += warnings + [foreign_load(rounds)]
    notes += report.problems(rounds) or ["every answer was 2xx, no socket errors"]
    minutes = (time.monotonic() - begun) / 60
    notes.append(f"{options.rounds} rounds of {options.seconds} s per case; took {minutes:.1f} min")
    print_results(rounds, names, notes)
    if options.json:
        save(options.json, rounds, names, notes)
    return 0


if __name__ == "__main__":
    sys.exit(main())

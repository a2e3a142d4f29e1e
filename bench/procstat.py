"""What the kernel says about a target while wrk drives it: CPU ticks, resident memory.

A target is a process tree (nginx's master and workers, corsproxy with its workers), so
every reading sums over the root and all of its descendants found at the time of reading.
"""

from __future__ import annotations

import os
import resource
from dataclasses import dataclass
from pathlib import Path

TICKS_PER_SECOND = os.sysconf("SC_CLK_TCK")


def tree(root: int) -> list[int]:
    """The root pid and every descendant alive now (via /proc/PID/task/TID/children)."""
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        for task in Path(f"/proc/{pid}/task").glob("*"):
            try:
                todo.extend(int(child) for child in (task / "children").read_text().split())
            except OSError:
                continue
    return found


def cpu_seconds(root: int) -> float:
    """utime + stime of the whole tree, in seconds (all threads of each process included)."""
    ticks = 0
    for pid in tree(root):
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # fields 14 and 15 of proc(5): utime, stime
    return ticks / TICKS_PER_SECOND


def memory_kib(root: int, field: str) -> int:
    """Sum of one /proc/PID/status field (VmRSS or VmHWM) over the tree, in KiB."""
    total = 0
    for pid in tree(root):
        try:
            status = Path(f"/proc/{pid}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith(field + ":"):
                total += int(line.split()[1])
    return total


def reset_peak(root: int) -> bool:
    """Reset VmHWM to the current RSS (proc(5), clear_refs value 5); False if not allowed."""
    try:
        for pid in tree(root):
            Path(f"/proc/{pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


@dataclass(frozen=True, slots=True)
class MachineCpu:
    """CPU time spent machine-wide, and by this script's waited-for children (wrk)."""

    busy: float
    children: float

    @staticmethod
    def now() -> MachineCpu:
        with open("/proc/stat") as stat:
            fields = [int(value) for value in stat.readline().split()[1:]]
        # user, nice, system: what processes are charged with (irq and softirq time, much of
        # it loopback traffic, is charged to no process, so it is left out on both sides)
        busy = sum(fields[:3])
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        return MachineCpu(busy / TICKS_PER_SECOND, usage.ru_utime + usage.ru_stime)

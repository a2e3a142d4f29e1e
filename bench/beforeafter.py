"""Before/after from one bench.py --json run: each row against a baseline row of the same run.

usage: python bench/beforeafter.py RESULTS.json BASELINE [ROW ...]

BASELINE is a row's name, e.g. "corsproxy at 4404143" (a --corsproxy-command row running an
earlier commit); the ROWs default to every corsproxy row. Only the request-path columns are
shown: GET latency and rate, preflight rate, CPU per GET. Each ratio is taken within a round,
then the median over rounds, as in bench.py's own table.
"""

from __future__ import annotations

import sys
from pathlib import Path

import report
from report import COLUMNS, compared, fmt, fmt_compared, median, value

from bench import load

KEYS = ("get1", "get64", "preflight64")
SHOWN = tuple(c for c in COLUMNS if c.case in KEYS or c.field == "cpu_us_per_request")


def main(path: Path, baseline: str, rows: list[str]) -> str:
    rounds, names, _ = load(path)
    rows = rows or [n for n in names if n.startswith(report.CORSPROXY) and n != baseline]
    lines = [
        "| row | " + " | ".join(c.title for c in SHOWN) + " |",
        "|---" * (len(SHOWN) + 1) + "|",
    ]
    for name in [baseline, *rows]:
        cells = [fmt(median([value(r, c, name) for r in rounds]), c.unit) for c in SHOWN]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    for name in rows:
        cells = [
            fmt_compared(compared(rounds, c, name, lambda r, c: value(r, c, baseline)), c)
            for c in SHOWN
        ]
        lines.append(f"| *{name} ÷ {baseline}* | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    print(main(Path(sys.argv[1]), sys.argv[2], sys.argv[3:]))

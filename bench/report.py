"""The markdown table: medians over rounds per target, then ratio rows computed per round.

A Rounds value maps round -> case key -> target name -> Sample. Every ratio is taken
between two samples of the same round and only then reduced to a median, so a slow round
(another process busy, a CPU frequency dip) moves both sides of a ratio together.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

# round -> case key -> target name -> sample: a drive.Sample, or pageload's PageSample
Rounds = list[dict[str, dict[str, Any]]]
DIRECT = "direct to the upstream"
NGINX = "nginx with a CORS config"
CORSPROXY = "corsproxy"
REFERENCE = "minimal aiohttp proxy (reference)"
NODE_PEERS = ("cors-anywhere (Node)", "local-cors-proxy (Node)")


@dataclass(frozen=True, slots=True)
class Column:
    """`Column("GET 64 conns req/s", "get64", "rps", ...)`: one column of the table."""

    title: str
    case: str  # "" = every case of the round (peak memory)
    field: str
    better: Literal["higher", "lower"]
    unit: Literal["ms", "whole ms", "count", "MB/s", "MiB", "us"]
    compare: Literal["ratio", "difference"] = "ratio"


COLUMNS = (
    Column("GET 1 conn p50", "get1", "p50_ms", "lower", "ms", compare="difference"),
    Column("GET 64 conns req/s", "get64", "rps", "higher", "count"),
    Column("preflight 64 conns req/s", "preflight64", "rps", "higher", "count"),
    Column("POST 1 KiB 64 conns req/s", "post64", "rps", "higher", "count"),
    Column("64 MiB download MB/s", "download", "mb_per_s", "higher", "MB/s"),
    Column("peak RSS", "", "peak_kib", "lower", "MiB"),
    Column("RSS growth in download", "download", "growth_kib", "lower", "MiB", "difference"),
    Column("CPU µs/req (GET 64 conns)", "get64", "cpu_us_per_request", "lower", "us"),
)


def value(round_: dict[str, dict[str, Any]], column: Column, target: str) -> float | None:
    """One round's figure for a target, or None when it was not measured (or not measurable)."""
    if column.case == "":
        peaks = [c[target].peak_kib for c in round_.values() if target in c]
        return max(peaks) / 1024 if peaks else None
    sample = round_.get(column.case, {}).get(target)
    if sample is None:
        return None
    figure = getattr(sample, column.field)
    if column.field == "growth_kib":
        return None if figure < 0 else figure / 1024
    return figure


def median(values: list[float | None]) -> float | None:
    present = [v for v in values if v is not None]
    return statistics.median(present) if present else None


def best_of(round_: dict[str, dict[str, Any]], column: Column, names: list[str]):
    """The better figure among several targets in one round (the faster Node peer)."""
    figures = [v for v in (value(round_, column, n) for n in names) if v is not None]
    if not figures:
        return None
    return max(figures) if column.better == "higher" else min(figures)


def compared(rounds: Rounds, column: Column, mine: str, ref: Callable) -> float | None:
    """Median over rounds of mine/ref (or mine-ref), each pair taken from the same round."""
    results = []
    for round_ in rounds:
        a, b = value(round_, column, mine), ref(round_, column)
        if a is None or b is None or (column.compare == "ratio" and b == 0):
            continue
        results.append(a - b if column.compare == "difference" else a / b)
    return median(results)


def fmt(figure: float | None, unit: str) -> str:
    if figure is None:
        return "n/a"
    if unit == "ms":
        return f"{figure:.2f} ms"
    if unit == "whole ms":
        return f"{figure:,.0f} ms"
    if unit == "MiB":
        return f"{figure:.1f} MiB" if abs(figure) < 10 else f"{figure:,.0f} MiB"
    return f"{figure:,.0f}"


def fmt_compared(figure: float | None, column: Column) -> str:
    if figure is None:
        return "n/a"
    if column.compare == "difference":
        shown = fmt(abs(figure), column.unit)
        if shown.strip("0. MiBms") == "":
            return "±" + shown  # rounds to zero either way
        return ("+" if figure >= 0 else "−") + shown
    return f"{figure:.2f}×"


def ratio_rows(names: list[str]) -> list[tuple[str, str, Callable]]:
    """(label, target, reference) for each ratio row that the targets present allow."""

    def single(ref: str) -> Callable:
        return lambda round_, column: value(round_, column, ref)

    rows = []
    if DIRECT in names:
        rows += [(f"*{n} ÷ direct*", n, single(DIRECT)) for n in names if n != DIRECT]
    if NGINX in names:
        rows += [(f"*{n} ÷ nginx*", n, single(NGINX)) for n in names if n not in (DIRECT, NGINX)]
    ours = [n for n in names if n.startswith(CORSPROXY)]
    if REFERENCE in names:
        rows += [(f"*{n} ÷ the reference proxy*", n, single(REFERENCE)) for n in ours]
    if CORSPROXY in names:  # a --corsproxy-row against the plain corsproxy row
        rows += [
            (f"*{n} ÷ corsproxy*", n, single(CORSPROXY)) for n in ours if n.startswith("corsproxy ")
        ]
    peers = [n for n in names if n in NODE_PEERS]
    if peers:

        def faster(round_, column):
            return best_of(round_, column, peers)

        rows += [(f"*{n} ÷ the faster Node peer*", n, faster) for n in ours]
    return sorted(rows, key=lambda row: 0 if row[1].startswith(CORSPROXY) else 1)


def table(rounds: Rounds, names: list[str], columns: tuple[Column, ...] = COLUMNS) -> str:
    """The markdown table: one row per target (medians), then the ratio rows."""
    lines = [
        "| target | " + " | ".join(c.title for c in columns) + " |",
        "|---" * (len(columns) + 1) + "|",
    ]
    for name in names:
        cells = []
        for column in columns:
            per_round = [value(r, column, name) for r in rounds]
            figures = [v for v in per_round if v is not None]
            overall = max(figures, default=None) if column.case == "" else median(per_round)
            cells.append(fmt(overall, column.unit))
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    for label, mine, ref in ratio_rows(names):
        cells = [fmt_compared(compared(rounds, c, mine, ref), c) for c in columns]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def problems(rounds: Rounds) -> list[str]:
    """Every (target, case) that saw a non-2xx answer or a socket error, summed over rounds."""
    totals: dict[tuple[str, str], list[int]] = {}
    for round_ in rounds:
        for case, samples in round_.items():
            for name, sample in samples.items():
                seen = totals.setdefault((name, case), [0, 0, 0])
                seen[0] += sample.bad_status
                seen[1] += sample.socket_errors
                seen[2] += sample.requests
    return [
        f"{name}, {case}: {bad:,} responses ≥ 400, {errors:,} socket errors of {total:,} requests"
        for (name, case), (bad, errors, total) in totals.items()
        if bad or errors
    ]

"""What every figure shares: counts, alternating rounds, metrics with targets, the table and the JSON.

Every figure is measured for this project ("ours": ``ManagedSession`` over a connection manager) and for
the raw SDK ("raw": ``stdio_client`` / ``streamable_http_client`` + ``ClientSession``) in the same run,
against the same servers. Timed work is done in rounds that alternate ours and raw, and swap which goes
first every round (``sides``), so that drift (other load on the machine, CPU frequency, caches) lands on
both sides. A ``Metric`` holds the samples of both sides and its targets; the ``Report`` prints the median
over rounds with the min and max, the ratio of the medians ours / raw, each target and "met"/"MISSED".
Nothing here asserts: a missed target is printed as MISSED and the run still succeeds.
"""

from __future__ import annotations

import argparse
import inspect
import json
import math
import os
import platform
import statistics
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent.parent  # benchmarks/
ROOT = HERE.parent
RESULTS = HERE / "results"
RUN_PY = HERE / "run.py"  # the entry point, also run as a child by figures that need a fresh interpreter

OURS, RAW = "ours", "raw"


@dataclass
class Counts:
    start_rounds: int = 20  # start to initialized (and stop), stdlib server
    demo_rounds: int = 6  # start to initialized, MCPServer demo server (import dominates)
    call_rounds: int = 8
    calls: int = 2000  # sequential calls per round and side
    flight_calls: int = 2000  # calls per round and side with `in_flight` outstanding
    in_flight: int = 32
    stubborn_rounds: int = 3
    fleet_rounds: int = 3
    fleet_size: int = 50
    cycles: int = 1000
    http_rounds: int = 8
    http_calls: int = 300
    floor_spawns: int = 20
    floor_calls: int = 2000
    import_runs: int = 5
    import_rounds: int = 8  # import mcp_connections / --help / import mcp, one fresh interpreter each
    lazy_rounds: int = 3  # 20 demo servers started eagerly (seconds each) vs lazily from a warm cache
    lazy_memory_rounds: int = 2  # a fresh interpreter and 20 (eager) or 3 (lazy) demo servers each
    lazy_call_rounds: int = 5  # first call to a lazy server vs a call to an eager one


QUICK = Counts(
    start_rounds=4,
    demo_rounds=2,
    call_rounds=2,
    calls=300,
    flight_calls=320,
    stubborn_rounds=1,
    fleet_rounds=1,
    fleet_size=10,
    cycles=50,
    http_rounds=2,
    http_calls=50,
    floor_spawns=5,
    floor_calls=300,
    import_runs=2,
    import_rounds=3,
    lazy_rounds=1,
    lazy_memory_rounds=1,
    lazy_call_rounds=2,
)


def log(text: str) -> None:
    print(text, file=sys.stderr, flush=True)


def sides(round_index: int) -> tuple[str, str]:
    """Which side goes first in this round: alternate, so neither always runs on a warmer machine."""
    return (OURS, RAW) if round_index % 2 == 0 else (RAW, OURS)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


# ---- results --------------------------------------------------------------------------------------------


@dataclass
class Metric:
    key: str
    label: str
    unit: str  # "s" (shown as ms), "calls/s", "bytes" (shown as KiB), "count"
    ours: list[float]
    raw: list[float] | None = None
    max_ratio: float | None = None
    min_ratio: float | None = None
    max_ours: float | None = None  # absolute bound on the median of ours, in `unit`
    extra_ok: bool | None = None  # a further condition (e.g. the process tree is dead)
    extra_note: str = ""
    note: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        if not self.raw or not self.ours:
            return None
        raw = statistics.median(self.raw)
        return statistics.median(self.ours) / raw if raw else None

    @property
    def target(self) -> str:
        parts = []
        if self.max_ratio is not None:
            parts.append(f"ratio <= {self.max_ratio:g}")
        if self.min_ratio is not None:
            parts.append(f"ratio >= {self.min_ratio:g}")
        if self.max_ours is not None:
            parts.append(f"< {fmt(self.max_ours, self.unit)}")
        if self.extra_note:
            parts.append(self.extra_note)
        return ", ".join(parts)

    @property
    def met(self) -> bool | None:
        checks: list[bool] = []
        ratio = self.ratio
        if self.max_ratio is not None:
            checks.append(ratio is not None and ratio <= self.max_ratio)
        if self.min_ratio is not None:
            checks.append(ratio is not None and ratio >= self.min_ratio)
        if self.max_ours is not None:
            checks.append(statistics.median(self.ours) < self.max_ours)
        if self.extra_ok is not None:
            checks.append(self.extra_ok)
        return all(checks) if checks else None

    def as_json(self) -> dict[str, Any]:
        def side(values: list[float] | None) -> dict[str, Any] | None:
            if not values:
                return None
            return {
                "median": statistics.median(values),
                "min": min(values),
                "max": max(values),
                "samples": values,
            }

        return {
            "label": self.label,
            "unit": self.unit,
            "ours": side(self.ours),
            "raw": side(self.raw),
            "ratio": self.ratio,
            "target": self.target or None,
            "met": self.met,
            "note": self.note or None,
            **self.details,
        }


def scale(unit: str, value: float) -> tuple[float, str, str]:
    """(factor, suffix, number format) to show figures of `unit` around `value`."""
    if unit == "s":
        ms = abs(value) * 1000
        return 1000, " ms", ".3f" if ms < 1 else ".2f" if ms < 10 else ".1f" if ms < 100 else ".0f"
    if unit == "calls/s":
        return 1, "/s", ",.0f"
    if unit == "bytes":
        return 1 / 1024, " KiB", ",.0f"
    return 1, "", "g"


def fmt(value: float, unit: str) -> str:
    factor, suffix, spec = scale(unit, value)
    return f"{value * factor:{spec}}{suffix}"


def fmt_side(values: list[float] | None, unit: str) -> str:
    if not values:
        return "-"
    med = statistics.median(values)
    factor, suffix, spec = scale(unit, med)
    if len(values) == 1:
        return f"{med * factor:{spec}}{suffix}"
    return f"{med * factor:{spec}} [{min(values) * factor:{spec}}-{max(values) * factor:{spec}}]{suffix}"


class Report:
    def __init__(self, options: argparse.Namespace | None = None) -> None:
        self.options = options or argparse.Namespace()  # the command line, for figures with a switch
        self.metrics: list[Metric] = []
        self.info: dict[str, Any] = {}
        self.latencies: dict[str, dict[str, list[float]]] = {}  # for the chart: pooled call latencies

    def add(self, metric: Metric) -> Metric:
        self.metrics.append(metric)
        status = {True: "met", False: "MISSED", None: ""}[metric.met]
        ratio = f"ratio {metric.ratio:.3f}" if metric.ratio is not None else ""
        log(
            f"  {metric.label}: ours {fmt_side(metric.ours, metric.unit)}, raw {fmt_side(metric.raw, metric.unit)} "
            f"{ratio} {status}"
        )
        if metric.note:
            log(f"    ({metric.note})")
        return metric

    def table(self) -> str:
        head = ("figure", "mcp-connections: median [min-max]", "raw SDK: median [min-max]", "ours/raw", "target", "")
        rows = [head]
        reference = [m for m in self.metrics if m.raw is None]
        for m in self.metrics:
            if m.raw is None:
                continue
            rows.append(
                (
                    m.label,
                    fmt_side(m.ours, m.unit),
                    fmt_side(m.raw, m.unit),
                    f"{m.ratio:.3f}" if m.ratio is not None else "",
                    m.target,
                    {True: "met", False: "MISSED", None: ""}[m.met],
                )
            )
        if reference:
            rows.append(("reference (no library, or the server alone)", "", "", "", "", ""))
            rows.extend(("  " + m.label, fmt_side(m.ours, m.unit), "", "", "", "") for m in reference)
        widths = [max(len(r[i]) for r in rows) for i in range(len(head))]
        lines = []
        for index, row in enumerate(rows):
            lines.append("  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip())
            if index == 0:
                lines.append("  ".join("-" * w for w in widths))
        return "\n".join(lines)


def write_results(report: Report, path: Path, *, quick: bool, elapsed: float) -> None:
    """Every figure with all its samples, and what the run ran on, as one JSON document."""
    document = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "quick": quick,
        "elapsed_s": elapsed,
        "python": platform.python_version(),
        "mcp": metadata.version("mcp"),
        "cpus": os.cpu_count(),
        "load_average": os.getloadavg(),
        "metrics": {m.key: m.as_json() for m in report.metrics},
        "call_latency_samples_s": {
            transport: {side: [round(v, 7) for v in values] for side, values in data.items()}
            for transport, data in report.latencies.items()
        },
        **report.info,
    }
    path.write_text(json.dumps(document, indent=1))


# ---- the registry of figures ---------------------------------------------------------------------------

FigureFn = Callable[[Report, Counts], Awaitable[None] | None]


@dataclass(frozen=True)
class Figure:
    section: str  # the name --only selects it by
    order: int  # the place in the run: related figures next to each other
    run: FigureFn
    available: Callable[[], bool] | None = None  # checked just before it runs; False skips it (with a log line)


FIGURES: list[Figure] = []


def figure(section: str, order: int, available: Callable[[], bool] | None = None) -> Callable[[FigureFn], FigureFn]:
    """Register a figure: ``fn(report, counts)``, plain or ``async``, adds its ``Metric``s to the report."""

    def register(fn: FigureFn) -> FigureFn:
        FIGURES.append(Figure(section, order, fn, available))
        return fn

    return register


def sections() -> list[str]:
    """Section names in the order they run."""
    names: list[str] = []
    for item in sorted(FIGURES, key=lambda f: f.order):
        if item.section not in names:
            names.append(item.section)
    return names


async def run_figures(report: Report, counts: Counts, only: set[str] | None) -> None:
    for item in sorted(FIGURES, key=lambda f: f.order):
        if only is not None and item.section not in only:
            continue
        if item.available is not None and not item.available():
            continue
        result = item.run(report, counts)
        if inspect.isawaitable(result):
            await result

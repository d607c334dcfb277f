"""Benchmarks: mcp-connections against the raw MCP SDK, side by side, in one run.

    .venv/bin/python benchmarks/run.py            # the full run (`make bench`), a few minutes
    .venv/bin/python benchmarks/run.py --quick    # lower counts, for development
    .venv/bin/python benchmarks/run.py --only start,calls

Every figure is measured for this project ("ours": ``ManagedSession`` over a connection manager) and for
the raw SDK ("raw": ``stdio_client`` / ``streamable_http_client`` + ``ClientSession``) in the same run,
against the same servers, in rounds that alternate the two sides (see ``bench/harness.py``). The figures
live in ``bench/``, one module per family; this file runs them, prints the table and writes
``results/latest.json`` and ``results/latest.png``. Nothing here asserts: a missed target is printed as
MISSED and the run still succeeds.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import time
from importlib import metadata
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))  # `bench` beside this file, however it is started

from bench import memory
from bench.chart import chart
from bench.harness import OURS, QUICK, RAW, RESULTS, Counts, Report, run_figures, sections, write_results


async def run(args: argparse.Namespace) -> Report:
    counts = QUICK if args.quick else Counts()
    report = Report(args)
    await run_figures(report, counts, set(args.only.split(",")) if args.only else None)
    report.info["counts"] = counts.__dict__
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="lower counts, for development")
    parser.add_argument("--only", help="comma-separated sections: " + ",".join(sections()))
    parser.add_argument("--fleet-mode", choices=("auto", "group", "sessions"), default=memory.FLEET_MODE)
    parser.add_argument("--fleet-size", type=int, default=50, help=argparse.SUPPRESS)
    parser.add_argument("--child-fleet", choices=(OURS, RAW), help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, default=RESULTS, help="directory for latest.json and latest.png")
    args = parser.parse_args()
    if args.only and (unknown := set(args.only.split(",")) - set(sections())):
        parser.error(f"unknown sections: {', '.join(sorted(unknown))} (known: {', '.join(sections())})")

    if args.child_fleet:
        result = asyncio.run(memory.fleet_child(args.child_fleet, args.fleet_size, memory.fleet_mode(args.fleet_mode)))
        print(json.dumps(result))
        return

    began = time.perf_counter()
    report = asyncio.run(run(args))
    elapsed = time.perf_counter() - began

    print()
    print(
        f"mcp-connections vs raw MCP SDK {metadata.version('mcp')}, Python {platform.python_version()}, "
        f"{os.cpu_count()} CPUs, {'--quick' if args.quick else 'full run'}, {elapsed:.0f} s"
    )
    print(report.table())
    missed = [m.label for m in report.metrics if m.met is False]
    print()
    print("all targets met" if not missed else "targets missed: " + "; ".join(missed))

    args.output.mkdir(parents=True, exist_ok=True)
    write_results(report, args.output / "latest.json", quick=args.quick, elapsed=elapsed)
    chart(report, args.output / "latest.png")
    print(f"wrote {args.output / 'latest.json'} and {args.output / 'latest.png'}")


if __name__ == "__main__":
    main()

"""Import times, each in a fresh interpreter: the SDK's server side, this package, and its command line.

``import mcp_connections`` loads transports, sessions and the group on first use of their names, and
``mcp-connections --help`` loads none of them; both are timed against ``import mcp`` in the same rounds.
"""

from __future__ import annotations

import re
import subprocess
import sys
import time
from pathlib import Path

from .harness import OURS, RAW, Counts, Metric, Report, figure, log, sides

# Bound on one fresh interpreter: importing the SDK takes 1-2 s on a loaded machine.
CHILD_TIMEOUT = 60
# An import timed inside the interpreter (its start-up is the same for both sides and left out), with the
# number of modules it brought in.
IMPORT_CODE = "import sys, time; t = time.perf_counter(); import {}; print(time.perf_counter() - t, len(sys.modules))"


@figure("demo", 70)
def bench_import_time(report: Report, counts: Counts) -> None:
    """What a server written with MCPServer spends importing the SDK before it can answer anything."""
    log("import time of mcp.server.mcpserver")
    code = "import time; t = time.perf_counter(); import mcp.server.mcpserver; print(time.perf_counter() - t)"
    samples = [
        float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout)
        for _ in range(counts.import_runs)
    ]
    # The interpreter's own account (it slows imports down a little), for where the time goes.
    out = subprocess.run(
        [sys.executable, "-X", "importtime", "-c", "import mcp.server.mcpserver"],
        capture_output=True,
        text=True,
        check=True,
    ).stderr
    # Per top-level package, the cumulative time of its first import (nested packages overlap).
    packages: dict[str, float] = {}
    for line in out.splitlines():
        match = re.match(r"import time:\s+\d+\s+\|\s+(\d+)\s+\|\s*(\S+)\s*$", line)
        if match:
            root = match.group(2).split(".")[0]
            packages[root] = max(packages.get(root, 0.0), int(match.group(1)) / 1e6)
    heaviest = dict(sorted(((k, v) for k, v in packages.items() if k != "mcp"), key=lambda kv: -kv[1])[:8])
    report.add(
        Metric(
            "import_mcpserver",
            "server side: import mcp.server.mcpserver",
            "s",
            samples,
            note="timed inside a fresh interpreter",
            details={"importtime_mcp_s": packages.get("mcp"), "importtime_heaviest_s": heaviest},
        )
    )
    log(
        f"  -X importtime: mcp {packages.get('mcp', 0.0) * 1e3:.0f} ms in all; the heaviest packages in it: "
        + ", ".join(f"{k} {v * 1e3:.0f} ms" for k, v in heaviest.items())
    )


def timed_import(module: str) -> tuple[float, float, int]:
    """(seconds of the import inside a fresh interpreter, seconds of the whole process, modules loaded)."""
    t0 = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", IMPORT_CODE.format(module)],
        capture_output=True,
        text=True,
        check=True,
        timeout=CHILD_TIMEOUT,
    )
    wall = time.perf_counter() - t0
    seconds, count = out.stdout.split()
    return float(seconds), wall, int(count)


def timed_process(command: list[str]) -> float:
    """Seconds from spawn to exit of ``command``, its output discarded: what a user waits for."""
    t0 = time.perf_counter()
    subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, timeout=CHILD_TIMEOUT)
    return time.perf_counter() - t0


def cli_command() -> list[str]:
    """The installed ``mcp-connections`` script (what a user runs), else the module."""
    script = Path(sys.executable).parent / "mcp-connections"
    return [str(script)] if script.exists() else [sys.executable, "-m", "mcp_connections"]


@figure("imports", 75)
def bench_package_import(report: Report, counts: Counts) -> None:
    rounds = counts.import_rounds
    log(f"import mcp_connections and mcp-connections --help against import mcp: {rounds} rounds, fresh interpreters")
    help_command = [*cli_command(), "--help"]
    for module in ("mcp_connections", "mcp"):  # warm-up: byte code and the page cache
        timed_import(module)
    timed_process(help_command)
    imports: dict[str, list[float]] = {OURS: [], RAW: []}
    walls: dict[str, list[float]] = {OURS: [], RAW: []}
    modules: dict[str, int] = {}
    start: list[float] = []
    for r in range(rounds):
        for side in sides(r):
            if side == OURS:
                seconds, _, modules[OURS] = timed_import("mcp_connections")
                imports[OURS].append(seconds)
                walls[OURS].append(timed_process(help_command))
            else:
                seconds, wall, modules[RAW] = timed_import("mcp")
                imports[RAW].append(seconds)
                walls[RAW].append(wall)
        start.append(timed_process([sys.executable, "-c", "pass"]))
    report.add(
        Metric(
            "import_package",
            "import mcp_connections (raw: import mcp)",
            "s",
            imports[OURS],
            imports[RAW],
            max_ratio=1.1,
            note=f"timed inside a fresh interpreter; modules loaded: ours {modules[OURS]}, raw {modules[RAW]}",
            details={"modules": modules},
        )
    )
    report.add(
        Metric(
            "cli_help",
            "mcp-connections --help, whole process (raw: python -c 'import mcp')",
            "s",
            walls[OURS],
            walls[RAW],
            max_ours=0.150,
            note="spawn to exit, interpreter start-up included",
        )
    )
    report.add(Metric("python_start", "interpreter start-up: python -c pass", "s", start))

"""Start to initialized and stop: the stdlib server, the MCPServer demo server, and a stubborn server."""

from __future__ import annotations

import contextlib
import gc
import sys
import tempfile
import time
from pathlib import Path

import psutil
from mcp.client.stdio import StdioServerParameters

from .clients import DEMO_SERVER, MISBEHAVING, STDLIB_SERVER, Client
from .harness import OURS, RAW, Counts, Metric, Report, figure, log, sides


@figure("start", 20)
async def bench_start_stop(report: Report, counts: Counts) -> None:
    log(f"start to initialized and stop, stdlib server: {counts.start_rounds} rounds")
    start: dict[str, list[float]] = {OURS: [], RAW: []}
    stop: dict[str, list[float]] = {OURS: [], RAW: []}
    for side in (OURS, RAW):  # warm-up: lazy imports, caches
        await (await Client.open_stdio(side, STDLIB_SERVER)).close()
    for r in range(counts.start_rounds):
        for side in sides(r):
            gc.collect()
            t0 = time.perf_counter()
            client = await Client.open_stdio(side, STDLIB_SERVER)
            t1 = time.perf_counter()
            await client.close()
            t2 = time.perf_counter()
            start[side].append(t1 - t0)
            stop[side].append(t2 - t1)
    report.add(
        Metric("start_stdlib", "start -> initialized (stdlib server)", "s", start[OURS], start[RAW], max_ratio=1.02)
    )
    report.add(
        Metric(
            "stop_stdlib",
            "stop, well-behaved server",
            "s",
            stop[OURS],
            stop[RAW],
            max_ratio=1.0,
            max_ours=0.020,
        )
    )


@figure("demo", 71)
async def bench_demo_start(report: Report, counts: Counts) -> None:
    log(f"start to initialized, MCPServer demo server: {counts.demo_rounds} rounds")
    start: dict[str, list[float]] = {OURS: [], RAW: []}
    for r in range(counts.demo_rounds):
        for side in sides(r):
            gc.collect()
            t0 = time.perf_counter()
            client = await Client.open_stdio(side, DEMO_SERVER)
            start[side].append(time.perf_counter() - t0)
            await client.close()
    report.add(
        Metric(
            "start_mcpserver",
            "start -> initialized (MCPServer)",
            "s",
            start[OURS],
            start[RAW],
            max_ratio=1.02,
        )
    )


# ---- a server that ignores stdin EOF and SIGTERM ----------------------------------------------------------


def tree_dead(pids: list[int]) -> bool:
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                return False
        except psutil.NoSuchProcess:
            continue
    return True


@figure("stubborn", 50)
async def bench_stubborn(report: Report, counts: Counts) -> None:
    log(f"stop of a server that ignores stdin EOF and SIGTERM (with a grandchild): {counts.stubborn_rounds} rounds")
    stop: dict[str, list[float]] = {OURS: [], RAW: []}
    dead: dict[str, list[bool]] = {OURS: [], RAW: []}
    with tempfile.TemporaryDirectory() as tmp:
        for r in range(counts.stubborn_rounds):
            for side in sides(r):
                pidfile = Path(tmp) / f"{side}{r}.pid"
                params = StdioServerParameters(
                    command=sys.executable,
                    args=[str(MISBEHAVING), "--ignore-eof-and-sigterm", "--grandchild", "--pidfile", str(pidfile)],
                )
                client = await Client.open_stdio(side, params)
                pids = [int(p) for p in pidfile.read_text().split()]
                tree = [pids[0], *(p.pid for p in psutil.Process(pids[0]).children(recursive=True))]
                t0 = time.perf_counter()
                await client.close(timeout=1.0 if side == OURS else None)
                stop[side].append(time.perf_counter() - t0)
                dead[side].append(tree_dead(tree))
                if not tree_dead(tree):  # do not leave it behind for the rest of the run
                    for pid in tree:
                        with contextlib.suppress(psutil.NoSuchProcess):
                            psutil.Process(pid).kill()
    report.add(
        Metric(
            "stop_stubborn",
            "stop, stubborn server (ours: timeout=1)",
            "s",
            stop[OURS],
            stop[RAW],
            max_ours=1.2,
            extra_ok=all(dead[OURS]),
            extra_note="tree dead",
            note="the raw SDK has no stop timeout: 2 s stdin grace + 2 s SIGTERM grace, then SIGKILL; "
            f"process tree dead after stop: ours {all(dead[OURS])}, raw {all(dead[RAW])}",
            details={"tree_dead": dead},
        )
    )

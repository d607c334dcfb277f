"""Start/stop cycles must not leak: descriptors, tasks, threads and children before and after."""

from __future__ import annotations

import asyncio
import gc
import os
import threading
import time
from typing import Any

import psutil

from .clients import STDLIB_SERVER, Client
from .harness import OURS, RAW, Counts, Metric, Report, figure, log


def resources() -> dict[str, int]:
    me = psutil.Process()
    return {
        "fds": len(os.listdir("/proc/self/fd")),
        "tasks": len(asyncio.all_tasks()),
        "threads": threading.active_count(),
        "os_threads": me.num_threads(),
        "children": len(me.children(recursive=True)),
    }


async def settled_resources() -> dict[str, int]:
    """Resources once the dust has settled: child-watcher threads end just after their child."""
    for _ in range(50):
        gc.collect()
        await asyncio.sleep(0.02)
        snapshot = resources()
        if snapshot["children"] == 0 and snapshot["threads"] == 1:
            break
    return snapshot


@figure("cycles", 80)
async def bench_cycles(report: Report, counts: Counts) -> None:
    log(f"{counts.cycles} start/stop cycles per side: descriptors, tasks, threads, children before and after")
    result: dict[str, Any] = {}
    for side in (OURS, RAW):
        for _ in range(3):  # warm-up
            await (await Client.open_stdio(side, STDLIB_SERVER)).close()
        before = await settled_resources()
        t0 = time.perf_counter()
        for _ in range(counts.cycles):
            await (await Client.open_stdio(side, STDLIB_SERVER)).close()
        elapsed = time.perf_counter() - t0
        after = await settled_resources()
        growth = {k: after[k] - before[k] for k in before}
        result[side] = {"before": before, "after": after, "growth": growth, "seconds": elapsed}
        log(f"  {side}: {elapsed:.1f}s, before {before}, after {after}")
    report.info["cycles"] = {"count": counts.cycles, **result}
    report.add(
        Metric(
            "cycle_time",
            f"start+stop cycle (mean of {counts.cycles})",
            "s",
            [result[OURS]["seconds"] / counts.cycles],
            [result[RAW]["seconds"] / counts.cycles],
        )
    )
    for key in ("fds", "tasks", "threads", "children"):
        report.add(
            Metric(
                f"cycles_growth_{key}",
                f"{key} growth after {counts.cycles} cycles",
                "count",
                [result[OURS]["growth"][key]],
                [result[RAW]["growth"][key]],
                extra_ok=result[OURS]["growth"][key] <= 0,
                extra_note="ours: zero growth",
            )
        )

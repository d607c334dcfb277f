"""Many servers at once, and client memory per connection: a fresh interpreter per side and round.

The child is ``run.py --child-fleet SIDE``, so that RSS growth is the client's own and nothing of an earlier
figure is resident. ``--fleet-mode``: "group" times ``ServerGroup`` (src/mcp_connections/group.py),
"sessions" as many ``ManagedSession``s started in one task group; "auto" is "group" when it imports.
"""

from __future__ import annotations

import asyncio
import gc
import json
import subprocess
import sys
import time
from typing import Any

import anyio
import psutil
from mcp import ClientSession
from mcp.client.stdio import stdio_client

from mcp_connections import ManagedSession, StdioConnectionManager

from .clients import STDLIB_SERVER, Client
from .harness import OURS, RAW, RUN_PY, Counts, Metric, Report, figure, log, sides

FLEET_MODE = "auto"  # the default of --fleet-mode


def fleet_mode(requested: str) -> str:
    if requested == "auto":
        try:
            import mcp_connections.group  # noqa: F401
        except ImportError:
            return "sessions"
        return "group"
    return requested


async def fleet_child(side: str, size: int, mode: str) -> dict[str, Any]:
    """Run in a fresh interpreter: start `size` servers at once, time it, and measure our RSS growth."""
    me = psutil.Process()

    async def one_round() -> tuple[float, float, int]:
        """Start all, return (seconds to all initialized, seconds to stop all, RSS while all are up)."""
        if side == RAW:
            go = asyncio.Event()
            ready = 0
            all_ready = asyncio.Event()

            async def serve() -> None:
                nonlocal ready
                async with stdio_client(STDLIB_SERVER) as (read, write), ClientSession(read, write) as session:
                    await session.initialize()
                    ready += 1
                    if ready == size:
                        all_ready.set()
                    await go.wait()

            t0 = time.perf_counter()
            task = asyncio.gather(*(serve() for _ in range(size)))
            await all_ready.wait()
            t1 = time.perf_counter()
            gc.collect()
            rss = me.memory_info().rss
            t2 = time.perf_counter()
            go.set()
            await task
            return t1 - t0, time.perf_counter() - t2, rss
        if mode == "group":
            from mcp_connections.group import ServerGroup

            config = {
                "mcpServers": {
                    f"s{i}": {"command": STDLIB_SERVER.command, "args": list(STDLIB_SERVER.args)} for i in range(size)
                }
            }
            t0 = time.perf_counter()
            group = ServerGroup.from_config(config)
            await group.start()
            t1 = time.perf_counter()
            gc.collect()
            rss = me.memory_info().rss
            t2 = time.perf_counter()
            await group.stop()
            return t1 - t0, time.perf_counter() - t2, rss
        t0 = time.perf_counter()
        sessions = [ManagedSession(StdioConnectionManager(STDLIB_SERVER)) for _ in range(size)]
        async with anyio.create_task_group() as tg:
            for session in sessions:
                tg.start_soon(session.start)
        t1 = time.perf_counter()
        gc.collect()
        rss = me.memory_info().rss
        t2 = time.perf_counter()
        async with anyio.create_task_group() as tg:
            for session in sessions:
                tg.start_soon(session.stop)
        return t1 - t0, time.perf_counter() - t2, rss

    # Warm-up: imports, lazily built validators, the child watcher; then the baseline.
    if side == RAW:
        await (await Client.open_stdio(RAW, STDLIB_SERVER)).close()
    elif mode == "group":
        from mcp_connections.group import ServerGroup  # noqa: F401

        await (await Client.open_stdio(OURS, STDLIB_SERVER)).close()
    else:
        await (await Client.open_stdio(OURS, STDLIB_SERVER)).close()
    gc.collect()
    await asyncio.sleep(0.2)
    baseline = me.memory_info().rss
    start_s, stop_s, rss = await one_round()
    return {"start_s": start_s, "stop_s": stop_s, "rss_baseline": baseline, "rss_up": rss, "size": size}


def run_fleet_child(side: str, size: int, mode: str) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, str(RUN_PY), "--child-fleet", side, "--fleet-size", str(size), "--fleet-mode", mode],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if out.returncode != 0:
        raise RuntimeError(f"fleet child ({side}) failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


@figure("fleet", 60)
def bench_fleet(report: Report, counts: Counts) -> None:
    mode = fleet_mode(getattr(report.options, "fleet_mode", FLEET_MODE))
    how = "ServerGroup" if mode == "group" else "ManagedSessions in a task group"
    log(f"{counts.fleet_size} servers at once (ours: {how}; raw: asyncio.gather), fresh process per side and round")
    start: dict[str, list[float]] = {OURS: [], RAW: []}
    stop: dict[str, list[float]] = {OURS: [], RAW: []}
    rss: dict[str, list[float]] = {OURS: [], RAW: []}
    for r in range(counts.fleet_rounds):
        for side in sides(r):
            result = run_fleet_child(side, counts.fleet_size, mode)
            start[side].append(result["start_s"])
            stop[side].append(result["stop_s"])
            rss[side].append((result["rss_up"] - result["rss_baseline"]) / result["size"])
    n = counts.fleet_size
    report.add(
        Metric(
            "fleet_start",
            f"{n} servers: start -> all initialized",
            "s",
            start[OURS],
            start[RAW],
            max_ratio=1.0,
            note=f"ours: {how}",
            details={"ours_mode": mode},
        )
    )
    report.add(Metric("fleet_stop", f"{n} servers: stop all", "s", stop[OURS], stop[RAW]))
    report.add(Metric("rss_per_connection", "client RSS per connection", "bytes", rss[OURS], rss[RAW], max_ratio=1.1))

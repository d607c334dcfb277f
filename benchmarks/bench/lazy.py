"""Start nothing you do not need: lazy servers with a warm catalogue cache against the same group started eagerly.

These figures compare this project with itself, not with the raw SDK (which has no group): the "ours" column is
the group with every server lazy (``ServerGroup(lazy=True)``) and a warm disk cache, the "raw SDK" column is the
very same group started eagerly. Servers are the bundled demo server (``python -m mcp_connections._demo_server``,
an ``MCPServer``: about half a second to start alone). Each run uses a cache directory of its own (deleted after),
warmed by one eager run first, so the user's real cache is never touched.

- ``lazy_catalogue``: ``group.start()`` to a full catalogue (``await group.tools()``), 20 servers. Target: lazy
  with a warm cache <= 50 ms, however many servers.
- ``lazy_memory``: resident memory of the whole process tree (the client and every server, psutil RSS) of a
  20-server config of which 3 are used, in a fresh interpreter per side and round. Target: lazy <= 25 % of eager.
- ``lazy_first_call``: the first call to a lazy server (its start plus the call) next to a call to an eager one.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .clients import DEMO_SERVER
from .harness import HERE, OURS, RAW, Counts, Metric, Report, figure, log, sides

LAZY, EAGER = OURS, RAW
SERVERS = 20  # the figure: 20 servers, whatever the counts
USED = 3  # servers the memory figure calls


def config(size: int) -> dict[str, Any]:
    return {
        "mcpServers": {
            f"demo{i}": {"command": DEMO_SERVER.command, "args": [*DEMO_SERVER.args, "--name", f"demo{i}"]}
            for i in range(size)
        }
    }


def group(side: str, size: int, cache_dir: Path) -> Any:
    from mcp_connections import ServerGroup

    return ServerGroup.from_config(config(size), errlog=None, lazy=side == LAZY, cache_dir=cache_dir)


async def warm_cache(size: int, cache_dir: Path) -> None:
    """One eager run, which writes every server's lists to the cache."""
    async with group(EAGER, size, cache_dir) as warm:
        await warm.tools()
        await warm.prompts()
        await warm.resources()


@figure("lazy", 80)
async def bench_lazy_catalogue(report: Report, counts: Counts) -> None:
    log(
        f"{SERVERS} demo servers: group.start() -> full catalogue, lazy with a warm cache vs eager: "
        f"{counts.lazy_rounds} rounds"
    )
    cache_dir = Path(tempfile.mkdtemp(prefix="bench-lazy-cache-"))
    try:
        await warm_cache(SERVERS, cache_dir)
        samples: dict[str, list[float]] = {LAZY: [], EAGER: []}
        tool_counts: dict[str, int] = {}
        for r in range(counts.lazy_rounds):
            for side in sides(r):
                g = group(side, SERVERS, cache_dir)
                t0 = time.perf_counter()
                await g.start()
                tools = await g.tools()
                samples[side].append(time.perf_counter() - t0)
                tool_counts[side] = len(tools)
                started = sum(1 for s in g.status().values() if s.pid is not None)
                await g.stop()
                if side == LAZY and started:
                    log(f"    (lazy round {r}: {started} servers started: the cache was not warm)")
        report.add(
            Metric(
                "lazy_catalogue",
                f"{SERVERS} servers: start -> full catalogue, lazy+warm cache (raw column: eager)",
                "s",
                samples[LAZY],
                samples[EAGER],
                max_ours=0.050,
                extra_ok=tool_counts.get(LAZY) == tool_counts.get(EAGER),
                extra_note="same catalogue",
                note=f"{tool_counts.get(LAZY)} tools lazy, {tool_counts.get(EAGER)} eager",
            )
        )
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)


# ---- memory of the whole process tree, in a fresh interpreter per side and round -----------------------------

CHILD = """
import asyncio, json, sys
sys.path.insert(0, {bench!r})
from bench.lazy import memory_child
print(json.dumps(asyncio.run(memory_child({side!r}, {size}, {used}, {cache_dir!r}))))
"""


async def memory_child(side: str, size: int, used: int, cache_dir: str) -> dict[str, Any]:
    """Run in a fresh interpreter: start the group, call `used` servers, and sum the RSS of the process tree."""
    import gc

    import anyio
    import psutil

    g = group(side, size, Path(cache_dir))
    async with g:
        for i in range(used):
            await g.call(f"demo{i}__echo", {"text": "hi"})
        await anyio.sleep(0.5)  # let every server settle after its start
        gc.collect()
        me = psutil.Process()
        tree = [me, *me.children(recursive=True)]
        rss = 0
        for process in tree:
            try:
                rss += process.memory_info().rss
            except psutil.Error:
                continue
        running = sum(1 for s in g.status().values() if s.pid is not None and s.state == "connected")
    return {"rss": rss, "processes": len(tree), "running": running}


def run_memory_child(side: str, size: int, used: int, cache_dir: Path) -> dict[str, Any]:
    code = CHILD.format(bench=str(HERE), side=side, size=size, used=used, cache_dir=str(cache_dir))
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    if out.returncode != 0:
        raise RuntimeError(f"memory child ({side}) failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


@figure("lazy", 81)
async def bench_lazy_memory(report: Report, counts: Counts) -> None:
    log(
        f"resident memory of the process tree, {SERVERS} servers of which {USED} are used, lazy vs eager: "
        f"{counts.lazy_memory_rounds} rounds, a fresh interpreter each"
    )
    cache_dir = Path(tempfile.mkdtemp(prefix="bench-lazy-cache-"))
    try:
        await warm_cache(SERVERS, cache_dir)
        rss: dict[str, list[float]] = {LAZY: [], EAGER: []}
        processes: dict[str, int] = {}
        for r in range(counts.lazy_memory_rounds):
            for side in sides(r):
                result = run_memory_child(side, SERVERS, USED, cache_dir)
                rss[side].append(result["rss"])
                processes[side] = result["processes"]
        report.add(
            Metric(
                "lazy_memory",
                f"process tree RSS, {SERVERS} servers, {USED} used: lazy (raw column: eager)",
                "bytes",
                rss[LAZY],
                rss[EAGER],
                max_ratio=0.25,
                note=f"processes: lazy {processes.get(LAZY)}, eager {processes.get(EAGER)} (client included)",
            )
        )
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)


@figure("lazy", 82)
async def bench_lazy_first_call(report: Report, counts: Counts) -> None:
    log(f"first call to a lazy server (start + call) next to a call to an eager one: {counts.lazy_call_rounds} rounds")
    cache_dir = Path(tempfile.mkdtemp(prefix="bench-lazy-cache-"))
    try:
        await warm_cache(1, cache_dir)
        samples: dict[str, list[float]] = {LAZY: [], EAGER: []}
        for r in range(counts.lazy_call_rounds):
            for side in sides(r):
                async with group(side, 1, cache_dir) as g:
                    if side == EAGER:
                        await g.tools()  # started and listed: the call below is a call, nothing more
                    t0 = time.perf_counter()
                    await g.call("demo0__echo", {"text": "hi"})
                    samples[side].append(time.perf_counter() - t0)
        report.add(
            Metric(
                "lazy_first_call",
                "first call: lazy server (start + call); raw column: eager server (call)",
                "s",
                samples[LAZY],
                samples[EAGER],
                note="no target: the lazy side pays its server's start once, on the first call",
            )
        )
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)

"""Benchmarks: mcp-connections against the raw MCP SDK, side by side, in one run.

    .venv/bin/python benchmarks/run.py            # the full run (`make bench`), a few minutes
    .venv/bin/python benchmarks/run.py --quick    # lower counts, for development

Every figure is measured for this project ("ours": ``ManagedSession`` over a connection manager) and for
the raw SDK ("raw": ``stdio_client`` / ``streamable_http_client`` + ``ClientSession``) in the same run,
against the same servers. Timed work is done in rounds that alternate ours and raw, and swap which goes
first every round, so that drift (other load on the machine, CPU frequency, caches) lands on both sides.
The table gives the median over rounds with the min and max, and the ratio of the medians ours / raw.

Figures go to ``benchmarks/results/latest.json`` and a chart to ``benchmarks/results/latest.png``. Nothing
here asserts: a missed target is printed as MISSED and the run still succeeds.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import math
import os
import platform
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import anyio
import psutil
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from mcp_connections import ManagedSession, StdioConnectionManager

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results"
STDLIB_SERVER = StdioServerParameters(command=sys.executable, args=["-S", str(HERE / "servers" / "stdlib_server.py")])
DEMO_SERVER = StdioServerParameters(command=sys.executable, args=["-m", "mcp_connections._demo_server"])
MISBEHAVING = ROOT / "tests" / "servers" / "misbehaving.py"

# ---- the switch for the 50-server start -------------------------------------------------------------
# "auto": ServerGroup (src/mcp_connections/group.py) when it can be imported, else 50 ManagedSessions
# started in one task group. "group" forces ServerGroup, "sessions" forces the task group.
# Overridden by --fleet-mode.
FLEET_MODE = "auto"

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


# ---- the two clients ------------------------------------------------------------------------------------


class Client:
    """One open connection, ours or raw, with the calls the benchmarks make."""

    def __init__(self, side: str) -> None:
        self.side = side
        self.session: Any = None
        self._stack: AsyncExitStack | None = None
        self._ours: ManagedSession | None = None

    @classmethod
    async def open_stdio(cls, side: str, params: StdioServerParameters) -> Client:
        client = cls(side)
        if side == OURS:
            client._ours = ManagedSession(StdioConnectionManager(params))
            await client._ours.start()
            client.session = client._ours
        else:
            stack = AsyncExitStack()
            client._stack = stack
            read, write = await stack.enter_async_context(stdio_client(params))
            client.session = await stack.enter_async_context(ClientSession(read, write))
            await client.session.initialize()
        return client

    @classmethod
    async def open_http(cls, side: str, url: str) -> Client:
        client = cls(side)
        if side == OURS:
            from mcp_connections.streamable_http import StreamableHttpConnectionManager

            client._ours = ManagedSession(StreamableHttpConnectionManager(url))
            await client._ours.start()
            client.session = client._ours
        else:
            from mcp.client.streamable_http import streamable_http_client

            stack = AsyncExitStack()
            client._stack = stack
            read, write = await stack.enter_async_context(streamable_http_client(url))
            client.session = await stack.enter_async_context(ClientSession(read, write))
            await client.session.initialize()
        return client

    async def echo(self, text: str = "hello") -> None:
        result = await self.session.call_tool("echo", {"text": text})
        if result.is_error:
            raise RuntimeError(f"echo failed: {result}")

    async def close(self, timeout: float | None = None) -> None:
        if self._ours is not None:
            if timeout is None:
                await self._ours.stop()
            else:
                await self._ours.stop(timeout=timeout)
        else:
            assert self._stack is not None
            await self._stack.aclose()


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
    def __init__(self) -> None:
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


# ---- the physical floor ---------------------------------------------------------------------------------


async def bench_floor(report: Report, counts: Counts) -> None:
    """No library at all: spawn the stdlib server and talk JSON lines over asyncio pipes."""
    log("floor: plain asyncio subprocess pipes, no MCP library")
    init = {
        "jsonrpc": "2.0",
        "id": 0,
        "method": "initialize",
        "params": {
            "protocolVersion": "2025-11-25",
            "capabilities": {},
            "clientInfo": {"name": "floor", "version": "0"},
        },
    }
    spawn_init, exits = [], []
    for _ in range(counts.floor_spawns):
        gc.collect()
        t0 = time.perf_counter()
        proc = await asyncio.create_subprocess_exec(
            STDLIB_SERVER.command,
            *STDLIB_SERVER.args,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
        )
        assert proc.stdin is not None and proc.stdout is not None
        proc.stdin.write(json.dumps(init).encode() + b"\n")
        await proc.stdin.drain()
        json.loads(await proc.stdout.readline())
        spawn_init.append(time.perf_counter() - t0)
        t1 = time.perf_counter()
        proc.stdin.close()
        await proc.wait()
        exits.append(time.perf_counter() - t1)
    report.add(Metric("floor_spawn_init", "floor: spawn stdlib server + initialize", "s", spawn_init))
    report.add(Metric("floor_exit", "floor: close stdin -> server exited", "s", exits))

    proc = await asyncio.create_subprocess_exec(
        STDLIB_SERVER.command, *STDLIB_SERVER.args, stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE
    )
    assert proc.stdin is not None and proc.stdout is not None
    samples = []
    gc.collect()
    for i in range(counts.floor_calls + 50):
        t0 = time.perf_counter()
        request = {
            "jsonrpc": "2.0",
            "id": i,
            "method": "tools/call",
            "params": {"name": "echo", "arguments": {"text": "hello"}},
        }
        proc.stdin.write(json.dumps(request).encode() + b"\n")
        await proc.stdin.drain()
        json.loads(await proc.stdout.readline())
        if i >= 50:  # warm-up first
            samples.append(time.perf_counter() - t0)
    proc.stdin.close()
    await proc.wait()
    report.latencies.setdefault("stdio", {})["floor"] = samples
    report.add(Metric("floor_call_p50", "floor: pipe round trip p50", "s", [percentile(samples, 50)]))
    report.add(Metric("floor_call_p99", "floor: pipe round trip p99", "s", [percentile(samples, 99)]))


# ---- 1 and 3: start to initialized, stop ----------------------------------------------------------------


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


# ---- 2: tool-call round trip and throughput -------------------------------------------------------------


async def sequential(client: Client, n: int) -> list[float]:
    samples = []
    perf = time.perf_counter
    for _ in range(n):
        t0 = perf()
        await client.echo()
        samples.append(perf() - t0)
    return samples


async def in_flight(client: Client, n: int, width: int) -> float:
    """Calls per second with `width` calls outstanding at all times (n calls in all)."""
    remaining = n

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            remaining -= 1
            await client.echo()

    t0 = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(width)))
    return n / (time.perf_counter() - t0)


async def bench_calls(
    report: Report, counts: Counts, open_client: Callable[[str], Awaitable[Client]], transport: str, rounds: int, n: int
) -> None:
    """Every round and side gets a fresh connection, used alone: two sessions open at once on one server
    slow each other down unevenly (the one opened last is slower), and a stdio server's placement on the
    CPUs, next to its client or not, is drawn again for each connection."""
    log(f"tool-call round trip over {transport}: {rounds} rounds of {n} sequential calls per side")
    p50: dict[str, list[float]] = {OURS: [], RAW: []}
    p99: dict[str, list[float]] = {OURS: [], RAW: []}
    pooled: dict[str, list[float]] = {OURS: [], RAW: []}
    throughput: dict[str, list[float]] = {OURS: [], RAW: []}
    for r in range(rounds):
        for side in sides(r):
            client = await open_client(side)
            try:
                await sequential(client, 100)  # warm-up (the first call also lists the tools)
                gc.collect()
                samples = await sequential(client, n)
                p50[side].append(percentile(samples, 50))
                p99[side].append(percentile(samples, 99))
                pooled[side].extend(samples)
                if transport == "stdio":
                    gc.collect()
                    throughput[side].append(await in_flight(client, counts.flight_calls, counts.in_flight))
            finally:
                await client.close()
    report.latencies.setdefault(transport, {}).update(pooled)
    report.add(Metric(f"call_p50_{transport}", f"call p50, {transport}", "s", p50[OURS], p50[RAW], max_ratio=1.05))
    report.add(Metric(f"call_p99_{transport}", f"call p99, {transport}", "s", p99[OURS], p99[RAW]))
    if transport == "stdio":
        report.add(
            Metric(
                "throughput_stdio",
                f"throughput, {counts.in_flight} in flight, stdio",
                "calls/s",
                throughput[OURS],
                throughput[RAW],
                min_ratio=0.95,
            )
        )


# ---- 3: a server that ignores stdin EOF and SIGTERM ------------------------------------------------------


def tree_dead(pids: list[int]) -> bool:
    for pid in pids:
        try:
            if psutil.Process(pid).status() != psutil.STATUS_ZOMBIE:
                return False
        except psutil.NoSuchProcess:
            continue
    return True


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


# ---- 4: 50 servers at once, and client memory per connection (fresh subprocess per side) -----------------


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
        [sys.executable, __file__, "--child-fleet", side, "--fleet-size", str(size), "--fleet-mode", mode],
        capture_output=True,
        text=True,
        timeout=120,
    )
    if out.returncode != 0:
        raise RuntimeError(f"fleet child ({side}) failed:\n{out.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def bench_fleet(report: Report, counts: Counts, mode: str) -> None:
    mode = fleet_mode(mode)
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


# ---- 5: start/stop cycles must not leak -----------------------------------------------------------------


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


# ---- 6: streamable HTTP --------------------------------------------------------------------------------


def http_available() -> bool:
    try:
        from mcp_connections.streamable_http import StreamableHttpConnectionManager  # noqa: F401
    except ImportError as exc:
        log(f"streamable HTTP: skipped for now, mcp_connections.streamable_http is not importable ({exc})")
        return False
    return True


async def bench_http(report: Report, counts: Counts) -> None:
    server = await anyio.open_process(
        [sys.executable, "-m", "mcp_connections._demo_server", "--http"], stderr=None, start_new_session=True
    )
    try:
        assert server.stdout is not None
        first = b""
        with anyio.fail_after(30):
            while b"\n" not in first:
                first += await server.stdout.receive()
        url = f"http://127.0.0.1:{int(first.split()[0])}/mcp"
        await bench_calls(
            report,
            counts,
            lambda side: Client.open_http(side, url),
            "streamable HTTP",
            counts.http_rounds,
            counts.http_calls,
        )
    finally:
        server.terminate()
        with anyio.move_on_after(5):
            await server.wait()
        if server.returncode is None:
            server.kill()
            await server.wait()
        await server.aclose()


# ---- the chart --------------------------------------------------------------------------------------------


def chart(report: Report, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker

    plain = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}")
    # On a log axis, label the minor ticks at 2x and 5x only, so that a narrow range still reads.
    plain_minor = matplotlib.ticker.FuncFormatter(lambda v, _: f"{v:g}" if f"{v:.0e}"[0] in "25" else "")
    colors = {OURS: "#1f77b4", RAW: "#ff7f0e", "floor": "#7f7f7f"}
    names = {OURS: "mcp-connections", RAW: "raw SDK", "floor": "plain pipes (floor)"}
    fig, axes = plt.subplots(2, 2, figsize=(14, 10))
    fig.suptitle("mcp-connections vs the raw MCP SDK (lower latency is better; ratio 1.0 = same as raw)", fontsize=13)

    # Call latency distributions, one panel per transport: the share of calls answered within x.
    for ax, transport in zip(axes[0], ("stdio", "streamable HTTP"), strict=True):
        data = report.latencies.get(transport)
        if not data:
            ax.text(0.5, 0.5, f"{transport}: not measured", ha="center", va="center", transform=ax.transAxes)
            ax.set_axis_off()
            continue
        for side, values in data.items():
            ms = sorted(v * 1000 for v in values)
            share = [(i + 1) / len(ms) for i in range(len(ms))]
            p50, p99 = percentile(ms, 50), percentile(ms, 99)
            ax.step(
                ms,
                share,
                where="post",
                color=colors[side],
                linewidth=1.8,
                label=f"{names[side]}: p50 {p50:.3f} ms, p99 {p99:.3f} ms",
            )
            ax.plot([p50, p99], [0.5, 0.99], "o", color=colors[side], markersize=5)
        ax.axhline(0.5, color="grey", linewidth=0.6, linestyle=":")
        ax.axhline(0.99, color="grey", linewidth=0.6, linestyle=":")
        everything = [v * 1000 for values in data.values() for v in values]
        ax.set_xlim(min(everything) * 0.9, percentile(everything, 99.8) * 1.3)
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(plain)
        ax.xaxis.set_minor_formatter(plain_minor)
        ax.set_xlabel("round trip, ms (log scale); dots: p50 and p99")
        ax.set_ylabel("share of calls answered within")
        ax.set_ylim(0, 1.02)
        ax.set_title(f"echo tool call over {transport}, one at a time")
        ax.legend(loc="lower right", fontsize=8)

    # Start and stop times, sample by sample.
    ax = axes[1][0]
    groups = [
        ("start_stdlib", "start\nstdlib server"),
        ("start_mcpserver", "start\nMCPServer"),
        ("stop_stdlib", "stop\nwell-behaved"),
        ("fleet_start", "servers started\nall at once"),
    ]
    by_key = {m.key: m for m in report.metrics}
    positions, labels = [], []
    for i, (key, label) in enumerate(groups):
        metric = by_key.get(key)
        if metric is None:
            continue
        for offset, side, values in ((-0.18, OURS, metric.ours), (0.18, RAW, metric.raw or [])):
            if not values:
                continue
            ms = [v * 1000 for v in values]
            ax.boxplot(
                [ms],
                positions=[i + offset],
                widths=0.3,
                patch_artist=True,
                boxprops={"facecolor": colors[side], "alpha": 0.4},
                medianprops={"color": colors[side]},
                showfliers=False,
            )
            ax.scatter([i + offset] * len(ms), ms, s=10, color=colors[side], zorder=3)
        positions.append(i)
        labels.append(label)
    ax.set_xticks(positions, labels)
    ax.set_yscale("log")
    ax.yaxis.set_major_formatter(plain)
    ax.yaxis.set_minor_formatter(plain_minor)
    ax.set_ylabel("ms (log scale)")
    ax.set_title("start to initialized, and stop (each dot one sample)")
    from matplotlib.patches import Patch

    ax.legend(handles=[Patch(color=colors[s], alpha=0.6, label=names[s]) for s in (OURS, RAW)])

    # Ratios against their targets.
    ax = axes[1][1]
    rows = [m for m in report.metrics if m.ratio is not None and (m.max_ratio is not None or m.min_ratio is not None)]
    rows += [m for m in report.metrics if m.ratio is not None and m not in rows and m.unit != "count"]
    ys = list(range(len(rows)))[::-1]
    for y, m in zip(ys, rows, strict=True):
        colour = {True: "#2ca02c", False: "#d62728", None: "#9e9e9e"}[m.met if m.met is not None else None]
        ax.barh(y, m.ratio, color=colour, alpha=0.8)
        ax.text(m.ratio, y, f" {m.ratio:.3f}", va="center", fontsize=8)
        bound = m.max_ratio if m.max_ratio is not None else m.min_ratio
        if bound is not None:
            ax.plot([bound, bound], [y - 0.4, y + 0.4], color="black", linewidth=2)
    ax.axvline(1.0, color="black", linestyle=":", linewidth=1)
    ax.set_yticks(ys, [m.label for m in rows], fontsize=8)
    ax.set_xlabel("ours / raw SDK, medians; black tick: the target")
    ax.set_title("ratios (green: target met, red: missed, grey: no ratio target)")
    hi = max((m.ratio for m in rows), default=1.0)
    ax.set_xlim(0, max(1.3, min(hi * 1.15, 5)))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ---- main -----------------------------------------------------------------------------------------------


async def run(args: argparse.Namespace) -> Report:
    counts = QUICK if args.quick else Counts()
    report = Report()
    only = set(args.only.split(",")) if args.only else None

    def wanted(name: str) -> bool:
        return only is None or name in only

    http_done = False
    if wanted("floor"):
        await bench_floor(report, counts)
    if wanted("start"):
        await bench_start_stop(report, counts)
    if wanted("calls"):
        await bench_calls(
            report,
            counts,
            lambda side: Client.open_stdio(side, STDLIB_SERVER),
            "stdio",
            counts.call_rounds,
            counts.calls,
        )
    if wanted("http") and http_available():
        await bench_http(report, counts)
        http_done = True
    if wanted("stubborn"):
        await bench_stubborn(report, counts)
    if wanted("fleet"):
        bench_fleet(report, counts, args.fleet_mode)
    if wanted("demo"):
        bench_import_time(report, counts)
        await bench_demo_start(report, counts)
    if wanted("cycles"):
        await bench_cycles(report, counts)
    if wanted("http") and not http_done:
        log("streamable HTTP: trying again at the end")
        if http_available():
            await bench_http(report, counts)
    report.info["counts"] = counts.__dict__
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="lower counts, for development")
    parser.add_argument("--only", help="comma-separated sections: floor,start,calls,stubborn,fleet,demo,cycles,http")
    parser.add_argument("--fleet-mode", choices=("auto", "group", "sessions"), default=FLEET_MODE)
    parser.add_argument("--fleet-size", type=int, default=50, help=argparse.SUPPRESS)
    parser.add_argument("--child-fleet", choices=(OURS, RAW), help=argparse.SUPPRESS)
    parser.add_argument("--output", type=Path, default=RESULTS, help="directory for latest.json and latest.png")
    args = parser.parse_args()

    if args.child_fleet:
        result = asyncio.run(fleet_child(args.child_fleet, args.fleet_size, fleet_mode(args.fleet_mode)))
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
    document = {
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "quick": args.quick,
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
    (args.output / "latest.json").write_text(json.dumps(document, indent=1))
    chart(report, args.output / "latest.png")
    print(f"wrote {args.output / 'latest.json'} and {args.output / 'latest.png'}")


if __name__ == "__main__":
    main()

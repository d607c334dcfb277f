"""The physical floor: no library at all, plain asyncio subprocess pipes to the stdlib server."""

from __future__ import annotations

import asyncio
import gc
import json
import time

from .clients import STDLIB_SERVER
from .harness import Counts, Metric, Report, figure, log, percentile


@figure("floor", 10)
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

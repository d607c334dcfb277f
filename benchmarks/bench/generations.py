"""The two protocol generations, ours against ours: ``mode="auto"`` (``server/discover``) against ``mode="legacy"``
(the ``initialize`` handshake), with the MCPServer demo server, which serves both.

In these rows the "ours" column is auto and the "raw" column is legacy, so the ratio is auto / legacy.
"""

from __future__ import annotations

import gc
import time

from mcp_connections import ManagedSession, StdioConnectionManager

from .clients import DEMO_SERVER
from .harness import OURS, RAW, Counts, Metric, Report, figure, log, percentile, sides

# Which mode each column measures.
MODES = {OURS: "auto", RAW: "legacy"}


async def sequential_calls(session: ManagedSession, n: int) -> list[float]:
    samples = []
    perf = time.perf_counter
    for _ in range(n):
        t0 = perf()
        await session.call_tool("echo", {"text": "hello"})
        samples.append(perf() - t0)
    return samples


@figure("generations", 72)
async def bench_generations(report: Report, counts: Counts) -> None:
    rounds, calls = counts.demo_rounds, max(100, counts.http_calls)
    log(f"auto vs legacy, MCPServer demo server: {rounds} rounds, {calls} calls each")
    start: dict[str, list[float]] = {OURS: [], RAW: []}
    p50: dict[str, list[float]] = {OURS: [], RAW: []}
    for r in range(rounds):
        for side in sides(r):
            gc.collect()
            session = ManagedSession(StdioConnectionManager(DEMO_SERVER, errlog=None), mode=MODES[side])
            t0 = time.perf_counter()
            await session.start()
            start[side].append(time.perf_counter() - t0)
            try:
                await sequential_calls(session, 50)  # warm-up
                p50[side].append(percentile(await sequential_calls(session, calls), 50))
            finally:
                await session.stop()
    note = "ours column: mode='auto' (modern, server/discover); raw column: mode='legacy' (initialize)"
    report.add(Metric("start_auto_vs_legacy", "start -> ready, auto / legacy", "s", start[OURS], start[RAW], note=note))
    report.add(Metric("call_p50_auto_vs_legacy", "call p50, auto / legacy", "s", p50[OURS], p50[RAW], note=note))

"""Tool-call round trip (p50, p99) and throughput with calls in flight, over stdio.

``bench_calls`` is shared with the HTTP figures (``http_calls``): the same rounds over another transport.
"""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Awaitable, Callable

from .clients import STDLIB_SERVER, Client
from .harness import OURS, RAW, Counts, Metric, Report, figure, log, percentile, sides


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


@figure("calls", 30)
async def bench_stdio_calls(report: Report, counts: Counts) -> None:
    await bench_calls(
        report,
        counts,
        lambda side: Client.open_stdio(side, STDLIB_SERVER),
        "stdio",
        counts.call_rounds,
        counts.calls,
    )

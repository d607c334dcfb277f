"""What the event and span hooks cost a request when nobody listens: the hook against the bare call, side by side.

A request goes through ``_events.observe``; with no ``on_event`` callback and no tracer or meter provider it
must cost next to nothing. The figure times ``observe`` around an ``async`` call that returns at once (so the
hook is all there is to time) against the same call made directly, in alternating rounds.
"""

from __future__ import annotations

import time

from .harness import OURS, RAW, Counts, Metric, Report, figure, log, sides

# Calls per round and side: enough that a round takes milliseconds, not microseconds.
CALLS = 20_000

# What the hook may add to a request with nobody listening (a stdio round trip takes hundreds of microseconds).
MAX_OVERHEAD = 5e-6


class _Session:
    name = "bench"
    protocol_version = None
    manager = None


@figure("events", 90)
async def event_hook_overhead(report: Report, counts: Counts) -> None:
    from mcp_connections._events import EventHub, observe

    hub = EventHub(lambda: "bench")

    async def call() -> int:
        return 1

    log(f"event hook: {counts.call_rounds} rounds of {CALLS} calls per side, nobody listening")
    per_call: dict[str, list[float]] = {OURS: [], RAW: []}
    for r in range(counts.call_rounds):
        for side in sides(r):
            t0 = time.perf_counter()
            if side == OURS:
                for _ in range(CALLS):
                    await observe(hub, _Session, "tools/call 'x'", "x", call)
            else:
                for _ in range(CALLS):
                    await call()
            per_call[side].append((time.perf_counter() - t0) / CALLS)
    overhead = [o - r for o, r in zip(per_call[OURS], per_call[RAW], strict=True)]
    report.add(
        Metric(
            "event_hook_overhead",
            "request hook, nobody listening (added per request)",
            "s",
            overhead,
            max_ours=MAX_OVERHEAD,
            note="observe() with no on_event callback and no OpenTelemetry provider, minus the bare call",
        )
    )

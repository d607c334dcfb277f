"""Spawning a task that outlives its caller, on asyncio and on trio: the one backend-specific place.

Design: anyio has no way to start a task outside a task group, yet a connection must outlive the task
that called ``start()``. Each backend has its own: an asyncio task (held by a strong reference, since the
loop keeps only weak ones), or a trio *system task* (trio cancels it when the main task ends, as
``asyncio.run`` cancels what is left). Everything else in the library uses anyio. This module is the only
one that imports ``asyncio`` for the lifecycle, and only when asyncio is the running library.

An asyncio task cancelled before its first step never runs its body, so a ``finally`` in it never runs;
``on_never_ran`` is called then (from the loop, synchronously), so that the object it served is not left
looking alive.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import sniffio

__all__ = ["OwnerTask", "spawn_owner"]


class OwnerTask:
    """A handle on a spawned owner task: keeps it referenced, and knows whether its body ever ran."""

    __slots__ = ("_task", "started")

    def __init__(self) -> None:
        self._task: Any = None
        self.started = False


def spawn_owner(body: Callable[[], Awaitable[None]], *, name: str, on_never_ran: Callable[[], None]) -> OwnerTask:
    """Run ``body()`` in a task of its own that outlives the caller's task; raise if it cannot be spawned."""
    handle = OwnerTask()

    async def run() -> None:
        handle.started = True
        await body()

    library = sniffio.current_async_library()
    if library == "asyncio":
        import asyncio

        task = asyncio.get_running_loop().create_task(run(), name=name)

        def done(task: asyncio.Task[None]) -> None:
            if not handle.started:
                on_never_ran()
            elif not task.cancelled():
                task.exception()  # body() logs what it catches; this marks the rest as retrieved

        task.add_done_callback(done)
        handle._task = task
    elif library == "trio":
        import trio

        handle._task = trio.lowlevel.spawn_system_task(run, name=name)
    else:
        raise RuntimeError(f"mcp-connections runs on asyncio or trio, not on {library!r}")
    return handle

"""Helpers the tests share: the project's test servers, and leak checks on real processes.

Leak checks count descriptors and children through psutil, never by reading ``/proc``, so they work
wherever psutil does. They run on asyncio and on trio: tasks are counted by the running backend, and
threads leave out trio's idle worker threads (its thread cache keeps them for reuse; they are not leaks).
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import anyio
import psutil
import pytest
import sniffio
from mcp.client.stdio import StdioServerParameters

SERVERS = Path(__file__).parent.parent / "servers"
MISBEHAVING = SERVERS / "misbehaving.py"

# How long a dead process may take to be reaped after a test before it counts as leaked.
REAP_GRACE = 3.0


def skip_websocket_on_trio(transport: str, backend: str) -> None:
    """The WebSocket transport needs asyncio (README); on trio its start() fails, as test_remote_transports checks."""
    if transport == "websocket" and backend == "trio":
        pytest.skip("the WebSocket transport needs asyncio")


def misbehaving(*flags: str, env: dict[str, str] | None = None, cwd: str | None = None) -> StdioServerParameters:
    """Parameters for the project's misbehaving stdio server with the given switches."""
    return StdioServerParameters(command=sys.executable, args=[str(MISBEHAVING), *flags], env=env, cwd=cwd)


def open_fds() -> int:
    """Descriptors (handles on Windows) this process holds."""
    process = psutil.Process()
    return process.num_handles() if os.name == "nt" else process.num_fds()


def live_children() -> list[psutil.Process]:
    """Our descendant processes, zombies included (a zombie child is a leak too: nobody reaped it)."""
    try:
        return psutil.Process().children(recursive=True)
    except psutil.Error:
        return []


def wait_for_no_children(timeout: float = REAP_GRACE) -> list[psutil.Process]:
    deadline = time.monotonic() + timeout
    while (children := live_children()) and time.monotonic() < deadline:
        time.sleep(0.02)
    return children


def pid_alive(pid: int) -> bool:
    """Whether a process runs (a zombie is dead: it only waits for its parent or init to reap it)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


# The name trio's thread cache gives a worker thread while it waits for a job.
TRIO_IDLE_WORKER_PREFIX = "Trio thread "


def live_threads() -> list[threading.Thread]:
    """Threads that count for leaks: all but trio's idle cached workers."""
    return [t for t in threading.enumerate() if not t.name.startswith(TRIO_IDLE_WORKER_PREFIX)]


def running_tasks() -> list[object]:
    """The tasks of the running event loop, on asyncio or trio; empty outside one."""
    try:
        library = sniffio.current_async_library()
    except sniffio.AsyncLibraryNotFoundError:
        return []
    if library == "trio":
        import trio

        tasks: list[object] = []
        stack = [trio.lowlevel.current_root_task()]
        while stack:
            task = stack.pop()
            if task is None:
                continue
            tasks.append(task)
            for nursery in task.child_nurseries:
                stack.extend(nursery.child_tasks)
        return tasks
    return list(asyncio.all_tasks())


@dataclass
class Snapshot:
    fds: int
    threads: int
    tasks: int | None

    @classmethod
    def take(cls) -> Snapshot:
        try:
            sniffio.current_async_library()
            tasks: int | None = len(running_tasks())
        except sniffio.AsyncLibraryNotFoundError:
            tasks = None
        return cls(open_fds(), len(live_threads()), tasks)


async def settle() -> None:
    """Let finished tasks and threads go away before a leak count."""
    for _ in range(5):
        await anyio.sleep(0.01)
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and any(t.name.startswith("waitpid") for t in threading.enumerate()):
        await anyio.sleep(0.02)


async def assert_no_leaks(before: Snapshot, *, fd_slack: int = 0) -> None:
    """No more descriptors, threads, tasks or child processes than ``before``."""
    await settle()
    after = Snapshot.take()
    assert not wait_for_no_children(), f"leftover child processes: {live_children()}"
    assert after.fds <= before.fds + fd_slack, f"descriptors grew: {before.fds} -> {after.fds}"
    assert after.threads <= before.threads, f"threads grew: {before.threads} -> {after.threads}: {live_threads()}"
    if before.tasks is not None and after.tasks is not None:
        assert after.tasks <= before.tasks, f"tasks grew: {before.tasks} -> {after.tasks}: {running_tasks()}"

"""Helpers the tests share: the project's test servers, and leak checks on real processes.

Leak checks count descriptors and children through psutil, never by reading ``/proc``, so they work
wherever psutil does.
"""

from __future__ import annotations

import asyncio
import os
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
from mcp.client.stdio import StdioServerParameters

SERVERS = Path(__file__).parent.parent / "servers"
MISBEHAVING = SERVERS / "misbehaving.py"

# How long a dead process may take to be reaped after a test before it counts as leaked.
REAP_GRACE = 3.0


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


@dataclass
class Snapshot:
    fds: int
    threads: int
    tasks: int | None

    @classmethod
    def take(cls) -> Snapshot:
        try:
            tasks: int | None = len(asyncio.all_tasks())
        except RuntimeError:
            tasks = None
        return cls(open_fds(), threading.active_count(), tasks)


async def settle() -> None:
    """Let finished tasks and threads go away before a leak count."""
    for _ in range(5):
        await asyncio.sleep(0.01)
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline and any(t.name.startswith("waitpid") for t in threading.enumerate()):
        await asyncio.sleep(0.02)


async def assert_no_leaks(before: Snapshot, *, fd_slack: int = 0) -> None:
    """No more descriptors, threads, tasks or child processes than ``before``."""
    await settle()
    after = Snapshot.take()
    assert not wait_for_no_children(), f"leftover child processes: {live_children()}"
    assert after.fds <= before.fds + fd_slack, f"descriptors grew: {before.fds} -> {after.fds}"
    assert after.threads <= before.threads, f"threads grew: {before.threads} -> {after.threads}"
    if before.tasks is not None and after.tasks is not None:
        assert after.tasks <= before.tasks, f"tasks grew: {before.tasks} -> {after.tasks}: {asyncio.all_tasks()}"

"""Process trees: a server and every process it starts, spawned, watched and ended as one, per platform.

One interface (``ProcessTree``), one backend per platform, chosen at run time by ``backend()``:

- Linux (``_linux``): a process group; a pidfd exit watcher; liveness from a ``/proc`` scan that skips
  zombies, falling back to ``killpg(pgid, 0)`` when ``/proc`` is missing or unreadable.
- macOS and the BSDs (``_kqueue``): a process group; a kqueue ``EVFILT_PROC``/``NOTE_EXIT`` exit watcher;
  ``killpg(pgid, 0)`` liveness with ``EPERM`` counted as alive.
- other POSIX systems, and Linux without pidfds (``_posix``): a process group; a thread blocked in
  ``waitid(WNOWAIT)`` wakes the loop through a pipe.
- Windows (``_windows``): a Job Object that kills its members when closed, the server started suspended
  and resumed once it joined; liveness is the job's count of active processes.

Every backend waits for the server's exit without reaping it under asyncio's child watcher, and uses anyio
only (descriptors through ``anyio.wait_readable``), so it runs under asyncio and trio alike; the one thing
only asyncio needs is in ``_asyncio``. ``shut_down()`` (``_shutdown``) is the stop sequence on top, the same
everywhere, with its fail-safe.
"""

from __future__ import annotations

import select
import sys
from pathlib import Path

from ._shutdown import (
    GRACE_SHARE,
    KILL_REAP_TIMEOUT,
    SIGTERM_GRACE,
    STDIN_CLOSE_GRACE,
    shut_down,
    wait_tree_dead,
)
from ._tree import ProcessTree

__all__ = [
    "GRACE_SHARE",
    "KILL_REAP_TIMEOUT",
    "SIGTERM_GRACE",
    "STDIN_CLOSE_GRACE",
    "ProcessTree",
    "backend",
    "shut_down",
    "spawn",
    "wait_tree_dead",
]


def backend() -> type[ProcessTree]:
    """The process-tree backend for the system this runs on."""
    if sys.platform == "win32":
        from ._windows import WindowsTree

        return WindowsTree
    elif sys.platform == "linux":
        from ._linux import LinuxTree

        return LinuxTree
    else:
        if hasattr(select, "kqueue"):
            from ._kqueue import KqueueTree

            return KqueueTree
        from ._posix import PosixTree

        return PosixTree


async def spawn(argv: list[str], *, cwd: Path | None, env: dict[str, str]) -> ProcessTree:
    """Start ``argv`` in a tree of its own, on this system's backend; raises what the spawn raised (``OSError``,
    ``ValueError``; ``NotImplementedError`` for an event loop that cannot run subprocesses)."""
    return await backend().spawn(argv, cwd=cwd, env=env)

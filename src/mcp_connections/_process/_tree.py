"""The process-tree interface that every platform backend implements."""

from __future__ import annotations

import abc
from contextlib import suppress
from pathlib import Path
from typing import ClassVar

import anyio
import anyio.abc

# Poll for the server's exit status to become readable once we know it exited (the loop's child watcher
# reaps it, or, under trio, the first look at returncode does): it takes well under 1 ms.
_REAP_POLL_INTERVAL = 0.001

# Bound on that wait: the watcher thread only needs to be scheduled.
REAP_TIMEOUT = 1.0


class ProcessTree(abc.ABC):
    """A server process and every process it starts, watched and ended as one.

    ``spawn()`` starts the server in a process group (POSIX) or Job Object (Windows) of its own, with its
    stdin, stdout and stderr piped. ``wait_exit()`` returns once the server itself exited, without reaping
    it under asyncio's child watcher. ``alive()`` tells whether any member of the tree still runs, and says
    yes when it cannot tell (fail safe). ``terminate()`` asks the tree to end (where the platform can),
    ``kill()`` ends it, and ``release()`` frees what the tree holds. Signalling a tree that is already gone
    is harmless; any other failure is raised, for the caller's fail-safe to act on.
    """

    #: Whether ``terminate()`` is a polite request (SIGTERM) worth waiting on before ``kill()``.
    can_terminate: ClassVar[bool] = True

    def __init__(self, process: anyio.abc.Process) -> None:
        self.process = process
        #: The server's exit code once known (negative: killed by that signal).
        self.returncode: int | None = None
        #: A signal to the tree was refused (EPERM): a member belongs to another user.
        self.denied = False

    @property
    def pid(self) -> int:
        return self.process.pid

    @classmethod
    @abc.abstractmethod
    async def spawn(cls, argv: list[str], *, cwd: Path | None, env: dict[str, str]) -> ProcessTree:
        """Start ``argv`` as the leader of a new tree."""

    @abc.abstractmethod
    async def wait_exit(self) -> None:
        """Return once the server process exited, with ``returncode`` set where the platform tells it."""

    @abc.abstractmethod
    def alive(self) -> bool:
        """Whether any member of the tree still runs; True when that cannot be told."""

    @abc.abstractmethod
    def terminate(self) -> None:
        """Ask every member to exit (SIGTERM); a no-op where ``can_terminate`` is False."""

    @abc.abstractmethod
    def kill(self) -> None:
        """End every member at once (SIGKILL to the group, TerminateJobObject)."""

    def describe(self) -> str:
        """The tree as a log line names it."""
        return f"the process tree of pid {self.pid}"

    async def release(self) -> None:
        """Close the pipes and every handle the tree holds; the tree is dead, or abandoned."""
        if self.returncode is not None or self.process.returncode is not None:
            await self._await_reaped()
        for stream in (self.process.stdin, self.process.stdout, self.process.stderr):
            if stream is not None:
                with suppress(OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
                    await stream.aclose()
        self._close_handles()
        if self.returncode is None:
            self.returncode = self.process.returncode
        from ._asyncio import close_transport  # asyncio-only; a no-op for other event loops

        close_transport(self.process)

    def _close_handles(self) -> None:  # noqa: B027 (a hook: most backends hold something, not all)
        """Close the backend's own descriptors and handles."""

    async def _await_reaped(self) -> None:
        """Wait (briefly) for the process's exit status to reach ``process.returncode``."""
        with anyio.move_on_after(REAP_TIMEOUT):
            while self.process.returncode is None:
                await anyio.sleep(_REAP_POLL_INTERVAL)
        if self.process.returncode is not None:  # the reaped status is the authority
            self.returncode = self.process.returncode

"""POSIX process trees: the server leads a process group (and session) of its own.

Signals go to the whole group with ``killpg``. Liveness is ``killpg(pgid, 0)``: no such group means the tree
is gone; ``EPERM`` means a member runs that we may not signal, which counts as alive (fail safe). Once the
leader is reaped, a group of zombies that nobody reaps (an init that does not reap orphans) also reads as
alive here: a stop then spends its budget and says so. Linux refines this with ``/proc`` (see ``_linux``).

The exit watcher here, for systems with neither a pidfd nor kqueue, is a thread blocked in
``waitid(WNOWAIT)`` on the server: it wakes at the exit without reaping (asyncio's child watcher reaps) and
tells the event loop through a pipe, so the loop waits on a descriptor as with a pidfd.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from contextlib import suppress
from pathlib import Path

import anyio
import anyio.abc

from ._tree import ProcessTree

assert sys.platform != "win32"  # tells mypy --platform win32 to skip this module


# Where waitid is missing: how often to look at the exit status, well within the 100 ms promised.
_EXIT_POLL_INTERVAL = 0.01


class PosixTree(ProcessTree):
    """A process group whose leader is the server."""

    def __init__(self, process: anyio.abc.Process) -> None:
        super().__init__(process)
        self._gone = False  # the group was seen empty: never signal its id again (it may be reused)
        self._waiter: _ExitWaiter | None = None

    @classmethod
    async def spawn(cls, argv: list[str], *, cwd: Path | None, env: dict[str, str]) -> ProcessTree:
        process = await anyio.open_process(
            argv, stdin=-1, stdout=-1, stderr=-1, cwd=cwd, env=env, start_new_session=True
        )
        tree = cls(process)
        try:
            tree._watch()
        except BaseException:  # no watcher (out of descriptors or threads): leave nothing running
            with anyio.CancelScope(shield=True):
                tree.kill()
                await tree.release()
            raise
        return tree

    def _watch(self) -> None:
        """Start watching for the leader's exit, right after the spawn (before its pid could be reused)."""
        if hasattr(os, "waitid"):
            self._waiter = _ExitWaiter(self.pid)

    async def wait_exit(self) -> None:
        waiter = self._waiter
        if waiter is not None and waiter.read_fd is not None:
            await anyio.wait_readable(waiter.read_fd)
            self.returncode = waiter.returncode
        else:  # no waitid (no such system is known to lack kqueue too): look at the exit status
            while self.process.returncode is None:
                await anyio.sleep(_EXIT_POLL_INTERVAL)
        await self._await_reaped()

    def describe(self) -> str:
        why = " (it has a member we may not signal: permission denied)" if self.denied else ""
        return f"process group {self.pid}{why}"

    def terminate(self) -> None:
        self._signal(signal.SIGTERM)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)

    def _signal(self, sig: signal.Signals) -> None:
        if self._gone:
            return
        try:
            os.killpg(self.pid, sig)
        except ProcessLookupError:
            self._gone = True
        except PermissionError:
            self.denied = True

    def alive(self) -> bool:
        if self._gone:
            return False
        if not self._members_alive():
            self._gone = True
        return not self._gone

    def _members_alive(self) -> bool:
        return group_signalable(self.pid, self)

    def _close_handles(self) -> None:
        if self._waiter is not None:
            self._waiter.close()


def group_signalable(pgid: int, tree: ProcessTree) -> bool:
    """``killpg(pgid, 0)``: False when no process has that group; True when one has, or may not be signalled."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        tree.denied = True
        return True
    return True


def status_to_returncode(status: int) -> int:
    """A wait status as ``Popen.returncode`` has it (negative: the signal that killed it)."""
    return os.waitstatus_to_exitcode(status)


class _ExitWaiter:
    """A thread blocked in ``waitid(WNOWAIT)`` on a child, writing a byte to a pipe when it exited."""

    def __init__(self, pid: int) -> None:
        self.returncode: int | None = None
        self.read_fd: int | None
        self.read_fd, write_fd = os.pipe()
        self._thread = threading.Thread(
            target=self._run, args=(pid, write_fd), name=f"waitpid-mcp-connections-{pid}", daemon=True
        )
        self._thread.start()

    def _run(self, pid: int, write_fd: int) -> None:
        try:
            # waitid is absent on macOS (typeshed), where the kqueue backend serves instead.
            info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOWAIT)  # type: ignore[attr-defined,unused-ignore]
            if info is not None:
                self.returncode = info.si_status if info.si_code == os.CLD_EXITED else -info.si_status
        except OSError:
            pass  # reaped already (ECHILD): the exit status is in returncode
        finally:
            with suppress(OSError):  # nobody listens any more
                os.write(write_fd, b"x")
            os.close(write_fd)

    def close(self) -> None:
        if self.read_fd is not None:
            os.close(self.read_fd)
            self.read_fd = None

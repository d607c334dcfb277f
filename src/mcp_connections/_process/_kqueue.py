"""macOS and BSD process trees: a kqueue ``EVFILT_PROC``/``NOTE_EXIT`` exit watcher, process groups.

The kqueue's descriptor becomes readable when the server exits; the event carries the wait status (macOS
with ``NOTE_EXITSTATUS``, the BSDs always), read without reaping the process. Liveness is
``killpg(pgid, 0)`` with ``EPERM`` counted as alive (see ``_posix``): these systems have no ``/proc`` to
tell zombies apart, and launchd or init reaps orphans there.
"""

from __future__ import annotations

import select
import sys

import anyio

assert sys.platform != "win32" and sys.platform != "linux"  # mypy: this module is for the others

from ._posix import PosixTree, status_to_returncode  # noqa: E402

# <sys/event.h>: ask for the exit status in the event's data (macOS only; the BSDs put it there anyway).
NOTE_EXITSTATUS = 0x04000000


class KqueueTree(PosixTree):
    """A process group whose leader's exit comes from a kqueue."""

    _kqueue: select.kqueue | None = None
    _gone_before_watch = False

    def _watch(self) -> None:
        fflags = select.KQ_NOTE_EXIT | (NOTE_EXITSTATUS if sys.platform == "darwin" else 0)
        event = select.kevent(
            self.pid, filter=select.KQ_FILTER_PROC, flags=select.KQ_EV_ADD | select.KQ_EV_ONESHOT, fflags=fflags
        )
        self._kqueue = select.kqueue()
        try:
            self._kqueue.control([event], 0, 0)
        except ProcessLookupError:
            self._gone_before_watch = True  # it exited (and was reaped) before we looked

    async def wait_exit(self) -> None:
        kq = self._kqueue
        if kq is not None and not self._gone_before_watch:
            await anyio.wait_readable(kq.fileno())
            for event in kq.control(None, 1, 0):
                self.returncode = status_to_returncode(event.data)  # provisional: the reaped status wins
        await self._await_reaped()

    def _close_handles(self) -> None:
        if self._kqueue is not None:
            self._kqueue.close()
            self._kqueue = None
        super()._close_handles()

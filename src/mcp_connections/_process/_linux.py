"""Linux process trees: a pidfd exit watcher and a ``/proc`` scan of the group.

The pidfd becomes readable when the server exits; ``waitid(P_PIDFD, WNOWAIT)`` reads its exit status
without reaping it (asyncio's child watcher reaps). Without pidfds (old kernels, some sandboxes) the
thread watcher of ``_posix`` stands in.

Liveness scans ``/proc`` for members of the group that are not zombies, since a zombie that an init which
does not reap orphans leaves behind is dead for our purpose. When ``/proc`` is missing, empty or
unreadable (some sandboxes and minimal containers), it falls back to ``killpg(pgid, 0)``, never to "dead".
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import anyio

assert sys.platform == "linux"  # tells mypy on other platforms to skip this module

from ._posix import PosixTree, group_signalable  # noqa: E402

#: Where procfs is mounted; tests point it elsewhere to simulate a system without it.
PROC = Path("/proc")


class LinuxTree(PosixTree):
    """A process group watched through a pidfd and ``/proc``."""

    _pidfd: int | None = None

    def _watch(self) -> None:
        self._pidfd = open_pidfd(self.pid)
        if self._pidfd is None:
            super()._watch()

    async def wait_exit(self) -> None:
        if self._pidfd is None:
            await super().wait_exit()
            return
        await anyio.wait_readable(self._pidfd)
        self.returncode = peek_returncode(self._pidfd)
        await self._await_reaped()

    def _members_alive(self) -> bool:
        if not group_signalable(self.pid, self):
            return False
        scanned = scan_group(self.pid)
        return True if scanned is None else scanned

    def _close_handles(self) -> None:
        if self._pidfd is not None:
            os.close(self._pidfd)
            self._pidfd = None
        super()._close_handles()


def open_pidfd(pid: int) -> int | None:
    pidfd_open = getattr(os, "pidfd_open", None)
    if pidfd_open is None:
        return None
    try:
        fd: int = pidfd_open(pid)
    except OSError:  # old kernel, seccomp, or the process is already gone: the thread watcher stands in
        return None
    return fd


def peek_returncode(pidfd: int) -> int | None:
    """The exit status of an exited process, read without reaping it (the loop's child watcher reaps)."""
    try:
        info = os.waitid(os.P_PIDFD, pidfd, os.WEXITED | os.WNOWAIT | os.WNOHANG)
    except (OSError, AttributeError):  # reaped already, or no P_PIDFD here: returncode will tell
        return None
    if info is None:
        return None
    return int(info.si_status) if info.si_code == os.CLD_EXITED else -info.si_status


def scan_group(pgid: int) -> bool | None:
    """Whether ``/proc`` shows a live (not zombie) process in group ``pgid``; None when ``/proc`` cannot tell."""
    try:
        if not (PROC / str(os.getpid()) / "stat").is_file():  # missing, an empty mount, or hidden from us
            return None
        entries = list(os.scandir(PROC))
    except OSError:
        return None
    for entry in entries:
        if not entry.name.isdigit():
            continue
        try:
            with open(entry.path + "/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue  # gone meanwhile
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 2 and int(fields[2]) == pgid and fields[0] not in (b"Z", b"X"):
            return True
    return False

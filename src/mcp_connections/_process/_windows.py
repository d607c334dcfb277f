"""Windows process trees: the server and everything it starts live in a Job Object of their own.

The job is made with ``JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE``, so closing its handle (at ``release()``, or when
this process dies and Windows closes its handles) ends every member. To close the race that the MCP SDK
documents (a child the server starts before it joins the job would escape it), the server is created
suspended, assigned to the job, then resumed: it runs no code of its own outside the job. It is created
with ``CREATE_NO_WINDOW``, so no console flashes up. The command is resolved with ``shutil.which`` on the
server's ``PATH`` (and ``PATHEXT``), so ``npx`` finds ``npx.cmd``; the arguments are quoted with
``subprocess.list2cmdline``, the rules the C runtime parses them back with (a ``.cmd``/``.bat`` script
re-parses them through ``cmd.exe``, whose rules differ: keep its arguments plain).

Windows has no tree-wide SIGTERM (``can_terminate`` is False): the stop is close stdin, wait,
``TerminateJobObject``, close the job. Liveness is the job's count of active processes. The exit watcher
polls the server's exit code, which asyncio's Proactor loop sets from a wait on the process handle.

The win32 calls come from pywin32, except ``NtResumeProcess`` (ntdll, through ctypes), which pywin32
lacks: ``subprocess`` closes the handle of the main thread that ``ResumeThread`` would need. They are
reached through a ``Win32`` bundle so that tests elsewhere can check the call sequence against a fake.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
import sys
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import anyio.abc

from ._tree import ProcessTree

logger = logging.getLogger(__name__)

# Process creation flags (<winbase.h>), spelled out so that this module imports on any system.
CREATE_SUSPENDED = 0x00000004
CREATE_NO_WINDOW = 0x08000000

# Access rights on the server's process handle: join a job, be resumed.
PROCESS_TERMINATE = 0x0001
PROCESS_SET_QUOTA = 0x0100
PROCESS_SUSPEND_RESUME = 0x0800

JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE = 0x00002000
JOB_OBJECT_BASIC_ACCOUNTING_INFORMATION = 1
JOB_OBJECT_EXTENDED_LIMIT_INFORMATION = 9

# Exit code of the members that TerminateJobObject ends.
TERMINATED_EXIT_CODE = 1

# How often the exit watcher looks at the server's exit code: the Proactor loop sets it from a wait on the
# process handle, so a look costs nothing, and 10 ms keeps the exit well within the 100 ms promised.
EXIT_POLL_INTERVAL = 0.01

OpenProcess = Callable[..., Awaitable[anyio.abc.Process]]


@dataclass(frozen=True)
class Win32:
    """The win32 calls the backend makes: pywin32's ``win32job`` and ``win32api`` modules, and
    ``NtResumeProcess(process_handle)``."""

    win32job: Any
    win32api: Any
    resume_process: Callable[[Any], None]


def load_win32() -> Win32:
    """pywin32 and ntdll, on Windows."""
    if sys.platform != "win32":
        raise NotImplementedError("the Job Object backend runs on Windows only")
    import ctypes

    import win32api
    import win32job

    ntdll = ctypes.WinDLL("ntdll")

    def resume_process(handle: Any) -> None:
        status = ntdll.NtResumeProcess(ctypes.c_void_p(int(handle)))
        if status != 0:
            raise OSError(f"NtResumeProcess failed (NTSTATUS {status & 0xFFFFFFFF:#010x})")

    return Win32(win32job=win32job, win32api=win32api, resume_process=resume_process)


def command_line(argv: list[str]) -> str:
    """The command line CreateProcess gets for ``argv`` (``subprocess`` builds it so from the list we pass): each
    argument quoted for the C runtime to split back."""
    return subprocess.list2cmdline(argv)


def resolve_command(command: str, env: Mapping[str, str]) -> str:
    """``command`` as a path CreateProcess can run: found on the server's ``PATH`` with ``PATHEXT``
    (``npx`` -> ``...\\npx.cmd``); as given when not found, so the error names it."""
    path = next((value for name, value in env.items() if name.upper() == "PATH"), None)
    return shutil.which(command, path=path) or command


class WindowsTree(ProcessTree):
    """A Job Object whose first member is the server."""

    can_terminate = False

    def __init__(self, process: anyio.abc.Process, job: Any, win32: Win32) -> None:
        super().__init__(process)
        self._job: Any = job
        self._win32 = win32

    @classmethod
    async def spawn(
        cls,
        argv: list[str],
        *,
        cwd: Path | None,
        env: dict[str, str],
        win32: Win32 | None = None,
        open_process: OpenProcess = anyio.open_process,
    ) -> ProcessTree:
        win32 = win32 or load_win32()
        job = _create_job(win32)
        try:
            # A list, not command_line()'s string, which anyio would hand to a shell: subprocess quotes the
            # list with the same list2cmdline.
            process = await open_process(
                [resolve_command(argv[0], env), *argv[1:]],
                stdin=-1,
                stdout=-1,
                stderr=-1,
                cwd=cwd,
                env=env,
                creationflags=CREATE_NO_WINDOW | CREATE_SUSPENDED,
            )
        except BaseException:
            win32.win32api.CloseHandle(job)
            raise
        tree = cls(process, job, win32)
        try:
            tree._join_job_and_resume()
        except BaseException:  # a server left suspended, or outside its job: end it
            with anyio.CancelScope(shield=True):
                tree.kill()
                await tree.release()
            raise
        return tree

    def _join_job_and_resume(self) -> None:
        api, jobs = self._win32.win32api, self._win32.win32job
        handle = api.OpenProcess(PROCESS_SET_QUOTA | PROCESS_TERMINATE | PROCESS_SUSPEND_RESUME, False, self.pid)
        try:
            try:
                jobs.AssignProcessToJobObject(self._job, handle)
            except Exception as exc:  # pywintypes.error: e.g. a job we run in forbids nesting
                logger.warning(
                    "pid %d could not join a Job Object (%s); stop() will end the server, not what it starts",
                    self.pid,
                    exc,
                )
                api.CloseHandle(self._job)
                self._job = None
            self._win32.resume_process(handle)
        finally:
            api.CloseHandle(handle)

    async def wait_exit(self) -> None:
        while self.process.returncode is None:
            await anyio.sleep(EXIT_POLL_INTERVAL)
        self.returncode = self.process.returncode

    def alive(self) -> bool:
        if self._job is None:
            return self.process.returncode is None
        info = self._win32.win32job.QueryInformationJobObject(self._job, JOB_OBJECT_BASIC_ACCOUNTING_INFORMATION)
        return int(info["ActiveProcesses"]) > 0

    def terminate(self) -> None:
        """Windows cannot ask a tree to exit; the stdin close was the request."""

    def kill(self) -> None:
        if self._job is not None:
            self._win32.win32job.TerminateJobObject(self._job, TERMINATED_EXIT_CODE)
        elif self.process.returncode is None:
            self.process.kill()

    def describe(self) -> str:
        return f"the Job Object of pid {self.pid}"

    def _close_handles(self) -> None:
        job, self._job = self._job, None
        if job is not None:
            self._win32.win32api.CloseHandle(job)  # KILL_ON_JOB_CLOSE: nothing of the tree outlives this


def _create_job(win32: Win32) -> Any:
    jobs = win32.win32job
    job = jobs.CreateJobObject(None, "")
    try:
        info = jobs.QueryInformationJobObject(job, JOB_OBJECT_EXTENDED_LIMIT_INFORMATION)
        info["BasicLimitInformation"]["LimitFlags"] |= JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE
        jobs.SetInformationJobObject(job, JOB_OBJECT_EXTENDED_LIMIT_INFORMATION, info)
    except BaseException:
        win32.win32api.CloseHandle(job)
        raise
    return job

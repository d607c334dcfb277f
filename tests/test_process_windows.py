"""The Windows backend (Job Objects) against a fake of the win32 calls: it runs on every system, and checks
the order of the calls, not Windows itself (not yet run on Windows: see the README's "Platforms").

Also the parts that are pure functions: argument quoting and command resolution.
"""

from __future__ import annotations

import logging
import os
import stat
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from mcp_connections import ServerStartError, StdioConnectionManager, _process
from mcp_connections._process import _windows
from mcp_connections._process._windows import (
    CREATE_NO_WINDOW,
    CREATE_SUSPENDED,
    JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE,
    Win32,
    WindowsTree,
    command_line,
    resolve_command,
)

from .helpers import misbehaving

pytestmark = pytest.mark.anyio

JOB, PROCESS_HANDLE = "job-handle", "process-handle"


class FakeServer:
    """What a suspended server does: nothing until resumed; then it runs until its job is terminated."""

    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.stdin = FakeStdin(log)
        self.stdout = self.stderr = None
        self.pid = 4321
        self.returncode: int | None = None
        self.running = False

    def kill(self) -> None:
        self.log.append("TerminateProcess")
        self.returncode = 1


class FakeStdin:
    def __init__(self, log: list[str]) -> None:
        self.log = log
        self.closed = False

    async def aclose(self) -> None:
        if not self.closed:  # closing twice is harmless, as on a real pipe
            self.log.append("close stdin")  # the server ignores it
        self.closed = True


class FakeWin32:
    """pywin32's win32job and win32api, and NtResumeProcess, recording each call in ``log``."""

    def __init__(self, *, assign_fails: bool = False) -> None:
        self.log: list[str] = []
        self.server: FakeServer | None = None
        self.assign_fails = assign_fails
        self.members = 0
        self.limit_flags = 0
        self.command_line = ""

    def bundle(self) -> Win32:
        return Win32(win32job=self, win32api=self, resume_process=self.NtResumeProcess)

    # win32job
    def CreateJobObject(self, attributes: Any, name: str) -> str:
        self.log.append("CreateJobObject")
        return JOB

    def QueryInformationJobObject(self, job: str, info_class: int) -> dict[str, Any]:
        assert job == JOB
        if info_class == _windows.JOB_OBJECT_EXTENDED_LIMIT_INFORMATION:
            self.log.append("QueryInformationJobObject(extended limits)")
            return {"BasicLimitInformation": {"LimitFlags": 0}}
        assert info_class == _windows.JOB_OBJECT_BASIC_ACCOUNTING_INFORMATION
        return {"ActiveProcesses": self.members}

    def SetInformationJobObject(self, job: str, info_class: int, info: dict[str, Any]) -> None:
        self.limit_flags = info["BasicLimitInformation"]["LimitFlags"]
        self.log.append("SetInformationJobObject")

    def AssignProcessToJobObject(self, job: str, handle: str) -> None:
        assert job == JOB and handle == PROCESS_HANDLE
        assert self.server is not None and not self.server.running, "assigned after the server began to run"
        self.log.append("AssignProcessToJobObject")
        if self.assign_fails:
            raise OSError(5, "AssignProcessToJobObject", "Access is denied.")
        self.members = 2  # the server, and soon a child it starts, which inherits the job

    def TerminateJobObject(self, job: str, code: int) -> None:
        self.log.append("TerminateJobObject")
        self.members = 0
        assert self.server is not None
        self.server.returncode = code

    # win32api
    def OpenProcess(self, access: int, inherit: bool, pid: int) -> str:
        assert self.server is not None and pid == self.server.pid
        self.log.append("OpenProcess")
        return PROCESS_HANDLE

    def CloseHandle(self, handle: str) -> None:
        self.log.append(f"CloseHandle({handle})")

    # ntdll
    def NtResumeProcess(self, handle: str) -> None:
        assert handle == PROCESS_HANDLE and self.server is not None
        self.log.append("NtResumeProcess")
        self.server.running = True

    async def open_process(self, command: Any, **options: Any) -> FakeServer:
        flags = options["creationflags"]
        self.log.append("CreateProcess" + (" (suspended)" if flags & CREATE_SUSPENDED else ""))
        assert flags & CREATE_NO_WINDOW
        # A list: anyio would run a string through the shell. subprocess quotes it with list2cmdline.
        assert isinstance(command, list) and command[1:] == ["--flag"]
        self.command_line = command_line(command)
        self.server = FakeServer(self.log)
        return self.server


async def spawn(fake: FakeWin32) -> WindowsTree:
    tree = await WindowsTree.spawn(
        ["server", "--flag"], cwd=None, env={"PATH": ""}, win32=fake.bundle(), open_process=fake.open_process
    )
    assert isinstance(tree, WindowsTree)
    return tree


async def stop(tree: WindowsTree, budget: float = 0.5) -> None:
    exited = anyio.Event()
    deadline = anyio.current_time() + budget

    async def watch() -> None:
        await tree.wait_exit()
        exited.set()

    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            tg.start_soon(watch)
            await _process.shut_down(tree, exited, lambda: deadline - anyio.current_time(), "fake")
            tg.cancel_scope.cancel()
        await tree.release()


async def test_the_server_joins_its_job_before_it_runs_and_stop_closes_stdin_terminates_the_job_and_closes_it() -> None:
    fake = FakeWin32()
    tree = await spawn(fake)
    assert fake.limit_flags & JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE
    assert fake.log == [
        "CreateJobObject",
        "QueryInformationJobObject(extended limits)",
        "SetInformationJobObject",
        "CreateProcess (suspended)",
        "OpenProcess",
        "AssignProcessToJobObject",
        "NtResumeProcess",
        f"CloseHandle({PROCESS_HANDLE})",
    ]
    assert tree.alive()
    del fake.log[:]
    await stop(tree)
    assert fake.log == ["close stdin", "TerminateJobObject", f"CloseHandle({JOB})"]
    assert tree.returncode == _windows.TERMINATED_EXIT_CODE
    assert not tree.alive()


async def test_a_server_that_cannot_join_a_job_still_runs_and_is_killed_alone(caplog: pytest.LogCaptureFixture) -> None:
    fake = FakeWin32(assign_fails=True)
    with caplog.at_level(logging.WARNING, logger="mcp_connections"):
        tree = await spawn(fake)
    assert "could not join a Job Object" in caplog.text
    assert fake.log.index(f"CloseHandle({JOB})") < fake.log.index("NtResumeProcess")
    del fake.log[:]
    await stop(tree)
    assert fake.log == ["close stdin", "TerminateProcess"]


async def test_a_loop_that_cannot_run_subprocesses_fails_the_spawn_and_closes_the_job() -> None:
    fake = FakeWin32()

    async def selector_loop(command: Any, **options: Any) -> Any:
        fake.log.append("CreateProcess")
        raise NotImplementedError  # what asyncio's SelectorEventLoop does on Windows

    with pytest.raises(NotImplementedError):
        await WindowsTree.spawn(["server"], cwd=None, env={}, win32=fake.bundle(), open_process=selector_loop)
    assert fake.log[-2:] == ["CreateProcess", f"CloseHandle({JOB})"]


async def test_start_on_such_a_loop_raises_server_start_error_that_names_the_proactor_loop(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Unsupported(WindowsTree):
        @classmethod
        async def spawn(cls, argv: list[str], *, cwd: Path | None, env: dict[str, str], **_: Any) -> Any:
            raise NotImplementedError

    monkeypatch.setattr(_process, "backend", lambda: Unsupported)
    manager = StdioConnectionManager(misbehaving())
    with pytest.raises(ServerStartError, match="ProactorEventLoop") as caught:
        await manager.start()
    assert isinstance(caught.value.__cause__, NotImplementedError)


@pytest.mark.parametrize(
    ("argv", "line"),
    [
        (["npx", "-y", "@modelcontextprotocol/server-everything"], "npx -y @modelcontextprotocol/server-everything"),
        ([r"C:\Program Files\nodejs\npx.cmd", "a b"], r'"C:\Program Files\nodejs\npx.cmd" "a b"'),
        (["echo", 'say "hi"'], r'echo "say \"hi\""'),
        (["echo", 'no"space'], r"echo no\"space"),
        (["echo", r"back\slash", "trailing\\"], r"echo back\slash trailing\ "[:-1]),
        (["echo", "ends in a backslash\\"], r'echo "ends in a backslash\\"'),
        (["echo", ""], 'echo ""'),
        (["echo", "tab\there"], 'echo "tab\there"'),
    ],
)
def test_arguments_are_quoted_for_the_c_runtime_to_split_back(argv: list[str], line: str) -> None:
    assert command_line(argv) == line


def test_a_command_is_resolved_on_the_servers_path_not_ours(tmp_path: Path) -> None:
    name = "tool.cmd" if sys.platform == "win32" else "tool"
    tool = tmp_path / name
    tool.write_text("")
    tool.chmod(tool.stat().st_mode | stat.S_IEXEC)
    assert resolve_command("tool", {"Path": str(tmp_path)}) == str(tool)
    assert resolve_command("no-such-tool", {"PATH": str(tmp_path)}) == "no-such-tool"
    assert os.environ.get("PATH", "").find(str(tmp_path)) == -1

"""StdioConnectionManager against real processes: the misbehaving server, real pipes, real signals."""

from __future__ import annotations

import io
import os
import sys
import time
from pathlib import Path

import anyio
import pytest
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters
from mcp.shared.exceptions import MCPError

from mcp_connections import (
    ConnectionLostError,
    ConnectionState,
    ServerExitedError,
    ServerStartError,
    StdioConnectionManager,
)
from mcp_connections.stdio import LineReader

from .helpers import Snapshot, assert_no_leaks, misbehaving, pid_alive

pytestmark = pytest.mark.anyio


class NullWriter(io.TextIOBase):
    """A text stream with no file descriptor that counts what it is given."""

    def __init__(self) -> None:
        self.chars = 0

    def write(self, s: str) -> int:
        self.chars += len(s)
        return len(s)


async def call_text(session: ClientSession, tool: str, **arguments: object) -> str:
    result = await session.call_tool(tool, arguments)
    return result.content[0].text  # type: ignore[union-attr]


async def read_pidfile(path: Path) -> tuple[int, int]:
    with anyio.fail_after(10):
        while not path.exists():
            await anyio.sleep(0.01)
    pid, grandchild = path.read_text().split()
    return int(pid), int(grandchild)


async def test_a_session_round_trips_over_the_managed_streams() -> None:
    before = Snapshot.take()
    manager = StdioConnectionManager(misbehaving(), errlog=io.StringIO())
    read, write = await manager.start()
    assert manager.state is ConnectionState.CONNECTED
    assert manager.get_streams() == (read, write)
    assert manager.pid is not None and pid_alive(manager.pid)
    async with ClientSession(read, write) as session:
        await session.initialize()
        assert await call_text(session, "add", a=2, b=3) == "5"
    await manager.stop()
    assert manager.state is ConnectionState.STOPPED
    assert manager.get_streams() is None
    assert manager.error is None
    assert manager.returncode == 0
    await assert_no_leaks(before)


async def test_start_and_stop_may_run_in_different_tasks() -> None:
    before = Snapshot.take()
    manager = StdioConnectionManager(misbehaving(), errlog=io.StringIO())
    async with anyio.create_task_group() as tg:
        tg.start_soon(manager.start)
    # The task that started it has ended; the connection lives on.
    assert manager.state is ConnectionState.CONNECTED
    pid = manager.pid
    assert pid is not None and pid_alive(pid)
    async with anyio.create_task_group() as tg:
        tg.start_soon(manager.stop)
    assert manager.state is ConnectionState.STOPPED
    assert not pid_alive(pid)
    await assert_no_leaks(before)


async def test_ten_concurrent_stops_all_return_and_leave_nothing() -> None:
    before = Snapshot.take()
    manager = StdioConnectionManager(misbehaving(), errlog=io.StringIO())
    await manager.start()
    with anyio.fail_after(5):
        async with anyio.create_task_group() as tg:
            for _ in range(10):
                tg.start_soon(manager.stop)
    assert manager.state is ConnectionState.STOPPED
    await assert_no_leaks(before)


async def test_fifty_start_stop_cycles_do_not_grow_descriptors_tasks_or_processes() -> None:
    manager = StdioConnectionManager(misbehaving(), errlog=io.StringIO())
    await manager.start()
    await manager.stop()
    before = Snapshot.take()
    for _ in range(50):
        await manager.start()
        await manager.stop()
    await assert_no_leaks(before)


async def test_errlog_may_be_a_stringio_and_gets_stderr_lines_as_they_come() -> None:
    errlog = io.StringIO()
    async with StdioConnectionManager(misbehaving(), errlog=errlog) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            await call_text(session, "stderr", text="first line")
            with anyio.fail_after(5):
                while "first line" not in errlog.getvalue():
                    await anyio.sleep(0.01)
            await call_text(session, "stderr", text="second line")
            with anyio.fail_after(5):
                while "second line" not in errlog.getvalue():
                    await anyio.sleep(0.01)
    assert errlog.getvalue().endswith("first line\nsecond line\n")


async def test_a_four_mib_message_round_trips_both_ways() -> None:
    size = 4 * 1024 * 1024
    async with StdioConnectionManager(misbehaving(), errlog=io.StringIO()) as (read, write):
        async with ClientSession(read, write) as session:
            await session.initialize()
            assert len(await call_text(session, "big", size=size)) == size
            text = "y" * size
            assert await call_text(session, "echo", text=text) == text


async def test_a_server_that_exits_before_the_handshake_fails_with_its_exit_code_and_stderr() -> None:
    before = Snapshot.take()
    manager = StdioConnectionManager(misbehaving("--exit-before-handshake", "7"), errlog=io.StringIO())
    read, write = await manager.start()
    with anyio.fail_after(5):
        async with ClientSession(read, write) as session:
            with pytest.raises(MCPError):
                await session.initialize()
        await manager.wait_closed()
    assert manager.state is ConnectionState.FAILED
    error = manager.error
    assert isinstance(error, ServerExitedError)
    assert error.returncode == 7 == manager.returncode
    assert "cannot open the database" in error.stderr_tail
    assert "cannot open the database" in str(error)
    assert "exited with code 7" in str(error)
    assert "misbehaving.py" in str(error)
    assert manager.get_streams() is None
    await manager.stop()  # safe after a failure
    assert manager.state is ConnectionState.FAILED
    await assert_no_leaks(before)


async def test_a_crash_during_a_call_fails_the_pending_request_promptly() -> None:
    manager = StdioConnectionManager(misbehaving(), errlog=io.StringIO())
    read, write = await manager.start()
    async with ClientSession(read, write) as session:
        await session.initialize()
        with anyio.fail_after(2):
            async with anyio.create_task_group() as tg:

                async def slow_call() -> None:
                    with pytest.raises(MCPError):
                        await session.call_tool("sleep", {"seconds": 30})

                tg.start_soon(slow_call)
                await anyio.sleep(0.1)
                with pytest.raises(MCPError):
                    await session.call_tool("crash", {"code": 5})
            await manager.wait_closed()
    assert manager.state is ConnectionState.FAILED
    assert isinstance(manager.error, ServerExitedError)
    assert isinstance(manager.error, ConnectionLostError)
    assert manager.error.returncode == 5
    assert "crashing on purpose" in str(manager.error)


async def test_stop_of_a_server_that_ignores_eof_and_sigterm_fits_in_the_timeout(tmp_path: Path) -> None:
    before = Snapshot.take()
    pidfile = tmp_path / "pids"
    manager = StdioConnectionManager(
        misbehaving("--ignore-eof-and-sigterm", "--pidfile", str(pidfile)), errlog=io.StringIO()
    )
    await manager.start()
    pid, _ = await read_pidfile(pidfile)
    started = time.monotonic()
    await manager.stop(timeout=1)
    elapsed = time.monotonic() - started
    assert elapsed < 1.5, f"stop(timeout=1) took {elapsed:.2f}s"
    assert not pid_alive(pid)
    assert manager.state is ConnectionState.STOPPED
    assert manager.returncode == -9
    await assert_no_leaks(before)


async def test_stop_kills_the_whole_process_tree(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    manager = StdioConnectionManager(misbehaving("--grandchild", "--pidfile", str(pidfile)), errlog=io.StringIO())
    await manager.start()
    pid, grandchild = await read_pidfile(pidfile)
    assert pid_alive(grandchild)
    with anyio.fail_after(5):
        await manager.stop(timeout=2)
    assert not pid_alive(pid)
    assert not pid_alive(grandchild)


async def test_a_server_whose_grandchild_holds_the_pipes_is_seen_exiting(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    manager = StdioConnectionManager(misbehaving("--grandchild", "--pidfile", str(pidfile)), errlog=io.StringIO())
    read, write = await manager.start()
    _, grandchild = await read_pidfile(pidfile)
    async with ClientSession(read, write) as session:
        await session.initialize()
        with anyio.fail_after(3):
            with pytest.raises(MCPError):
                await session.call_tool("crash", {"code": 9})
            await manager.wait_closed()
    assert isinstance(manager.error, ServerExitedError)
    assert manager.error.returncode == 9
    assert not pid_alive(grandchild), "the grandchild outlived a server that died"


async def test_a_server_that_floods_stderr_never_stalls_and_the_tail_stays_bounded() -> None:
    sink = NullWriter()
    manager = StdioConnectionManager(misbehaving("--flood-stderr", "100"), errlog=sink)
    read, write = await manager.start()
    with anyio.fail_after(30):
        async with ClientSession(read, write) as session:
            await session.initialize()
            assert await call_text(session, "echo", text="still here") == "still here"
    await manager.stop()
    assert sink.chars >= 100 * 1024 * 1024
    assert manager.stderr_tail.endswith("flood done\n")
    assert len(manager.stderr_tail.encode()) <= 64 * 1024


async def test_garbage_and_partial_lines_on_stdout_do_not_break_the_session() -> None:
    async with StdioConnectionManager(misbehaving("--garbage", "--unknown-id"), errlog=io.StringIO()) as streams:
        async with ClientSession(*streams) as session:
            await session.initialize()
            assert await call_text(session, "echo", text="fine") == "fine"
            assert await call_text(session, "add", a=1, b=1) == "2"


async def test_a_slow_server_is_waited_for() -> None:
    async with StdioConnectionManager(misbehaving("--slow", "0.3"), errlog=io.StringIO()) as streams:
        async with ClientSession(*streams) as session:
            await session.initialize()
            assert await call_text(session, "echo", text="late") == "late"


async def test_a_server_that_closes_stdout_but_keeps_running_is_lost_and_killed() -> None:
    manager = StdioConnectionManager(misbehaving("--close-stdout-after-init"), errlog=io.StringIO())
    read, write = await manager.start()
    pid = manager.pid
    assert pid is not None
    async with ClientSession(read, write) as session:
        await session.initialize()
        with anyio.fail_after(5):
            await manager.wait_closed()
    assert manager.state is ConnectionState.FAILED
    assert isinstance(manager.error, ConnectionLostError)
    assert "closed its stdout" in str(manager.error)
    assert not pid_alive(pid)


async def test_env_is_merged_over_the_safe_default_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MCP_CONNECTIONS_SECRET_OF_THE_CALLER", "do-not-inherit")
    params = misbehaving(env={"GREETING": "hello"})
    async with StdioConnectionManager(params, errlog=io.StringIO()) as streams, ClientSession(*streams) as session:
        await session.initialize()
        assert await call_text(session, "env", name="GREETING") == "hello"
        assert await call_text(session, "env", name="PATH") == os.environ["PATH"]
        assert await call_text(session, "env", name="MCP_CONNECTIONS_SECRET_OF_THE_CALLER") == "<unset>"


async def test_cwd_and_encoding_are_honoured(tmp_path: Path) -> None:
    params = misbehaving("--encoding", "latin-1", cwd=str(tmp_path))
    params.encoding = "latin-1"
    async with StdioConnectionManager(params, errlog=io.StringIO()) as streams, ClientSession(*streams) as session:
        await session.initialize()
        assert await call_text(session, "cwd") == str(tmp_path)
        assert await call_text(session, "echo", text="café") == "café"


async def test_an_undecodable_line_is_replaced_when_the_handler_says_replace() -> None:
    params = misbehaving("--encoding", "latin-1")  # the server writes latin-1, the client reads UTF-8
    params.encoding_error_handler = "replace"
    async with StdioConnectionManager(params, errlog=io.StringIO()) as streams, ClientSession(*streams) as session:
        await session.initialize()
        assert await call_text(session, "accent") == "caf\ufffd"


async def test_a_missing_command_fails_start_with_server_start_error_naming_it() -> None:
    before = Snapshot.take()
    manager = StdioConnectionManager(StdioServerParameters(command="no-such-mcp-server-xyz"), errlog=io.StringIO())
    with pytest.raises(ServerStartError) as caught:
        await manager.start()
    assert "no-such-mcp-server-xyz" in str(caught.value)
    assert "not found" in str(caught.value)
    assert isinstance(caught.value.__cause__, FileNotFoundError)
    assert manager.state is ConnectionState.FAILED
    assert manager.error is caught.value
    await assert_no_leaks(before)


async def test_a_command_without_permission_fails_with_server_start_error(tmp_path: Path) -> None:
    script = tmp_path / "server.sh"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o644)
    manager = StdioConnectionManager(StdioServerParameters(command=str(script)), errlog=io.StringIO())
    with pytest.raises(ServerStartError, match="permission denied") as caught:
        await manager.start()
    assert str(script) in str(caught.value)
    assert isinstance(caught.value.__cause__, PermissionError)


async def test_a_bad_working_directory_fails_with_server_start_error(tmp_path: Path) -> None:
    params = misbehaving(cwd=str(tmp_path / "missing"))
    manager = StdioConnectionManager(params, errlog=io.StringIO())
    with pytest.raises(ServerStartError, match="working directory") as caught:
        await manager.start()
    assert sys.executable in str(caught.value)


async def test_start_while_connected_raises_runtime_error_and_start_after_stop_reopens() -> None:
    manager = StdioConnectionManager(misbehaving(), errlog=io.StringIO())
    await manager.start()
    first_pid = manager.pid
    with pytest.raises(RuntimeError, match="start"):
        await manager.start()
    await manager.stop()
    await manager.start()
    assert manager.state is ConnectionState.CONNECTED
    assert manager.pid != first_pid
    await manager.stop()


async def test_start_after_a_failure_opens_a_fresh_connection() -> None:
    manager = StdioConnectionManager(misbehaving(), errlog=io.StringIO())
    read, write = await manager.start()
    async with ClientSession(read, write) as session:
        await session.initialize()
        with pytest.raises(MCPError):
            await session.call_tool("crash", {})
    await manager.wait_closed()
    assert manager.state is ConnectionState.FAILED
    read, write = await manager.start()
    assert manager.error is None
    async with ClientSession(read, write) as session:
        await session.initialize()
        assert await call_text(session, "echo", text="again") == "again"
    await manager.stop()


async def test_stop_before_start_and_twice_is_harmless_and_wait_closed_returns_at_once() -> None:
    manager = StdioConnectionManager(misbehaving(), errlog=io.StringIO())
    with anyio.fail_after(1):
        await manager.stop()
        await manager.wait_closed()
    assert manager.state is ConnectionState.IDLE
    await manager.start()
    await manager.stop()
    with anyio.fail_after(1):
        await manager.stop()
        await manager.wait_closed()
    assert manager.state is ConnectionState.STOPPED


async def test_cancelling_the_caller_of_start_leaves_nothing_running() -> None:
    before = Snapshot.take()
    manager = StdioConnectionManager(misbehaving(), errlog=io.StringIO())
    with anyio.move_on_after(0):
        await manager.start()
    assert manager.state is ConnectionState.STOPPED
    await assert_no_leaks(before)


def test_line_reader_joins_pieces_and_splits_lines_without_an_event_loop() -> None:
    reader = LineReader()
    assert reader.feed(b'{"a"') == []
    assert reader.feed(b": 1}\n\n{") == ['{"a": 1}']
    assert reader.feed(b'"b": 2}\r\n') == ['{"b": 2}\r']
    assert reader.feed("é".encode()[:1]) == []
    assert reader.feed("é".encode()[1:] + b"\n") == ["é"]
    errors = LineReader("utf-8", "strict").feed(b"\xff\n")
    assert isinstance(errors[0], UnicodeDecodeError)

"""ManagedSession against the misbehaving stdio server: handshake, timeouts, losses, restarts, pings."""

from __future__ import annotations

import io
import time
from pathlib import Path

import anyio
import pytest

from mcp_connections import (
    ConnectionLostError,
    ConnectionState,
    HandshakeTimeoutError,
    ManagedSession,
    MCPConnectionError,
    RequestTimeoutError,
    RestartPolicy,
    ServerExitedError,
    StdioConnectionManager,
)

from .helpers import Snapshot, assert_no_leaks, misbehaving, pid_alive

pytestmark = pytest.mark.anyio

FAST = RestartPolicy(max_restarts=5, window=60, backoff_initial=0.05, backoff_max=0.2, jitter=0)


def stdio(*flags: str) -> StdioConnectionManager:
    return StdioConnectionManager(misbehaving(*flags), errlog=io.StringIO())


def text(result: object) -> str:
    return result.content[0].text  # type: ignore[attr-defined, no-any-return]


async def wait_for_state(session: ManagedSession, state: ConnectionState, timeout: float = 5) -> None:
    with anyio.fail_after(timeout):
        while session.state is not state:
            await anyio.sleep(0.01)


async def test_a_managed_session_initializes_and_wraps_the_common_requests() -> None:
    before = Snapshot.take()
    async with ManagedSession(stdio("--paginate")) as session:
        assert session.state is ConnectionState.CONNECTED
        assert session.initialize_result is not None
        assert session.initialize_result.server_info.name == "misbehaving"
        tools = await session.list_tools()
        assert len(tools) == 11 and tools[0].name == "echo"  # eleven pages followed
        assert text(await session.call_tool("add", {"a": 1, "b": 2})) == "3"
        assert await session.list_resources() == []
        assert await session.list_prompts() == []
        await session.send_ping()
        assert session.session is not None
    assert session.state is ConnectionState.STOPPED
    await assert_no_leaks(before)


async def test_a_server_that_never_answers_initialize_gives_handshake_timeout_and_is_killed() -> None:
    before = Snapshot.take()
    manager = stdio("--hang-on-initialize")
    session = ManagedSession(manager, init_timeout=0.5)
    started = time.monotonic()
    with pytest.raises(HandshakeTimeoutError, match="initialize") as caught:
        await session.start()
    assert time.monotonic() - started < 3
    assert isinstance(caught.value.__cause__, TimeoutError)
    assert session.state is ConnectionState.FAILED
    assert session.error is caught.value
    assert manager.pid is not None and not pid_alive(manager.pid)
    await assert_no_leaks(before)


async def test_a_request_timeout_raises_cancels_on_the_server_and_keeps_the_session() -> None:
    manager = stdio()
    async with ManagedSession(manager, request_timeout=0.3) as session:
        started = time.monotonic()
        with pytest.raises(RequestTimeoutError) as caught:
            await session.call_tool("sleep", {"seconds": 10})
        assert isinstance(caught.value, TimeoutError)
        assert time.monotonic() - started < 1.5
        assert "sleep" in str(caught.value)
        with anyio.fail_after(5):
            while "cancelled" not in manager.stderr_tail:
                await anyio.sleep(0.01)
        assert text(await session.call_tool("echo", {"text": "still usable"})) == "still usable"
        assert text(await session.call_tool("sleep", {"seconds": 0.1}, timeout=5)) == "slept"


async def test_a_crash_during_a_call_without_a_policy_fails_the_call_and_the_session() -> None:
    session = ManagedSession(stdio())
    await session.start()
    with anyio.fail_after(2):
        with pytest.raises(ConnectionLostError) as caught:
            await session.call_tool("crash", {"code": 3})
    assert isinstance(caught.value.__cause__, ServerExitedError)
    assert "crashing on purpose" in str(caught.value)
    await session.wait_closed()
    assert session.state is ConnectionState.FAILED
    assert isinstance(session.error, ServerExitedError)
    started = time.monotonic()
    with pytest.raises(ConnectionLostError):
        await session.call_tool("echo", {"text": "x"})
    assert time.monotonic() - started < 0.1
    await session.stop()


async def test_in_flight_requests_fail_within_a_second_of_the_loss() -> None:
    async with ManagedSession(stdio()) as session:
        outcomes: list[BaseException] = []

        async def slow() -> None:
            try:
                await session.call_tool("sleep", {"seconds": 30})
            except MCPConnectionError as exc:
                outcomes.append(exc)

        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(slow)
            await anyio.sleep(0.2)
            started = time.monotonic()
            with pytest.raises(ConnectionLostError):
                await session.call_tool("crash", {})
            with anyio.fail_after(1):
                while len(outcomes) < 5:
                    await anyio.sleep(0.01)
            assert time.monotonic() - started < 1
        assert all(isinstance(e, ConnectionLostError) for e in outcomes)


async def test_a_crash_with_a_policy_restarts_and_reinitializes() -> None:
    manager = stdio()
    changes: list[tuple[ConnectionState, ConnectionState]] = []
    async with ManagedSession(manager, restart=FAST) as session:
        session.on_state_change(lambda old, new: changes.append((old, new)))
        first_pid = text(await session.call_tool("pid"))
        with pytest.raises(ConnectionLostError):
            await session.call_tool("crash", {})
        # A request made while it reconnects waits for the new connection.
        with anyio.fail_after(5):
            second_pid = text(await session.call_tool("pid"))
        assert second_pid != first_pid
        assert session.restarts == 1
        assert session.state is ConnectionState.CONNECTED
        assert not pid_alive(int(first_pid))
    assert (ConnectionState.CONNECTED, ConnectionState.CONNECTING) in changes
    assert (ConnectionState.CONNECTING, ConnectionState.CONNECTED) in changes


async def test_three_crashes_in_a_row_then_recovery(tmp_path: Path) -> None:
    state = tmp_path / "runs"
    manager = stdio("--exit-after-init", "--times", "4", "--state-file", str(state))
    session = ManagedSession(manager, restart=FAST)
    await session.start()  # run 1 exits right after the handshake; runs 2-4 too; run 5 stays
    with anyio.fail_after(10):
        while session.restarts < 4 or session.state is not ConnectionState.CONNECTED:
            await anyio.sleep(0.01)
    assert text(await session.call_tool("echo", {"text": "recovered"})) == "recovered"
    assert session.restarts == 4
    await session.stop()


async def test_a_crash_loop_exhausts_the_policy_and_ends_failed_with_the_last_error() -> None:
    before = Snapshot.take()
    policy = RestartPolicy(max_restarts=2, window=60, backoff_initial=0.01, backoff_max=0.05)
    session = ManagedSession(stdio("--exit-after-init"), restart=policy)
    await session.start()
    with anyio.fail_after(10):
        await session.wait_closed()
    assert session.state is ConnectionState.FAILED
    assert session.restarts == 2
    assert isinstance(session.error, ServerExitedError)
    assert session.error.returncode == 4
    with pytest.raises(ConnectionLostError):
        await session.call_tool("echo", {"text": "x"})
    await session.stop()
    await assert_no_leaks(before)


async def test_a_hung_server_is_found_by_pings_killed_and_restarted() -> None:
    manager = stdio()
    async with ManagedSession(manager, restart=FAST, ping_interval=0.1, ping_timeout=0.3) as session:
        hung_pid = int(text(await session.call_tool("pid")))
        await session.list_tools()  # the SDK validates results against the listing: have it before the freeze
        await session.call_tool("freeze")
        with anyio.fail_after(10):
            while session.restarts < 1 or session.state is not ConnectionState.CONNECTED:
                await anyio.sleep(0.01)
        assert not pid_alive(hung_pid)
        assert int(text(await session.call_tool("pid"))) != hung_pid


async def test_a_hung_server_without_a_policy_fails_the_session_naming_the_ping() -> None:
    session = ManagedSession(stdio(), ping_interval=0.1, ping_timeout=0.3)
    await session.start()
    await session.list_tools()
    await session.call_tool("freeze")
    with anyio.fail_after(5):
        await session.wait_closed()
    assert session.state is ConnectionState.FAILED
    assert "ping" in str(session.error)
    await session.stop()


async def test_twenty_concurrent_callers_across_a_restart_get_their_answer_or_connection_lost() -> None:
    async with ManagedSession(stdio(), restart=FAST) as session:
        results: dict[int, object] = {}

        async def caller(i: int) -> None:
            for round_ in range(5):
                key = i * 100 + round_
                try:
                    results[key] = text(await session.call_tool("echo", {"text": f"{key}"}))
                except ConnectionLostError as exc:
                    results[key] = exc
                await anyio.sleep(0.01)

        async with anyio.create_task_group() as tg:
            for i in range(20):
                tg.start_soon(caller, i)
            await anyio.sleep(0.03)
            with pytest.raises(ConnectionLostError):
                await session.call_tool("crash", {})
        assert len(results) == 100
        for key, outcome in results.items():
            assert outcome == f"{key}" or isinstance(outcome, ConnectionLostError), (key, outcome)
        assert session.restarts == 1


async def test_start_in_one_task_calls_in_others_and_stop_in_a_third() -> None:
    before = Snapshot.take()
    session = ManagedSession(stdio())
    async with anyio.create_task_group() as tg:
        tg.start_soon(session.start)
    answers: list[str] = []

    async def call(i: int) -> None:
        answers.append(text(await session.call_tool("add", {"a": i, "b": 0})))

    async with anyio.create_task_group() as tg:
        for i in range(5):
            tg.start_soon(call, i)
    assert sorted(answers) == ["0", "1", "2", "3", "4"]
    async with anyio.create_task_group() as tg:
        tg.start_soon(session.stop)
    assert session.state is ConnectionState.STOPPED
    await assert_no_leaks(before)


async def test_cancelling_one_caller_cancels_only_its_request() -> None:
    manager = stdio()
    async with ManagedSession(manager) as session:
        with anyio.move_on_after(0.2):
            await session.call_tool("sleep", {"seconds": 10})
        assert text(await session.call_tool("echo", {"text": "fine"})) == "fine"
        assert session.state is ConnectionState.CONNECTED
        with anyio.fail_after(5):
            while "cancelled" not in manager.stderr_tail:
                await anyio.sleep(0.01)


async def test_stop_during_start_ends_stopped_and_leaves_nothing() -> None:
    before = Snapshot.take()
    session = ManagedSession(stdio("--hang-on-initialize"), init_timeout=30)
    async with anyio.create_task_group() as tg:

        async def start() -> None:
            with pytest.raises(MCPConnectionError):
                await session.start()

        tg.start_soon(start)
        await anyio.sleep(0.3)
        started = time.monotonic()
        await session.stop(timeout=2)
        assert time.monotonic() - started < 2.6
    assert session.state is ConnectionState.STOPPED
    await assert_no_leaks(before)


async def test_a_server_that_exits_before_the_handshake_fails_start_with_its_stderr() -> None:
    session = ManagedSession(stdio("--exit-before-handshake", "2"), restart=FAST)
    with pytest.raises(ServerExitedError, match="cannot open the database"):
        await session.start()
    assert session.state is ConnectionState.FAILED
    assert session.restarts == 0


async def test_requests_before_start_raise_runtime_error_and_double_start_too() -> None:
    session = ManagedSession(stdio())
    with pytest.raises(RuntimeError, match="start"):
        await session.list_tools()
    await session.start()
    with pytest.raises(RuntimeError):
        await session.start()
    await session.stop()
    await session.stop()
    await session.start()  # restartable
    assert session.state is ConnectionState.CONNECTED
    await session.stop()

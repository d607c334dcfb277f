"""The shared lifecycle: its state table, never-stuck starts, cancelled callers, many stoppers, close callbacks."""

from __future__ import annotations

import io
import logging
import threading
from typing import Any

import anyio
import pytest

from mcp_connections import (
    ConnectError,
    ConnectionState,
    HandshakeTimeoutError,
    ManagedSession,
    ServerExitedError,
    StdioConnectionManager,
    _lifecycle,
)
from mcp_connections._lifecycle import RUNNING_STATES, TRANSITIONS, Lifecycle, LifecycleError
from mcp_connections.blocking import BlockingSession

from .helpers import Snapshot, assert_no_leaks, misbehaving

S = ConnectionState


def stdio(*flags: str) -> StdioConnectionManager:
    return StdioConnectionManager(misbehaving(*flags), errlog=io.StringIO())


# -- the table, without an event loop --------------------------------------------------------------------


def test_the_table_names_every_state_and_only_states() -> None:
    assert set(TRANSITIONS) == set(ConnectionState)
    for targets in TRANSITIONS.values():
        assert targets <= set(ConnectionState)


def test_a_closed_object_can_only_start_again_and_a_stopping_one_only_close() -> None:
    assert TRANSITIONS[S.STOPPED] == {S.CONNECTING} == TRANSITIONS[S.FAILED] == TRANSITIONS[S.IDLE]
    assert TRANSITIONS[S.STOPPING] == {S.STOPPED, S.FAILED}
    for state in RUNNING_STATES:
        assert TRANSITIONS[state] - RUNNING_STATES <= {S.STOPPED, S.FAILED}


def test_set_state_refuses_a_move_the_table_does_not_list() -> None:
    lifecycle: Lifecycle[None] = Lifecycle(object(), lambda: "srv", logging.getLogger("t"), what="x", stopped_early="")
    with pytest.raises(LifecycleError, match="idle -> connected"):
        lifecycle.set_state(S.CONNECTED)
    lifecycle.set_state(S.CONNECTING)
    lifecycle.set_state(S.STOPPING)
    with pytest.raises(LifecycleError, match="stopping -> connecting"):
        lifecycle.set_state(S.CONNECTING)
    assert lifecycle.state is S.STOPPING


# -- cancelled callers ------------------------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("after", [0, 0.005, 0.05])
async def test_a_manager_whose_start_caller_is_cancelled_while_connecting_stops_and_starts_again(after: float) -> None:
    before = Snapshot.take()
    manager = stdio()
    with anyio.move_on_after(after):
        await manager.start()
        await anyio.sleep_forever()
    assert manager.state in (S.STOPPED, S.CONNECTED)
    await manager.stop()
    with anyio.fail_after(1):
        await manager.wait_closed()
    await manager.start()
    assert manager.state is S.CONNECTED
    await manager.stop()
    await assert_no_leaks(before)


@pytest.mark.anyio
async def test_a_session_whose_start_caller_is_cancelled_during_initialize_ends_stopped_and_leaves_nothing() -> None:
    before = Snapshot.take()
    session = ManagedSession(stdio("--hang-on-initialize"), init_timeout=0.5)
    with anyio.move_on_after(0.3):
        await session.start()
    assert session.state is S.STOPPED
    assert session.manager.state is S.STOPPED
    with anyio.fail_after(1):
        await session.wait_closed()
    with pytest.raises(HandshakeTimeoutError):  # not stuck: a new start() runs its course
        await session.start()
    assert session.state is S.FAILED
    await assert_no_leaks(before)


# -- never stuck ------------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_start_whose_owner_task_cannot_be_spawned_ends_failed_not_stuck(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A fake failure: spawning a task does not fail on a healthy loop, so the spawner is replaced.
    real = _lifecycle.spawn_owner

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("no room for a task")

    manager = stdio()
    monkeypatch.setattr(_lifecycle, "spawn_owner", broken)
    with pytest.raises(ConnectError, match="no room for a task") as caught:
        await manager.start()
    assert isinstance(caught.value.__cause__, RuntimeError)
    assert manager.state is S.FAILED and manager.error is caught.value
    with anyio.fail_after(1):
        await manager.wait_closed()
        await manager.stop()
    monkeypatch.setattr(_lifecycle, "spawn_owner", real)
    await manager.start()
    assert manager.state is S.CONNECTED
    await manager.stop()
    assert manager.state is S.STOPPED


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.anyio
async def test_an_owner_cancelled_before_its_first_step_ends_the_session_failed(
    monkeypatch: pytest.MonkeyPatch, anyio_backend: str
) -> None:
    # Only asyncio can cancel a task before it runs (trio starts every task); the real task is cancelled.
    real = _lifecycle.spawn_owner

    def cancelled_at_once(*args: Any, **kwargs: Any) -> Any:
        handle = real(*args, **kwargs)
        handle._task.cancel()
        return handle

    monkeypatch.setattr(_lifecycle, "spawn_owner", cancelled_at_once)
    session = ManagedSession(stdio())
    with pytest.raises(ConnectError, match="cancelled before it ran"):
        await session.start()
    assert session.state is S.FAILED
    with anyio.fail_after(1):
        await session.wait_closed()
        await session.stop()
    monkeypatch.setattr(_lifecycle, "spawn_owner", real)
    await session.start()
    assert session.state is S.CONNECTED
    await session.stop()


# -- many stoppers ----------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_twenty_concurrent_stops_of_a_session_all_return_within_the_bound() -> None:
    before = Snapshot.take()
    session = ManagedSession(stdio())
    await session.start()
    returned = 0

    async def stop() -> None:
        nonlocal returned
        await session.stop(timeout=5)
        returned += 1

    with anyio.fail_after(5 + 2):
        async with anyio.create_task_group() as tg:
            for _ in range(20):
                tg.start_soon(stop)
    assert returned == 20
    assert session.state is S.STOPPED and session.manager.state is S.STOPPED
    await assert_no_leaks(before)


@pytest.mark.anyio
async def test_a_session_started_in_one_task_is_stopped_from_another() -> None:
    session = ManagedSession(stdio())
    async with anyio.create_task_group() as tg:
        tg.start_soon(session.start)
    assert session.state is S.CONNECTED
    async with anyio.create_task_group() as tg:
        tg.start_soon(session.stop)
    assert session.state is S.STOPPED


def test_a_blocking_session_started_in_one_thread_is_stopped_from_another() -> None:
    session = BlockingSession(stdio())
    session.start()
    try:
        stopper = threading.Thread(target=session.stop, args=(5,))
        stopper.start()
        stopper.join(10)
        assert not stopper.is_alive()
        assert session.state is S.STOPPED
    finally:
        session.close()


# -- close callbacks ---------------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_raising_close_callback_is_logged_and_the_next_one_still_runs(caplog: pytest.LogCaptureFixture) -> None:
    manager = stdio()
    manager.name = "cb-server"
    seen: list[object] = []

    def raising(closed: object) -> None:
        raise ValueError("callback bug")

    async def recording(closed: object) -> None:
        await anyio.sleep(0.001)
        seen.append(closed)

    manager.add_close_callback(raising)
    manager.add_close_callback(recording)
    await manager.start()
    with caplog.at_level(logging.ERROR, logger="mcp_connections"):
        with anyio.fail_after(5):
            await manager.stop()
    assert manager.state is S.STOPPED
    assert seen == [manager]
    record = next(r for r in caplog.records if "close callback" in r.getMessage())
    assert "cb-server" in record.getMessage() and record.exc_info is not None
    await manager.start()  # callbacks stay: they run at every close
    await manager.stop()
    assert seen == [manager, manager]


@pytest.mark.anyio
async def test_a_close_callback_can_be_removed() -> None:
    manager = stdio()
    seen: list[object] = []
    remove = manager.add_close_callback(seen.append)
    remove()
    remove()
    await manager.start()
    await manager.stop()
    assert seen == []


@pytest.mark.anyio
async def test_a_session_close_callback_gets_the_session_once_it_fails_for_good() -> None:
    session = ManagedSession(stdio("--exit-after-init"))
    seen: list[tuple[object, ConnectionState]] = []
    session.add_close_callback(lambda s: seen.append((s, s.state)))
    await session.start()
    with anyio.fail_after(5):
        await session.wait_closed()
    assert seen == [(session, S.FAILED)]
    assert isinstance(session.error, ServerExitedError)

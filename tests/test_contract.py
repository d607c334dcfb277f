"""The lifecycle contract of ConnectionManager, the same tests for every transport.

Each case runs against a real server: the misbehaving stdio server, and the HTTP (streamable HTTP and
SSE) and WebSocket test servers on loopback. ``Target`` hides how each is started and killed.
"""

from __future__ import annotations

import io
import os
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from typing import Any

import anyio
import pytest
from mcp import ClientSession

from mcp_connections import (
    ConnectionLostError,
    ConnectionManager,
    ConnectionState,
    ManagedSession,
    StdioConnectionManager,
)

from .helpers import Snapshot, misbehaving, pid_alive, settle, skip_websocket_on_trio
from .helpers.remote import make_manager, running_server

pytestmark = pytest.mark.anyio

TRANSPORTS = ("stdio", "streamable-http", "sse", "websocket")


@dataclass
class Target:
    """A server of one transport, and how to get a manager for it and to kill it."""

    transport: str
    make: Callable[[], ConnectionManager[Any]]
    kill: Callable[[ConnectionManager[Any]], None]


@pytest.fixture(params=TRANSPORTS)
def target(request: pytest.FixtureRequest, anyio_backend: str) -> Iterator[Target]:
    transport: str = request.param
    skip_websocket_on_trio(transport, anyio_backend)
    if transport == "stdio":

        def kill_stdio(manager: ConnectionManager[Any]) -> None:
            assert isinstance(manager, StdioConnectionManager) and manager.pid is not None
            os.kill(manager.pid, signal.SIGKILL)

        yield Target(transport, lambda: StdioConnectionManager(misbehaving(), errlog=io.StringIO()), kill_stdio)
        return
    with ExitStack() as stack:
        server = stack.enter_context(running_server(transport))
        yield Target(transport, lambda: make_manager(transport, server.url), lambda _: server.kill())


async def round_trip(streams: Any) -> str:
    async with ClientSession(*streams) as session:
        await session.initialize()
        result = await session.call_tool("echo", {"text": "ping"})
    return result.content[0].text  # type: ignore[no-any-return, union-attr]


async def test_start_connects_and_stop_releases(target: Target) -> None:
    manager = target.make()
    assert manager.state is ConnectionState.IDLE and manager.get_streams() is None
    streams = await manager.start()
    assert manager.state is ConnectionState.CONNECTED
    assert manager.get_streams() is streams
    assert await round_trip(streams) == "ping"
    await manager.stop()
    assert manager.state is ConnectionState.STOPPED
    assert manager.get_streams() is None and manager.error is None


async def test_async_with_is_start_and_stop(target: Target) -> None:
    manager = target.make()
    async with manager as streams:
        assert await round_trip(streams) == "ping"
    assert manager.state is ConnectionState.STOPPED


async def test_start_and_stop_run_in_different_tasks(target: Target) -> None:
    manager = target.make()
    async with anyio.create_task_group() as tg:
        tg.start_soon(manager.start)
    assert manager.state is ConnectionState.CONNECTED
    streams = manager.get_streams()
    assert await round_trip(streams) == "ping"
    async with anyio.create_task_group() as tg:
        tg.start_soon(manager.stop)
    assert manager.state is ConnectionState.STOPPED


async def test_stop_is_idempotent_concurrent_and_safe_before_start(target: Target) -> None:
    manager = target.make()
    with anyio.fail_after(2):
        await manager.stop()
        await manager.wait_closed()
    await manager.start()
    with anyio.fail_after(10):
        async with anyio.create_task_group() as tg:
            for _ in range(10):
                tg.start_soon(manager.stop)
        await manager.stop()
        await manager.wait_closed()
    assert manager.state is ConnectionState.STOPPED


async def test_start_twice_raises_and_start_after_stop_reconnects(target: Target) -> None:
    manager = target.make()
    await manager.start()
    with pytest.raises(RuntimeError, match="start"):
        await manager.start()
    await manager.stop()
    streams = await manager.start()
    assert await round_trip(streams) == "ping"
    await manager.stop()


async def test_a_lost_connection_ends_failed_and_wait_closed_returns(target: Target) -> None:
    manager = target.make()
    streams = await manager.start()
    async with ClientSession(*streams) as session:
        await session.initialize()  # remote transports connect for real at the first request
        target.kill(manager)
        with anyio.fail_after(10):
            await manager.wait_closed()
    assert manager.state is ConnectionState.FAILED
    assert isinstance(manager.error, ConnectionLostError)
    assert manager.get_streams() is None
    await manager.stop()  # safe after a failure
    assert manager.state is ConnectionState.FAILED


async def test_a_managed_session_works_the_same_over_every_transport(target: Target) -> None:
    async with ManagedSession(target.make(), request_timeout=10) as session:
        assert [tool.name for tool in await session.list_tools()][:1] == ["echo"]
        result = await session.call_tool("echo", {"text": "managed"})
        assert result.content[0].text == "managed"  # type: ignore[union-attr]


async def test_stop_returns_within_its_timeout_and_leaves_nothing(target: Target) -> None:
    manager = target.make()
    await manager.start()
    await manager.stop()
    before = Snapshot.take()
    for _ in range(5):
        await manager.start()
        started = time.monotonic()
        await manager.stop(timeout=2)
        assert time.monotonic() - started < 2.5
    await settle()
    after = Snapshot.take()
    assert after.fds <= before.fds and after.threads <= before.threads
    assert manager.state is ConnectionState.STOPPED
    if isinstance(manager, StdioConnectionManager):
        assert manager.pid is not None and not pid_alive(manager.pid)

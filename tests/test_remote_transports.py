"""The remote managers (streamable HTTP, SSE, WebSocket) against real servers on loopback, no mocks."""

from __future__ import annotations

import logging
import time
from collections.abc import Generator
from typing import Any

import anyio
import httpx2
import pytest
from mcp import ClientSession
from mcp.shared.exceptions import MCPError

from mcp_connections import ConnectError, ConnectionLostError, ConnectionState
from mcp_connections._bridge import RemoteConnectionManager

from .helpers import Snapshot, remote
from .helpers.remote import BEARER_TOKEN, RemoteServer, assert_no_growth, free_port, make_manager, running_server

pytestmark = pytest.mark.anyio

# The fixtures, by name: each test runs once per transport.
transport = remote.transport
remote_server = remote.remote_server
bearer_server = remote.bearer_server

# The managers' connect timeout in these tests: failures must come well within it.
TIMEOUT = 3.0


async def call_text(session: ClientSession, tool: str, **arguments: object) -> str:
    result = await session.call_tool(tool, arguments)
    return result.content[0].text  # type: ignore[union-attr]


async def connect_error(manager: RemoteConnectionManager) -> tuple[ConnectError, float]:
    """Connect and initialize, expecting a ConnectError at start() or at the first request.

    Returns the error and how long it took. A failed first request must also leave the manager FAILED
    with the same error.
    """
    started = time.monotonic()
    with anyio.fail_after(TIMEOUT + 2):
        try:
            read, write = await manager.start()
        except ConnectError as exc:
            assert manager.state is ConnectionState.FAILED
            assert manager.error is exc
            return exc, time.monotonic() - started
        # Streamable HTTP connects lazily: the first request meets the server.
        async with ClientSession(read, write) as session:
            with pytest.raises(MCPError):
                await session.initialize()
        await manager.wait_closed()
    elapsed = time.monotonic() - started
    assert manager.state is ConnectionState.FAILED
    assert isinstance(manager.error, ConnectError), repr(manager.error)
    return manager.error, elapsed


async def test_a_session_round_trips_over_each_transport(remote_server: RemoteServer) -> None:
    manager = make_manager(remote_server.transport, remote_server.url, timeout=TIMEOUT)
    read, write = await manager.start()
    assert manager.state is ConnectionState.CONNECTED
    assert manager.get_streams() == (read, write)
    async with ClientSession(read, write) as session:
        await session.initialize()
        tools = await session.list_tools()
        assert {tool.name for tool in tools.tools} >= {"echo", "add", "sleep", "crash"}
        assert await call_text(session, "echo", text="hello over the wire") == "hello over the wire"
        assert await call_text(session, "add", a=2, b=3) == "5.0"
    await manager.stop()
    assert manager.state is ConnectionState.STOPPED
    assert manager.error is None
    assert manager.get_streams() is None


async def test_start_and_stop_may_run_in_different_tasks(remote_server: RemoteServer) -> None:
    manager = make_manager(remote_server.transport, remote_server.url, timeout=TIMEOUT)
    async with anyio.create_task_group() as tg:
        tg.start_soon(manager.start)
    # The task that started it has ended; the connection lives on.
    assert manager.state is ConnectionState.CONNECTED
    streams = manager.get_streams()
    assert streams is not None
    async with ClientSession(*streams) as session:
        await session.initialize()
        assert await call_text(session, "echo", text="still here") == "still here"
    async with anyio.create_task_group() as tg:
        tg.start_soon(manager.stop)
    assert manager.state is ConnectionState.STOPPED


async def test_an_idle_connection_outlives_the_connect_timeout(remote_server: RemoteServer) -> None:
    manager = make_manager(remote_server.transport, remote_server.url, timeout=0.5)
    async with manager as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        await anyio.sleep(1.2)  # quiet streams are bounded by the read timeout, not by timeout
        assert manager.state is ConnectionState.CONNECTED
        assert await call_text(session, "sleep", seconds=0.7) == "slept"
        assert manager.state is ConnectionState.CONNECTED


async def test_a_server_killed_mid_call_fails_the_call_and_the_manager(remote_server: RemoteServer) -> None:
    manager = make_manager(remote_server.transport, remote_server.url, timeout=TIMEOUT)
    read, write = await manager.start()
    async with ClientSession(read, write) as session:
        await session.initialize()
        call_failed = anyio.Event()
        failed_after: list[float] = []

        async def slow_call() -> None:
            with pytest.raises(MCPError):
                await session.call_tool("sleep", {"seconds": 30})
            failed_after.append(time.monotonic() - killed_at)
            call_failed.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(slow_call)
            await anyio.sleep(0.3)  # the call reaches the server and sleeps there
            killed_at = time.monotonic()
            remote_server.kill()
            with anyio.fail_after(TIMEOUT):
                await call_failed.wait()
                await manager.wait_closed()
    assert failed_after[0] < TIMEOUT
    assert manager.state is ConnectionState.FAILED
    assert isinstance(manager.error, ConnectionLostError)
    assert remote_server.url in str(manager.error)
    assert manager.get_streams() is None
    await manager.stop()  # harmless after a failure
    assert manager.state is ConnectionState.FAILED


async def test_a_server_killed_while_idle_is_noticed_without_a_request(remote_server: RemoteServer) -> None:
    manager = make_manager(remote_server.transport, remote_server.url, timeout=TIMEOUT)
    read, write = await manager.start()
    async with ClientSession(read, write) as session:
        await session.initialize()
        await anyio.sleep(0.2)  # streamable HTTP opens its GET event stream after initialize
        remote_server.kill()
        with anyio.fail_after(TIMEOUT):
            await manager.wait_closed()
        assert manager.state is ConnectionState.FAILED
        assert isinstance(manager.error, ConnectionLostError)
        with anyio.fail_after(TIMEOUT), pytest.raises(MCPError):
            await session.list_tools()


async def test_a_server_that_is_not_up_gives_a_connect_error_naming_the_url(transport: str) -> None:
    url = {"websocket": "ws"}.get(transport, "http") + f"://127.0.0.1:{free_port()}/mcp"
    manager = make_manager(transport, url, timeout=TIMEOUT)
    error, elapsed = await connect_error(manager)
    assert elapsed < TIMEOUT
    assert url in str(error)
    assert "connection refused" in str(error)
    assert isinstance(error.__cause__, Exception)
    await manager.stop()


async def test_a_wrong_path_gives_a_connect_error_that_says_404(remote_server: RemoteServer) -> None:
    url = remote_server.url_for("/no/such/endpoint")
    manager = make_manager(remote_server.transport, url, timeout=TIMEOUT)
    error, elapsed = await connect_error(manager)
    assert elapsed < TIMEOUT
    assert url in str(error)
    assert "404" in str(error)
    assert "Check the path" in str(error)
    assert error.http_status == 404  # what a group reads to fall back to SSE


async def test_a_url_of_the_wrong_scheme_gives_a_connect_error_about_tls(remote_server: RemoteServer) -> None:
    scheme = "wss" if remote_server.transport == "websocket" else "https"
    manager = make_manager(remote_server.transport, remote_server.url_for("/mcp", scheme=scheme), timeout=TIMEOUT)
    error, elapsed = await connect_error(manager)
    assert elapsed < TIMEOUT
    assert f"{scheme}://127.0.0.1:{remote_server.port}/mcp" in str(error)


async def test_a_server_that_accepts_but_never_answers_gives_a_connect_error_within_timeout(
    remote_server: RemoteServer,
) -> None:
    remote_server.freeze()  # the kernel still accepts connections; nothing reads or answers them
    manager = make_manager(remote_server.transport, remote_server.url, timeout=1.0)
    started = time.monotonic()
    with anyio.fail_after(5):
        try:
            read, write = await manager.start()
        except ConnectError:
            pass
        else:
            async with ClientSession(read, write) as session:
                with pytest.raises(MCPError):
                    await session.initialize()
            await manager.wait_closed()
    elapsed = time.monotonic() - started
    assert elapsed < 1.5, f"gave up after {elapsed:.2f}s"
    assert manager.state is ConnectionState.FAILED
    assert isinstance(manager.error, ConnectError)
    assert "timed out" in str(manager.error)


async def test_the_bearer_header_is_sent_on_every_request(bearer_server: RemoteServer) -> None:
    headers = {"Authorization": f"Bearer {BEARER_TOKEN}"}
    manager = make_manager(bearer_server.transport, bearer_server.url, headers=headers, timeout=TIMEOUT)
    async with manager as (read, write), ClientSession(read, write) as session:
        await session.initialize()
        assert await call_text(session, "echo", text="authorized") == "authorized"


class BearerAuth(httpx2.Auth):
    def __init__(self, token: str) -> None:
        self.token = token

    def auth_flow(self, request: httpx2.Request) -> Generator[httpx2.Request, httpx2.Response, None]:
        request.headers["Authorization"] = f"Bearer {self.token}"
        yield request


@pytest.mark.parametrize("http_transport", ["streamable-http", "sse"])
async def test_http_transports_build_their_client_with_the_factory_and_the_auth(http_transport: str) -> None:
    calls: list[dict[str, Any]] = []

    def factory(
        headers: dict[str, str] | None = None,
        timeout: httpx2.Timeout | None = None,
        auth: httpx2.Auth | None = None,
    ) -> httpx2.AsyncClient:
        calls.append({"headers": headers, "timeout": timeout, "auth": auth})
        return httpx2.AsyncClient(headers=headers, timeout=timeout, auth=auth)

    auth = BearerAuth(BEARER_TOKEN)
    with running_server(http_transport, require_bearer=BEARER_TOKEN) as server:
        manager = make_manager(
            http_transport, server.url, headers={"X-Trace": "1"}, auth=auth, httpx_client_factory=factory
        )
        async with manager as (read, write), ClientSession(read, write) as session:
            await session.initialize()
            assert await call_text(session, "echo", text="via factory") == "via factory"
    assert len(calls) == 1
    assert calls[0]["headers"] == {"X-Trace": "1"}
    assert calls[0]["auth"] is auth
    assert calls[0]["timeout"] == httpx2.Timeout(5, read=300)


async def test_a_rejected_bearer_token_gives_a_connect_error_and_leaks_nowhere(
    bearer_server: RemoteServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("httpx2", "httpcore2", "mcp", "websockets", "mcp_connections", "uvicorn"):
        caplog.set_level(logging.DEBUG, logger=name)
    secret = "tok-wrong-a7d3c1b9e4"
    manager = make_manager(
        bearer_server.transport, bearer_server.url, headers={"Authorization": f"Bearer {secret}"}, timeout=TIMEOUT
    )
    error, elapsed = await connect_error(manager)
    assert elapsed < TIMEOUT
    assert "401" in str(error)
    assert bearer_server.url in str(error)
    assert caplog.records, "nothing was logged: the check below would prove nothing"
    for text in (str(error), repr(error), str(manager), repr(manager), str(error.__cause__), repr(error.__cause__)):
        assert secret not in text
    for record in caplog.records:
        assert secret not in record.getMessage(), record.getMessage()


async def test_credentials_in_the_url_never_appear_in_names_logs_or_errors(
    bearer_server: RemoteServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    for name in ("httpx2", "httpcore2", "mcp", "websockets", "mcp_connections"):
        caplog.set_level(logging.DEBUG, logger=name)
    password, token = "pw-e91b77f2", "qs-0c4d8a2f6b"
    path = "/sse" if bearer_server.transport == "sse" else "/mcp"
    url = bearer_server.url_for(f"{path}?api_key={token}", userinfo=f"alice:{password}@")
    manager = make_manager(bearer_server.transport, url, timeout=TIMEOUT)
    assert manager.name == bearer_server.url_for(f"{path}?api_key=REDACTED")
    error, _ = await connect_error(manager)  # the userinfo goes as Basic auth, which this server refuses
    assert "401" in str(error)
    for text in (str(error), repr(error), str(manager), repr(manager)):
        assert password not in text and token not in text
    for record in caplog.records:
        assert password not in record.getMessage(), record.getMessage()


async def test_stop_is_bounded_even_when_the_server_hangs(remote_server: RemoteServer) -> None:
    manager = make_manager(remote_server.transport, remote_server.url, timeout=TIMEOUT)
    read, write = await manager.start()
    async with ClientSession(read, write) as session:
        await session.initialize()
        remote_server.freeze()  # the sockets stay open, nothing answers: a goodbye would wait forever
        started = time.monotonic()
        await manager.stop(timeout=0.5)
        elapsed = time.monotonic() - started
    assert elapsed < 1.0, f"stop(timeout=0.5) took {elapsed:.2f}s"
    assert manager.state is ConnectionState.STOPPED


async def test_fifty_start_stop_cycles_leak_no_descriptors_threads_or_tasks(remote_server: RemoteServer) -> None:
    manager = make_manager(remote_server.transport, remote_server.url, timeout=TIMEOUT)

    async def cycle() -> None:
        read, write = await manager.start()
        async with ClientSession(read, write) as session:
            await session.initialize()
        await manager.stop()
        assert manager.state is ConnectionState.STOPPED

    await cycle()  # warm up: imports, lazily created executors and pools are not leaks
    before = Snapshot.take()
    with anyio.fail_after(45):
        for _ in range(50):
            await cycle()
    await assert_no_growth(before)


@pytest.mark.parametrize("anyio_backend", ["trio"])
async def test_the_websocket_transport_on_trio_fails_start_with_a_connect_error_that_says_it_needs_asyncio(
    anyio_backend: str,
) -> None:
    manager = make_manager("websocket", f"ws://127.0.0.1:{free_port()}/mcp")
    with pytest.raises(ConnectError, match="needs asyncio") as caught:
        await manager.start()
    assert manager.state is ConnectionState.FAILED and manager.error is caught.value
    with anyio.fail_after(1):
        await manager.wait_closed()
        await manager.stop()

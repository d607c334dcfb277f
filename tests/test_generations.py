"""Both protocol generations against real servers: negotiation, health checks, list changes, questions, progress."""

from __future__ import annotations

import io
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread
import mcp_types as types
import pytest
from mcp import StdioServerParameters
from mcp.client._input_required import InputRequiredRoundsExceededError
from mcp.server.mcpserver import Context, MCPServer
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS

from mcp_connections import (
    ConfigError,
    ConnectionLostError,
    ConnectionState,
    InMemoryConnectionManager,
    ManagedSession,
    RestartPolicy,
    ServerGroup,
    StdioConnectionManager,
)
from mcp_connections._demo_server import build_server
from mcp_connections.blocking import BlockingSession
from mcp_connections.config import parse_config

from .helpers import Snapshot, assert_no_leaks

pytestmark = pytest.mark.anyio

MODERN = "2026-07-28"
ROOT = Path(__file__).parent.parent
STDLIB_SERVER = ROOT / "benchmarks" / "servers" / "stdlib_server.py"
FAST = RestartPolicy(max_restarts=5, window=60, backoff_initial=0.05, backoff_max=0.2, jitter=0)


def demo() -> StdioConnectionManager:
    params = StdioServerParameters(command=sys.executable, args=["-m", "mcp_connections._demo_server"])
    return StdioConnectionManager(params, errlog=io.StringIO())


def text(result: Any) -> str:
    return result.content[0].text  # type: ignore[no-any-return]


async def answer_with_ada(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
    return types.ElicitResult(action="accept", content={"name": "Ada"})


async def wait_until(condition: Any, timeout: float = 10.0) -> None:
    with anyio.fail_after(timeout):
        while not condition():
            await anyio.sleep(0.02)


# -- negotiation -----------------------------------------------------------------------------------------


async def test_auto_negotiates_the_modern_generation_with_a_server_that_serves_both() -> None:
    before = Snapshot.take()
    async with ManagedSession(demo()) as session:
        assert session.mode == "auto"
        assert session.protocol_version == MODERN
        assert session.discover_result is not None and session.initialize_result is None
        assert session.server_info is not None and session.server_info.name == "demo"
        assert session.capabilities is not None and session.capabilities.tools is not None
        assert text(await session.call_tool("add", {"a": 2, "b": 3})) == "5.0"
    await assert_no_leaks(before)


async def test_legacy_forces_the_handshake_and_keeps_initialize_result() -> None:
    async with ManagedSession(demo(), mode="legacy") as session:
        assert session.protocol_version in HANDSHAKE_PROTOCOL_VERSIONS
        assert session.initialize_result is not None and session.discover_result is None
        assert session.initialize_result.server_info.name == "demo"
        assert session.server_info is not None and session.server_info.name == "demo"
        assert text(await session.call_tool("echo", {"text": "old"})) == "old"


async def test_a_modern_version_string_pins_it_without_a_probe() -> None:
    async with ManagedSession(demo(), mode=MODERN) as session:
        assert session.protocol_version == MODERN
        assert text(await session.call_tool("echo", {"text": "pinned"})) == "pinned"


async def test_auto_falls_back_to_the_handshake_with_a_handshake_only_server() -> None:
    params = StdioServerParameters(command=sys.executable, args=[str(STDLIB_SERVER)])
    async with ManagedSession(StdioConnectionManager(params, errlog=io.StringIO()), init_timeout=10) as session:
        assert session.protocol_version in HANDSHAKE_PROTOCOL_VERSIONS
        assert session.initialize_result is not None
        assert text(await session.call_tool("echo", {"text": "stdlib"})) == "stdlib"


def test_an_unknown_mode_or_a_handshake_era_version_is_a_config_error_that_says_what_to_use() -> None:
    with pytest.raises(ConfigError, match="'auto', 'legacy'"):
        ManagedSession(demo(), mode="newest")
    with pytest.raises(ConfigError, match="use mode='legacy'"):
        ManagedSession(demo(), mode="2025-06-18")
    with pytest.raises(TypeError, match="unknown options"):
        ManagedSession(demo(), no_such_option=1)


async def test_negotiation_runs_again_on_every_reconnect() -> None:
    async with ManagedSession(demo(), restart=FAST) as session:
        first = session.discover_result
        manager = session.manager
        assert isinstance(manager, StdioConnectionManager) and manager.pid is not None
        os.kill(manager.pid, signal.SIGKILL)
        await wait_until(lambda: session.restarts == 1 and session.state is ConnectionState.CONNECTED)
        assert session.protocol_version == MODERN
        assert session.discover_result is not None and session.discover_result is not first
        assert text(await session.call_tool("echo", {"text": "back"})) == "back"


# -- health checks -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_a_hung_server_is_found_by_the_health_check_of_either_generation(mode: str) -> None:
    before = Snapshot.take()
    session = ManagedSession(demo(), mode=mode, ping_interval=0.2, ping_timeout=0.5)
    await session.start()
    try:
        manager = session.manager
        assert isinstance(manager, StdioConnectionManager) and manager.pid is not None
        os.kill(manager.pid, signal.SIGSTOP)  # alive, pipes open, answering nothing
        with anyio.fail_after(10):
            await session.wait_closed()
        assert session.state is ConnectionState.FAILED
        assert isinstance(session.error, ConnectionLostError)
        probe = "server/discover" if mode == "auto" else "ping"
        assert f"did not answer a ping within 0.5s ({probe})" in str(session.error)
    finally:
        await session.stop()
    await assert_no_leaks(before)


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_send_ping_works_on_either_generation(mode: str) -> None:
    async with ManagedSession(demo(), mode=mode) as session:
        assert isinstance(await session.send_ping(timeout=5), types.EmptyResult)


# -- change notifications --------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_a_tool_added_at_run_time_fires_on_list_changed_and_the_next_listing_has_it(mode: str) -> None:
    async with ManagedSession(demo(), mode=mode) as session:
        assert "fresh" not in [t.name for t in await session.list_tools()]
        kinds: list[str] = []
        listed: list[list[str]] = []

        async def changed(kind: str) -> None:  # a request inside the callback: it must not block the session
            kinds.append(kind)
            listed.append([t.name for t in await session.list_tools()])

        session.on_list_changed(changed)
        assert text(await session.call_tool("add_tool", {"name": "fresh"})) == "added fresh"
        await wait_until(lambda: listed)
        assert kinds == ["tools"]
        assert "fresh" in listed[0]
        assert text(await session.call_tool("fresh", {"text": "new"})) == "new"


async def test_the_listen_stream_is_opened_again_after_a_reconnect() -> None:
    async with ManagedSession(demo(), restart=FAST) as session:
        kinds: list[str] = []
        session.on_list_changed(kinds.append)
        manager = session.manager
        assert isinstance(manager, StdioConnectionManager) and manager.pid is not None
        os.kill(manager.pid, signal.SIGKILL)
        await wait_until(lambda: session.restarts == 1 and session.state is ConnectionState.CONNECTED)
        await session.call_tool("add_tool", {"name": "after_restart"})
        await wait_until(lambda: kinds)
        assert kinds == ["tools"]


async def test_a_raising_list_changed_callback_is_logged_and_the_session_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async with ManagedSession(demo()) as session:
        seen: list[str] = []

        def broken(kind: str) -> None:
            raise ValueError("callback bug")

        session.on_list_changed(broken)
        session.on_list_changed(seen.append)
        await session.call_tool("add_tool", {"name": "another"})
        await wait_until(lambda: seen)
        assert any("list-changed callback" in r.getMessage() for r in caplog.records)
        assert text(await session.call_tool("echo", {"text": "fine"})) == "fine"


async def test_a_bypass_listing_asks_the_server_and_a_restart_starts_with_an_empty_cache() -> None:
    async with ManagedSession(demo(), restart=FAST) as session:
        first = await session.list_tools()
        assert [t.name for t in await session.list_tools(cache_mode="bypass")] == [t.name for t in first]
        assert [t.name for t in await session.list_tools(cache_mode="refresh")] == [t.name for t in first]


# -- questions, progress, meta ---------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_a_tool_that_asks_a_question_is_answered_through_the_elicitation_callback(mode: str) -> None:
    async with ManagedSession(demo(), mode=mode, elicitation_callback=answer_with_ada) as session:
        assert text(await session.call_tool("greet_user", {})) == "Hello, Ada!"


async def test_input_required_rounds_stop_at_the_sessions_cap() -> None:
    options: dict[str, Any] = {"elicitation_callback": answer_with_ada, "input_required_max_rounds": 0}
    async with ManagedSession(demo(), **options) as session:
        with pytest.raises(InputRequiredRoundsExceededError):
            await session.call_tool("greet_user", {})
        assert text(await session.call_tool("echo", {"text": "still here"})) == "still here"


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_progress_is_relayed_to_the_progress_callback(mode: str) -> None:
    async with ManagedSession(demo(), mode=mode) as session:
        seen: list[tuple[float, float | None, str | None]] = []

        async def progress(value: float, total: float | None, message: str | None) -> None:
            seen.append((value, total, message))

        assert text(await session.call_tool("count", {"steps": 3}, progress_callback=progress)) == "counted to 3"
        assert [v for v, _, _ in seen] == [1, 2, 3]
        assert seen[-1] == (3, 3, "step 3 of 3")


def meta_server() -> MCPServer:
    server = MCPServer("meta")

    @server.tool()
    async def show_meta(ctx: Context) -> str:
        """The request's _meta, as JSON."""
        meta = ctx.request_context.meta
        return json.dumps(dict(meta) if meta is not None else None, default=str)

    @server.prompt()
    async def slow_prompt(ctx: Context) -> str:
        """A prompt that reports progress."""
        await ctx.report_progress(1, 2)
        await ctx.report_progress(2, 2)
        return "prompted"

    @server.resource("meta://progress/{step}")
    async def slow_resource(step: str, ctx: Context) -> str:
        """A resource that reports progress."""
        await ctx.report_progress(float(step), 1)
        return "read"

    return server


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_meta_goes_out_with_the_request_and_prompts_and_resources_relay_progress(mode: str) -> None:
    async with ManagedSession(InMemoryConnectionManager(meta_server()), mode=mode) as session:
        shown = json.loads(text(await session.call_tool("show_meta", {}, meta={"trace": "abc-123"})))
        assert shown["trace"] == "abc-123"
        seen: list[float] = []

        async def progress(value: float, total: float | None, message: str | None) -> None:
            seen.append(value)

        prompt = await session.get_prompt("slow_prompt", progress_callback=progress, meta={"trace": "p"})
        assert prompt.messages[0].content.text == "prompted"  # type: ignore[union-attr]
        resource = await session.read_resource("meta://progress/1", progress_callback=progress)
        assert resource.contents[0].text == "read"  # type: ignore[union-attr]
        assert seen == [1, 2, 1]


def test_the_blocking_api_relays_progress_to_a_plain_function_and_sends_meta() -> None:
    seen: list[float] = []
    with BlockingSession(demo()) as session:
        result = session.call_tool("count", {"steps": 2}, progress_callback=lambda v, t, m: seen.append(v), meta={})
        assert text(result) == "counted to 2"
        assert session.protocol_version == MODERN
    assert seen == [1, 2]


# -- in-memory servers, configs, groups --------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_an_in_memory_server_object_serves_a_managed_session_of_either_generation(mode: str) -> None:
    await anyio.to_thread.run_sync(lambda: None)  # the server runs sync tools on anyio's (kept) worker threads
    before = Snapshot.take()
    for server in (build_server("mem"), build_server("low")._lowlevel_server):
        async with ManagedSession(InMemoryConnectionManager(server), mode=mode) as session:
            assert (session.protocol_version == MODERN) is (mode == "auto")
            assert text(await session.call_tool("add", {"a": 1, "b": 2})) == "3.0"
        assert session.manager.state is ConnectionState.STOPPED
    await assert_no_leaks(before)


def test_the_in_memory_manager_refuses_what_is_not_a_server() -> None:
    with pytest.raises(TypeError, match="Server or MCPServer"):
        InMemoryConnectionManager("not a server")  # type: ignore[arg-type]


def test_mode_is_a_config_key_checked_when_the_config_is_read() -> None:
    command = {"command": sys.executable, "args": ["-m", "mcp_connections._demo_server"]}
    configs = parse_config({"mcpServers": {"a": {**command, "mode": "legacy"}, "b": command}})
    assert configs["a"].mode == "legacy" and configs["b"].mode is None
    with pytest.raises(ConfigError, match="field 'mode'"):
        parse_config({"mcpServers": {"a": {**command, "mode": "2025-06-18"}}})


async def test_a_group_passes_its_mode_default_and_each_entry_may_override_it() -> None:
    command = {"command": sys.executable, "args": ["-m", "mcp_connections._demo_server"]}
    group = ServerGroup.from_config(
        {"mcpServers": {"old": {**command, "mode": "auto"}, "new": command}}, mode="legacy", errlog=io.StringIO()
    )
    async with group:
        statuses = group.status()
    assert statuses["old"].protocol_version == MODERN
    assert statuses["new"].protocol_version in HANDSHAKE_PROTOCOL_VERSIONS

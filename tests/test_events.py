"""Events of sessions and groups: state changes, restarts with their cause, catalogue changes, each request's end."""

from __future__ import annotations

import io
import logging
import sys
import time

import anyio
import pytest
from mcp.shared.exceptions import MCPError

from mcp_connections import (
    CatalogueChanged,
    ConnectionLostError,
    ConnectionState,
    Event,
    ManagedSession,
    RequestEnded,
    RequestTimeoutError,
    Restarted,
    RestartPolicy,
    ServerGroup,
    StateChanged,
    StdioConnectionManager,
    _otel,
)
from mcp_connections._events import EventHub, classify

from .helpers import MISBEHAVING, Snapshot, assert_no_leaks, misbehaving

pytestmark = pytest.mark.anyio

FAST = RestartPolicy(max_restarts=5, window=60, backoff_initial=0.05, backoff_max=0.2, jitter=0)
S = ConnectionState


def stdio(*flags: str) -> StdioConnectionManager:
    return StdioConnectionManager(misbehaving(*flags), errlog=io.StringIO())


async def wait_until(predicate: object, timeout: float = 10) -> None:
    with anyio.fail_after(timeout):
        while not predicate():  # type: ignore[operator]
            await anyio.sleep(0.01)


async def test_a_session_tells_its_state_changes_and_each_request_end() -> None:
    before = Snapshot.take()
    events: list[Event] = []
    session = ManagedSession(stdio())
    session.on_event(events.append)
    async with session:
        await session.call_tool("add", {"a": 1, "b": 2})
        await session.list_tools()
    states = [(e.old, e.new) for e in events if isinstance(e, StateChanged)]
    assert states == [
        (S.IDLE, S.CONNECTING),
        (S.CONNECTING, S.CONNECTED),
        (S.CONNECTED, S.STOPPING),
        (S.STOPPING, S.STOPPED),
    ]
    requests = [e for e in events if isinstance(e, RequestEnded)]
    assert [(r.method, r.tool, r.outcome) for r in requests] == [
        ("tools/call", "add", "ok"),
        ("tools/list", None, "ok"),
    ]
    assert all(r.server == session.name and 0 < r.duration < 10 and r.error_type is None for r in requests)
    assert requests[0].kind == "request" and requests[0].to_dict()["outcome"] == "ok"
    assert all(abs(e.time - time.time()) < 60 for e in events)
    await assert_no_leaks(before)


async def test_request_outcomes_say_tool_error_timeout_lost_and_failed() -> None:
    events: list[RequestEnded] = []
    async with ManagedSession(stdio("--dynamic")) as session:
        session.on_event(lambda e: events.append(e) if isinstance(e, RequestEnded) else None)
        with pytest.raises(MCPError):
            await session.call_tool("nonexistent")  # this server answers with a JSON-RPC error
        with pytest.raises(RequestTimeoutError):
            await session.call_tool("sleep", {"seconds": 5}, timeout=0.2)
        with pytest.raises(ConnectionLostError):
            await session.call_tool("crash", {"code": 3})
    by_tool = {e.tool: e for e in events}
    assert by_tool["sleep"].outcome == "timeout" and by_tool["sleep"].error_type == "RequestTimeoutError"
    assert by_tool["crash"].outcome == "lost" and by_tool["crash"].error_type == "ConnectionLostError"
    assert by_tool["nonexistent"].outcome == "failed" and by_tool["nonexistent"].error_type == "MCPError"
    assert by_tool["nonexistent"].error_code is not None


async def test_an_is_error_result_is_the_error_outcome_with_tool_error() -> None:
    outcome, error_type, _, _ = classify(type("R", (), {"is_error": True, "content": []})(), None)
    assert (outcome, error_type) == ("error", "tool_error")


async def test_a_restart_is_told_with_its_cause_and_the_states_around_it() -> None:
    before = Snapshot.take()
    events: list[Event] = []
    session = ManagedSession(stdio(), restart=FAST)
    session.on_event(events.append)
    async with session:
        with pytest.raises(ConnectionLostError):
            await session.call_tool("crash", {"code": 3})
        await wait_until(lambda: session.restarts == 1 and session.state is S.CONNECTED)
    restarts = [e for e in events if isinstance(e, Restarted)]
    assert len(restarts) == 1 and restarts[0].attempt == 1
    assert "exit" in restarts[0].cause.lower() or "lost" in restarts[0].cause.lower(), restarts[0].cause
    assert restarts[0].cause_type.endswith("Error") and restarts[0].error is not None
    states = [(e.old, e.new) for e in events if isinstance(e, StateChanged)]
    assert (S.CONNECTED, S.CONNECTING) in states and states.count((S.CONNECTING, S.CONNECTED)) == 2
    reconnecting = next(
        e for e in events if isinstance(e, StateChanged) and e.old is S.CONNECTED and e.new is S.CONNECTING
    )
    assert reconnecting.error is not None
    await assert_no_leaks(before)


async def test_a_group_tells_every_servers_events_and_its_catalogue_changes() -> None:
    before = Snapshot.take()
    config = {
        "mcpServers": {
            "one": {"command": sys.executable, "args": [str(MISBEHAVING), "--dynamic"]},
            "two": {"command": sys.executable, "args": [str(MISBEHAVING)]},
        }
    }
    events: list[Event] = []
    group = ServerGroup.from_config(config, errlog=None)
    group.on_event(events.append)
    async with group:
        await group.tools()
        await group.call("one__add_tool", {"name": "fresh"})
        await wait_until(
            lambda: any(isinstance(e, CatalogueChanged) and e.server == "one" and e.count > 24 for e in events)
        )
    servers = {e.server for e in events if isinstance(e, StateChanged)}
    assert servers == {"one", "two"}
    catalogue = [e for e in events if isinstance(e, CatalogueChanged) and e.catalogue == "tools"]
    assert {e.server for e in catalogue} >= {"one", "two"}
    call = next(e for e in events if isinstance(e, RequestEnded) and e.method == "tools/call")
    assert call.server == "one" and call.tool == "add_tool" and call.outcome == "ok"
    await assert_no_leaks(before)


async def test_async_callbacks_are_awaited_and_a_raising_one_breaks_nothing(caplog: pytest.LogCaptureFixture) -> None:
    before = Snapshot.take()
    seen: list[str] = []

    async def slow(event: Event) -> None:
        await anyio.sleep(0.01)
        seen.append(event.kind)

    def broken(event: Event) -> None:
        raise ValueError("dashboard down")

    session = ManagedSession(stdio())
    session.on_event(broken)
    session.on_event(slow)
    with caplog.at_level(logging.ERROR, logger="mcp_connections._events"):
        async with session:
            await session.call_tool("add", {"a": 1, "b": 2})
        await wait_until(lambda: seen.count("state") == 4)
    assert "request" in seen
    assert any("dashboard down" in r.getMessage() or r.exc_info for r in caplog.records)
    assert any(session.name in r.getMessage() for r in caplog.records)
    await assert_no_leaks(before)


async def test_a_remover_stops_the_callback() -> None:
    events: list[Event] = []
    async with ManagedSession(stdio()) as session:
        remove = session.on_event(events.append)
        await session.send_ping()
        remove()
        await session.send_ping()
    assert len([e for e in events if isinstance(e, RequestEnded)]) == 1


def test_emitting_with_no_listener_costs_next_to_nothing() -> None:
    """Not a timing assert (that is for benchmarks): a hub with nobody listening builds no event at all."""
    if _otel.metrics_enabled():
        pytest.skip("a meter provider is set in this process: metrics are recorded from events")
    hub = EventHub(lambda: "x")
    built: list[object] = []
    original = StateChanged.__init__

    def counting(self: StateChanged, *args: object, **kwargs: object) -> None:
        built.append(self)
        original(self, *args, **kwargs)  # type: ignore[arg-type]

    StateChanged.__init__ = counting  # type: ignore[method-assign]
    try:
        hub.state_changed(S.IDLE, S.CONNECTING, None)
        assert built == []
        hub.add(lambda e: None)
        hub.state_changed(S.IDLE, S.CONNECTING, None)
        assert len(built) == 1
    finally:
        StateChanged.__init__ = original  # type: ignore[method-assign]


def test_the_blocking_api_delivers_the_same_events_to_plain_functions() -> None:
    from mcp_connections import BlockingGroup, BlockingSession

    events: list[Event] = []
    with BlockingSession(stdio()) as session:
        session.on_event(events.append)
        session.call_tool("add", {"a": 1, "b": 2})
    assert [e.kind for e in events][:1] == ["request"] and events[-1].kind == "state"
    config = {"mcpServers": {"one": {"command": sys.executable, "args": [str(MISBEHAVING)]}}}
    group_events: list[Event] = []
    group = BlockingGroup.from_config(config, errlog=None)
    group.on_event(group_events.append)
    with group:
        group.call("one__add", {"a": 1, "b": 2})
    assert any(isinstance(e, RequestEnded) and e.tool == "add" and e.server == "one" for e in group_events)

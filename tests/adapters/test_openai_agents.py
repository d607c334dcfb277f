"""OpenAI Agents SDK: an agent with a scripted Model runs tool calls through ManagedMCPServer (no network, no LLM)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import pytest
from agents import Agent, RunConfig, Runner
from agents.items import ModelResponse
from agents.mcp import MCPServer, create_static_tool_filter
from agents.models.interface import Model
from agents.usage import Usage
from openai.types.responses import ResponseFunctionToolCall, ResponseOutputMessage, ResponseOutputText

from mcp_connections import ConnectionState, ManagedSession, StdioConnectionManager
from mcp_connections.adapters.openai_agents import ManagedMCPServer

from .conftest import content_server, fast_restarts

pytestmark = pytest.mark.anyio


class ScriptedModel(Model):
    """A Model that asks for the scripted tool calls, one turn after another, then answers "done"."""

    def __init__(self, *turns: list[tuple[str, dict[str, Any]]]) -> None:
        self.turns = list(turns)
        self.inputs: list[Any] = []
        self.tools_seen: list[list[str]] = []

    async def get_response(
        self,
        system_instructions: Any,
        input: Any,
        model_settings: Any,
        tools: Any,
        output_schema: Any,
        handoffs: Any,
        tracing: Any,
        **kwargs: Any,
    ) -> ModelResponse:
        self.inputs.append(input)
        self.tools_seen.append([t.name for t in tools])
        turn = len(self.tools_seen) - 1
        if turn < len(self.turns):
            output: list[Any] = [
                ResponseFunctionToolCall(
                    type="function_call", id=f"fc{turn}{i}", call_id=f"call{turn}{i}", name=n, arguments=json.dumps(a)
                )
                for i, (n, a) in enumerate(self.turns[turn])
            ]
        else:
            text = ResponseOutputText(type="output_text", text="done", annotations=[])
            output = [
                ResponseOutputMessage(id="m", type="message", role="assistant", status="completed", content=[text])
            ]
        return ModelResponse(output=output, usage=Usage(), response_id=None)

    def stream_response(self, *args: Any, **kwargs: Any) -> AsyncIterator[Any]:
        raise NotImplementedError


def flat(output: Any) -> str:
    """A tool output as the SDK gives it (text and image dicts, or a list of them) as one string."""
    if isinstance(output, list):
        return "\n".join(flat(o) for o in output)
    if isinstance(output, dict):
        return str(output.get("text") or output.get("image_url"))
    return str(output)


def outputs(result: Any) -> dict[str, str]:
    """``call_id -> output`` of the run's tool outputs."""
    return {i.raw_item["call_id"]: flat(i.output) for i in result.new_items if i.type == "tool_call_output_item"}


async def run(model: ScriptedModel, server: ManagedMCPServer) -> Any:
    agent = Agent(name="a", instructions="use the tools", model=model, mcp_servers=[server])
    return await Runner.run(agent, "go", run_config=RunConfig(tracing_disabled=True))


async def test_an_agent_runs_two_tool_calls_through_our_supervised_session(session: ManagedSession) -> None:
    server = ManagedMCPServer(session)
    assert isinstance(server, MCPServer)
    model = ScriptedModel([("add", {"a": 20, "b": 22}), ("echo", {"text": "hi"})])
    result = await run(model, server)
    got = outputs(result)
    assert json.loads(got["call00"]) == {"sum": 42}
    assert got["call01"] == "hi"
    assert result.final_output == "done"
    assert {"add", "echo", "image", "fail"} <= set(model.tools_seen[0])


async def test_is_error_and_unknown_tools_reach_the_model_as_text_and_the_run_goes_on(session: ManagedSession) -> None:
    model = ScriptedModel([("fail", {}), ("image", {})])
    result = await run(model, ManagedMCPServer(session))
    got = outputs(result)
    assert "it failed on purpose" in str(got["call00"])
    assert "data:image/png;base64," in str(got["call01"])
    assert result.final_output == "done"


async def test_static_and_dynamic_tool_filters_are_honoured(session: ManagedSession) -> None:
    model = ScriptedModel()
    await run(
        model, ManagedMCPServer(session, tool_filter=create_static_tool_filter(allowed_tool_names=["echo", "add"]))
    )
    assert sorted(model.tools_seen[0]) == ["add", "echo"]

    seen_servers: list[str] = []

    async def no_media(context: Any, tool: Any) -> bool:
        seen_servers.append(context.server_name)
        return tool.name not in ("image", "audio")

    model = ScriptedModel()
    await run(model, ManagedMCPServer(session, name="content", tool_filter=no_media))
    assert "image" not in model.tools_seen[0] and "echo" in model.tools_seen[0]
    assert set(seen_servers) == {"content"}


async def test_the_tools_list_is_cached_when_asked_and_listed_again_after_invalidation(session: ManagedSession) -> None:
    server = ManagedMCPServer(session, cache_tools_list=True)
    first = await server.list_tools()
    assert server.cached_tools is not None and [t.name for t in server.cached_tools] == [t.name for t in first]
    await session.call_tool("grow")
    assert "late" not in [t.name for t in await server.list_tools()]  # cached
    server.invalidate_tools_cache()
    assert "late" in [t.name for t in await server.list_tools()]


async def test_without_caching_a_tool_added_by_list_changed_is_there_on_the_next_turn(session: ManagedSession) -> None:
    model = ScriptedModel([("grow", {})], [("late", {"word": "w"})])
    result = await run(model, ManagedMCPServer(session))
    assert "late" not in model.tools_seen[0] and "late" in model.tools_seen[1]
    assert outputs(result)["call10"] == "late: w"


async def test_a_server_killed_during_the_run_is_restarted_and_the_next_call_succeeds() -> None:
    async with ManagedSession(StdioConnectionManager(content_server("--crash-tool")), restart=fast_restarts()) as s:
        before = (await s.call_tool("pid")).content[0].text  # type: ignore[union-attr]
        model = ScriptedModel([("crash", {})], [("pid", {})])
        result = await run(model, ManagedMCPServer(s))
        got = outputs(result)
        assert "lost" in str(got["call00"]) or "exited" in str(got["call00"])
        assert got["call10"] != before and int(got["call10"]) > 0
        assert s.restarts == 1 and result.final_output == "done"


async def test_connect_starts_a_session_that_is_not_running_and_cleanup_stops_it() -> None:
    session = ManagedSession(StdioConnectionManager(content_server()))
    server = ManagedMCPServer(session)
    async with server:
        assert session.state is ConnectionState.CONNECTED
        result = await run(ScriptedModel([("echo", {"text": "x"})]), server)
        assert outputs(result)["call00"] == "x"
    assert session.state is ConnectionState.STOPPED


async def test_over_a_group_calls_are_routed_by_catalogue_name_and_changes_drop_the_cache(group: Any) -> None:
    server = ManagedMCPServer(group, cache_tools_list=True)
    model = ScriptedModel([("content__add", {"a": 1, "b": 2}), ("demo__echo", {"text": "d"})], [("content__grow", {})])
    result = await run(model, server)
    got = outputs(result)
    assert json.loads(got["call00"]) == {"sum": 3} and got["call01"] == "d"
    import anyio

    with anyio.fail_after(5):  # the catalogue re-lists on list_changed and tells us; the cache is dropped
        while "content__late" not in [t.name for t in await server.list_tools()]:
            await anyio.sleep(0.05)


async def test_agent_runs_leave_no_tasks_descriptors_or_processes_behind() -> None:
    from tests.helpers import Snapshot, assert_no_leaks

    before = Snapshot.take()
    server = ManagedMCPServer(ManagedSession(StdioConnectionManager(content_server())))
    for _ in range(2):
        async with server:
            result = await run(ScriptedModel([("echo", {"text": "x"}), ("add", {"a": 1, "b": 1})]), server)
            assert outputs(result)["call00"] == "x"
    await assert_no_leaks(before)

"""Pydantic AI: TestModel runs an agent over every tool of a real server; a killed server is restarted mid-run."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic_ai import Agent
from pydantic_ai.messages import (
    BinaryContent,
    BinaryImage,
    ModelMessage,
    ModelRequest,
    ModelResponse,
    TextPart,
    ToolCallPart,
    ToolReturnPart,
)
from pydantic_ai.models.function import AgentInfo, FunctionModel
from pydantic_ai.models.test import TestModel

from mcp_connections import ConnectionState, ManagedSession, StdioConnectionManager
from mcp_connections.adapters.pydantic_ai import ManagedToolset, toolset

from .conftest import content_server, fast_restarts
from .server import PNG, TOOLS, WAV

pytestmark = pytest.mark.anyio


def returns(messages: list[ModelMessage]) -> dict[str, ToolReturnPart]:
    return {
        p.tool_name: p
        for m in messages
        if isinstance(m, ModelRequest)
        for p in m.parts
        if isinstance(p, ToolReturnPart)
    }


async def test_test_model_calls_every_tool_of_the_server_through_the_toolset(session: ManagedSession) -> None:
    agent = Agent(TestModel(), toolsets=[ManagedToolset(session)])
    result = await agent.run("call everything")
    got = returns(result.all_messages())
    assert set(got) == {t.name for t in TOOLS}
    assert got["add"].content == {"sum": got["add"].content["sum"]}  # structuredContent, as MCPToolset maps it
    assert isinstance(got["image"].content, BinaryImage) and got["image"].content.data == PNG
    assert got["image"].content.media_type == "image/png"
    assert isinstance(got["audio"].content, BinaryContent) and got["audio"].content.data == WAV
    assert got["audio"].content.media_type == "audio/wav"
    assert got["resource"].content[0] == "notes" and got["resource"].content[1].data == PNG
    assert got["fail"].outcome == "failed" and "it failed on purpose" in got["fail"].model_response_str()
    assert got["echo"].outcome == "success"


async def test_schemas_reach_the_model_unchanged(session: ManagedSession) -> None:
    model = TestModel()
    await Agent(model, toolsets=[toolset(session)]).run("x")
    assert model.last_model_request_parameters is not None
    sent = {t.name: t for t in model.last_model_request_parameters.function_tools}
    listed = {t.name: t for t in await session.list_tools()}
    for name, tool in listed.items():
        assert sent[name].parameters_json_schema == tool.input_schema
        assert sent[name].description == tool.description


async def test_retry_behaviour_sends_a_retry_prompt_instead(session: ManagedSession) -> None:
    agent = Agent(TestModel(call_tools=["fail"]), toolsets=[ManagedToolset(session, tool_error_behavior="retry")])
    with pytest.raises(Exception, match="exceeded max retries"):
        await agent.run("x")


def scripted(*steps: list[tuple[str, dict[str, Any]]]) -> FunctionModel:
    """A model that asks for the given tool calls, one step after another, then says "done"."""
    seen: list[list[str]] = []

    def respond(messages: list[ModelMessage], info: AgentInfo) -> ModelResponse:
        seen.append([t.name for t in info.function_tools])
        step = sum(isinstance(m, ModelResponse) for m in messages)
        if step < len(steps):
            return ModelResponse(parts=[ToolCallPart(n, json.dumps(a)) for n, a in steps[step]])
        return ModelResponse(parts=[TextPart("done")])

    model = FunctionModel(respond)
    model.seen = seen  # type: ignore[attr-defined]
    return model


async def test_a_tool_added_by_list_changed_is_offered_at_the_next_step(session: ManagedSession) -> None:
    model = scripted([("grow", {})], [("late", {"word": "next"})])
    result = await Agent(model, toolsets=[ManagedToolset(session)]).run("x")
    assert "late" not in model.seen[0] and "late" in model.seen[1]  # type: ignore[attr-defined]
    assert returns(result.all_messages())["late"].content == "late: next"


async def test_a_server_killed_during_a_run_is_restarted_and_the_next_call_succeeds() -> None:
    manager = StdioConnectionManager(content_server("--crash-tool"))
    async with ManagedSession(manager, restart=fast_restarts()) as session:
        first_pid = int((await session.call_tool("pid")).content[0].text)  # type: ignore[union-attr]
        model = scripted([("crash", {})], [("pid", {})])
        result = await Agent(model, toolsets=[ManagedToolset(session)]).run("x")
        got = returns(result.all_messages())
        assert got["crash"].outcome == "failed"  # the model is told the connection was lost
        assert "lost" in got["crash"].model_response_str() or "exited" in got["crash"].model_response_str()
        assert got["pid"].outcome == "success" and int(got["pid"].content) != first_pid
        assert session.restarts == 1 and session.state is ConnectionState.CONNECTED
        assert result.output == "done"


async def test_entering_the_agent_starts_a_session_that_is_not_running_and_stops_it_after() -> None:
    session = ManagedSession(StdioConnectionManager(content_server()))
    agent = Agent(TestModel(call_tools=["echo"]), toolsets=[ManagedToolset(session)])
    async with agent:
        assert session.state is ConnectionState.CONNECTED
        await agent.run("x")
        assert session.state is ConnectionState.CONNECTED
    assert session.state is ConnectionState.STOPPED


async def test_over_a_group_the_agent_sees_the_catalogue(group: Any) -> None:
    agent = Agent(TestModel(call_tools=["content__echo", "demo__add"]), toolsets=[ManagedToolset(group)])
    got = returns((await agent.run("x")).all_messages())
    assert got["content__echo"].outcome == "success" and got["demo__add"].outcome == "success"


async def test_a_groups_server_killed_during_a_run_keeps_its_tools_and_the_next_call_succeeds() -> None:
    from mcp_connections import ServerGroup

    from .conftest import group_config

    async with ServerGroup.from_config(group_config("--crash-tool"), restart=fast_restarts()) as group:
        model = scripted([("content__crash", {})], [("content__pid", {})])
        result = await Agent(model, toolsets=[ManagedToolset(group)]).run("x")
        got = returns(result.all_messages())
        assert got["content__crash"].outcome == "failed" and got["content__pid"].outcome == "success"
        assert "content__pid" in model.seen[1]  # type: ignore[attr-defined]  # no flap while it restarted
        assert group["content"].restarts == 1

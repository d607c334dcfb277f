"""fastmcp: the real fastmcp.Client over ManagedSessionTransport, and Pydantic AI's MCPToolset through it."""

from __future__ import annotations

import sys
from typing import Any

import anyio
import pytest
from fastmcp import Client
from fastmcp.exceptions import ToolError
from pydantic_ai import Agent
from pydantic_ai.mcp import MCPToolset
from pydantic_ai.models.test import TestModel

from mcp_connections import ConnectionState, ManagedSession, ServerGroup, StdioConnectionManager
from mcp_connections.adapters.fastmcp import ManagedSessionTransport

from .conftest import content_server, fast_restarts
from .server import PNG_B64, TOOLS

pytestmark = pytest.mark.anyio

DEMO = {"mcpServers": {"demo": {"command": sys.executable, "args": ["-m", "mcp_connections._demo_server"]}}}


def crashing_session() -> ManagedSession:
    return ManagedSession(StdioConnectionManager(content_server("--crash-tool")), restart=fast_restarts())


@pytest.mark.parametrize("mode", ["auto", "legacy"])
async def test_the_fastmcp_client_lists_and_calls_tools_through_the_managed_session(
    session: ManagedSession, mode: str
) -> None:
    async with Client(ManagedSessionTransport(session), mode=mode) as client:
        assert [t.name for t in await client.list_tools()] == [t.name for t in TOOLS]
        listed = {t.name: t for t in await client.list_tools()}
        assert listed["add"].input_schema == TOOLS[1].input_schema  # schemas pass through the proxy as sent
        added = await client.call_tool("add", {"a": 2, "b": 2})
        assert added.structured_content == {"sum": 4}
        image = await client.call_tool("image")
        assert image.content[0].data == PNG_B64 and image.content[0].mime_type == "image/png"  # type: ignore[union-attr]
        with pytest.raises(ToolError, match="it failed on purpose"):
            await client.call_tool("fail")
    assert session.state is ConnectionState.CONNECTED  # closing the client leaves the server up


async def test_resources_and_prompts_of_a_groups_server_go_through_too() -> None:
    async with ServerGroup.from_config(DEMO) as group, Client(ManagedSessionTransport(group, server="demo")) as client:
        assert "demo://readme" in [str(r.uri) for r in await client.list_resources()]
        contents = await client.read_resource("demo://readme")
        assert "a demo server" in contents[0].text  # type: ignore[union-attr]
        prompt = await client.get_prompt("greet", {"person": "Ada"})
        assert "Ada" in prompt.messages[0].content.text  # type: ignore[union-attr]
        whoami = await client.call_tool("whoami")
        assert whoami.content[0].text.startswith("demo (pid")  # type: ignore[union-attr]


async def test_a_server_that_crashes_is_restarted_behind_the_client_and_the_next_call_succeeds() -> None:
    async with crashing_session() as session, Client(ManagedSessionTransport(session)) as client:
        before = (await client.call_tool("pid")).content[0].text  # type: ignore[union-attr]
        with pytest.raises(ToolError, match="exited"):
            await client.call_tool("crash")
        after = (await client.call_tool("pid")).content[0].text  # type: ignore[union-attr]
        assert after != before and session.restarts == 1


async def test_a_client_connecting_to_a_stopped_session_starts_it_and_its_exit_stops_it() -> None:
    session = ManagedSession(StdioConnectionManager(content_server()))
    async with Client(ManagedSessionTransport(session)) as client:
        assert session.state is ConnectionState.CONNECTED
        assert (await client.call_tool("echo", {"text": "up"})).content[0].text == "up"  # type: ignore[union-attr]
    assert session.state is ConnectionState.STOPPED


def test_a_group_needs_the_server_name_and_a_wrong_one_lists_the_servers() -> None:
    group = ServerGroup.from_config(DEMO)
    with pytest.raises(TypeError, match="server="):
        ManagedSessionTransport(group)
    with pytest.raises(KeyError, match="demo"):
        ManagedSessionTransport(group, server="nope")


async def test_pydantic_ais_mcp_toolset_runs_an_agent_through_the_transport_across_a_restart() -> None:
    async with crashing_session() as session:
        first_pid = (await session.call_tool("pid")).content[0].text  # type: ignore[union-attr]
        toolset = MCPToolset(Client(ManagedSessionTransport(session)), tool_error_behavior="failed")
        agent = Agent(TestModel(call_tools=["crash"]), toolsets=[toolset])
        result = await agent.run("x")
        returns = {
            p.tool_name: p
            for m in result.all_messages()
            for p in getattr(m, "parts", [])
            if p.part_kind == "tool-return"
        }
        assert returns["crash"].outcome == "failed" and "exited" in returns["crash"].model_response_str()
        result = await Agent(TestModel(call_tools=["pid"]), toolsets=[toolset]).run("again")
        pids = [
            p.content for m in result.all_messages() for p in getattr(m, "parts", []) if p.part_kind == "tool-return"
        ]
        assert pids and pids[0] != first_pid


async def test_langchains_mcp_tools_work_through_the_transport(session: ManagedSession) -> None:
    from langchain_core._api import suppress_langchain_beta_warning

    with suppress_langchain_beta_warning():  # langchain.mcp warns on import that it is in beta
        from langchain.mcp import as_langchain_tool

    client = Client(ManagedSessionTransport(session))
    async with client:
        tools = {t.name: await as_langchain_tool(t, client) for t in await client.list_tools()}
    message = await tools["echo"].ainvoke({"id": "1", "name": "echo", "args": {"text": "lc"}, "type": "tool_call"})
    assert message.content[0]["text"] == "lc"


async def test_list_changed_of_the_backend_reaches_the_client() -> None:
    received: list[str] = []

    async def handler(message: Any) -> None:
        method = getattr(getattr(message, "root", message), "method", None)
        if method:
            received.append(method)

    # A legacy backend: the test server announces changes with notifications/tools/list_changed, which the
    # session turns into on_list_changed (a modern server's changes come over subscriptions/listen instead).
    backend = ManagedSession(StdioConnectionManager(content_server()), mode="legacy")
    async with backend, Client(ManagedSessionTransport(backend), mode="legacy", message_handler=handler) as client:
        await client.call_tool("grow")
        with anyio.fail_after(5):
            while "notifications/tools/list_changed" not in received:
                await anyio.sleep(0.02)
        assert "late" in [t.name for t in await client.list_tools()]


async def test_clients_that_come_and_go_leave_no_tasks_descriptors_or_processes_behind() -> None:
    from tests.helpers import Snapshot, assert_no_leaks

    before = Snapshot.take()
    session = ManagedSession(StdioConnectionManager(content_server()))
    transport = ManagedSessionTransport(session)
    for _ in range(3):  # each client starts the stopped session and its exit stops it again
        async with Client(transport) as client:
            assert (await client.call_tool("echo", {"text": "x"})).content[0].text == "x"  # type: ignore[union-attr]
    async with session:
        for _ in range(3):  # a running session is shared, and left running
            async with Client(transport) as client:
                await client.list_tools()
        assert session.state is ConnectionState.CONNECTED
    await assert_no_leaks(before)


async def test_a_client_of_a_groups_server_starts_the_group_when_it_is_not_running_and_stops_it_after() -> None:
    group = ServerGroup.from_config(DEMO)
    async with Client(ManagedSessionTransport(group, server="demo")) as client:
        assert group["demo"].state is ConnectionState.CONNECTED
        assert (await client.call_tool("echo", {"text": "g"})).content[0].text == "g"  # type: ignore[union-attr]
    assert group["demo"].state is ConnectionState.STOPPED

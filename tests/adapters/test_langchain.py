"""LangChain: the tools invoked directly, from a fake chat model's tool calls, and inside a LangChain agent."""

from __future__ import annotations

import json
from typing import Any

import pytest
from langchain_core.language_models.fake_chat_models import GenericFakeChatModel
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import BaseTool

from mcp_connections import ManagedSession
from mcp_connections.adapters.langchain import langchain_tools

from .server import PNG_B64, WAV_B64

pytestmark = pytest.mark.anyio


class ScriptedChatModel(GenericFakeChatModel):
    """A fake chat model that an agent can bind tools to (it answers from its script whatever the tools)."""

    def bind_tools(self, tools: Any, **kwargs: Any) -> Any:
        return self


def by_name(tools: list[BaseTool]) -> dict[str, BaseTool]:
    return {t.name: t for t in tools}


def texts(message: ToolMessage) -> list[str]:
    return [b["text"] for b in message.content if isinstance(b, dict) and b.get("type") == "text"]


async def test_every_tool_is_an_async_base_tool_with_the_servers_json_schema(session: ManagedSession) -> None:
    listed = {t.name: t for t in await session.list_tools()}
    tools = by_name(await langchain_tools(session))
    assert set(tools) == set(listed)
    for name, tool in tools.items():
        assert isinstance(tool, BaseTool)
        assert tool.args_schema == listed[name].input_schema
        assert tool.description == listed[name].description
    assert tools["echo"].args == {"text": {"type": "string", "description": "what to echo"}}
    with pytest.raises(NotImplementedError):
        tools["echo"].invoke({"text": "sync"})  # async only: the connection lives on the event loop


async def test_invoked_directly_a_tool_returns_its_text(session: ManagedSession) -> None:
    tools = by_name(await langchain_tools(session))
    assert texts_of(await tools["echo"].ainvoke({"text": "hello"})) == ["hello"]
    added = await tools["add"].ainvoke({"a": 1, "b": 2})  # without a tool call id: the content alone
    assert json.loads(texts_of(added)[0]) == {"sum": 3}


def texts_of(content: Any) -> list[str]:
    return [b["text"] for b in content if b.get("type") == "text"]


async def test_tool_calls_of_a_fake_chat_model_give_tool_messages_with_images_as_artifacts(
    session: ManagedSession,
) -> None:
    tools = by_name(await langchain_tools(session))
    model = GenericFakeChatModel(
        messages=iter(
            [
                AIMessage(
                    content="",
                    tool_calls=[
                        {"id": "1", "name": "add", "args": {"a": 2, "b": 5}},
                        {"id": "2", "name": "image", "args": {}},
                        {"id": "3", "name": "audio", "args": {}},
                        {"id": "4", "name": "resource", "args": {}},
                        {"id": "5", "name": "fail", "args": {}},
                    ],
                )
            ]
        )
    )
    reply = await model.ainvoke("go")
    assert isinstance(reply, AIMessage)
    out = [await tools[call["name"]].ainvoke(call) for call in reply.tool_calls]
    assert all(isinstance(m, ToolMessage) for m in out)
    add, image, audio, resource, fail = out
    assert json.loads(texts(add)[0]) == {"sum": 7}
    assert add.artifact == {"media": [], "structured_content": {"sum": 7}}
    assert image.artifact["media"][0]["type"] == "image"
    assert image.artifact["media"][0]["base64"] == PNG_B64 and image.artifact["media"][0]["mime_type"] == "image/png"
    assert "image image/png" in texts(image)[0]
    assert audio.artifact["media"][0]["type"] == "audio" and audio.artifact["media"][0]["base64"] == WAV_B64
    assert texts(resource)[0] == "notes" and resource.artifact["media"][0]["mime_type"] == "image/png"
    assert fail.status == "error" and fail.content == "it failed on purpose"
    assert add.status == "success" and add.tool_call_id == "1"


async def test_a_langchain_agent_calls_the_tools_and_reads_errors_as_messages(session: ManagedSession) -> None:
    from langchain.agents import create_agent

    model = ScriptedChatModel(
        messages=iter(
            [
                AIMessage(
                    content="",
                    tool_calls=[
                        {"id": "a", "name": "echo", "args": {"text": "via agent"}},
                        {"id": "b", "name": "fail", "args": {}},
                    ],
                ),
                AIMessage(content="done"),
            ]
        )
    )
    agent = create_agent(model, await langchain_tools(session))
    state = await agent.ainvoke({"messages": [{"role": "user", "content": "go"}]})
    tool_messages = [m for m in state["messages"] if isinstance(m, ToolMessage)]
    assert [m.tool_call_id for m in tool_messages] == ["a", "b"]
    assert texts(tool_messages[0]) == ["via agent"]
    assert tool_messages[1].status == "error" and "failed on purpose" in str(tool_messages[1].content)
    assert state["messages"][-1].content == "done"


async def test_a_tool_added_by_list_changed_is_there_when_the_tools_are_asked_again(session: ManagedSession) -> None:
    tools = by_name(await langchain_tools(session))
    assert "late" not in tools
    await tools["grow"].ainvoke({})
    tools = by_name(await langchain_tools(session))
    assert texts_of(await tools["late"].ainvoke({"word": "w"})) == ["late: w"]


async def test_over_a_group_the_tools_carry_catalogue_names(group: Any) -> None:
    tools = by_name(await langchain_tools(group))
    assert {"content__echo", "demo__echo"} <= set(tools)
    assert texts_of(await tools["demo__echo"].ainvoke({"text": "d"})) == ["d"]
    assert tools["content__echo"].metadata["mcp"] == {"server": "content", "tool": "echo"}

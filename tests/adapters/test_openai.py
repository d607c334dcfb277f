"""OpenAI: tool definitions and tool-call results, checked against the SDK's own request types, over real servers."""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from openai.types.chat import (
    ChatCompletionFunctionToolParam,
    ChatCompletionMessage,
    ChatCompletionToolMessageParam,
)
from openai.types.responses import FunctionToolParam, Response, ResponseFunctionToolCall
from openai.types.responses.response_input_item_param import FunctionCallOutput

from mcp_connections import ManagedSession
from mcp_connections.adapters import openai as adapter

from .conftest import assert_valid
from .server import PNG_B64

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    backend: str = request.param
    return backend


NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def chat_message(*calls: tuple[str, str, str]) -> ChatCompletionMessage:
    return ChatCompletionMessage.model_validate(
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [{"id": i, "type": "function", "function": {"name": n, "arguments": a}} for i, n, a in calls],
        }
    )


async def test_chat_and_responses_tools_are_the_sdk_types_with_schemas_unchanged(session: ManagedSession) -> None:
    listed = await session.list_tools()
    chat = adapter.chat_tools(listed)
    responses = adapter.responses_tools(listed)
    assert [t["function"]["name"] for t in chat] == [t.name for t in listed]
    for item, tool in zip(chat, listed, strict=True):
        assert_valid(ChatCompletionFunctionToolParam, item)
        assert item["function"]["parameters"] is tool.input_schema
    for item, tool in zip(responses, listed, strict=True):
        assert_valid(FunctionToolParam, item)
        assert item["parameters"] is tool.input_schema


async def test_chat_tool_calls_run_concurrently_and_answer_as_tool_messages_in_order(
    session: ManagedSession,
) -> None:
    message = chat_message(
        ("c1", "add", '{"a": 2, "b": 3}'),
        ("c2", "image", "{}"),
        ("c3", "fail", ""),
        ("c4", "nope", "{}"),
        ("c5", "echo", "{not json"),
    )
    out = await adapter.run_tool_calls(session, message.tool_calls)
    for item in out:
        assert_valid(ChatCompletionToolMessageParam, item)
    assert [m["tool_call_id"] for m in out] == ["c1", "c2", "c3", "c4", "c5"]
    assert json.loads(out[0]["content"]) == {"sum": 5}
    image = json.loads(out[1]["content"])  # text only in a tool message: the image as its MCP JSON
    assert image == {"type": "image", "data": PNG_B64, "mimeType": "image/png"}
    assert out[2]["content"] == "Error: it failed on purpose"
    assert out[3]["content"].startswith("Error: ") and "nope" in out[3]["content"]
    assert out[4]["content"].startswith("Error: ") and "JSON" in out[4]["content"]
    assert await adapter.run_tool_calls(session, message) == out  # the message itself is accepted too
    no_calls = ChatCompletionMessage.model_validate({"role": "assistant", "content": "hi"})
    assert await adapter.run_tool_calls(session, no_calls) == []


async def test_responses_function_calls_answer_with_images_and_files_as_their_own_items(
    session: ManagedSession,
) -> None:
    calls = [
        ResponseFunctionToolCall(type="function_call", call_id=f"r{i}", name=name, arguments="{}")
        for i, name in enumerate(["image", "resource", "audio", "fail"])
    ]
    out = await adapter.run_tool_calls(session, calls)
    for item in out:
        assert_valid(FunctionCallOutput, item)
    assert out[0]["output"] == [{"type": "input_image", "image_url": f"data:image/png;base64,{PNG_B64}"}]
    assert out[1]["output"] == [
        {"type": "input_text", "text": "notes"},
        {"type": "input_image", "image_url": f"data:image/png;base64,{PNG_B64}"},  # an image blob is an image
    ]
    assert json.loads(out[2]["output"])["mimeType"] == "audio/wav"
    assert out[3]["output"] == "Error: it failed on purpose"


async def test_a_response_object_is_read_for_its_function_calls_only(session: ManagedSession) -> None:
    response = Response.model_validate(
        {
            "id": "resp_1",
            "object": "response",
            "created_at": 0,
            "model": "m",
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "output": [
                {"type": "message", "id": "m1", "role": "assistant", "status": "completed", "content": []},
                {"type": "function_call", "call_id": "x", "name": "echo", "arguments": '{"text": "hi"}'},
            ],
        }
    )
    out = await adapter.run_tool_calls(session, response)
    assert out == [{"type": "function_call_output", "call_id": "x", "output": "hi"}]


async def test_a_tool_added_by_list_changed_is_there_on_the_next_turn(session: ManagedSession) -> None:
    assert "late" not in [t["name"] for t in adapter.responses_tools(await session.list_tools())]
    await adapter.run_tool_calls(session, chat_message(("g", "grow", "{}")).tool_calls)
    assert "late" in [t["name"] for t in adapter.responses_tools(await session.list_tools())]
    out = await adapter.run_tool_calls(session, chat_message(("l", "late", '{"word": "hi"}')).tool_calls)
    assert out[0]["content"] == "late: hi"


async def test_over_a_group_names_are_the_catalogues_and_calls_are_routed(group: Any) -> None:
    catalogue = await group.tools()
    chat = adapter.chat_tools(catalogue)
    names = [t["function"]["name"] for t in chat]
    assert names == [t.name for t in catalogue] and all(NAME.match(n) for n in names)
    assert "content__add" in names and "demo__add" in names
    out = await adapter.run_tool_calls(
        group, chat_message(("1", "content__add", '{"a": 1, "b": 1}'), ("2", "demo__echo", '{"text": "yo"}'))
    )
    assert json.loads(out[0]["content"]) == {"sum": 2}
    assert out[1]["content"] == "yo"

"""Anthropic: tool definitions and tool_result blocks, checked against the SDK's own request types."""

from __future__ import annotations

from typing import Any

import pytest
from anthropic.types import Message, ToolParam, ToolResultBlockParam
from anthropic.types.message_create_params import MessageCreateParamsNonStreaming
from pydantic import TypeAdapter

from mcp_connections import ManagedSession
from mcp_connections.adapters import anthropic as adapter

from .conftest import assert_valid
from .server import PNG_B64, WAV_B64

pytestmark = pytest.mark.anyio


@pytest.fixture(params=["asyncio", "trio"])
def anyio_backend(request: pytest.FixtureRequest) -> str:
    backend: str = request.param
    return backend


def message(*uses: tuple[str, str, dict[str, Any]]) -> Message:
    return Message.model_validate(
        {
            "id": "msg_1",
            "type": "message",
            "role": "assistant",
            "model": "m",
            "stop_reason": "tool_use",
            "stop_sequence": None,
            "usage": {"input_tokens": 1, "output_tokens": 1},
            "content": [{"type": "text", "text": "calling"}]
            + [{"type": "tool_use", "id": i, "name": n, "input": a} for i, n, a in uses],
        }
    )


async def test_tools_are_the_sdk_type_with_schemas_unchanged(session: ManagedSession) -> None:
    listed = await session.list_tools()
    payload = adapter.tools(listed)
    for item, tool in zip(payload, listed, strict=True):
        assert_valid(ToolParam, item)
        assert item["input_schema"] is tool.input_schema and item["name"] == tool.name


async def test_tool_uses_give_tool_results_with_images_documents_and_is_error(session: ManagedSession) -> None:
    response = message(
        ("u1", "add", {"a": 1, "b": 2}),
        ("u2", "image", {}),
        ("u3", "resource", {}),
        ("u4", "audio", {}),
        ("u5", "fail", {}),
        ("u6", "missing", {}),
    )
    results = await adapter.run_tool_uses(session, response.content)
    for block in results:
        assert_valid(ToolResultBlockParam, block)
    assert [r["tool_use_id"] for r in results] == ["u1", "u2", "u3", "u4", "u5", "u6"]
    assert results[0]["content"] == [{"type": "text", "text": '{"sum": 3}'}] and results[0]["is_error"] is False
    assert results[1]["content"] == [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": PNG_B64}}
    ]
    doc, pixel = results[2]["content"]
    assert doc == {
        "type": "document",
        "source": {"type": "text", "media_type": "text/plain", "data": "notes"},
        "title": "test://notes.txt",
    }
    assert pixel["type"] == "image"
    assert WAV_B64 in results[3]["content"][0]["text"] and "audio/wav" in results[3]["content"][0]["text"]
    assert results[4] == {
        "type": "tool_result",
        "tool_use_id": "u5",
        "content": [{"type": "text", "text": "it failed on purpose"}],
        "is_error": True,
    }
    assert results[5]["is_error"] is True and "missing" in results[5]["content"][0]["text"]
    # The whole next request, as the SDK types it: the assistant turn and our tool results.
    request = {
        "model": "m",
        "max_tokens": 10,
        "tools": adapter.tools(await session.list_tools()),
        "messages": [
            {"role": "user", "content": "go"},
            {"role": "assistant", "content": [b.model_dump(exclude_none=True) for b in response.content]},
            {"role": "user", "content": results},
        ],
    }
    TypeAdapter(MessageCreateParamsNonStreaming).validate_python(request)
    assert await adapter.run_tool_uses(session, response) == results  # the Message itself is accepted too


async def test_over_a_group_tool_uses_are_routed_by_catalogue_name(group: Any) -> None:
    names = [t["name"] for t in adapter.tools(await group.tools())]
    assert "content__echo" in names and "demo__whoami" in names
    results = await adapter.run_tool_uses(group, message(("a", "content__echo", {"text": "one"})))
    assert results[0]["content"] == [{"type": "text", "text": "one"}]

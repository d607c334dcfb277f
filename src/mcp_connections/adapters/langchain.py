"""The catalogue as LangChain tools: ``await langchain_tools(group)`` gives one async ``BaseTool`` per tool.

Each tool is a ``StructuredTool`` named as in the catalogue (or the session's own name), with the tool's
JSON Schema as its ``args_schema`` unchanged (LangChain takes a JSON Schema dict there), and only a
coroutine: it is called with ``await tool.ainvoke(...)``, or by an agent, which calls tools that way.

Results come as ``content_and_artifact``: the content, what the model reads, is text blocks (the text
blocks, embedded text resources and ``structuredContent`` as JSON), plus a one-line note per image, audio
clip or blob; those are in the artifact, as LangChain content blocks (base64 data and MIME type), with the
``structuredContent`` as it was sent. A failed call (``isError``, server down, unknown name) raises
``ToolException`` inside the tool, which ``handle_tool_error`` turns into a ``ToolMessage`` with
``status="error"`` and the server's message: the model reads it, the agent goes on.

The list is a snapshot: call ``langchain_tools`` again for the next turn to see tools added since
(a group's catalogue is kept current by ``list_changed``; a session is listed again).
"""

from __future__ import annotations

from typing import Any, TypedDict

from ._extras import missing

try:
    from langchain_core.messages.content import (
        create_audio_block,
        create_file_block,
        create_image_block,
        create_text_block,
    )
    from langchain_core.tools import BaseTool, StructuredTool, ToolException
except ImportError as _exc:
    raise missing("langchain", "LangChain (langchain-core)", "langchain", _exc) from _exc

import mcp_types as types

from ._content import Link, Media, ResourceText, Text, error_text, parts, text_of
from ._source import as_source, call_safely

__all__ = ["MCPArtifact", "langchain_tools", "result_to_content_and_artifact"]


class MCPArtifact(TypedDict):
    """The artifact of a tool's ``ToolMessage``: what the model does not read as text."""

    #: Images, audio and embedded blobs as LangChain content blocks (``base64`` and ``mime_type`` set).
    media: list[dict[str, Any]]
    #: The result's ``structuredContent``, as the server sent it (None when it sent none).
    structured_content: Any


async def langchain_tools(group: Any) -> list[BaseTool]:
    """One LangChain tool per tool of ``group`` (a ``ServerGroup``'s catalogue, or a ``ManagedSession``)."""
    source = as_source(group)
    return [_tool(source, entry.name, entry.server, entry.tool) for entry in await source.tools()]


def _tool(source: Any, name: str, server: str, tool: types.Tool) -> BaseTool:
    async def call(**arguments: Any) -> tuple[list[dict[str, Any]], MCPArtifact | None]:
        result = await call_safely(source, name, arguments)
        if result.is_error:
            raise ToolException(error_text(result, name))
        return result_to_content_and_artifact(result)

    metadata: dict[str, Any] = {"mcp": {"server": server, "tool": tool.name}}
    if tool.annotations is not None:
        metadata["mcp"]["annotations"] = tool.annotations.model_dump(by_alias=True, exclude_none=True)
    return StructuredTool(
        name=name,
        description=tool.description or tool.title or "",
        args_schema=tool.input_schema,
        coroutine=call,
        response_format="content_and_artifact",
        handle_tool_error=True,
        metadata=metadata,
    )


def result_to_content_and_artifact(result: types.CallToolResult) -> tuple[list[dict[str, Any]], MCPArtifact | None]:
    """A successful result as the model's text blocks and the artifact (None when nothing goes there)."""
    content: list[dict[str, Any]] = []
    media: list[dict[str, Any]] = []
    for part in parts(result):
        if isinstance(part, (Text, ResourceText)):
            content.append(dict(create_text_block(text=part.text)))
        elif isinstance(part, Media):
            block = _media_block(part)
            media.append(block)
            where = f" {part.uri}" if part.uri else ""
            content.append(dict(create_text_block(text=f"[{part.kind} {part.mime_type}{where}: in the artifact]")))
        elif isinstance(part, Link):
            content.append(dict(create_text_block(text=text_of(part))))
    if not media and result.structured_content is None:
        return content, None
    return content, MCPArtifact(media=media, structured_content=result.structured_content)


def _media_block(part: Media) -> dict[str, Any]:
    if part.mime_type.startswith("image/"):
        return dict(create_image_block(base64=part.data, mime_type=part.mime_type))
    if part.kind == "audio" or part.mime_type.startswith("audio/"):
        return dict(create_audio_block(base64=part.data, mime_type=part.mime_type))
    return dict(create_file_block(base64=part.data, mime_type=part.mime_type))

"""The catalogue for Anthropic's Messages API: tool definitions, and ``tool_use`` blocks run.

``tools(tools)`` takes the catalogue (``await group.tools()``) or a session's ``await session.list_tools()``
and gives ``tools=`` for ``client.messages.create``; ``await run_tool_uses(group, content)`` runs the
``tool_use`` blocks of a response's ``content`` concurrently and returns the ``tool_result`` blocks to send
back in the next user message, ``is_error`` set on failures (the Messages API's own convention, so the
model reads the message and carries on).

Schemas go through unchanged as ``input_schema`` (MCP input schemas are JSON Schema objects, which is
what the API takes). Content: text as text blocks; images of the four types the API takes as base64
image blocks; an embedded text resource as a plain-text document titled with its URI; an embedded PDF as
a base64 PDF document; anything else (audio, other images and blobs, links) as its MCP JSON in a text
block, so base64 data and MIME type reach the model; ``structuredContent`` as JSON text.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from ._extras import missing

try:
    import anthropic as _anthropic  # noqa: F401  (the SDK's types are what these payloads are checked against)
except ImportError as _exc:
    raise missing("anthropic", "the Anthropic Python SDK", "anthropic", _exc) from _exc

import mcp_types as types

from ._content import Media, ResourceText, Text, error_text, parts, text_of
from ._source import as_source, call_all, entries_of

__all__ = ["run_tool_uses", "tools"]

# The image types the Messages API accepts in an image block.
_IMAGE_TYPES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})


def tools(tools: Iterable[Any]) -> list[dict[str, Any]]:
    """Messages API ``tools=``: ``{"name", "description", "input_schema"}`` per tool."""
    out: list[dict[str, Any]] = []
    for name, tool in entries_of(tools):
        item: dict[str, Any] = {"name": name, "input_schema": tool.input_schema}
        if tool.description or tool.title:
            item["description"] = tool.description or tool.title
        out.append(item)
    return out


def _get(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, dict) else getattr(obj, key, None)


async def run_tool_uses(group: Any, content: Any) -> list[dict[str, Any]]:
    """Run the ``tool_use`` blocks of ``content`` (a response's ``content``, or the ``Message``) concurrently.

    Returns one ``tool_result`` block per ``tool_use``, in order. Other blocks are skipped; SDK objects and
    plain dicts are both accepted. ``group`` is a ``ServerGroup`` or a ``ManagedSession``.
    """
    source = as_source(group)
    blocks = content if isinstance(content, (list, tuple)) else _get(content, "content") or []
    uses = [(_get(b, "id"), _get(b, "name"), _get(b, "input")) for b in blocks if _get(b, "type") == "tool_use"]
    results = await call_all(source, [(name, arguments) for _, name, arguments in uses])
    return [tool_result(use_id, result, name) for (use_id, name, _), result in zip(uses, results, strict=True)]


def tool_result(tool_use_id: str, result: types.CallToolResult, name: str = "tool") -> dict[str, Any]:
    """One MCP result as a ``tool_result`` block."""
    if result.is_error:
        return {
            "type": "tool_result",
            "tool_use_id": tool_use_id,
            "content": [{"type": "text", "text": error_text(result, name)}],
            "is_error": True,
        }
    return {"type": "tool_result", "tool_use_id": tool_use_id, "content": content_blocks(result), "is_error": False}


def content_blocks(result: types.CallToolResult) -> list[dict[str, Any]]:
    """A result's content as Messages API content blocks."""
    out: list[dict[str, Any]] = []
    for part in parts(result):
        if isinstance(part, Text):
            out.append({"type": "text", "text": part.text})
        elif isinstance(part, ResourceText):
            source = {"type": "text", "media_type": "text/plain", "data": part.text}
            out.append({"type": "document", "source": source, "title": part.uri})
        elif isinstance(part, Media) and part.mime_type in _IMAGE_TYPES:
            out.append({"type": "image", "source": {"type": "base64", "media_type": part.mime_type, "data": part.data}})
        elif isinstance(part, Media) and part.mime_type == "application/pdf":
            source = {"type": "base64", "media_type": "application/pdf", "data": part.data}
            block: dict[str, Any] = {"type": "document", "source": source}
            if part.uri:
                block["title"] = part.uri
            out.append(block)
        else:
            out.append({"type": "text", "text": text_of(part)})
    return out

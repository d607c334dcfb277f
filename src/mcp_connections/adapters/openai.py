"""The catalogue for the OpenAI API: tool definitions for Chat Completions and Responses, and tool calls run.

``chat_tools(tools)`` and ``responses_tools(tools)`` take the catalogue (``await group.tools()``) or a
session's ``await session.list_tools()``; ``await run_tool_calls(group, tool_calls)`` runs a response's
tool calls concurrently and returns what to send back: ``role: "tool"`` messages for Chat Completions
tool calls, ``function_call_output`` items for Responses ``function_call`` items.

Schemas go through unchanged: both APIs take JSON Schema for ``parameters``. ``strict`` is left off
(``False`` where Responses requires the key), because strict mode would require rewriting the schema
(every property required, ``additionalProperties: false``), which changes what the tool accepts.

Content: a Chat Completions tool message carries only text, so an image, audio clip or blob goes in as
its MCP JSON (base64 data and MIME type kept). A Responses output carries images (data URLs) and files
(``file_data``), so those go as ``input_image`` and ``input_file``; audio goes as its MCP JSON. A failed
call (``isError``, server down, unknown name, bad JSON arguments) is sent as text starting ``Error:``;
neither API has an error flag for a tool result.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable
from typing import Any

from ._extras import missing

try:
    import openai as _openai  # noqa: F401  (the SDK's types are what these payloads are checked against)
except ImportError as _exc:
    raise missing("openai", "the OpenAI Python SDK", "openai", _exc) from _exc

import mcp_types as types

from ._content import Link, Media, ResourceText, Text, error_text, parts, text_of
from ._source import as_source, call_all, entries_of

__all__ = ["chat_tools", "responses_tools", "run_tool_calls"]


def chat_tools(tools: Iterable[Any]) -> list[dict[str, Any]]:
    """Chat Completions ``tools=``: one ``{"type": "function", "function": {...}}`` per tool."""
    out: list[dict[str, Any]] = []
    for name, tool in entries_of(tools):
        function: dict[str, Any] = {"name": name, "parameters": tool.input_schema}
        if tool.description or tool.title:
            function["description"] = tool.description or tool.title
        out.append({"type": "function", "function": function})
    return out


def responses_tools(tools: Iterable[Any]) -> list[dict[str, Any]]:
    """Responses API ``tools=``: one ``{"type": "function", "name": ..., "parameters": ...}`` per tool."""
    out: list[dict[str, Any]] = []
    for name, tool in entries_of(tools):
        item: dict[str, Any] = {"type": "function", "name": name, "parameters": tool.input_schema, "strict": False}
        if tool.description or tool.title:
            item["description"] = tool.description or tool.title
        out.append(item)
    return out


def _get(obj: Any, key: str) -> Any:
    return obj.get(key) if isinstance(obj, dict) else getattr(obj, key, None)


def _calls_of(tool_calls: Any) -> list[Any]:
    """The tool calls in a message, a response, or a list of either kind of call."""
    if isinstance(tool_calls, dict) and "tool_calls" in tool_calls:
        return list(tool_calls["tool_calls"] or [])
    if not isinstance(tool_calls, (list, tuple, dict)):
        if hasattr(tool_calls, "tool_calls"):  # a ChatCompletionMessage (tool_calls None when it called none)
            return list(tool_calls.tool_calls or [])
        if hasattr(tool_calls, "output"):  # a Response
            return list(tool_calls.output or [])
    return list(tool_calls or [])


async def run_tool_calls(group: Any, tool_calls: Any) -> list[dict[str, Any]]:
    """Run the calls concurrently; return the tool messages or ``function_call_output`` items, in order.

    ``tool_calls`` is a Chat Completions ``message.tool_calls`` (or the message), or a Responses
    ``response.output`` (or the response; items other than ``function_call`` are skipped). Objects of the
    SDK and plain dicts are both accepted. ``group`` is a ``ServerGroup`` or a ``ManagedSession``.
    """
    source = as_source(group)
    chat: list[tuple[str, str, Any]] = []  # (tool_call_id, name, arguments)
    responses: list[tuple[str, str, Any]] = []  # (call_id, name, arguments)
    order: list[tuple[str, int]] = []
    for call in _calls_of(tool_calls):
        kind = _get(call, "type")
        function = _get(call, "function")
        if function is not None:
            order.append(("chat", len(chat)))
            chat.append((_get(call, "id"), _get(function, "name"), _get(function, "arguments")))
        elif kind == "function_call":
            order.append(("responses", len(responses)))
            responses.append((_get(call, "call_id"), _get(call, "name"), _get(call, "arguments")))
    results = await call_all(source, [(n, a) for _, n, a in chat] + [(n, a) for _, n, a in responses])
    chat_results, responses_results = results[: len(chat)], results[len(chat) :]
    out: list[dict[str, Any]] = []
    for kind, index in order:
        if kind == "chat":
            call_id, name, _ = chat[index]
            out.append({"role": "tool", "tool_call_id": call_id, "content": chat_content(chat_results[index], name)})
        else:
            call_id, name, _ = responses[index]
            output = responses_output(responses_results[index], name)
            out.append({"type": "function_call_output", "call_id": call_id, "output": output})
    return out


def chat_content(result: types.CallToolResult, name: str = "tool") -> str | list[dict[str, Any]]:
    """A tool result as the content of a Chat Completions tool message (text only)."""
    if result.is_error:
        return f"Error: {error_text(result, name)}"
    texts = [text_of(p) for p in parts(result)]
    if not texts:
        return ""
    if len(texts) == 1:
        return texts[0]
    return [{"type": "text", "text": t} for t in texts]


def responses_output(result: types.CallToolResult, name: str = "tool") -> str | list[dict[str, Any]]:
    """A tool result as a ``function_call_output``'s ``output``: text, or text, image and file items."""
    if result.is_error:
        return f"Error: {error_text(result, name)}"
    items: list[dict[str, Any]] = []
    for part in parts(result):
        if isinstance(part, (Text, ResourceText)):
            items.append({"type": "input_text", "text": part.text})
        elif isinstance(part, Media) and part.mime_type.startswith("image/"):
            items.append({"type": "input_image", "image_url": f"data:{part.mime_type};base64,{part.data}"})
        elif isinstance(part, Media) and part.kind == "blob":
            filename = posixpath.basename(part.uri or "") or "resource"
            items.append(
                {"type": "input_file", "filename": filename, "file_data": f"data:{part.mime_type};base64,{part.data}"}
            )
        elif isinstance(part, (Media, Link)):  # audio and links: no slot of their own, so their MCP JSON
            items.append({"type": "input_text", "text": text_of(part)})
    if not items:
        return ""
    if len(items) == 1 and items[0]["type"] == "input_text":
        return str(items[0]["text"])
    return items

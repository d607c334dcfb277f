"""Pure mapping of MCP tool results and names, shared by the framework adapters; no I/O, no event loop.

An MCP ``CallToolResult`` carries content blocks (text, image, audio, embedded resources, resource links),
optionally ``structuredContent`` and ``isError``. Every framework wants some subset of that in its own
shape. This module turns a result into a flat list of neutral parts that each adapter maps one to one,
so that the rules frameworks agree on live in one place:

- blocks keep their order; image and audio keep their base64 data and MIME type;
- ``structuredContent`` is added as one JSON text part, unless a text block already carries the same
  value (the spec asks servers to send it both ways, and the model need not read it twice; the SDK's
  servers send a wrapped ``{"result": value}`` as the bare value);
- a block a framework cannot carry is given to the model as the block's own MCP JSON, so nothing is lost;
- a failed call (``isError``, or a connection error of ours) becomes an error message for the model.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import mcp_types as types

__all__ = [
    "ArgumentsError",
    "Link",
    "Media",
    "Part",
    "ResourceText",
    "Text",
    "block_json",
    "error_text",
    "failure_result",
    "parse_arguments",
    "parts",
    "structured_json",
    "text_of",
    "unique_names",
    "valid_name",
]

# The tool-name rule of the OpenAI and Anthropic APIs (and the catalogue's).
NAME_PATTERN = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_INVALID = re.compile(r"[^a-zA-Z0-9_-]")
_MAX_NAME = 64


@dataclass(frozen=True)
class Text:
    text: str


@dataclass(frozen=True)
class Media:
    """Binary content as base64: an image, an audio clip, or an embedded blob resource (``uri`` set)."""

    kind: str  # "image", "audio" or "blob"
    data: str
    mime_type: str
    uri: str | None = None
    block: Any = None  # the MCP block it came from, for frameworks that can only take it as JSON


@dataclass(frozen=True)
class ResourceText:
    uri: str
    text: str
    mime_type: str | None = None


@dataclass(frozen=True)
class Link:
    uri: str
    name: str
    mime_type: str | None = None
    description: str | None = None
    block: Any = None


Part = Text | Media | ResourceText | Link


def parts(result: types.CallToolResult) -> list[Part]:
    """The result's content as neutral parts, in order, with ``structuredContent`` last when not already sent."""
    out: list[Part] = []
    for block in result.content:
        if isinstance(block, types.TextContent):
            out.append(Text(block.text))
        elif isinstance(block, types.ImageContent):
            out.append(Media("image", block.data, block.mime_type, block=block))
        elif isinstance(block, types.AudioContent):
            out.append(Media("audio", block.data, block.mime_type, block=block))
        elif isinstance(block, types.EmbeddedResource):
            resource = block.resource
            if isinstance(resource, types.TextResourceContents):
                out.append(ResourceText(str(resource.uri), resource.text, resource.mime_type))
            else:
                mime = resource.mime_type or "application/octet-stream"
                out.append(Media("blob", resource.blob, mime, uri=str(resource.uri), block=block))
        elif isinstance(block, types.ResourceLink):
            out.append(Link(str(block.uri), block.name, block.mime_type, block.description, block=block))
        else:  # a block type from a newer protocol: keep it as its JSON
            out.append(Text(block_json(block)))
    extra = structured_json(result)
    if extra is not None:
        out.append(Text(extra))
    return out


def structured_json(result: types.CallToolResult) -> str | None:
    """``structuredContent`` as JSON text, or None when absent or already present as a text block."""
    structured = result.structured_content
    if structured is None:
        return None
    # The SDK's servers wrap a plain return value as {"result": value} and send the value as text.
    carried: list[Any] = [structured]
    if isinstance(structured, dict) and list(structured) == ["result"]:
        carried.append(structured["result"])
    for block in result.content:
        if not isinstance(block, types.TextContent):
            continue
        try:
            value: Any = json.loads(block.text)
        except ValueError:
            value = block.text
        if any(value == c or block.text == c for c in carried):
            return None
    return json.dumps(structured, ensure_ascii=False)


def block_json(block: Any) -> str:
    """An MCP content block as its wire JSON (camelCase keys, base64 data and MIME type kept)."""
    if hasattr(block, "model_dump"):
        return json.dumps(block.model_dump(mode="json", by_alias=True, exclude_none=True), ensure_ascii=False)
    return json.dumps(block, ensure_ascii=False, default=str)


def text_of(part: Part) -> str:
    """A part as text, for a framework (or a slot) that takes only text."""
    if isinstance(part, Text):
        return part.text
    if isinstance(part, ResourceText):
        return part.text
    return block_json(part.block) if part.block is not None else json.dumps(part.__dict__)


def error_text(result: types.CallToolResult, tool: str) -> str:
    """What the model is told when a tool failed: the result's text, or a sentence if it had none."""
    texts = [text_of(p) for p in parts(result)]
    message = "\n".join(t for t in texts if t)
    return message or f"tool {tool!r} failed (the server gave no message)"


def failure_result(error: BaseException) -> types.CallToolResult:
    """An ``isError`` result telling the model why the call could not be made (server down, unknown tool...)."""
    return types.CallToolResult(content=[types.TextContent(type="text", text=str(error))], is_error=True)


class ArgumentsError(ValueError):
    """A model sent tool arguments that are not a JSON object."""


def parse_arguments(raw: str | Mapping[str, Any] | None) -> dict[str, Any]:
    """A tool call's arguments as a dict: models send a JSON string (OpenAI) or an object (Anthropic)."""
    if raw is None or raw == "":
        return {}
    if isinstance(raw, Mapping):
        return dict(raw)
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise ArgumentsError(f"the arguments are not valid JSON ({exc}): {raw[:200]!r}") from exc
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ArgumentsError(f"the arguments must be a JSON object, not {type(value).__name__}: {raw[:200]!r}")
    return value


def valid_name(name: str) -> str:
    """A tool name the model APIs accept: invalid characters become ``_``; a long name keeps a stable hash."""
    cleaned = _INVALID.sub("_", name) or "_"
    if len(cleaned) <= _MAX_NAME:
        return cleaned
    digest = hashlib.sha256(name.encode()).hexdigest()[:8]
    return f"{cleaned[: _MAX_NAME - 9]}_{digest}"


def unique_names(names: Iterable[str]) -> list[str]:
    """``valid_name`` of each, made unique by a numbered suffix in order of appearance (stable)."""
    taken: set[str] = set()
    out: list[str] = []
    for name in names:
        candidate = base = valid_name(name)
        n = 2
        while candidate in taken:
            suffix = f"_{n}"
            candidate = base[: _MAX_NAME - len(suffix)] + suffix
            n += 1
        taken.add(candidate)
        out.append(candidate)
    return out

"""The catalogue as a Pydantic AI toolset: ``Agent(model, toolsets=[ManagedToolset(group)])``.

``ManagedToolset`` (also made by ``toolset(group)``) implements ``AbstractToolset`` over a ``ServerGroup``'s
catalogue or a single ``ManagedSession``. Tools are asked for at every step of a run (as Pydantic AI does),
which costs nothing for a group (its catalogue is cached and kept current by ``list_changed``) and one
``tools/list`` for a session: either way a tool added during a run is there at the next step.

Schemas go through unchanged as ``parameters_json_schema`` (and ``outputSchema`` as ``return_schema``);
arguments are checked as a JSON object here and by the server against its schema, as Pydantic AI's own
``MCPToolset`` does. Results map as in ``MCPToolset``: ``structuredContent`` when the content is all text,
else text as ``str``, images as ``BinaryImage``, audio and blobs as ``BinaryContent`` (bytes and MIME
type), embedded text resources as ``str``, one value or a list. A failed call (``isError``, server down,
unknown name) raises ``ToolFailed`` by default: the model reads the message and adapts, the run goes on
without spending retries; ``tool_error_behavior="retry"`` raises ``ModelRetry`` instead (the retry budget
applies, and a run that exhausts it fails, as with ``MCPToolset``'s default).

Entering the toolset (Pydantic AI does on ``async with agent`` or at each run) starts the group or session
if it is not running, and the last exit stops it then; a group you started yourself is left alone.
"""

from __future__ import annotations

import base64
import json
from typing import Any, Literal

from ._extras import missing

try:
    import pydantic_core
    from pydantic_ai import exceptions, messages
    from pydantic_ai.tools import RunContext, ToolDefinition
    from pydantic_ai.toolsets import AbstractToolset, ToolsetTool
except ImportError as _exc:
    raise missing("pydantic_ai", "Pydantic AI (pydantic-ai-slim)", "pydantic-ai", _exc) from _exc

import mcp_types as types

from ._content import Link, Media, ResourceText, Text, error_text, parts
from ._source import Lifecycle, as_source, call_safely

__all__ = ["ManagedToolset", "toolset"]

# Arguments are a JSON object; their schema is the server's to enforce (Pydantic AI's MCPToolset does the same).
_ARGS_VALIDATOR = pydantic_core.SchemaValidator(
    schema=pydantic_core.core_schema.dict_schema(
        pydantic_core.core_schema.str_schema(), pydantic_core.core_schema.any_schema()
    )
)


class ManagedToolset(AbstractToolset[Any]):
    """A Pydantic AI toolset over a ``ServerGroup`` (its catalogue) or a ``ManagedSession``."""

    def __init__(
        self,
        group: Any,
        *,
        id: str | None = None,
        max_retries: int | None = None,
        tool_error_behavior: Literal["failed", "retry"] = "failed",
    ) -> None:
        self.group = group
        self.source = as_source(group)
        self.max_retries = max_retries
        self.tool_error_behavior = tool_error_behavior
        self._id = id
        self._lifecycle = Lifecycle(self.source)

    @property
    def id(self) -> str | None:
        return self._id

    @property
    def label(self) -> str:
        name = getattr(self.group, "name", None)
        return f"ManagedToolset {self._id or name or ''}".rstrip()

    def __repr__(self) -> str:
        return f"<ManagedToolset over {self.group!r}>"

    async def __aenter__(self) -> ManagedToolset:
        await self._lifecycle.enter()
        return self

    async def __aexit__(self, *args: Any) -> bool | None:
        await self._lifecycle.exit()
        return None

    async def get_tools(self, ctx: RunContext[Any]) -> dict[str, ToolsetTool[Any]]:
        tools: dict[str, ToolsetTool[Any]] = {}
        for entry in await self.source.tools():
            tool: types.Tool = entry.tool
            definition = ToolDefinition(
                name=entry.name,
                description=tool.description or tool.title,
                parameters_json_schema=tool.input_schema,
                return_schema=tool.output_schema,
                metadata={"server": entry.server, "tool": tool.name, "meta": tool.meta},
            )
            tools[entry.name] = ToolsetTool(
                toolset=self,
                tool_def=definition,
                max_retries=self.max_retries if self.max_retries is not None else ctx.max_retries,
                args_validator=_ARGS_VALIDATOR,
            )
        return tools

    async def call_tool(
        self, name: str, tool_args: dict[str, Any], ctx: RunContext[Any], tool: ToolsetTool[Any]
    ) -> Any:
        result = await call_safely(self.source, name, tool_args)
        if result.is_error:
            message = error_text(result, name)
            if self.tool_error_behavior == "retry":
                raise exceptions.ModelRetry(message)
            raise exceptions.ToolFailed(message)
        return tool_return(result)


def toolset(group: Any, **options: Any) -> ManagedToolset:
    """``ManagedToolset(group, **options)``."""
    return ManagedToolset(group, **options)


def tool_return(result: types.CallToolResult) -> Any:
    """A successful result as the value Pydantic AI gives the model (as its own ``MCPToolset`` maps it)."""
    structured = result.structured_content
    if structured is not None and all(isinstance(b, types.TextContent) for b in result.content):
        return structured
    values: list[Any] = []
    for part in parts(result):
        if isinstance(part, (Text, ResourceText)):
            values.append(part.text)
        elif isinstance(part, Media):
            data = base64.b64decode(part.data)
            if part.mime_type.startswith("image/"):
                values.append(messages.BinaryImage(data=data, media_type=part.mime_type))
            else:
                values.append(messages.BinaryContent(data=data, media_type=part.mime_type))
        elif isinstance(part, Link):
            values.append(json.loads(part.block.model_dump_json(by_alias=True, exclude_none=True)))
    if len(values) == 1:
        return values[0]
    return values

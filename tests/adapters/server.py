"""A stdio MCP server whose tools return every kind of content, for the framework adapters' tests.

Written with the SDK's lowlevel ``Server``, so that schemas and results go out exactly as written here.

Tools: echo(text), add(a, b) (text and structuredContent), image() (a PNG), audio() (a WAV),
resource() (an embedded text resource and an embedded blob), fail() (an ``isError`` result),
grow() (adds the tool ``late`` and announces ``notifications/tools/list_changed``), pid().
With ``--crash-tool``: also crash() (the process exits at once).
"""

from __future__ import annotations

import base64
import os
import sys
from typing import Any

import anyio
import mcp_types as types
from mcp.server.lowlevel import NotificationOptions, Server
from mcp.server.stdio import stdio_server

# One red pixel, a real PNG; and a WAV header with no samples: small, and of the MIME type they claim.
PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg=="
)
WAV = (
    b"RIFF$\x00\x00\x00WAVEfmt \x10\x00\x00\x00\x01\x00\x01\x00D\xac\x00\x00\x88X\x01\x00\x02\x00\x10\x00"
    b"data\x00\x00\x00\x00"
)
PNG_B64 = base64.b64encode(PNG).decode()
WAV_B64 = base64.b64encode(WAV).decode()

NO_ARGS: dict[str, Any] = {"type": "object", "properties": {}}


def tool(name: str, description: str, properties: dict[str, Any] | None = None, **extra: Any) -> types.Tool:
    schema: dict[str, Any] = {"type": "object", "properties": properties or {}}
    if properties:
        schema["required"] = list(properties)
    return types.Tool(name=name, description=description, input_schema=schema, **extra)


TOOLS = [
    tool("echo", "Echo text back", {"text": {"type": "string", "description": "what to echo"}}),
    tool(
        "add",
        "Add two numbers",
        {"a": {"type": "number"}, "b": {"type": "number"}},
        output_schema={"type": "object", "properties": {"sum": {"type": "number"}}, "required": ["sum"]},
    ),
    tool("image", "A one-pixel PNG"),
    tool("audio", "A silent WAV"),
    tool("resource", "Two embedded resources, a text and a blob"),
    tool("fail", "Fails on purpose (an isError result)"),
    tool("grow", "Adds the tool 'late' and announces the change"),
    tool("pid", "The server's process id"),
]
LATE = tool("late", "A tool added at run time", {"word": {"type": "string"}})
CRASH = tool("crash", "Exit at once")


def text(value: str) -> list[types.ContentBlock]:
    return [types.TextContent(type="text", text=value)]


def main() -> None:
    tools = list(TOOLS)
    if "--crash-tool" in sys.argv:
        tools.append(CRASH)

    async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
        return types.ListToolsResult(tools=tools)

    async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
        args = params.arguments or {}
        name = params.name
        if name == "echo":
            return types.CallToolResult(content=text(str(args.get("text", ""))))
        if name == "add":
            total = args["a"] + args["b"]
            return types.CallToolResult(content=text(f'{{"sum": {total}}}'), structured_content={"sum": total})
        if name == "image":
            return types.CallToolResult(content=[types.ImageContent(type="image", data=PNG_B64, mime_type="image/png")])
        if name == "audio":
            return types.CallToolResult(content=[types.AudioContent(type="audio", data=WAV_B64, mime_type="audio/wav")])
        if name == "resource":
            return types.CallToolResult(
                content=[
                    types.EmbeddedResource(
                        type="resource",
                        resource=types.TextResourceContents(
                            uri="test://notes.txt", mime_type="text/plain", text="notes"
                        ),
                    ),
                    types.EmbeddedResource(
                        type="resource",
                        resource=types.BlobResourceContents(
                            uri="test://pixel.png", mime_type="image/png", blob=PNG_B64
                        ),
                    ),
                ]
            )
        if name == "fail":
            return types.CallToolResult(content=text("it failed on purpose"), is_error=True)
        if name == "grow":
            if LATE not in tools:
                tools.append(LATE)
            await ctx.session.send_tool_list_changed()
            return types.CallToolResult(content=text("added 'late'"))
        if name == "late":
            return types.CallToolResult(content=text(f"late: {args.get('word', '')}"))
        if name == "pid":
            return types.CallToolResult(content=text(str(os.getpid())))
        if name == "crash" and CRASH in tools:
            os._exit(3)
        return types.CallToolResult(content=text(f"unknown tool {name}"), is_error=True)

    server = Server("adapters-test", on_list_tools=list_tools, on_call_tool=call_tool)

    async def serve() -> None:
        async with stdio_server() as (read, write):
            options = server.create_initialization_options(NotificationOptions(tools_changed=True))
            await server.run(read, write, options)

    anyio.run(serve)


if __name__ == "__main__":
    main()

"""A stdio MCP server for the gateway tests: progress, logs, cancellation, list changes and sampling.

Usage: gateway_backend.py [--name NAME] [--marker-dir DIR]

Tools: pid(); progress(steps) reports ``steps`` progress notifications, then answers; log(level, text) logs
``text`` at ``level`` during the call; hold(seconds) waits and, when cancelled, writes ``cancelled`` to
``DIR/NAME.cancelled``; grow(tool) adds a tool named ``tool`` and announces ``notifications/tools/list_changed``;
ask(question) asks the client to sample an answer and returns its text. Also a template ``note://{key}``.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import anyio
import mcp_types as types
from mcp.server.mcpserver import Context, MCPServer


def build(name: str, marker_dir: Path) -> MCPServer:
    server = MCPServer(name, log_level="WARNING")

    @server.tool()
    def pid() -> str:
        """This server's pid."""
        return str(os.getpid())

    @server.tool()
    async def progress(steps: int, ctx: Context) -> str:
        """Report progress ``steps`` times."""
        for step in range(1, steps + 1):
            await ctx.report_progress(step, steps, f"step {step}")
            await anyio.sleep(0.01)
        return "done"

    @server.tool()
    async def log(level: str, text: str, ctx: Context) -> str:
        """Log ``text`` at ``level``."""
        await ctx.log(level, text)  # type: ignore[arg-type]
        return "logged"

    @server.tool()
    async def hold(seconds: float) -> str:
        """Wait; record a cancellation in the marker file."""
        try:
            await anyio.sleep(seconds)
        except anyio.get_cancelled_exc_class():
            (marker_dir / f"{name}.cancelled").write_text("cancelled")
            raise
        return "held"

    @server.tool()
    async def grow(tool: str, ctx: Context) -> str:
        """Add a tool, and tell the client."""

        def added() -> str:
            return "new"

        server.add_tool(added, name=tool, description="added at run time")
        # In the generation the client speaks: a subscription event (modern), a notification (handshake).
        await ctx.notify_tools_changed()
        await ctx.request_context.session.send_notification(types.ToolListChangedNotification())
        return "grown"

    @server.tool()
    async def ask(question: str, ctx: Context) -> str:
        """Ask the client to sample an answer."""
        result = await ctx.request_context.session.create_message(  # type: ignore[call-overload]
            [types.SamplingMessage(role="user", content=types.TextContent(type="text", text=question))],
            max_tokens=10,
            related_request_id=ctx.request_id,
        )
        return str(getattr(result.content, "text", result.content))

    @server.resource("note://{key}")
    def note(key: str) -> str:
        """A note by key."""
        return f"note {key} from {name}"

    return server


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--name", default="backend")
    parser.add_argument("--marker-dir", default=".")
    options = parser.parse_args()
    build(options.name, Path(options.marker_dir)).run("stdio")


if __name__ == "__main__":
    main()

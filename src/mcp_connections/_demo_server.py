"""The demo MCP server that ships inside the package, written with the SDK's ``MCPServer``.

Run it over stdio (``python -m mcp_connections._demo_server``) or over streamable HTTP on a free loopback
port (``--http``; the port is printed on stdout's first line so that whoever started it can connect).
It serves both protocol generations (the 2026-07-28 ``server/discover`` and the ``initialize`` handshake).
Two tools show what differs between them: ``add_tool(name)`` adds a tool at run time and tells the client
(``notifications/tools/list_changed``, or an event on ``subscriptions/listen``), and ``greet_user`` asks
the user's name (an elicitation request, or an ``InputRequiredResult`` round).
"""

from __future__ import annotations

import argparse
import os
import socket
from typing import Annotated

import anyio
from mcp.server.mcpserver import Context, Elicit, MCPServer, Resolve
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import BaseModel


class Person(BaseModel):
    name: str


def ask_name() -> Elicit[Person]:
    return Elicit("What is your name?", Person)


def build_server(name: str) -> MCPServer:
    server = MCPServer(name, instructions="A demo server of mcp-connections.", log_level="WARNING")

    @server.tool()
    def add(a: float, b: float) -> float:
        """Add two numbers."""
        return a + b

    @server.tool()
    def echo(text: str) -> str:
        """Echo the text back."""
        return text

    @server.tool()
    def whoami() -> str:
        """Name this server and its process."""
        return f"{name} (pid {os.getpid()})"

    @server.tool()
    async def sleep(seconds: float) -> str:
        """Sleep, then answer."""
        await anyio.sleep(seconds)
        return f"slept {seconds}s"

    @server.tool()
    async def add_tool(name: str, ctx: Context) -> str:
        """Add a tool called ``name`` (it echoes its text) and tell the client that the tool list changed."""

        def added(text: str) -> str:
            return text

        server.add_tool(added, name=name, description="Added at run time: echoes its text.")
        if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
            await ctx.notify_tools_changed()
        else:
            await ctx.session.send_tool_list_changed()
        return f"added {name}"

    @server.tool()
    async def count(steps: int, ctx: Context) -> str:
        """Count to ``steps``, reporting progress at each step."""
        for step in range(1, steps + 1):
            await ctx.report_progress(step, steps, f"step {step} of {steps}")
        return f"counted to {steps}"

    @server.tool()
    def greet_user(person: Annotated[Person, Resolve(ask_name)]) -> str:
        """Ask the user's name, then greet them."""
        return f"Hello, {person.name}!"

    @server.resource("demo://readme")
    def readme() -> str:
        """What this server is."""
        return f"{name}: a demo server of mcp-connections."

    @server.prompt()
    def greet(person: str) -> str:
        """Greet someone."""
        return f"Say hello to {person}."

    return server


async def serve_http(server: MCPServer, host: str, port: int) -> None:
    import uvicorn

    app = server.streamable_http_app(
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False), host=host
    )
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    print(sock.getsockname()[1], flush=True)
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    await uvicorn.Server(config).serve(sockets=[sock])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--name", default="demo")
    parser.add_argument("--http", action="store_true", help="serve streamable HTTP instead of stdio")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    options = parser.parse_args(argv)
    server = build_server(options.name)
    if options.http:
        anyio.run(serve_http, server, options.host, options.port)
    else:
        server.run("stdio")


if __name__ == "__main__":
    main()

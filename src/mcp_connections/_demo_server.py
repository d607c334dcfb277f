"""The demo MCP server that ships inside the package, written with the SDK's ``MCPServer``.

Run it over stdio (``python -m mcp_connections._demo_server``) or over streamable HTTP on a free loopback
port (``--http``; the port is printed on stdout's first line so that whoever started it can connect).
"""

from __future__ import annotations

import argparse
import os
import socket

import anyio
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings


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

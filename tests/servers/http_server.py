"""A real MCP server over HTTP (streamable HTTP or SSE) for the remote transport tests.

Usage: http_server.py [--transport streamable-http|sse] [--require-bearer TOKEN]

Listens on 127.0.0.1 on an ephemeral port and prints that port as stdout's first line once the socket
listens (connections made before the app is ready wait in the backlog). The endpoint is ``/mcp`` for
streamable HTTP and ``/sse`` for SSE. With ``--require-bearer`` every request without
``Authorization: Bearer TOKEN`` is answered 401.

Tools: echo(text), add(a, b), sleep(seconds), crash() (the whole process exits at once).
"""

from __future__ import annotations

import argparse
import os
import socket
import sys

import anyio
import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import ASGIApp, Receive, Scope, Send


def build_server() -> MCPServer:
    server = MCPServer("remote-test-server", log_level="WARNING")

    @server.tool()
    def echo(text: str) -> str:
        """Echo text back."""
        return text

    @server.tool()
    def add(a: float, b: float) -> float:
        """Add two numbers."""
        return a + b

    @server.tool()
    async def sleep(seconds: float) -> str:
        """Sleep, then answer."""
        await anyio.sleep(seconds)
        return "slept"

    @server.tool()
    def crash() -> str:
        """Exit the whole server process at once, as a crash would."""
        os._exit(3)

    return server


class RequireBearer:
    """Answers 401 to every HTTP request without the expected bearer token."""

    def __init__(self, app: ASGIApp, token: str) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and dict(scope["headers"]).get(b"authorization") != self.expected:
            await send(
                {
                    "type": "http.response.start",
                    "status": 401,
                    "headers": [(b"content-type", b"text/plain"), (b"www-authenticate", b"Bearer")],
                }
            )
            await send({"type": "http.response.body", "body": b"unauthorized"})
            return
        await self.app(scope, receive, send)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--transport", choices=["streamable-http", "sse"], default="streamable-http")
    parser.add_argument("--require-bearer", metavar="TOKEN")
    parser.add_argument("--sse-path", default="/sse", help="where the SSE transport listens")
    args = parser.parse_args()

    server = build_server()
    # The SDK turns DNS rebinding protection on for 127.0.0.1; allow the Host headers the tests send.
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=["127.0.0.1:*", "localhost:*"],
        allowed_origins=["http://127.0.0.1:*", "http://localhost:*"],
    )
    if args.transport == "sse":
        app: ASGIApp = server.sse_app(sse_path=args.sse_path, transport_security=security)
    else:
        # The app's lifespan runs the streamable HTTP session manager; uvicorn runs it (lifespan="on").
        app = server.streamable_http_app(transport_security=security)
    if args.require_bearer:
        app = RequireBearer(app, args.require_bearer)

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    sys.stdout.write(f"{sock.getsockname()[1]}\n")
    sys.stdout.flush()

    config = uvicorn.Config(app, lifespan="on", log_level="warning", timeout_graceful_shutdown=1)
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()

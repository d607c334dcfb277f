"""A real MCP server over HTTP (streamable HTTP or SSE) for the remote transport tests.

Usage: http_server.py [--transport streamable-http|sse] [--require-bearer TOKEN] [--sse-path PATH]
                      [--port PORT] [--hang-on-initialize] [--hang-on-notifications] [--fail-with-500 AFTER]
                      [--max-body BYTES] [--bare-400-on-sse-path] [--dynamic]

Listens on 127.0.0.1 on an ephemeral port (or PORT, to come back on the same one after a kill) and prints
that port as stdout's first line once the socket listens (connections made before the app is ready wait
in the backlog). The endpoint is ``/mcp`` for streamable HTTP and ``/sse`` for SSE. With
``--require-bearer`` every request without ``Authorization: Bearer TOKEN`` is answered 401.

Faults, for the fault matrix: ``--hang-on-initialize`` never answers a POST that carries ``initialize``, and
``--hang-on-notifications`` one that carries a notification (``notifications/initialized`` first);
``--fail-with-500 AFTER`` answers HTTP 500 to every POST after the first AFTER; ``--bare-400-on-sse-path`` (SSE
only) answers a POST to the event stream's path with a plain-text 400, as some SSE-only servers do to a
streamable HTTP client (the SDK's app answers 405); ``--max-body`` raises the
SDK's 4 MiB limit on a request body.

Tools: echo(text), add(a, b), sleep(seconds), big(size) (that many characters), crash() (the whole process
exits at once). With ``--dynamic``, for the catalogue: add_tool(name) (adds a tool that answers its name, then
sends notifications/tools/list_changed) and burst(count) (sends count of them).
"""

from __future__ import annotations

import argparse
import os
import socket
import sys

import anyio
import uvicorn
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from starlette.types import ASGIApp, Message, Receive, Scope, Send


def build_server(dynamic: bool = False) -> MCPServer:
    server = MCPServer("remote-test-server", log_level="WARNING")
    if dynamic:
        add_dynamic_tools(server)

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
    def big(size: int) -> str:
        """Return size characters."""
        return "x" * size

    @server.tool()
    def crash() -> str:
        """Exit the whole server process at once, as a crash would."""
        os._exit(3)

    return server


async def announce_tools_changed(ctx: Context) -> None:  # type: ignore[type-arg]
    """notifications/tools/list_changed in the generation the client speaks (a modern client listens for events)."""
    if ctx.protocol_version in MODERN_PROTOCOL_VERSIONS:
        await ctx.notify_tools_changed()
    else:
        await ctx.session.send_tool_list_changed()


def add_dynamic_tools(server: MCPServer) -> None:
    @server.tool()
    async def add_tool(name: str, ctx: Context) -> str:  # type: ignore[type-arg]
        """Add a tool that answers its own name, and announce it."""

        def answer() -> str:
            return name

        server.add_tool(answer, name=name, description=f"Answers {name}")
        await announce_tools_changed(ctx)
        return "added"

    @server.tool()
    async def burst(count: int, ctx: Context) -> str:  # type: ignore[type-arg]
        """Send count notifications/tools/list_changed."""
        for _ in range(count):
            await announce_tools_changed(ctx)
        return "sent"


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


class Misbehave:
    """Faults on the MCP POSTs: never answer ``initialize`` or notifications, or answer HTTP 500 after the first few."""

    def __init__(
        self, app: ASGIApp, *, hang_on_initialize: bool, hang_on_notifications: bool, fail_after: int | None
    ) -> None:
        self.app = app
        self.hang_on_initialize = hang_on_initialize
        self.hang_on_notifications = hang_on_notifications
        self.fail_after = fail_after
        self.posts = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        body = b""
        while True:  # read the whole body to look at it, then hand it on
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        self.posts += 1
        if self.hang_on_initialize and b'"initialize"' in body:
            await anyio.sleep_forever()
        if self.hang_on_notifications and b'"notifications/' in body and b'"id"' not in body:
            await anyio.sleep_forever()
        if self.fail_after is not None and self.posts > self.fail_after:
            await send({"type": "http.response.start", "status": 500, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"internal error (on purpose)"})
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class Bare400:
    """Answers a POST to one path with HTTP 400 and a plain-text body (no JSON-RPC error): not an MCP endpoint."""

    def __init__(self, app: ASGIApp, path: str) -> None:
        self.app = app
        self.path = path

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == self.path:
            await send({"type": "http.response.start", "status": 400, "headers": [(b"content-type", b"text/plain")]})
            await send({"type": "http.response.body", "body": b"Bad Request"})
            return
        await self.app(scope, receive, send)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--transport", choices=["streamable-http", "sse"], default="streamable-http")
    parser.add_argument("--require-bearer", metavar="TOKEN")
    parser.add_argument("--sse-path", default="/sse", help="where the SSE transport listens")
    parser.add_argument("--port", type=int, default=0, help="listen here instead of on an ephemeral port")
    parser.add_argument("--hang-on-initialize", action="store_true")
    parser.add_argument("--hang-on-notifications", action="store_true")
    parser.add_argument("--fail-with-500", type=int, metavar="AFTER")
    parser.add_argument("--max-body", type=int, metavar="BYTES")
    parser.add_argument("--bare-400-on-sse-path", action="store_true")
    parser.add_argument("--dynamic", action="store_true", help="add the catalogue tools add_tool and burst")
    args = parser.parse_args()
    limits = {} if args.max_body is None else {"max_request_body_size": args.max_body}

    server = build_server(args.dynamic)
    # The SDK turns DNS rebinding protection on for 127.0.0.1; allow the Host headers the tests send.
    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=["127.0.0.1:*", "localhost:*"],
        allowed_origins=["http://127.0.0.1:*", "http://localhost:*"],
    )
    if args.transport == "sse":
        app: ASGIApp = server.sse_app(sse_path=args.sse_path, transport_security=security, **limits)
        if args.bare_400_on_sse_path:
            app = Bare400(app, args.sse_path)
    else:
        # The app's lifespan runs the streamable HTTP session manager; uvicorn runs it (lifespan="on").
        app = server.streamable_http_app(transport_security=security, **limits)
    if args.hang_on_initialize or args.hang_on_notifications or args.fail_with_500 is not None:
        app = Misbehave(
            app,
            hang_on_initialize=args.hang_on_initialize,
            hang_on_notifications=args.hang_on_notifications,
            fail_after=args.fail_with_500,
        )
    if args.require_bearer:
        app = RequireBearer(app, args.require_bearer)

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    sock.listen(128)
    sys.stdout.write(f"{sock.getsockname()[1]}\n")
    sys.stdout.flush()

    config = uvicorn.Config(app, lifespan="on", log_level="warning", timeout_graceful_shutdown=1)
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()

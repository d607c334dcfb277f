"""A real MCP server over WebSocket (subprotocol ``mcp``, one JSON-RPC message per text frame).

Usage: ws_server.py [--require-bearer TOKEN]

Serves the same MCPServer as http_server.py (echo, add, sleep, crash) at ws://127.0.0.1:PORT/mcp, one
low-level server run per connection, on an ephemeral port printed as stdout's first line once the socket
listens. Another path is answered 404; with ``--require-bearer`` a handshake without
``Authorization: Bearer TOKEN`` is answered 401.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from http import HTTPStatus

import anyio
import mcp_types
from http_server import build_server  # type: ignore[import-not-found]  # a sibling script
from mcp.shared.message import SessionMessage
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

PATH = "/mcp"


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--require-bearer", metavar="TOKEN")
    args = parser.parse_args()
    lowlevel = build_server()._lowlevel_server

    def check(connection: ServerConnection, request: Request) -> Response | None:
        if request.path.partition("?")[0] != PATH:
            return connection.respond(HTTPStatus.NOT_FOUND, "no MCP endpoint here\n")
        if args.require_bearer and request.headers.get("Authorization") != f"Bearer {args.require_bearer}":
            return connection.respond(HTTPStatus.UNAUTHORIZED, "unauthorized\n")
        return None

    async def serve_connection(ws: ServerConnection) -> None:
        read_writer, read_stream = anyio.create_memory_object_stream[SessionMessage | Exception](0)
        write_stream, write_reader = anyio.create_memory_object_stream[SessionMessage](0)

        async def frames_to_server() -> None:
            async with read_writer:
                try:
                    async for frame in ws:
                        try:
                            message = mcp_types.jsonrpc_message_adapter.validate_json(frame, by_name=False)
                        except ValueError as exc:
                            await read_writer.send(exc)
                            continue
                        await read_writer.send(SessionMessage(message))
                except ConnectionClosed:
                    pass

        async def server_to_frames() -> None:
            async with write_reader:
                async for message in write_reader:
                    try:
                        await ws.send(message.message.model_dump_json(by_alias=True, exclude_unset=True))
                    except ConnectionClosed:
                        return

        async with anyio.create_task_group() as tg:
            tg.start_soon(frames_to_server)
            tg.start_soon(server_to_frames)
            await lowlevel.run(read_stream, write_stream, lowlevel.create_initialization_options())
            tg.cancel_scope.cancel()

    async with serve(serve_connection, "127.0.0.1", 0, subprotocols=["mcp"], process_request=check) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        sys.stdout.write(f"{port}\n")
        sys.stdout.flush()
        await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main())

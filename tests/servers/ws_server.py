"""A real MCP server over WebSocket (subprotocol ``mcp``, one JSON-RPC message per text frame).

Usage: ws_server.py [--require-bearer TOKEN] [--port PORT] [--max-size BYTES] [--hang-on-initialize]
                    [--garbage] [--unknown-id] [--fail-with-500 AFTER]

Serves the same MCPServer as http_server.py (echo, add, sleep, big, crash) at ws://127.0.0.1:PORT/mcp, one
low-level server run per connection, on an ephemeral port (or PORT) printed as stdout's first line once the
socket listens. Another path is answered 404; with ``--require-bearer`` a handshake without
``Authorization: Bearer TOKEN`` is answered 401.

Faults, for the fault matrix, named as the misbehaving stdio server names them: ``--hang-on-initialize``
drops ``initialize`` and ``server/discover`` requests unanswered; ``--garbage`` sends a frame that is not
JSON and one of partial JSON before each message; ``--unknown-id`` sends every response a second time with
an unknown id; ``--fail-with-500 AFTER`` answers HTTP 500 to every opening handshake after the first AFTER.
``--max-size`` raises the largest frame the server accepts (the websockets library's 1 MiB by default).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from http import HTTPStatus

import anyio
import mcp_types
from http_server import build_server  # type: ignore[import-not-found]  # a sibling script
from mcp.shared.message import SessionMessage
from mcp_types import JSONRPCError, JSONRPCResponse
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

PATH = "/mcp"


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--require-bearer", metavar="TOKEN")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--max-size", type=int, default=2**20, metavar="BYTES")
    parser.add_argument("--hang-on-initialize", action="store_true")
    parser.add_argument("--garbage", action="store_true")
    parser.add_argument("--unknown-id", action="store_true")
    parser.add_argument("--fail-with-500", type=int, metavar="AFTER")
    args = parser.parse_args()
    handshakes = 0
    lowlevel = build_server()._lowlevel_server

    def check(connection: ServerConnection, request: Request) -> Response | None:
        if request.path.partition("?")[0] != PATH:
            return connection.respond(HTTPStatus.NOT_FOUND, "no MCP endpoint here\n")
        if args.require_bearer and request.headers.get("Authorization") != f"Bearer {args.require_bearer}":
            return connection.respond(HTTPStatus.UNAUTHORIZED, "unauthorized\n")
        nonlocal handshakes
        handshakes += 1
        if args.fail_with_500 is not None and handshakes > args.fail_with_500:
            return connection.respond(HTTPStatus.INTERNAL_SERVER_ERROR, "internal error (on purpose)\n")
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
                        if args.hang_on_initialize and getattr(message, "method", None) in (
                            "initialize",
                            "server/discover",
                        ):
                            continue
                        await read_writer.send(SessionMessage(message))
                except ConnectionClosed:
                    pass

        async def server_to_frames() -> None:
            async with write_reader:
                async for message in write_reader:
                    text = message.message.model_dump_json(by_alias=True, exclude_unset=True)
                    try:
                        if args.garbage:
                            await ws.send("this is not json")
                            await ws.send('{"jsonrpc": "2.0", "id"')
                        await ws.send(text)
                        if args.unknown_id and isinstance(message.message, JSONRPCResponse | JSONRPCError):
                            await ws.send(json.dumps({**json.loads(text), "id": 987654321}))
                    except ConnectionClosed:
                        return

        async with anyio.create_task_group() as tg:
            tg.start_soon(frames_to_server)
            tg.start_soon(server_to_frames)
            await lowlevel.run(read_stream, write_stream, lowlevel.create_initialization_options())
            tg.cancel_scope.cancel()

    async with serve(
        serve_connection,
        "127.0.0.1",
        args.port,
        subprotocols=["mcp"],
        process_request=check,
        max_size=args.max_size,
    ) as server:
        port = next(iter(server.sockets)).getsockname()[1]
        sys.stdout.write(f"{port}\n")
        sys.stdout.flush()
        await asyncio.Future()


if __name__ == "__main__":
    asyncio.run(main())

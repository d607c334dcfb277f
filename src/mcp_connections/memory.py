"""A connection to an MCP server object in the same process: for testing servers with sessions and groups.

Design: the server (the SDK's low-level ``Server`` or an ``MCPServer``) runs its stream loop in a task
beside the connection, over a pair of memory streams, as the SDK's own ``InMemoryTransport`` does; it
serves both protocol generations, so a ``ManagedSession`` negotiates with it as with a subprocess. At stop
the server gets end-of-stream and a bounded grace to wind down, then is cancelled. A server whose loop
ends on its own (it raised) is a lost connection, reported with what it raised.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anyio
from mcp.server import Server
from mcp.server.mcpserver import MCPServer
from mcp.shared.memory import create_client_server_memory_streams

from .base import ConnectionManager, describe_exception
from .errors import ConnectionLostError

__all__ = ["InMemoryConnectionManager"]

logger = logging.getLogger(__name__)

# Time the server gets to end its loop after end-of-stream before it is cancelled (its lifespan's exit
# is user code and may hang).
SERVER_SHUTDOWN_GRACE = 2.0


class InMemoryConnectionManager(ConnectionManager[Any]):
    """Connects to an SDK ``Server`` or ``MCPServer`` object running in this process; no subprocess, no socket.

    The connection is ``(read_stream, write_stream)``, ready for ``ManagedSession`` or ``mcp.ClientSession``.
    """

    def __init__(self, server: Server[Any] | MCPServer, *, raise_exceptions: bool = False) -> None:
        super().__init__()
        if isinstance(server, MCPServer):
            lowlevel: Server[Any] = server._lowlevel_server  # the SDK's InMemoryTransport unwraps it so too
        elif isinstance(server, Server):
            lowlevel = server
        else:
            raise TypeError(f"InMemoryConnectionManager takes an mcp Server or MCPServer, not {type(server).__name__}")
        self.server = server
        self.raise_exceptions = raise_exceptions
        self._lowlevel = lowlevel
        self.name = f"in-memory {lowlevel.name}"

    @asynccontextmanager
    async def _connect(self) -> AsyncIterator[Any]:
        server = self._lowlevel
        async with create_client_server_memory_streams() as (client_streams, server_streams):
            server_read, server_write = server_streams
            done = anyio.Event()

            async def run_server() -> None:
                try:
                    await server.run(
                        server_read,
                        server_write,
                        server.create_initialization_options(),
                        raise_exceptions=self.raise_exceptions,
                    )
                except Exception as exc:
                    self._connection_lost(
                        ConnectionLostError(f"the in-memory server failed: {describe_exception(exc)}", server=self.name)
                    )
                else:
                    self._connection_lost(ConnectionLostError("the in-memory server ended", server=self.name))
                finally:
                    done.set()

            async with anyio.create_task_group() as tg:
                tg.start_soon(run_server)
                try:
                    yield client_streams
                finally:
                    with anyio.CancelScope(shield=True):
                        # End of stream first: a well-behaved server's loop ends at once.
                        await client_streams[1].aclose()
                        await server_write.aclose()
                        budget = self._stop_budget()
                        grace = SERVER_SHUTDOWN_GRACE if budget is None else min(SERVER_SHUTDOWN_GRACE, budget)
                        with anyio.move_on_after(grace):
                            await done.wait()
                    tg.cancel_scope.cancel()

"""The two clients every figure compares, and the servers they talk to.

"ours" is ``ManagedSession`` over one of this project's connection managers; "raw" is the SDK's
``stdio_client`` / ``streamable_http_client`` with a ``ClientSession``, set up the way its docs show.
"""

from __future__ import annotations

import sys
from contextlib import AsyncExitStack
from typing import Any

from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from mcp_connections import ManagedSession, StdioConnectionManager

from .harness import HERE, OURS, ROOT

STDLIB_SERVER = StdioServerParameters(command=sys.executable, args=["-S", str(HERE / "servers" / "stdlib_server.py")])
DEMO_SERVER = StdioServerParameters(command=sys.executable, args=["-m", "mcp_connections._demo_server"])
MISBEHAVING = ROOT / "tests" / "servers" / "misbehaving.py"


class Client:
    """One open connection, ours or raw, with the calls the benchmarks make."""

    def __init__(self, side: str) -> None:
        self.side = side
        self.session: Any = None
        self._stack: AsyncExitStack | None = None
        self._ours: ManagedSession | None = None

    @classmethod
    async def open_stdio(cls, side: str, params: StdioServerParameters) -> Client:
        client = cls(side)
        if side == OURS:
            client._ours = ManagedSession(StdioConnectionManager(params))
            await client._ours.start()
            client.session = client._ours
        else:
            stack = AsyncExitStack()
            client._stack = stack
            read, write = await stack.enter_async_context(stdio_client(params))
            client.session = await stack.enter_async_context(ClientSession(read, write))
            await client.session.initialize()
        return client

    @classmethod
    async def open_http(cls, side: str, url: str) -> Client:
        client = cls(side)
        if side == OURS:
            from mcp_connections.streamable_http import StreamableHttpConnectionManager

            client._ours = ManagedSession(StreamableHttpConnectionManager(url))
            await client._ours.start()
            client.session = client._ours
        else:
            from mcp.client.streamable_http import streamable_http_client

            stack = AsyncExitStack()
            client._stack = stack
            read, write = await stack.enter_async_context(streamable_http_client(url))
            client.session = await stack.enter_async_context(ClientSession(read, write))
            await client.session.initialize()
        return client

    async def echo(self, text: str = "hello") -> None:
        result = await self.session.call_tool("echo", {"text": text})
        if result.is_error:
            raise RuntimeError(f"echo failed: {result}")

    async def close(self, timeout: float | None = None) -> None:
        if self._ours is not None:
            if timeout is None:
                await self._ours.stop()
            else:
                await self._ours.stop(timeout=timeout)
        else:
            assert self._stack is not None
            await self._stack.aclose()

"""``mcp-connections demo``: the main job, on servers that ship inside the package."""

from __future__ import annotations

import io
import sys
import time
from typing import TextIO

from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters

from .stdio import StdioConnectionManager


def demo_server_params(name: str = "demo") -> StdioServerParameters:
    """Parameters that run the bundled demo server over stdio with this interpreter."""
    return StdioServerParameters(command=sys.executable, args=["-m", "mcp_connections._demo_server", "--name", name])


async def run_demo(out: TextIO = sys.stdout) -> int:
    def say(text: str) -> None:
        print(text, file=out, flush=True)

    errlog = io.StringIO()
    manager = StdioConnectionManager(demo_server_params(), errlog=errlog)
    say(f"starting {manager.name}")
    started = time.perf_counter()
    read, write = await manager.start()
    try:
        async with ClientSession(read, write) as session:
            info = await session.initialize()
            ready = time.perf_counter() - started
            say(f"ready in {ready * 1000:.1f} ms: {info.server_info.name} (pid {manager.pid}, state {manager.state})")
            tools = (await session.list_tools()).tools
            say(f"tools: {', '.join(tool.name for tool in tools)}")
            call_started = time.perf_counter()
            result = await session.call_tool("add", {"a": 2, "b": 3})
            round_trip = time.perf_counter() - call_started
            say(f"add(2, 3) = {result.content[0].text}  (round trip {round_trip * 1000:.2f} ms)")  # type: ignore[union-attr]
    finally:
        stop_started = time.perf_counter()
        await manager.stop()
        say(f"stopped in {(time.perf_counter() - stop_started) * 1000:.1f} ms (state {manager.state})")
    return 0

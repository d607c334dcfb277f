"""``mcp-connections demo``: the main job, on demo servers that ship inside the package.

Two stdio servers and one streamable HTTP server (which the demo starts itself on a free loopback
port) are started concurrently as a ``ServerGroup``; the demo prints their status, calls a tool on
each, kills one stdio server to show the group noticing and restarting it, and stops everything.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from ._output import STATUS_HEADERS, Output, start_with_progress, status_rows

__all__ = ["demo_config", "register", "run", "run_demo"]

# Bound on the demo HTTP server's start-up (importing the SDK's server side takes most of it).
HTTP_SERVER_START_TIMEOUT = 30.0

# Bound on the restart that the demo provokes.
RESTART_TIMEOUT = 15.0

# How long the demo goes on showing the live view (``watch``) once the killed server is back.
WATCH_AFTER_RESTART = 1.5

_DEMO_SERVER = [sys.executable, "-m", "mcp_connections._demo_server"]


def demo_config(http_url: str) -> dict[str, Any]:
    """The embedded config: the ``mcpServers`` format, as in any MCP host's config file."""
    restart = {"max_restarts": 3, "backoff_initial": 0.1, "jitter": 0.1}
    return {
        "mcpServers": {
            "alpha": {"command": sys.executable, "args": [*_DEMO_SERVER[1:], "--name", "alpha"], "restart": restart},
            "beta": {"command": sys.executable, "args": [*_DEMO_SERVER[1:], "--name", "beta"], "restart": restart},
            "gamma": {"url": http_url, "transport": "streamable-http", "restart": restart},
        }
    }


@asynccontextmanager
async def http_demo_server() -> AsyncIterator[str]:
    """Run the demo server over streamable HTTP on a free loopback port; yield its URL; stop it."""
    import anyio

    process = await anyio.open_process(
        [*_DEMO_SERVER, "--http", "--name", "gamma"], stderr=subprocess.DEVNULL, start_new_session=True
    )
    try:
        assert process.stdout is not None
        with anyio.fail_after(HTTP_SERVER_START_TIMEOUT):
            line = b""
            while not line.endswith(b"\n"):
                line += await process.stdout.receive(1)
        yield f"http://127.0.0.1:{int(line)}/mcp"
    finally:
        with anyio.CancelScope(shield=True):
            process.terminate()
            with anyio.move_on_after(5):
                await process.wait()
            if process.returncode is None:
                process.kill()
                await process.wait()
            await process.aclose()


def register(commands: Any) -> None:
    commands.add_parser("demo", help="run bundled demo servers: start, call, crash one, restart, stop")


def run(options: Any, parser: Any) -> int:
    import anyio

    return anyio.run(run_demo, Output())


async def run_demo(out: Output | None = None) -> int:
    import anyio

    from ..base import ConnectionState
    from ..group import ServerGroup
    from .watch import Watch

    out = out or Output()
    total_started = time.perf_counter()
    async with http_demo_server() as url:
        group = ServerGroup.from_config(demo_config(url), errlog=None)
        watch = Watch(group, out, keys=False)  # follows the events from the start, for uptimes
        out.line("Starting three MCP servers concurrently: two over stdio, one over streamable HTTP.")
        started = time.perf_counter()
        try:
            await start_with_progress(group, out)
            out.line(f"group ready in {(time.perf_counter() - started) * 1000:.0f} ms")
            await group.list_tools()
            out.table(STATUS_HEADERS, status_rows(group.status()), title="status")

            out.line("Calling a tool on each server:")
            for name in group.names:
                call_started = time.perf_counter()
                result = await group.call_tool(name, "add", {"a": 2, "b": 3})
                elapsed = (time.perf_counter() - call_started) * 1000
                out.line(f"  {name}: add(2, 3) = {result.content[0].text}  ({elapsed:.2f} ms)")  # type: ignore[union-attr]

            victim = "alpha"
            pid = group.status()[victim].pid
            assert pid is not None
            out.line(f"Killing {victim} (pid {pid}) with SIGKILL, in the live view of `mcp-connections watch`:")
            changes: list[str] = []
            group[victim].on_state_change(lambda old, new: changes.append(f"{old} -> {new}"))
            async with anyio.create_task_group() as tg:
                tg.start_soon(watch.show, tg, None)
                await anyio.sleep(0.5)  # the view is up before the kill
                killed_at = time.perf_counter()
                os.kill(pid, getattr(signal, "SIGKILL", signal.SIGTERM))  # Windows: SIGTERM is TerminateProcess
                with anyio.fail_after(RESTART_TIMEOUT):
                    while group[victim].restarts < 1 or group[victim].state is not ConnectionState.CONNECTED:
                        await anyio.sleep(0.005)
                back = (time.perf_counter() - killed_at) * 1000
                await anyio.sleep(WATCH_AFTER_RESTART)
                tg.cancel_scope.cancel()
            status = group.status()[victim]
            out.line(
                f"  {victim} noticed and restarted: {', '.join(changes)}; back in {back:.0f} ms (pid {status.pid})"
            )
            result = await group.call_tool(victim, "whoami")
            out.line(f"  {victim}: whoami = {result.content[0].text}")  # type: ignore[union-attr]
            out.table(STATUS_HEADERS, status_rows(group.status()), title="status after the restart")
        finally:
            stop_started = time.perf_counter()
            await group.stop()
            out.line(f"stopped all servers in {(time.perf_counter() - stop_started) * 1000:.0f} ms")
    out.line(f"demo done in {time.perf_counter() - total_started:.1f} s; nothing left running")
    return 0

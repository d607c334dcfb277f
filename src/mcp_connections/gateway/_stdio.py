"""The gateway over stdio: stdout is the protocol, everything else goes to stderr; stdin's end is the client's.

The SDK's ``stdio_server`` reads stdin in a worker thread, and a thread blocked in ``read()`` cannot be
cancelled: a gateway told to stop by SIGTERM while its client keeps stdin open would wait forever. On
POSIX the gateway therefore reads stdin itself, waiting for the descriptor to be readable in the event
loop (cancellable) and reading what is there without blocking.
"""

from __future__ import annotations

import os
import stat
import sys
from typing import Any

import anyio
from mcp.server.runner import serve_dual_era_loop
from mcp.server.stdio import stdio_server

from ._server import Gateway

__all__ = ["serve_stdio"]

_READ_SIZE = 65536


class _StdinLines:
    """Lines of stdin (text), read without a thread so that a shutdown can stop the reading at once."""

    def __init__(self, fd: int) -> None:
        self._fd = fd
        self._pending = b""
        self._eof = False
        os.set_blocking(fd, False)

    def __aiter__(self) -> _StdinLines:
        return self

    async def __anext__(self) -> str:
        while b"\n" not in self._pending and not self._eof:
            await anyio.wait_readable(self._fd)
            try:
                chunk = os.read(self._fd, _READ_SIZE)
            except BlockingIOError:
                continue
            if chunk:
                self._pending += chunk
            else:
                self._eof = True
        if not self._pending:
            raise StopAsyncIteration
        line, sep, rest = self._pending.partition(b"\n")
        self._pending = rest
        return (line + sep).decode("utf-8", errors="replace")


def _stdin() -> Any:
    if sys.platform == "win32":
        return None  # the SDK's threaded reader; a stop waits for the client to close stdin
    try:
        fd = sys.stdin.fileno()
        mode = os.fstat(fd).st_mode
        if not (stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or os.isatty(fd)):
            return None  # a file or /dev/null cannot be polled; reading it never blocks for long anyway
        return _StdinLines(fd)
    except (AttributeError, OSError, ValueError):
        return None


async def serve_stdio(gateway: Gateway) -> None:
    """Serve one client on this process's stdin and stdout until stdin closes."""
    server = gateway.server
    async with stdio_server(stdin=_stdin()) as (read_stream, write_stream), server.lifespan(server) as state:
        # init_options=None: the initialize result is built when the client asks, so the capabilities it
        # declares are those of the backends running then.
        await serve_dual_era_loop(server, read_stream, write_stream, lifespan_state=state, init_options=None)

"""The gateway over stdio: stdout is the protocol, everything else goes to stderr; stdin's end is the client's.

The SDK's ``stdio_server`` reads stdin in a worker thread, and a thread blocked in ``read()`` cannot be
cancelled: a gateway told to stop by SIGTERM while its client keeps stdin open would wait forever. On
POSIX the gateway therefore reads stdin itself, waiting for the descriptor to be readable in the event
loop (cancellable) and reading what is there without blocking. It writes stdout the same way (the SDK
hands every message to a worker thread: a thread hop per message, on the path of every call), on a
private duplicate of the descriptor, with fd 1 pointed at stderr so that a stray ``print`` cannot corrupt
the protocol (what the SDK's own claim of fd 1 does).
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


if sys.platform == "win32":

    def _stdin() -> Any:
        return None  # the SDK's threaded reader; a stop waits for the client to close stdin

    def _stdout() -> Any:
        return None

else:

    class _StdinLines:
        """Lines of stdin (text), read without a thread so that a shutdown can stop the reading at once."""

        def __init__(self, fd: int) -> None:
            self._fd = fd
            self._pending = b""
            self._eof = False
            os.set_blocking(fd, False)

        def close(self) -> None:
            # A terminal's descriptor is shared with the shell: leave it blocking, as it was.
            os.set_blocking(self._fd, True)

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

    class _StdoutWriter:
        """stdout as the SDK's stdio server uses it (``write``, ``flush``), written from the event loop."""

        def __init__(self) -> None:
            self._fd = os.dup(1)  # the wire
            os.dup2(2, 1)  # what else writes to fd 1 lands on stderr
            os.set_blocking(self._fd, False)

        async def write(self, text: str) -> None:
            data = memoryview(text.encode("utf-8"))
            while data:
                try:
                    written = os.write(self._fd, data)
                except BlockingIOError:
                    await anyio.wait_writable(self._fd)
                    continue
                data = data[written:]

        async def flush(self) -> None:
            pass

        def close(self) -> None:
            os.dup2(self._fd, 1)
            os.close(self._fd)

    def _pollable(fd: int) -> bool:
        mode = os.fstat(fd).st_mode
        return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode) or os.isatty(fd)

    def _stdout() -> _StdoutWriter | None:
        try:
            return _StdoutWriter() if _pollable(sys.stdout.fileno()) else None
        except (AttributeError, OSError, ValueError):
            return None

    def _stdin() -> Any:
        try:
            fd = sys.stdin.fileno()
            if not _pollable(fd):
                return None  # a file or /dev/null cannot be polled; reading it never blocks for long anyway
            return _StdinLines(fd)
        except (AttributeError, OSError, ValueError):
            return None


async def serve_stdio(gateway: Gateway) -> None:
    """Serve one client on this process's stdin and stdout until stdin closes."""
    server = gateway.server
    stdout = _stdout()
    stdin = _stdin()
    try:
        async with (
            stdio_server(stdin=stdin, stdout=stdout) as (read_stream, write_stream),  # type: ignore[arg-type,unused-ignore]
            server.lifespan(server) as state,
        ):
            # init_options=None: the initialize result is built when the client asks, so the capabilities it
            # declares are those of the backends running then.
            await serve_dual_era_loop(server, read_stream, write_stream, lifespan_state=state, init_options=None)
    finally:
        if stdout is not None:
            stdout.close()
        if stdin is not None:
            stdin.close()

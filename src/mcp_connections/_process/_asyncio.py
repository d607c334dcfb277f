"""What only asyncio needs: closing a subprocess transport that nothing public closes.

Kept here, apart from the backend-neutral code, so that other event loops (trio) never meet it.
"""

from __future__ import annotations

import asyncio.subprocess
from contextlib import suppress

import anyio.abc


def close_transport(process: anyio.abc.Process) -> None:
    """Close the asyncio transport of a dead (or abandoned) process; a no-op for any other kind of process.

    anyio wraps asyncio's process and closes its pipes, not its transport, which then stays open and warns
    at garbage collection. Called only once the child watcher reaped the process (or gave up), since closing
    the transport before would reap it under the watcher's feet.
    """
    inner = getattr(process, "_process", None)
    if not isinstance(inner, asyncio.subprocess.Process):
        return
    transport = getattr(inner, "_transport", None)
    close = getattr(transport, "close", None)
    if callable(close):
        with suppress(PermissionError, ProcessLookupError):
            close()

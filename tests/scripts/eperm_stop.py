"""Stop a server whose process group holds a member this process may not signal; print what happened as JSON.

Run as root without CAP_KILL (tests/test_process_posix.py does it with setpriv): the server's child switches
to another user (uid 1) with setpriv, so our SIGTERM and SIGKILL to the group meet EPERM for it.
"""

from __future__ import annotations

import io
import json
import logging
import sys
import time

import anyio
from mcp.client.stdio import StdioServerParameters

from mcp_connections import StdioConnectionManager

SERVER = """
import subprocess, sys, time
child = subprocess.Popen(["setpriv", "--reuid=1", "--regid=1", "--clear-groups", "sleep", "60"])
print(child.pid, file=sys.stderr, flush=True)
sys.stdin.read()
time.sleep(60)
"""


class Capture(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


async def main() -> None:
    capture = Capture()
    logging.getLogger("mcp_connections").addHandler(capture)
    params = StdioServerParameters(command=sys.executable, args=["-c", SERVER])
    manager = StdioConnectionManager(params, errlog=io.StringIO())
    await manager.start()
    with anyio.fail_after(20):
        while not manager.stderr_tail.endswith("\n"):
            await anyio.sleep(0.01)
    other_user_pid = int(manager.stderr_tail.split()[0])
    await anyio.sleep(0.3)  # setpriv has switched users by now
    started = time.monotonic()
    await manager.stop(timeout=1)
    elapsed = time.monotonic() - started
    print(
        json.dumps(
            {
                "elapsed": elapsed,
                "warning": " | ".join(capture.messages),
                "state": str(manager.state),
                "other_user_pid": other_user_pid,
            }
        )
    )


anyio.run(main)

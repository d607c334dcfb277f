"""Start servers through the blocking API, print their pids, and end without calling close().

Usage: forget_close.py MODE [SERVER FLAGS...]
  keep    keep a reference to the session until the interpreter exits
  drop    drop the last reference while running, then say whether the server is gone
  raise   end with an unhandled exception
  group   a BlockingGroup of two servers, still referenced at exit
"""

import gc
import io
import sys
import time
from pathlib import Path

import psutil
from mcp import StdioServerParameters

from mcp_connections import StdioConnectionManager
from mcp_connections.blocking import BlockingGroup, BlockingSession

MISBEHAVING = Path(__file__).resolve().parent.parent / "servers" / "misbehaving.py"
mode, flags = sys.argv[1], sys.argv[2:]


def server_gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


if mode == "group":
    entry = {"command": sys.executable, "args": [str(MISBEHAVING), *flags]}
    group = BlockingGroup.from_config({"mcpServers": {"a": entry, "b": entry}}, errlog=io.StringIO())
    group.start()
    for name in group.names:
        print(group.call_tool(name, "pid").content[0].text, flush=True)  # type: ignore[union-attr]
    sys.exit(0)

params = StdioServerParameters(command=sys.executable, args=[str(MISBEHAVING), *flags])
session = BlockingSession(StdioConnectionManager(params, errlog=io.StringIO()))
session.start()
pid = int(session.call_tool("pid").content[0].text)  # type: ignore[union-attr]
print(pid, flush=True)
if mode == "drop":
    del session
    gc.collect()
    deadline = time.monotonic() + 10
    while not server_gone(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    print("gone" if server_gone(pid) else "alive", flush=True)
elif mode == "raise":
    raise RuntimeError("ending with an unhandled exception, on purpose")

"""A minimal stdio MCP server, standard library only, for the benchmarks.

It starts in a few milliseconds (run it with ``python -S``: it imports only ``json`` and ``sys``) and
answers every message on one thread as soon as it is read, so that what the benchmarks time is the
client, not the server. It speaks just enough MCP: ``initialize``, ``notifications/initialized``,
``ping``, ``tools/list`` and ``tools/call`` for one ``echo`` tool. It exits when stdin closes.
"""

import json
import sys

ECHO_TOOL = {
    "name": "echo",
    "description": "Echo the text back",
    "inputSchema": {"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"]},
}
SUPPORTED = ("2024-11-05", "2025-03-26", "2025-06-18", "2025-11-25")


def answer(message: dict) -> dict | None:
    method = message.get("method")
    if "id" not in message or method is None:
        return None  # a notification (or a stray response): nothing to answer
    params = message.get("params") or {}
    if method == "initialize":
        version = params.get("protocolVersion")
        result = {
            "protocolVersion": version if version in SUPPORTED else SUPPORTED[-1],
            "capabilities": {"tools": {}},
            "serverInfo": {"name": "stdlib-bench", "version": "1.0"},
        }
    elif method == "ping":
        result = {}
    elif method == "tools/list":
        result = {"tools": [ECHO_TOOL]}
    elif method == "tools/call" and params.get("name") == "echo":
        text = str((params.get("arguments") or {}).get("text", ""))
        result = {"content": [{"type": "text", "text": text}], "isError": False}
    else:
        return {"jsonrpc": "2.0", "id": message["id"], "error": {"code": -32601, "message": f"no method {method}"}}
    return {"jsonrpc": "2.0", "id": message["id"], "result": result}


def main() -> None:
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    dumps, loads = json.dumps, json.loads
    while True:
        line = stdin.readline()
        if not line:
            return  # stdin closed: the client is done with us
        try:
            message = loads(line)
        except ValueError:
            continue
        reply = answer(message) if isinstance(message, dict) else None
        if reply is not None:
            stdout.write(dumps(reply, separators=(",", ":")).encode() + b"\n")
            stdout.flush()


if __name__ == "__main__":
    main()

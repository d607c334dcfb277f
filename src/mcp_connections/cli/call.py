"""``mcp-connections call [CONFIG] SERVER TOOL --args JSON``: call one tool of one server."""

from __future__ import annotations

import argparse
import json
from typing import Any

from ._configs import DEFAULT_CONFIG, config_path, load
from ._output import Output

__all__ = ["register", "run"]


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser("call", help="call one tool of one server")
    parser.add_argument("parts", nargs="+", metavar="[CONFIG] SERVER TOOL")
    parser.add_argument("--args", default="{}", help="the tool's arguments as a JSON object")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def run(options: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    parts = options.parts
    if len(parts) not in (2, 3):
        parser.error("call takes [CONFIG] SERVER TOOL")
    path, server, tool = (DEFAULT_CONFIG, *parts) if len(parts) == 2 else parts
    try:
        arguments = json.loads(options.args)
    except json.JSONDecodeError as exc:
        parser.error(f"--args is not valid JSON: {exc}")
    if not isinstance(arguments, dict):
        parser.error("--args must be a JSON object")
    import anyio

    return anyio.run(run_call, config_path(path), server, tool, arguments, options.json, Output())


async def run_call(path: str, server: str, tool: str, arguments: dict[str, Any], as_json: bool, out: Output) -> int:
    from ..base import ConnectionState
    from ..errors import MCPConnectionError
    from ..group import ServerGroup

    group = ServerGroup(load(path, server), errlog=None)
    async with group:
        status = group.status()[server]
        if status.state is not ConnectionState.CONNECTED:
            out.line(f"{server}: {status.error or status.state}")
            return 1
        try:
            result = await group.call_tool(server, tool, arguments)
        except MCPConnectionError as exc:
            out.line(str(exc))
            return 1
    if as_json:
        out.line(json.dumps(result.model_dump(mode="json", by_alias=True, exclude_none=True), indent=2))
    else:
        for block in result.content:
            out.line(getattr(block, "text", None) or json.dumps(block.model_dump(mode="json", exclude_none=True)))
    return 1 if result.is_error else 0

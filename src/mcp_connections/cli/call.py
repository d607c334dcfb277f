"""``mcp-connections call [CONFIG] NAME --args JSON``: call one tool by its catalogue name.

The older form ``call [CONFIG] SERVER TOOL`` (the server's config name and the tool's own name) still works.
With two words, the first is taken as CONFIG when it is an existing file, else as SERVER.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from ._configs import DEFAULT_CONFIG, config_path, load
from ._output import Output
from .tools import add_tool_names_argument

__all__ = ["register", "run"]


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "call", help="call one tool, by catalogue name (NAME) or by server and tool (SERVER TOOL)"
    )
    parser.add_argument("parts", nargs="+", metavar="[CONFIG] NAME | [CONFIG] SERVER TOOL")
    parser.add_argument("--args", default="{}", help="the tool's arguments as a JSON object")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    add_tool_names_argument(parser)


def run(options: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    parts = options.parts
    server: str | None
    if len(parts) == 1:
        path, server, tool = DEFAULT_CONFIG, None, parts[0]
    elif len(parts) == 2 and Path(parts[0]).is_file():
        path, server, tool = parts[0], None, parts[1]
    elif len(parts) == 2:
        path, server, tool = DEFAULT_CONFIG, parts[0], parts[1]
    elif len(parts) == 3:
        path, server, tool = parts
    else:
        parser.error("call takes [CONFIG] NAME or [CONFIG] SERVER TOOL")
    try:
        arguments = json.loads(options.args)
    except json.JSONDecodeError as exc:
        parser.error(f"--args is not valid JSON: {exc}")
    if not isinstance(arguments, dict):
        parser.error("--args must be a JSON object")
    import anyio

    return anyio.run(run_call, config_path(path), server, tool, arguments, options.json, Output(), options.tool_names)


async def run_call(
    path: str,
    server: str | None,
    tool: str,
    arguments: dict[str, Any],
    as_json: bool,
    out: Output,
    tool_names: str = "prefixed",
) -> int:
    """Call ``tool`` on ``server``, or (``server=None``) the catalogue's tool named ``tool``."""
    import sys

    from ..base import ConnectionState
    from ..errors import MCPConnectionError, ToolNotFoundError
    from ..group import ServerGroup

    group = ServerGroup(load(path, server, eager=True), errlog=None, tool_names=tool_names)  # type: ignore[arg-type]
    async with group:
        if server is not None:
            status = group.status()[server]
            if status.state is not ConnectionState.CONNECTED:
                out.line(f"{server}: {status.error or status.state}")
                return 1
        try:
            if server is not None:
                result = await group.call_tool(server, tool, arguments)
            else:
                result = await group.call(tool, arguments)
        except ToolNotFoundError as exc:
            print(f"mcp-connections: {exc}", file=sys.stderr)
            down = [f"{s.name}: {s.error or s.state}" for s in group.status().values() if s.error]
            for line in down:
                print(f"  (not connected) {line}", file=sys.stderr)
            return 2
        except MCPConnectionError as exc:
            out.line(str(exc))
            return 1
    if as_json:
        out.line(json.dumps(result.model_dump(mode="json", by_alias=True, exclude_none=True), indent=2))
    else:
        for block in result.content:
            out.line(getattr(block, "text", None) or json.dumps(block.model_dump(mode="json", exclude_none=True)))
    return 1 if result.is_error else 0

"""``mcp-connections tools [CONFIG] [--server NAME] [--tool-names MODE]``: the group's tool catalogue.

Prints each tool's catalogue name (what ``call NAME`` and a model use), its server, its own name and its
description; ``--json`` prints a list of ``{"name", "server", "tool"}`` objects, the tool as the server sent it.
"""

from __future__ import annotations

import argparse
from typing import Any

from ._configs import add_config_argument, config_path, load
from ._output import Output

__all__ = ["add_tool_names_argument", "register", "run"]


def add_tool_names_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--tool-names",
        choices=("prefixed", "auto"),
        default="prefixed",
        help="catalogue names: server__tool for every tool (prefixed, the default), or the tool's own name "
        "where no other server has it (auto)",
    )


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "tools", help="list the tool catalogue of every server (or one)"
    )
    add_config_argument(parser)
    parser.add_argument("--server", help="only this server")
    add_tool_names_argument(parser)


def run(options: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    import anyio

    return anyio.run(run_tools, config_path(options.config), options.server, options.json, Output(), options.tool_names)


async def run_tools(path: str, server: str | None, as_json: bool, out: Output, tool_names: str = "prefixed") -> int:
    import json
    import sys

    from ..base import ConnectionState
    from ..group import ServerGroup

    group = ServerGroup(load(path, server, eager=True), errlog=None, tool_names=tool_names)  # type: ignore[arg-type]
    async with group:
        tools = await group.tools()
        statuses = group.status()
    failed = [s for s in statuses.values() if s.state is not ConnectionState.CONNECTED]
    if as_json:
        payload = [
            {
                "name": entry.name,
                "server": entry.server,
                "tool": entry.tool.model_dump(mode="json", by_alias=True, exclude_none=True),
            }
            for entry in tools
        ]
        out.line(json.dumps(payload, indent=2))
        for status in failed:  # stdout stays one JSON document
            print(f"{status.name}: {status.error or status.state}", file=sys.stderr)
    else:
        rows = [
            [
                entry.name,
                entry.server,
                entry.tool.name,
                (entry.tool.description or "").strip().splitlines()[0] if entry.tool.description else "",
            ]
            for entry in tools
        ]
        out.table(("name", "server", "tool", "description"), rows)
        for status in failed:
            out.line(f"{status.name}: {status.error or status.state}")
    return 1 if failed else 0

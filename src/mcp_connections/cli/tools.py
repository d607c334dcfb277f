"""``mcp-connections tools [CONFIG] [--server NAME]``: list the tools of every server (or one)."""

from __future__ import annotations

import argparse
from typing import Any

from ._configs import add_config_argument, config_path, load
from ._output import Output

__all__ = ["register", "run"]


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser("tools", help="list the tools of every server (or one)")
    add_config_argument(parser)
    parser.add_argument("--server", help="only this server")


def run(options: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    import anyio

    return anyio.run(run_tools, config_path(options.config), options.server, options.json, Output())


async def run_tools(path: str, server: str | None, as_json: bool, out: Output) -> int:
    import json

    from ..group import ServerGroup

    group = ServerGroup(load(path, server), errlog=None)
    async with group:
        tools = await group.list_tools()
        statuses = group.status()
    failed = [s for s in statuses.values() if s.name not in tools]
    if as_json:
        payload: dict[str, Any] = {
            name: [tool.model_dump(mode="json", by_alias=True, exclude_none=True) for tool in items]
            for name, items in tools.items()
        }
        for status in failed:
            payload[status.name] = {"error": status.error or str(status.state)}
        out.line(json.dumps(payload, indent=2))
    else:
        rows = [
            [name, tool.name, (tool.description or "").strip().splitlines()[0] if tool.description else ""]
            for name, items in tools.items()
            for tool in items
        ]
        out.table(("server", "tool", "description"), rows)
        for status in failed:
            out.line(f"{status.name}: {status.error or status.state}")
    return 1 if failed else 0

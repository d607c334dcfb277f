"""``mcp-connections configs [--json]``: the MCP host configs found here, the one a command would read first."""

from __future__ import annotations

import argparse
from typing import Any

from ._configs import discover_configs, host_config_paths, skipped_yaml
from ._output import Output

__all__ = ["register", "run"]


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "configs", help="list the MCP host configs found here (the first is what commands read by default)"
    )
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def run(options: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    import json
    import os
    import sys
    from pathlib import Path

    out = Output()
    found = discover_configs()
    skipped = [
        c
        for c in host_config_paths(Path.home(), sys.platform, os.environ, Path.cwd())
        if skipped_yaml(c.path) and Path(c.path).is_file()
    ]
    if options.json:
        payload = [
            {"host": c.host, "path": str(Path(c.path).absolute()), "scope": c.scope, "default": i == 0}
            for i, c in enumerate(found)
        ]
        out.line(json.dumps(payload, indent=2))
    else:
        for config in found:
            out.line(f"{Path(config.path).absolute()}\t{config.host}")
    for config in skipped:
        print(f"skipped {config.path} ({config.host}): YAML, and PyYAML is not installed", file=sys.stderr)
    if not found:
        print(
            "no MCP host config found (./mcp.json, Claude Desktop, Claude Code, Cursor, VS Code, Windsurf, "
            "Gemini CLI, Goose)",
            file=sys.stderr,
        )
        return 1
    return 0

"""The ``mcp-connections`` command line."""

from __future__ import annotations

import argparse
import sys

import anyio

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mcp-connections", description="Start, check and call MCP servers.")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="run the bundled demo servers and show what the library does")
    return parser


def main(argv: list[str] | None = None) -> int:
    options = build_parser().parse_args(argv)
    if options.command == "demo":
        from ._demo import run_demo

        return anyio.run(run_demo)
    return 2  # pragma: no cover - argparse rejects unknown commands


if __name__ == "__main__":
    sys.exit(main())

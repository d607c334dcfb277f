"""The ``mcp-connections`` command line: one module per command, and this dispatcher.

Design: ``--help`` and argument errors must be instant, so this module and each command's
``register()`` import nothing but the standard library; a command imports the library (and with it the
MCP SDK) only inside its ``run()``. Exit codes: 0 all well, 1 a server (or the call) failed, 2 a bad
config or bad arguments, 130 interrupted. Nothing from a server's ``env`` or ``headers`` is ever printed.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys

__all__ = ["build_parser", "main"]

# Each name is a module of this package with ``register(commands)`` and ``run(options, parser) -> int``.
COMMANDS = ("demo", "check", "tools", "call", "configs", "serve", "login", "logout", "watch", "cache")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mcp-connections", description="Start, check and call MCP servers.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the library does to stderr")
    commands = parser.add_subparsers(dest="command", required=True)
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").register(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    options = parser.parse_args(argv)
    # Failures are in the output already; logs are for --verbose.
    logging.basicConfig(
        level=logging.INFO if options.verbose else logging.CRITICAL, format="%(levelname)s %(name)s: %(message)s"
    )
    from ..errors import ConfigError

    try:
        code: int = importlib.import_module(f"{__name__}.{options.command}").run(options, parser)
    except ConfigError as exc:
        print(f"mcp-connections: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code

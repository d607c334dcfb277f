"""The ``mcp-connections`` command line: ``demo``, ``check``, ``tools`` and ``call``.

Rich tables and live progress on a terminal, plain aligned text when piped, ``--json`` for scripts.
Exit codes: 0 all well, 1 a server (or the call) failed, 2 a bad config or bad arguments. Nothing
from a server's ``env`` or ``headers`` is ever printed: only names, states and errors, which the
connection managers already keep free of credentials.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import sys
from collections.abc import Callable, Sequence
from contextlib import suppress
from pathlib import Path
from typing import Any, TextIO

import anyio

from .base import ConnectionState
from .config import ServerConfig, load_config
from .errors import ConfigError, GroupStartError, MCPConnectionError
from .group import ServerGroup, ServerStatus

__all__ = ["main"]

DEFAULT_CONFIG = "mcp.json"

# Bound on `check` as a whole unless --timeout says otherwise: start-up of every server plus a listing.
DEFAULT_CHECK_TIMEOUT = 60.0


class _Discard(io.TextIOBase):
    """Where server stderr goes in the CLI: the managers keep its tail for error messages anyway."""

    def write(self, text: str) -> int:
        return len(text)


class Output:
    """Tables and progress: rich on a terminal, plain text when piped."""

    def __init__(self, stream: TextIO | None = None, *, rich: bool | None = None) -> None:
        self.stream = stream or sys.stdout
        self.rich = self.stream.isatty() if rich is None else rich

    def line(self, text: str = "") -> None:
        print(text, file=self.stream, flush=True)

    def table(self, headers: Sequence[str], rows: Sequence[Sequence[str]], title: str | None = None) -> None:
        if self.rich:
            from rich.console import Console
            from rich.table import Table

            table = Table(title=title)
            for header in headers:
                table.add_column(header)
            for row in rows:
                table.add_row(*row)
            Console(file=self.stream).print(table)
            return
        if title:
            self.line(title)
        widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
        self.line("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip())
        for row in rows:
            self.line("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip())


def status_rows(statuses: dict[str, ServerStatus]) -> list[list[str]]:
    rows = []
    for status in statuses.values():
        ready = f"{status.ready_in * 1000:.0f}" if status.ready_in is not None else "-"
        tools = str(status.tools) if status.tools is not None else "-"
        error = (status.error or "").splitlines()[0] if status.error else ""
        rows.append([status.name, status.transport, str(status.state), ready, tools, str(status.restarts), error])
    return rows


STATUS_HEADERS = ("server", "transport", "state", "ready in ms", "tools", "restarts", "error")


def status_json(status: ServerStatus) -> dict[str, Any]:
    return {
        "name": status.name,
        "transport": status.transport,
        "state": str(status.state),
        "ready_in": status.ready_in,
        "restarts": status.restarts,
        "pid": status.pid,
        "tools": status.tools,
        "error": status.error,
    }


async def start_with_progress(group: ServerGroup, out: Output) -> None:
    """Start the group, showing each server's progress; a required failure propagates."""
    total = len(group.names)
    ready: list[str] = []

    def watch(name: str) -> Callable[[ConnectionState, ConnectionState], None]:
        def changed(old: ConnectionState, new: ConnectionState) -> None:
            if new in (ConnectionState.CONNECTED, ConnectionState.FAILED) and name not in ready:
                ready.append(name)
                if not out.rich:
                    out.line(f"  {name}: {new}")

        return changed

    for name in group.names:
        group[name].on_state_change(watch(name))
    if not out.rich:
        out.line(f"starting {total} servers concurrently...")
        await group.start()
        return
    from rich.console import Console

    console = Console(file=out.stream)
    with console.status(f"starting {total} servers concurrently...") as spinner:
        async with anyio.create_task_group() as tg:

            async def refresh() -> None:
                while True:
                    waiting = [n for n in group.names if n not in ready]
                    spinner.update(f"starting {total} servers: {len(ready)}/{total} done, waiting for {waiting}")
                    await anyio.sleep(0.05)

            tg.start_soon(refresh)
            try:
                await group.start()
            finally:
                tg.cancel_scope.cancel()


def _load(path: str, only: str | None = None) -> dict[str, ServerConfig]:
    configs = load_config(path)
    if only is not None:
        if only not in configs:
            raise ConfigError(f"no server {only!r} (servers: {', '.join(configs) or 'none'})", source=path)
        configs = {only: configs[only]}
    return configs


async def run_check(path: str, as_json: bool, timeout: float, out: Output) -> int:
    group = ServerGroup(_load(path), errlog=_Discard())
    try:
        with anyio.move_on_after(timeout) as scope:
            with suppress(GroupStartError):  # the table says which servers failed and why
                await (group.start() if as_json else start_with_progress(group, out))
            await group.list_tools()
        statuses = group.status()
    finally:
        await group.stop()
    if scope.cancelled_caught and not as_json:
        out.line(f"check timed out after {timeout:g}s")
    failed = scope.cancelled_caught or any(s.state is not ConnectionState.CONNECTED for s in statuses.values())
    if as_json:
        out.line(json.dumps({name: status_json(s) for name, s in statuses.items()}, indent=2))
    else:
        out.table(STATUS_HEADERS, status_rows(statuses))
    return 1 if failed else 0


async def run_tools(path: str, server: str | None, as_json: bool, out: Output) -> int:
    group = ServerGroup(_load(path, server), errlog=_Discard())
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


async def run_call(path: str, server: str, tool: str, arguments: dict[str, Any], as_json: bool, out: Output) -> int:
    group = ServerGroup(_load(path, server), errlog=_Discard())
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


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mcp-connections", description="Start, check and call MCP servers.")
    parser.add_argument("-v", "--verbose", action="store_true", help="log what the library does to stderr")
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("demo", help="run bundled demo servers: start, call, crash one, restart, stop")

    def with_config(name: str, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("config", nargs="?", default=DEFAULT_CONFIG, metavar="CONFIG")
        sub.add_argument("--json", action="store_true", help="machine-readable output")
        return sub

    check = with_config("check", "connect to every server of a config and print their status")
    check.add_argument("--timeout", type=float, default=DEFAULT_CHECK_TIMEOUT, help="bound on the whole check (s)")
    tools = with_config("tools", "list the tools of every server (or one)")
    tools.add_argument("--server", help="only this server")
    call = commands.add_parser("call", help="call one tool of one server")
    call.add_argument("parts", nargs="+", metavar="[CONFIG] SERVER TOOL")
    call.add_argument("--args", default="{}", help="the tool's arguments as a JSON object")
    call.add_argument("--json", action="store_true", help="machine-readable output")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    options = parser.parse_args(argv)
    # Failures are in the output already; logs are for --verbose.
    logging.basicConfig(
        level=logging.INFO if options.verbose else logging.CRITICAL, format="%(levelname)s %(name)s: %(message)s"
    )
    out = Output()
    try:
        if options.command == "demo":
            from ._demo import run_demo

            return anyio.run(run_demo, out)
        if options.command == "check":
            return anyio.run(run_check, _config_path(options.config), options.json, options.timeout, out)
        if options.command == "tools":
            return anyio.run(run_tools, _config_path(options.config), options.server, options.json, out)
        if options.command == "call":
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
            return anyio.run(run_call, _config_path(path), server, tool, arguments, options.json, out)
    except ConfigError as exc:
        print(f"mcp-connections: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    parser.error(f"unknown command {options.command!r}")  # pragma: no cover - argparse refuses it first
    return 2  # pragma: no cover


def _config_path(path: str) -> str:
    candidate = Path(path)
    if not candidate.exists() and path == DEFAULT_CONFIG:
        raise ConfigError(f"no config file given and none at {candidate.resolve()}; pass CONFIG", source=path)
    return path


if __name__ == "__main__":
    sys.exit(main())

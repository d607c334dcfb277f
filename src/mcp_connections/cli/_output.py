"""What the commands print: rich tables and live progress on a terminal, plain aligned text when piped."""

from __future__ import annotations

import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from ..base import ConnectionState
    from ..group import ServerGroup, ServerStatus

__all__ = ["STATUS_HEADERS", "Output", "start_with_progress", "status_json", "status_rows"]

STATUS_HEADERS = ("server", "transport", "protocol", "state", "ready in ms", "tools", "restarts", "error")


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
        protocol = status.protocol_version or "-"
        row = [status.name, status.transport, protocol, str(status.state), ready, tools, str(status.restarts), error]
        rows.append(row)
    return rows


def status_json(status: ServerStatus) -> dict[str, Any]:
    return {
        "name": status.name,
        "transport": status.transport,
        "protocol_version": status.protocol_version,
        "state": str(status.state),
        "ready_in": status.ready_in,
        "restarts": status.restarts,
        "pid": status.pid,
        "tools": status.tools,
        "error": status.error,
    }


async def start_with_progress(group: ServerGroup, out: Output) -> None:
    """Start the group, showing each server's progress; a required failure propagates."""
    import anyio

    from ..base import ConnectionState

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

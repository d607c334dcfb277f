"""``mcp-connections watch [CONFIG]``: start the servers of a config and show what they are doing, live.

Design: the group is started, and its events (``group.on_event``) feed one ``ServerView`` per server (the
pure logic of ``_stats``: uptime, restarts, last error, requests and p50/p95 latency over the last minute).
On a terminal a rich ``Live`` table is redrawn ``REFRESH_PER_SECOND`` times a second, and single keys are read
from the terminal put in cbreak mode: up/down or k/j select a server, ``r`` restarts it, ``q`` quits. Piped
(stdout not a terminal), one status line is printed for a server each time what it shows changes (state,
restarts, error, catalogue size), not for every request. ``q``, Ctrl-C (SIGINT) or SIGTERM stop every server
and exit 0; ``--duration`` stops after that many seconds.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from collections.abc import Callable
from contextlib import suppress
from typing import TYPE_CHECKING, Any

from ._configs import add_config_argument, config_path, load
from ._output import Output
from ._stats import ServerView, format_duration, format_latency, one_line

if TYPE_CHECKING:
    from ..events import Event
    from ..group import ServerGroup

__all__ = ["HEADERS", "Watch", "register", "run", "run_watch"]

# The live table is redrawn this often (the issue asks for at least twice a second).
REFRESH_PER_SECOND = 4

# How often the piped form looks for changes to print.
PIPED_POLL = 0.1

# Bound on stopping every server when watch ends (then whatever is left is killed by its manager).
STOP_TIMEOUT = 10.0

HEADERS = (
    "",
    "server",
    "state",
    "transport",
    "uptime",
    "restarts",
    "requests/min",
    "p50",
    "p95",
    "tools",
    "last error",
)


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "watch", help="start the servers of a config and show them live (r restarts the selected one, q quits)"
    )
    add_config_argument(parser)
    parser.add_argument("--duration", type=float, default=None, help="stop after this many seconds")


def run(options: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    import anyio

    return anyio.run(run_watch, config_path(options.config), options.duration, Output())


async def run_watch(path: str, duration: float | None, out: Output) -> int:
    from ..group import ServerGroup

    group = ServerGroup(load(path), errlog=None)
    return await Watch(group, out).run(duration)


class Watch:
    """The live view (or its piped form) of one group: starts it, shows it, stops it."""

    def __init__(
        self, group: ServerGroup, out: Output, *, keys: bool = True, clock: Callable[[], float] = time.monotonic
    ) -> None:
        """``keys=False``: no keys are read (the demo shows the view without taking the terminal)."""
        self.group = group
        self.keys = keys
        self.out = out
        self.clock = clock
        self.views = {name: ServerView(name) for name in group.names}
        self.selected = 0
        self.notes: list[str] = []  # what the keys did, shown under the table
        self._printed: dict[str, tuple[object, ...]] = {}
        self._quit: Any = None
        group.on_event(self._event)

    # -- the events -----------------------------------------------------------------------------------

    def _event(self, event: Event) -> None:
        from ..base import ConnectionState
        from ..events import RequestEnded, Restarted, StateChanged

        view = self.views.get(event.server)
        if view is None:
            return
        now = self.clock()
        if isinstance(event, StateChanged):
            if event.new is ConnectionState.CONNECTED:
                view.connected(now)
            elif event.old is ConnectionState.CONNECTED or event.new is ConnectionState.FAILED:
                view.disconnected(event.error)
        elif isinstance(event, Restarted):
            view.restarted(event.cause)
        elif isinstance(event, RequestEnded):
            failure = None
            if event.outcome != "ok":
                what = f"{event.method} {event.target}" if event.target else event.method
                failure = f"{what}: {event.outcome} ({event.error or event.error_type})"
            view.request_ended(now, event.duration, failure)

    # -- the rows -------------------------------------------------------------------------------------

    def rows(self) -> list[list[str]]:
        statuses = self.group.status()
        now = self.clock()
        rows = []
        for index, (name, status) in enumerate(statuses.items()):
            view = self.views[name]
            p50, p95 = view.requests.percentiles(now, 0.5, 0.95)
            error = view.last_error or (one_line(status.error) if status.error else "")
            rows.append(
                [
                    ">" if index == self.selected else " ",
                    name,
                    str(status.state),
                    status.transport,
                    format_duration(view.uptime(now)),
                    str(view.restarts),
                    str(view.requests.count(now)),
                    format_latency(p50),
                    format_latency(p95),
                    str(status.tools) if status.tools is not None else "-",
                    error,
                ]
            )
        return rows

    def status_line(self, row: list[str]) -> str:
        _, name, state, transport, uptime, restarts, requests, p50, p95, tools, error = row
        line = (
            f"{time.strftime('%H:%M:%S')} {name}: {state} transport={transport} uptime={uptime} restarts={restarts} "
            f"requests/min={requests} p50={p50} p95={p95} tools={tools}"
        )
        return f"{line} error={error}" if error else line

    def changed_lines(self) -> list[str]:
        """The status lines of the servers whose state, restarts, error or catalogue changed since last asked."""
        lines = []
        for row in self.rows():
            key = (row[2], row[5], row[9], row[10])
            if self._printed.get(row[1]) != key:
                self._printed[row[1]] = key
                lines.append(self.status_line(row))
        return lines

    def render(self) -> Any:
        from rich.console import Group
        from rich.table import Table
        from rich.text import Text

        table = Table(title="mcp-connections watch", title_justify="left", expand=False)
        for header in HEADERS:
            table.add_column(header, no_wrap=header != "last error", overflow="fold")
        for index, row in enumerate(self.rows()):
            style = "reverse" if index == self.selected else None
            state = row[2]
            color = {"connected": "green", "failed": "red", "connecting": "yellow"}.get(state, "")
            cells = [Text(cell, style=color) if i == 2 else Text(cell) for i, cell in enumerate(row)]
            table.add_row(*cells, style=style)
        hint = Text("\u2191/\u2193 or j/k select   r restart   q quit", style="dim")
        return Group(table, hint, *(Text(note) for note in self.notes[-3:]))

    # -- keys -----------------------------------------------------------------------------------------

    def key(self, key: str, restart: Callable[[str], None]) -> bool:
        """Act on one key; return False when it means quit."""
        names = self.group.names
        if key in ("q", "Q", "\x03", "\x04"):
            return False
        if key in ("j", "\x1b[B", "\x1bOB") and names:
            self.selected = (self.selected + 1) % len(names)
        elif key in ("k", "\x1b[A", "\x1bOA") and names:
            self.selected = (self.selected - 1) % len(names)
        elif key in ("r", "R") and names:
            restart(names[self.selected])
        return True

    async def restart(self, name: str) -> None:
        """Stop and start one server (``r``); a failure shows in its row."""
        from ..errors import MCPConnectionError

        session = self.group[name]
        self.notes.append(f"restarting {name}...")
        self.views[name].restarted(None)
        await session.stop()
        try:
            await session.start()
        except (MCPConnectionError, RuntimeError) as exc:
            self.views[name].disconnected(str(exc))
            self.notes.append(f"{name} did not start again: {one_line(str(exc))}")
        else:
            self.notes.append(f"restarted {name}")

    # -- running --------------------------------------------------------------------------------------

    async def run(self, duration: float | None = None) -> int:
        """Start the group, show it until ``q``, a signal or ``duration``, stop it; 0 unless it could not run."""
        import anyio

        from ..errors import GroupStartError

        async def start() -> None:
            with suppress(GroupStartError):  # the rows say which servers failed and why
                await self.group.start()

        try:
            async with anyio.create_task_group() as tg:
                self._quit = tg.cancel_scope
                tg.start_soon(self._signals)
                if not self.out.rich:
                    self.out.line(f"starting {len(self.group)} servers...")
                tg.start_soon(start)  # shown while they start: q quits at once
                await self.show(tg, duration)
                tg.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await self.group.stop(STOP_TIMEOUT)
        if not self.out.rich:
            self.out.line("stopped all servers")
        return 0

    async def show(self, tg: Any, duration: float | None) -> None:
        """The view until quit (``q``) or ``duration``; the caller's task group runs the helpers."""
        import anyio

        with anyio.move_on_after(duration if duration is not None else math.inf):
            if self.out.rich:
                await self._live(tg)
            else:
                await self._piped()

    async def _piped(self) -> None:
        import anyio

        while True:
            for line in self.changed_lines():
                self.out.line(line)
            await anyio.sleep(PIPED_POLL)

    async def _live(self, tg: Any) -> None:
        import anyio
        from rich.console import Console
        from rich.live import Live

        console = Console(file=self.out.stream)
        quit_event = anyio.Event()
        with _cbreak(sys.stdin if self.keys else None) as keys_fd:
            if keys_fd is not None:
                tg.start_soon(self._read_keys, keys_fd, quit_event, tg)
            with Live(self.render(), console=console, refresh_per_second=REFRESH_PER_SECOND, transient=False) as live:
                while not quit_event.is_set():
                    live.update(self.render())
                    with anyio.move_on_after(1 / REFRESH_PER_SECOND):
                        await quit_event.wait()
                live.update(self.render())

    async def _read_keys(self, fd: int, quit_event: Any, tg: Any) -> None:
        import anyio

        while True:
            await anyio.wait_readable(fd)
            try:
                data = os.read(fd, 64).decode(errors="replace")
            except OSError:
                return
            if not data:
                return  # end of input: keys are gone, the view goes on
            for key in _split_keys(data):
                if not self.key(key, lambda name: tg.start_soon(self.restart, name)):
                    quit_event.set()
                    return

    async def _signals(self) -> None:
        import signal

        import anyio

        wanted = [s for s in (getattr(signal, "SIGINT", None), getattr(signal, "SIGTERM", None)) if s is not None]
        try:
            with anyio.open_signal_receiver(*wanted) as signals:
                async for _ in signals:
                    if self._quit is not None:
                        self._quit.cancel()
                    return
        except NotImplementedError:  # Windows: Ctrl-C arrives as KeyboardInterrupt
            return


def _split_keys(data: str) -> list[str]:
    """Single keys out of what the terminal sent: escape sequences (arrows) stay whole."""
    keys: list[str] = []
    i = 0
    while i < len(data):
        if data[i] == "\x1b" and i + 2 < len(data) and data[i + 1] in "[O":
            keys.append(data[i : i + 3])
            i += 3
        else:
            keys.append(data[i])
            i += 1
    return keys


class _cbreak:
    """The terminal on ``stream`` in cbreak mode (keys one by one, no echo) while inside; its fd, or None."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self._fd: int | None = None
        self._saved: Any = None

    def __enter__(self) -> int | None:
        if sys.platform == "win32" or self._stream is None:
            return None  # no termios (or no keys wanted): the view runs without keys, Ctrl-C stops it
        try:
            if not self._stream.isatty():
                return None
            import termios
            import tty

            fd = self._stream.fileno()
            self._saved = termios.tcgetattr(fd)
            tty.setcbreak(fd)
            self._fd = fd
        except (ImportError, OSError, ValueError, AttributeError):
            return None
        return self._fd

    def __exit__(self, *exc_info: object) -> None:
        if sys.platform != "win32" and self._fd is not None and self._saved is not None:
            import termios

            with suppress(OSError):
                termios.tcsetattr(self._fd, termios.TCSADRAIN, self._saved)

"""What ``watch`` shows of each server, as pure logic: request latencies over a rolling window, and the rows.

Design: no I/O and no event loop here (h11's way), so the numbers are tested with made-up clocks. ``Rolling``
keeps (time, duration) pairs of the last ``window`` seconds and answers count and percentiles (nearest rank);
``ServerView`` folds the events of one server into what a row shows; ``format_*`` make the cells.
"""

from __future__ import annotations

import math
import re
from collections import deque
from dataclasses import dataclass, field

__all__ = [
    "WINDOW",
    "Rolling",
    "ServerView",
    "format_duration",
    "format_latency",
    "one_line",
    "percentile",
]

# The window of the requests and latency columns: the last minute.
WINDOW = 60.0

# A command line in parentheses, as errors of stdio servers quote it.
_COMMAND = re.compile(r" \((?:[^()]*[/\\][^()]*)\)")

# Longest error text a row shows; the rest is cut with an ellipsis.
ERROR_WIDTH = 60


def percentile(sorted_values: list[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) of already sorted values by nearest rank; None when there are none."""
    if not sorted_values:
        return None
    rank = max(1, math.ceil(q * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


class Rolling:
    """Durations of the requests of the last ``window`` seconds (by the caller's clock)."""

    def __init__(self, window: float = WINDOW) -> None:
        self.window = window
        self._items: deque[tuple[float, float]] = deque()

    def add(self, now: float, duration: float) -> None:
        self._items.append((now, duration))
        self._expire(now)

    def _expire(self, now: float) -> None:
        while self._items and self._items[0][0] <= now - self.window:
            self._items.popleft()

    def count(self, now: float) -> int:
        self._expire(now)
        return len(self._items)

    def percentiles(self, now: float, *qs: float) -> list[float | None]:
        self._expire(now)
        values = sorted(d for _, d in self._items)
        return [percentile(values, q) for q in qs]


@dataclass
class ServerView:
    """One server as ``watch`` knows it from its events: when it connected, restarts, last error, latencies."""

    name: str
    connected_since: float | None = None
    restarts: int = 0
    last_error: str | None = None
    requests: Rolling = field(default_factory=Rolling)

    def connected(self, now: float) -> None:
        self.connected_since = now

    def disconnected(self, error: str | None) -> None:
        self.connected_since = None
        if error:
            self.last_error = self.short(error)

    def restarted(self, cause: str | None) -> None:
        self.restarts += 1
        if cause:
            self.last_error = self.short(cause)

    def request_ended(self, now: float, duration: float, failure: str | None) -> None:
        self.requests.add(now, duration)
        if failure:
            self.last_error = self.short(failure)

    def short(self, error: str) -> str:
        """An error as a row shows it: one line, without the server's name and command (the row has them)."""
        text = error.strip()
        if text.startswith(f"{self.name}: "):
            text = text[len(self.name) + 2 :]
        text = _COMMAND.sub("", text, count=1)
        return one_line(text)

    def uptime(self, now: float) -> float | None:
        return None if self.connected_since is None else max(0.0, now - self.connected_since)


def one_line(text: str, width: int = ERROR_WIDTH) -> str:
    """The first line of ``text``, cut to ``width`` characters."""
    line = (text.strip().splitlines() or [""])[0]
    return line if len(line) <= width else line[: width - 1] + "\u2026"


def format_duration(seconds: float | None) -> str:
    """An uptime: ``-``, ``42s``, ``3m05s``, ``2h03m``."""
    if seconds is None:
        return "-"
    whole = int(seconds)
    if whole < 60:
        return f"{whole}s"
    if whole < 3600:
        return f"{whole // 60}m{whole % 60:02d}s"
    return f"{whole // 3600}h{whole % 3600 // 60:02d}m"


def format_latency(seconds: float | None) -> str:
    """A latency in milliseconds, ``-`` when there is none."""
    if seconds is None:
        return "-"
    ms = seconds * 1000
    return f"{ms:.1f}ms" if ms < 100 else f"{ms:.0f}ms"

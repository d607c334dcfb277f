"""What the servers are doing, as structured events: ``group.on_event(callback)`` and ``session.on_event(callback)``.

Design: every event is a frozen dataclass with the server's config name, the time it happened
(``time.time()``) and a ``kind`` string (``"state"``, ``"restart"``, ``"catalogue"``, ``"request"``), so a
callback can switch on the class or on ``kind``, and ``to_dict()`` gives what a dashboard or a log line
wants. Four kinds:

* ``StateChanged``: a session moved from one ``ConnectionState`` to another (with the error, when there is one);
* ``Restarted``: a session lost its connection and, as its restart policy allows, is opening a new one
  (``attempt`` counts from 1; ``cause`` says what ended the last connection);
* ``CatalogueChanged``: a group's catalogue of tools, prompts or resources changed (``server`` caused it);
* ``RequestEnded``: one request to a server ended: its method, tool (or prompt) name, duration and outcome.

The OpenTelemetry metrics (``mcp_connections.otel``) are recorded from these same events.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from ._lifecycle import ConnectionState

__all__ = [
    "OUTCOMES",
    "CatalogueChanged",
    "Event",
    "EventCallback",
    "Outcome",
    "RequestEnded",
    "Restarted",
    "StateChanged",
]

# How a request ended: a result (``ok``), a tool's own failure (``error``: an ``isError`` result), no answer in
# time (``timeout``), the connection lost under it (``lost``), or anything else (``failed``: a JSON-RPC error
# answer, a server that is not running, a cancelled caller).
Outcome = Literal["ok", "error", "timeout", "lost", "failed"]
OUTCOMES: tuple[Outcome, ...] = ("ok", "error", "timeout", "lost", "failed")


@dataclass(frozen=True)
class Event:
    """What every event has: the server's config name and when it happened (seconds since the epoch)."""

    kind: ClassVar[str] = "event"

    server: str
    time: float = field(default_factory=time.time, kw_only=True)

    def to_dict(self) -> dict[str, Any]:
        """The event as plain JSON-ready data, with its ``kind``."""
        data: dict[str, Any] = {"kind": self.kind}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if isinstance(value, BaseException):
                continue  # the text is in another field
            data[f.name] = str(value) if isinstance(value, ConnectionState) else value
        return data


@dataclass(frozen=True)
class StateChanged(Event):
    """A session's state changed from ``old`` to ``new``; ``error`` says why when it failed or is reconnecting."""

    kind: ClassVar[str] = "state"

    old: ConnectionState
    new: ConnectionState
    error: str | None = None


@dataclass(frozen=True)
class Restarted(Event):
    """A session is restarting its server: attempt ``attempt`` (from 1), after ``delay`` seconds of backoff,
    because ``cause`` (the error that ended the last connection, also as ``error``) happened."""

    kind: ClassVar[str] = "restart"

    attempt: int
    cause: str
    cause_type: str
    delay: float = 0.0
    error: BaseException | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class CatalogueChanged(Event):
    """A group's catalogue of ``catalogue`` (``"tools"``, ``"prompts"`` or ``"resources"``) changed, after a
    listing of ``server`` (or it leaving the catalogue); ``count`` is the size of that catalogue now."""

    kind: ClassVar[str] = "catalogue"

    catalogue: Literal["tools", "prompts", "resources"]
    count: int


@dataclass(frozen=True)
class RequestEnded(Event):
    """One request to ``server`` ended after ``duration`` seconds.

    ``method`` is the MCP method (``tools/call``, ``tools/list``, ``prompts/get``, ...); ``tool`` the tool's
    name for ``tools/call`` (the server's own name for it), ``target`` the tool or prompt name or the resource
    URI; ``outcome`` one of ``OUTCOMES``; ``error_type`` the exception's class name (``"tool_error"`` for an
    ``isError`` result), ``error`` its one-line text, ``error_code`` the JSON-RPC code of an error answer.
    """

    kind: ClassVar[str] = "request"

    method: str
    duration: float
    outcome: Outcome
    tool: str | None = None
    target: str | None = None
    error_type: str | None = None
    error: str | None = None
    error_code: int | None = None


EventCallback = Callable[[Event], object]

"""Where the adapters get tools from and send calls to: a ``ServerGroup``'s catalogue, or one ``ManagedSession``.

Every adapter talks to a *tool source*: ``await source.tools()`` gives entries with ``name`` (what the model
sees, valid for the model APIs), ``server`` and ``tool`` (the ``mcp_types.Tool`` as the server sent it), and
``await source.call(name, arguments)`` runs one. A ``ServerGroup`` is a tool source as it is (its catalogue);
a ``ManagedSession`` is adapted here: its tools keep their own names (made valid and unique where needed), and
they are listed again on every ``tools()``, so a tool added by ``list_changed`` shows up on the next turn.

A call that cannot be made (the server is down past its restarts, the name is unknown, the arguments are
not JSON) is turned into an ``isError`` result by ``call_safely``: each framework then tells the model, as
it tells it of any failed tool, instead of crashing the agent loop.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, cast, runtime_checkable

import anyio
import mcp_types as types

from ..errors import MCPConnectionError
from ..session import ManagedSession
from ._content import ArgumentsError, failure_result, parse_arguments, unique_names

__all__ = [
    "Lifecycle",
    "SessionSource",
    "ToolEntry",
    "ToolSource",
    "as_source",
    "call_all",
    "call_safely",
    "entries_of",
]

logger = logging.getLogger(__name__)


class ToolEntry(Protocol):
    """One tool as the adapters see it (``GroupTool`` of the catalogue has exactly these fields)."""

    @property
    def name(self) -> str: ...
    @property
    def server(self) -> str: ...
    @property
    def tool(self) -> types.Tool: ...


@runtime_checkable
class ToolSource(Protocol):
    """A catalogue of tools and a way to call them by catalogue name (``ServerGroup`` is one)."""

    async def tools(self) -> Sequence[ToolEntry]: ...

    async def call(self, name: str, arguments: dict[str, Any] | None = None) -> types.CallToolResult: ...


@dataclass(frozen=True)
class SessionTool:
    """A tool of a single session, shaped like the catalogue's ``GroupTool``."""

    name: str
    server: str
    tool: types.Tool


class SessionSource:
    """A ``ManagedSession`` as a tool source: listed afresh on each ``tools()``; names valid for the model APIs."""

    def __init__(self, session: ManagedSession) -> None:
        self.session = session
        self._names: dict[str, str] = {}  # model-facing name -> the server's own name

    @property
    def name(self) -> str:
        return self.session.name

    async def tools(self) -> list[SessionTool]:
        listed = await self.session.list_tools()
        names = unique_names(t.name for t in listed)
        entries = [SessionTool(n, self.session.name, t) for n, t in zip(names, listed, strict=True)]
        self._names = {e.name: e.tool.name for e in entries}
        return entries

    async def call(
        self, name: str, arguments: dict[str, Any] | None = None, *, meta: dict[str, Any] | None = None
    ) -> types.CallToolResult:
        if name not in self._names:
            await self.tools()
        if name not in self._names:
            known = ", ".join(sorted(self._names)) or "none"
            raise LookupError(f"{self.session.name}: no tool {name!r} on this server (tools: {known})")
        # _meta is a free-form object on the wire; the SDK types it as a TypedDict of the keys it knows.
        return await self.session.call_tool(self._names[name], arguments, meta=cast("types.RequestParamsMeta", meta))


def as_source(target: Any) -> Any:
    """The tool source for a ``ServerGroup`` (its catalogue), a ``ManagedSession``, or a ready source."""
    if isinstance(target, ManagedSession):
        return SessionSource(target)
    if callable(getattr(target, "tools", None)) and callable(getattr(target, "call", None)):
        return target
    raise TypeError(
        f"expected a ServerGroup (with its tool catalogue) or a ManagedSession, not {type(target).__name__}"
    )


def entries_of(tools: Iterable[Any]) -> list[tuple[str, types.Tool]]:
    """``(model-facing name, Tool)`` for catalogue entries (``GroupTool``) or bare ``mcp_types.Tool``s."""
    items = list(tools)
    bare = [t for t in items if isinstance(t, types.Tool)]
    names = iter(unique_names(t.name for t in bare))
    out: list[tuple[str, types.Tool]] = []
    for item in items:
        if isinstance(item, types.Tool):
            out.append((next(names), item))
        else:
            out.append((item.name, item.tool))
    return out


async def call_safely(
    source: Any, name: str, arguments: str | Mapping[str, Any] | None, *, meta: dict[str, Any] | None = None
) -> types.CallToolResult:
    """Call a tool; a failure that is no tool result (server down, unknown name, bad JSON) becomes ``isError``."""
    try:
        args = parse_arguments(arguments)
        if meta is not None:
            return await source.call(name, args, meta=meta)  # type: ignore[no-any-return]
        return await source.call(name, args)  # type: ignore[no-any-return]
    except (MCPConnectionError, LookupError, ArgumentsError) as exc:
        logger.info("tool call %r failed: %s", name, exc)
        return failure_result(exc)


async def call_all(
    source: Any, calls: Sequence[tuple[str, str | Mapping[str, Any] | None]]
) -> list[types.CallToolResult]:
    """Run ``(name, arguments)`` calls concurrently; results in the order of the calls."""
    results: list[types.CallToolResult | None] = [None] * len(calls)

    async def run(index: int, name: str, arguments: str | Mapping[str, Any] | None) -> None:
        results[index] = await call_safely(source, name, arguments)

    async with anyio.create_task_group() as tg:
        for index, (name, arguments) in enumerate(calls):
            tg.start_soon(run, index, name, arguments)
    return [r for r in results if r is not None]


class Lifecycle:
    """Start a group or session that is not running when a framework enters an adapter; stop only what it started.

    Frameworks enter their toolsets and servers (``async with agent``, ``connect()``/``cleanup()``), possibly
    several times at once. The user usually starts the group themselves and shares it; then entering and
    leaving do nothing. When it is not running, the first entry starts it and the last exit stops it.
    """

    def __init__(self, target: Any) -> None:
        self.target = target
        self._entered = 0
        self._started = False

    def running(self) -> bool:
        from ..base import RUNNING_STATES

        target = self.target
        if isinstance(target, SessionSource):
            target = target.session
        if isinstance(target, ManagedSession):
            return target.state in RUNNING_STATES
        status = getattr(target, "status", None)
        if callable(status):
            return any(s.state in RUNNING_STATES for s in status().values())
        return True  # a source of another kind: its owner runs it

    async def enter(self) -> None:
        self._entered += 1
        if self._entered == 1 and not self.running():
            target = self.target.session if isinstance(self.target, SessionSource) else self.target
            try:
                await target.start()
            except BaseException:
                self._entered -= 1
                raise
            self._started = True

    async def exit(self) -> None:
        if self._entered == 0:
            return
        self._entered -= 1
        if self._entered == 0 and self._started:
            self._started = False
            target = self.target.session if isinstance(self.target, SessionSource) else self.target
            with anyio.CancelScope(shield=True):
                await target.stop()

"""The group's catalogue kept current: when each server is listed, and who is told of a change.

Design: the catalogue lists a server's tools, prompts and resources once each time its session becomes
``CONNECTED``, and again when the server announces a change (``on_list_changed`` of the session). Each
(server, kind) has one coalesced job: at most one listing in flight and one pending, so a burst of
100 ``list_changed`` notifications costs two or three listings, not 100. After every listing the whole
catalogue is rebuilt by the pure ``CatalogueIndex`` (names, filters, routes) and compared with the last
one; only a real difference calls the ``on_*_changed`` callbacks (coalesced the same way).

A server that is reconnecting under its restart policy keeps its last lists, so a quick restart does not
make the catalogue flap; one that is ``FAILED``, ``STOPPED`` or never connected has no entries. A call to a
tool of a server that has just gone down raises that server's error, not ``ToolNotFoundError``.

Servers started on demand (``_lazy``) are the exception, told by the group through ``Demands``: a lazy
server that is not running (never started, stopped for idleness, or failed on its last start) keeps its lists,
from its last connection or from the disk cache (``seed``), so that the next use can try again; a call routed to
it goes to its session, which starts it. A listing that needs the lists of a lazy server that has none starts
it first. Each finished listing is handed to ``Demands.listed`` (the group writes the disk cache from it).

Listings run in a task group owned by the catalogue's own task, started with the group (or by the first
request) and closed by ``aclose()``; ``tools()`` and friends wait (bounded) for listings in flight, so they
answer with the lists of the current connections.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

import anyio
import anyio.abc
import mcp_types as types
from mcp.shared.dispatcher import ProgressFnT
from mcp.shared.exceptions import MCPError

from ._events import EventHub
from ._lazy import list_with_hint
from ._naming import (
    SEPARATOR,
    CatalogueIndex,
    CatalogueSnapshot,
    GroupPrompt,
    GroupResource,
    GroupTool,
    ServerListing,
    sanitize,
)
from ._owner_task import spawn_owner
from .base import RUNNING_STATES, ConnectionState
from .errors import ConnectError, ConnectionLostError, MCPConnectionError, ToolNotFoundError
from .session import ManagedSession

__all__ = ["Catalogue", "ChangeCallback", "Demands", "Kind"]

logger = logging.getLogger(__name__)

Kind = Literal["tools", "prompts", "resources"]
KINDS: tuple[Kind, ...] = ("tools", "prompts", "resources")
ChangeCallback = Callable[[Any], object]

# Bound on one listing of a session that has no request_timeout of its own.
LIST_TIMEOUT = 30.0

# Pause before a listing asked for by list_changed, so that a burst of notifications folds into one listing.
COALESCE_DELAY = 0.05

# Longest that tools() (and friends) wait for listings in flight; a slower server's tools join when they come
# (on_tools_changed tells), so one hung server cannot stall the whole catalogue.
SETTLE_TIMEOUT = 10.0

# A listing that failed is tried again by a tools() call only after this pause (not on every call).
RETRY_AFTER = 5.0

# Time the last on_*_changed callbacks get to run when the catalogue closes.
DRAIN_TIMEOUT = 2.0

_NOT_RUNNING = (ConnectionState.IDLE, ConnectionState.STOPPING, ConnectionState.STOPPED, ConnectionState.FAILED)

# "No timeout given": the session's own request_timeout applies (None would mean no limit).
UNSET: Any = object()


class Demands(Protocol):
    """What the group tells the catalogue about servers started on demand (see the module docstring)."""

    def active(self) -> bool:
        """Whether the group is started: only then do servers start on demand."""
        ...

    def keeps(self, name: str) -> bool:
        """Whether server ``name`` keeps its lists while it is not running."""
        ...

    def wants_start(self, name: str, kind: Kind, has_list: bool) -> bool:
        """Whether a listing of ``kind`` should start server ``name`` first."""
        ...

    async def start(self, name: str) -> None:
        """Start server ``name`` for a listing; never raises (a failure is in its status)."""
        ...

    def listed(self, name: str, kind: Kind, items: list[Any], ttl_ms: int | None) -> None:
        """Server ``name`` has just been listed live."""
        ...


class _AllEager:
    """No server starts on demand: the catalogue as it was before lazy servers."""

    def active(self) -> bool:
        return False

    def keeps(self, name: str) -> bool:
        return False

    def wants_start(self, name: str, kind: Kind, has_list: bool) -> bool:
        return False

    async def start(self, name: str) -> None:
        return None

    def listed(self, name: str, kind: Kind, items: list[Any], ttl_ms: int | None) -> None:
        return None


class _Job:
    """One coalesced job: at most one run in flight and one pending; ``wait()`` returns when none is left."""

    def __init__(self, run: Callable[[], Awaitable[None]]) -> None:
        self._run = run
        self.running = False
        self.pending = False
        self._idle: anyio.Event | None = None

    def request(self, tg: anyio.abc.TaskGroup | None, delay: float = 0.0) -> None:
        if self.running:
            self.pending = True
        elif tg is not None:
            self.running = True
            self._idle = anyio.Event()
            tg.start_soon(self._loop, delay)

    async def _loop(self, delay: float) -> None:
        try:
            while True:
                self.pending = False
                if delay:
                    await anyio.sleep(delay)
                try:
                    await self._run()
                except Exception:  # a bug of ours must not end the catalogue's task group
                    logger.exception("catalogue job %r failed", self._run)
                if not self.pending:
                    return
        finally:
            self.running = False
            if self._idle is not None:
                self._idle.set()

    async def wait(self) -> None:
        if self.running and self._idle is not None:
            await self._idle.wait()


@dataclass(eq=False)
class _ServerLists:
    """What the catalogue knows of one server."""

    name: str
    items: dict[Kind, list[Any] | None] = field(default_factory=lambda: dict.fromkeys(KINDS))
    fresh: dict[Kind, bool] = field(default_factory=lambda: dict.fromkeys(KINDS, False))
    epoch: int = 0  # bumped when the server leaves the catalogue: a listing in flight then is stale
    connected: bool = False  # connected at least once since its session was last started
    failed_at: dict[Kind, float | None] = field(default_factory=lambda: dict.fromkeys(KINDS))
    jobs: dict[Kind, _Job] = field(default_factory=dict)


class Catalogue:
    """One catalogue of tools, prompts and resources over the sessions of a group.

    ``owner`` is what change callbacks receive (the group); ``session(name)`` gives a server's current session.
    """

    def __init__(
        self,
        owner: object,
        names: Sequence[str],
        session: Callable[[str], ManagedSession],
        index: CatalogueIndex,
        demands: Demands | None = None,
    ) -> None:
        self._owner = owner
        self._demands: Demands = demands or _AllEager()
        self._session = session
        self.index = index
        self._servers = {name: _ServerLists(name) for name in names}
        for server in self._servers.values():
            for kind in KINDS:
                server.jobs[kind] = _Job(self._lister(server, kind))
        self.snapshot = CatalogueSnapshot()
        self._callbacks: dict[Kind, list[ChangeCallback]] = {kind: [] for kind in KINDS}
        self._changed_by: dict[Kind, set[str]] = {kind: set() for kind in KINDS}
        self._notifiers = {kind: _Job(self._notifier(kind)) for kind in KINDS}
        self._departed: dict[str, str] = {}  # tool name -> server, for tools of servers that went down
        self._tg: anyio.abc.TaskGroup | None = None
        self._closing: anyio.Event | None = None
        self._closed: anyio.Event | None = None
        self._task: object = None
        self.events: EventHub | None = None  # the group's: catalogue changes are events too

    # -- wiring ----------------------------------------------------------------------------------------

    def attach(self, name: str, session: ManagedSession) -> None:
        """Follow ``session``'s state and list changes as server ``name``."""
        session.on_state_change(lambda old, new: self._state_changed(name, old, new))
        session.on_list_changed(lambda kind: self._list_changed(name, kind))

    def on_changed(self, kind: Kind, callback: ChangeCallback) -> None:
        self._callbacks[kind].append(callback)

    def lists(self, name: str) -> dict[Kind, list[Any] | None]:
        """Server ``name``'s lists as the catalogue holds them (None: not listed)."""
        return dict(self._servers[name].items)

    def seed(self, name: str, lists: dict[Kind, list[Any]]) -> None:
        """Start server ``name`` off with these lists (from the disk cache), telling no callback: they are the
        catalogue's starting point, not a change; the server's live lists replace them when it connects."""
        server = self._servers[name]
        for kind, items in lists.items():
            server.items[kind] = list(items)
        self._rebuild(name, ())  # no kinds: nobody is told

    def drop_all(self) -> None:
        """Every server leaves the catalogue (the group stopped; lazy servers that never ran included)."""
        for server in self._servers.values():
            self._drop(server)

    def spawn(self, fn: Callable[[], Coroutine[Any, Any, None]]) -> bool:
        """Run ``fn()`` in the catalogue's task group (ended with it); False when its task is not running."""
        if self._tg is None:
            return False
        self._tg.start_soon(fn)
        return True

    def tool_count(self, name: str) -> int | None:
        """How many tools server ``name`` listed last (before filters), None when not listed."""
        tools = self._servers[name].items["tools"]
        return None if tools is None else len(tools)

    # -- the catalogue's task --------------------------------------------------------------------------

    async def start(self) -> None:
        """Start the task that runs listings (at once when it runs already)."""
        if self._closed is not None and not self._closed.is_set():
            return
        started, self._closing, self._closed = anyio.Event(), anyio.Event(), anyio.Event()
        closing, closed = self._closing, self._closed

        def never_ran() -> None:  # cancelled before its first step: nothing may wait for it
            started.set()
            closed.set()

        self._task = spawn_owner(
            lambda: self._serve(started, closing, closed), name="mcp-connections catalogue", on_never_ran=never_ran
        )
        await started.wait()

    async def _serve(self, started: anyio.Event, closing: anyio.Event, closed: anyio.Event) -> None:
        try:
            async with anyio.create_task_group() as tg:
                self._tg = tg
                started.set()
                for name, server in self._servers.items():  # servers connected before the catalogue ran
                    if self._session(name).state is ConnectionState.CONNECTED:
                        for kind in KINDS:
                            if not server.fresh[kind]:
                                server.jobs[kind].request(tg)
                await closing.wait()
                tg.cancel_scope.cancel()
        finally:
            self._tg = None
            started.set()
            closed.set()

    async def aclose(self) -> None:
        """Let the last change callbacks run (bounded), then end the catalogue's task; never raises."""
        closing, closed = self._closing, self._closed
        if closing is None or closed is None:
            return
        with anyio.CancelScope(shield=True):
            with anyio.move_on_after(DRAIN_TIMEOUT):
                for notifier in self._notifiers.values():
                    await notifier.wait()
            closing.set()
            await closed.wait()
        self._task = None

    # -- following the sessions --------------------------------------------------------------------------

    def _state_changed(self, name: str, old: ConnectionState, new: ConnectionState) -> None:
        server = self._servers[name]
        if new is ConnectionState.CONNECTING and old not in (ConnectionState.CONNECTED, ConnectionState.CONNECTING):
            server.connected = False  # a new start() of the session
        if new is ConnectionState.CONNECTED:
            server.connected = True
            server.fresh = dict.fromkeys(KINDS, False)
            server.failed_at = dict.fromkeys(KINDS)
            for kind in KINDS:
                server.jobs[kind].request(self._tg)
        elif new in (ConnectionState.FAILED, ConnectionState.STOPPED, ConnectionState.IDLE):
            self._drop(server)
        # CONNECTING after CONNECTED is a reconnect under the restart policy: keep the last lists (no flap).

    def _list_changed(self, name: str, kind: str) -> None:
        if kind in KINDS:
            server = self._servers[name]
            server.fresh[kind] = False
            server.jobs[kind].request(self._tg, COALESCE_DELAY)

    def _drop(self, server: _ServerLists) -> None:
        server.epoch += 1
        server.fresh = dict.fromkeys(KINDS, False)
        if self._demands.keeps(server.name):
            return  # started on its next use: its lists stay (see the module docstring)
        if all(items is None for items in server.items.values()):
            return
        for entry in self.snapshot.tools:
            if entry.server == server.name:
                self._departed[entry.name] = server.name
        server.items = dict.fromkeys(KINDS)
        self._rebuild(server.name, KINDS)

    def _lister(self, server: _ServerLists, kind: Kind) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            epoch = server.epoch
            session = self._session(server.name)
            if session.state is not ConnectionState.CONNECTED:
                return  # reconnecting: the next CONNECTED lists again; down: nothing to list
            try:
                items, ttl_ms = await _fetch(session, kind)
            except (MCPConnectionError, MCPError, RuntimeError, anyio.BrokenResourceError, anyio.ClosedResourceError):
                server.failed_at[kind] = anyio.current_time()
                logger.warning("%s: listing %s failed; keeping the last list", server.name, kind, exc_info=True)
                return
            server.failed_at[kind] = None
            if server.epoch != epoch:
                return  # the server left the catalogue while we listed
            server.items[kind] = items
            server.fresh[kind] = True
            if kind == "tools":
                self._departed = {n: s for n, s in self._departed.items() if s != server.name}
            self._rebuild(server.name, (kind,))
            self._demands.listed(server.name, kind, items, ttl_ms)

        return run

    def _rebuild(self, cause: str, kinds: Sequence[Kind]) -> None:
        old = self.snapshot
        new = self.index.build(
            [
                ServerListing(s.name, s.items["tools"], s.items["prompts"], s.items["resources"])
                for s in self._servers.values()
            ]
        )
        self.snapshot = new
        for shared in sorted(new.shared - old.shared):
            servers = sorted({t.server for t in new.tools if sanitize(t.tool.name) == shared})
            logger.warning(
                "tool %r is offered by %s; its catalogue names carry the server prefix (%s)",
                shared,
                ", ".join(repr(s) for s in servers),
                ", ".join(t.name for t in new.tools if sanitize(t.tool.name) == shared),
            )
        for kind in kinds:
            if getattr(old, kind) != getattr(new, kind):
                if self.events is not None:
                    self.events.catalogue_changed(cause, kind, len(getattr(new, kind)))
                self._changed_by[kind].add(cause)
                self._notifiers[kind].request(self._tg)

    def _notifier(self, kind: Kind) -> Callable[[], Awaitable[None]]:
        async def run() -> None:
            causes = ", ".join(repr(s) for s in sorted(self._changed_by[kind]))
            self._changed_by[kind].clear()
            for callback in list(self._callbacks[kind]):
                try:
                    result = callback(self._owner)
                    if inspect.isawaitable(result):
                        await result
                except Exception:
                    logger.exception("on_%s_changed callback %r raised (after a change of %s)", kind, callback, causes)

        return run

    # -- reading the catalogue ---------------------------------------------------------------------------

    async def settle(self, kind: Kind, *, only: Sequence[str] | None = None) -> CatalogueSnapshot:
        """The catalogue once the listings of ``kind`` in flight are done (within ``SETTLE_TIMEOUT``), lazy
        servers with no list of ``kind`` started first (each within its ``init_timeout``; ``only``: of these, just
        the ones named)."""
        demands = self._demands
        if not demands.active() and not any(self._session(name).state in RUNNING_STATES for name in self._servers):
            return self.snapshot  # nothing runs: nothing to list, and no task to start that nobody would stop
        await self.start()
        wanted = [
            name
            for name, server in self._servers.items()
            if (only is None or name in only) and demands.wants_start(name, kind, server.items[kind] is not None)
        ]
        if wanted:
            async with anyio.create_task_group() as tg:
                for name in wanted:
                    tg.start_soon(demands.start, name)
        now = anyio.current_time()
        for name, server in self._servers.items():
            failed_at = server.failed_at[kind]
            if (
                not server.fresh[kind]
                and (failed_at is None or now - failed_at >= RETRY_AFTER)
                and self._session(name).state is ConnectionState.CONNECTED
            ):
                server.jobs[kind].request(self._tg)
        with anyio.move_on_after(SETTLE_TIMEOUT):
            for server in self._servers.values():
                await server.jobs[kind].wait()
        return self.snapshot

    async def tools(self) -> list[GroupTool]:
        return list((await self.settle("tools")).tools)

    async def prompts(self) -> list[GroupPrompt]:
        return list((await self.settle("prompts")).prompts)

    async def resources(self) -> list[GroupResource]:
        return list((await self.settle("resources")).resources)

    # -- routing -----------------------------------------------------------------------------------------

    async def call(
        self,
        name: str,
        arguments: dict[str, Any] | None,
        *,
        timeout: float | None,
        progress_callback: ProgressFnT | None,
        meta: types.RequestParamsMeta | None,
    ) -> types.CallToolResult:
        entry = self.snapshot.tool(name) or (await self.settle("tools", only=self._prefixed_by(name))).tool(name)
        if entry is None:
            server = self._departed.get(name) or self._down_server(name)
            if server is not None:
                raise self._down_error(server, f"tool {name!r}")
            raise ToolNotFoundError(name, self.snapshot.close_tool_names(name), available=len(self.snapshot.tools))
        options: dict[str, Any] = {} if timeout is UNSET else {"timeout": timeout}
        if progress_callback is not None:
            options["progress_callback"] = progress_callback
        if meta is not None:
            options["meta"] = meta
        session = self._session(entry.server)
        if session.state in _NOT_RUNNING and not self._demands.keeps(entry.server):
            # Stopped a moment ago: say so as for any server that is down (one on demand starts in call_tool).
            raise self._down_error(entry.server, f"tool {name!r}")
        return await session.call_tool(entry.tool.name, arguments, **options)

    async def get_prompt(
        self, name: str, arguments: dict[str, str] | None, *, timeout: float | None
    ) -> types.GetPromptResult:
        entry = self.snapshot.prompt(name) or (await self.settle("prompts")).prompt(name)
        if entry is None:
            server = self._down_server(name)
            if server is not None:
                raise self._down_error(server, f"prompt {name!r}")
            raise ToolNotFoundError(
                name, self.snapshot.close_prompt_names(name), kind="prompt", available=len(self.snapshot.prompts)
            )
        options: dict[str, Any] = {} if timeout is UNSET else {"timeout": timeout}
        return await self._session(entry.server).get_prompt(entry.prompt.name, arguments, **options)

    async def read_resource(self, uri: str, server: str | None, *, timeout: float | None) -> types.ReadResourceResult:
        if server is None:
            server = self.snapshot.resource_server(uri) or (await self.settle("resources")).resource_server(uri)
        if server is None:
            raise ToolNotFoundError(
                uri,
                self.snapshot.close_resource_uris(uri),
                kind="resource",
                available=len(self.snapshot.resources),
            )
        options: dict[str, Any] = {} if timeout is UNSET else {"timeout": timeout}
        return await self._session(server).read_resource(uri, **options)

    def _prefixed_by(self, name: str) -> list[str] | None:
        """The lazy servers with no tools listed whose prefix ``name`` carries, when there are any: a call by that
        name starts only them; None: any server may have it (an ``auto`` name, say)."""
        owners = [
            server
            for server, lists in self._servers.items()
            if lists.items["tools"] is None
            and name.startswith(sanitize(server) + SEPARATOR)
            and self._demands.wants_start(server, "tools", False)
        ]
        return owners or None

    def _down_server(self, name: str) -> str | None:
        """The server that is not running and whose prefix ``name`` carries, if any."""
        for server in self._servers:
            if (
                name.startswith(sanitize(server) + SEPARATOR)
                and self._session(server).state in _NOT_RUNNING
                and not (self._demands.keeps(server) and self._servers[server].items["tools"] is not None)
            ):
                return server
        return None

    def _down_error(self, server: str, what: str) -> MCPConnectionError:
        session = self._session(server)
        cause = session.error
        error: MCPConnectionError
        if session.state is ConnectionState.FAILED and not self._servers[server].connected:
            error = ConnectError(f"cannot call {what}: the server did not connect ({cause})", server=server)
        elif session.state is ConnectionState.FAILED:
            error = ConnectionLostError(
                f"cannot call {what}: the server is down ({cause}); start it again", server=server
            )
        else:
            error = ConnectionLostError(
                f"cannot call {what}: the server is not running ({session.state}); start the group again",
                server=server,
            )
        error.__cause__ = cause
        return error


async def _fetch(session: ManagedSession, kind: Kind) -> tuple[list[Any], int | None]:
    """One server's list of ``kind`` and its ``ttlMs`` hint: empty when the server does not offer that kind."""
    capabilities = getattr(session, "capabilities", None)
    if capabilities is None and session.initialize_result is not None:
        capabilities = session.initialize_result.capabilities
    if capabilities is not None and getattr(capabilities, kind, None) is None:
        return [], None
    timeout = session.request_timeout if session.request_timeout is not None else LIST_TIMEOUT
    try:
        return await list_with_hint(session, kind, timeout)
    except MCPError as exc:
        if exc.code == types.METHOD_NOT_FOUND:
            return [], None
        raise

"""Many servers from one ``mcpServers`` config, started and stopped concurrently, each isolated.

Design: a ``ServerGroup`` is a set of ``ManagedSession``s, one per enabled server of the config, built by
``from_config()``. ``start()`` starts them all at once in one task group, so the group is ready in
about the time of its slowest server, not the sum; a server that fails is recorded in its status and
the rest run on, unless it was marked ``required``, in which case the whole group is stopped and
``GroupStartError`` lists every failure. Each session keeps its own restart policy, so a crash in one
server touches no other.

Managers come from the transport registry (``mcp_connections.transports``), by each entry's transport.
A server given by URL without a transport gets the registry's URL fallback, which tries streamable HTTP
first and SSE when the server answers that first request with 400, 404 or 405 (it only speaks the older
SSE transport); the status says which transport was used.

Every member is one ``_Member`` record (config, session, transport, start-up figures). On top of the
sessions sits one catalogue (``_catalogue.py``, with its pure naming and routing in ``_naming.py``):
``tools()``, ``prompts()`` and ``resources()`` across every server, under names a model accepts, kept
current as servers restart and announce list changes, and ``call()``, ``get_prompt()`` and
``read_resource()`` that route a catalogue name back to its server. Names are ``server__tool`` by
default (``tool_names="prefixed"``), so that adding a server never renames the tools a model knows.

Start nothing you do not need (``_lazy.py``, ``_cache.py``): a server marked ``"start": "lazy"`` (or every
server, with ``lazy=True``) is not started by ``start()`` but by its first use, and one with ``idle_timeout`` is
stopped after that long without a request and started again by the next. The catalogue keeps such a server's
lists while it is down, and a disk cache of every server's lists (``cache=True``, the default) lets ``tools()``
answer at once, at the next run, for servers that have not started.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, Protocol, runtime_checkable

import anyio
import mcp_types as types
from mcp.shared.dispatcher import ProgressFnT

from ._cache import CachedList, CatalogueCache
from ._catalogue import UNSET as _UNSET
from ._catalogue import Catalogue, ChangeCallback, Kind
from ._events import EventHub
from ._host_callbacks import bind_host_callbacks, pop_host_callbacks
from ._lazy import Demand, OnDemandSession
from ._naming import CatalogueIndex, GroupPrompt, GroupResource, GroupTool, NamingMode, ToolFilter
from ._textsink import PrefixedTextSink, TextSink
from .base import RUNNING_STATES, ConnectionManager, ConnectionState
from .config import ServerConfig, load_config, parse_config
from .errors import ConfigError, GroupStartError, MCPConnectionError
from .events import EventCallback
from .session import ManagedSession
from .stdio import StdioConnectionManager
from .transports import TransportOptions, registry

__all__ = ["GroupPrompt", "GroupResource", "GroupTool", "ServerGroup", "ServerStatus"]

logger = logging.getLogger(__name__)

# What a URL entry without a transport says before its first connect has found it out.
_UNDECIDED_URL_TRANSPORT = "streamable-http"

# Options of ManagedSession that a config entry may set, and the group's defaults may too.
_SESSION_OPTIONS = ("restart", "init_timeout", "request_timeout", "ping_interval", "mode")


@dataclass(frozen=True)
class ServerStatus:
    """One server of a group, as ``group.status()`` tells it."""

    name: str
    transport: str
    state: ConnectionState
    ready_in: float | None
    restarts: int
    pid: int | None
    tools: int | None
    error: str | None
    protocol_version: str | None = None  # negotiated: a modern version ("2026-07-28") or a handshake-era one
    lazy: bool = False  # started on first use, not by the group's start()
    idle: bool = False  # stopped after idle_timeout without a request (state STOPPED); starts on its next use
    cached: bool = False  # its lists in the catalogue come from the disk cache: it has not been listed live yet


@runtime_checkable
class _FindsTransport(Protocol):
    """A manager that finds out its transport by connecting (the registry's URL fallback)."""

    @property
    def used_transport(self) -> str | None: ...


@dataclass(eq=False)
class _Member:
    """One enabled server of a group: its config, its current session, and what its start-up told."""

    config: ServerConfig
    session: ManagedSession
    transport: str
    ready_in: float | None = None
    start_error: BaseException | None = None
    tool_count: int | None = None  # from the last list_tools() of the group
    demand: Demand | None = None  # set right after the session: lazy start and idle stop
    cached: set[Kind] = field(default_factory=set)  # kinds whose lists came from the disk cache, not listed since
    disk: dict[Kind, CachedList] = field(default_factory=dict)  # what its cache file holds (as read or written)


class ServerGroup:
    """Many managed sessions, one per server of an ``mcpServers`` config, and one catalogue of their tools.

    ``tool_names`` says how the catalogue names tools (and prompts): ``"prefixed"`` (the default) gives
    ``server__tool`` for every tool, so names stay the same when servers are added; ``"auto"`` gives the tool's own
    name and prefixes only the names that two servers share. In both, names match ``^[a-zA-Z0-9_-]{1,64}$``.

    ``lazy=True`` starts every server (but those marked ``required`` or ``"start": "eager"``) on its first use
    instead of in ``start()``; ``idle_timeout`` (seconds) stops a server with no request for that long, until its
    next use; both are also per-server config keys (``"start": "lazy"``, ``"idle_timeout"``), which win.
    ``cache`` (default True) keeps each server's lists on disk, so that ``tools()`` answers at once for lazy
    servers not started yet; ``cache_dir`` puts that cache elsewhere than the user cache directory
    (``MCP_CONNECTIONS_CACHE_DIR`` does too).
    """

    def __init__(
        self,
        configs: Mapping[str, ServerConfig],
        *,
        errlog: TextSink | None = sys.stderr,
        tool_names: NamingMode = "prefixed",
        lazy: bool = False,
        idle_timeout: float | None = None,
        cache: bool = True,
        cache_dir: str | os.PathLike[str] | None = None,
        **defaults: Any,
    ) -> None:
        """``defaults`` are ``ManagedSession`` options (``restart``, ``init_timeout``, ``request_timeout``,
        ``ping_interval``, ``ping_timeout``, ``client_info``, ...) that entries do not set themselves; ``errlog``
        is where the stderr of every stdio server goes (each line prefixed with its name; default ``sys.stderr``,
        ``None`` discards it); ``tool_names`` is ``"prefixed"`` (default) or ``"auto"``, see the class docstring.
        The host's answers to server requests are given once for all servers, each called with the server's
        name first: ``elicitation_callback(server_name, context, params)``,
        ``sampling_callback(server_name, context, params)``, ``list_roots_callback(server_name, context)``
        (plain or ``async def``; see ``_host_callbacks``)."""
        if tool_names not in ("prefixed", "auto"):
            raise ConfigError(f"tool_names must be 'prefixed' or 'auto', got {tool_names!r}")
        if idle_timeout is not None and (
            isinstance(idle_timeout, bool) or not isinstance(idle_timeout, int | float) or idle_timeout <= 0
        ):
            raise ConfigError(f"idle_timeout must be a number of seconds > 0 or None, got {idle_timeout!r}")
        self.configs = dict(configs)
        self.lazy = lazy
        self.idle_timeout = idle_timeout
        self.cache: CatalogueCache | None = CatalogueCache(cache_dir) if cache else None
        self._active = False  # between start() and stop(): only then do servers start on demand
        self._errlog = errlog
        # elicitation_callback(server_name, context, params) and the like, once for every server.
        self._host_callbacks = pop_host_callbacks(defaults)
        self._defaults = defaults
        enabled = [config for config in self.configs.values() if not config.disabled]
        filters = {c.name: ToolFilter(c.include_tools, c.exclude_tools) for c in enabled}
        self._catalogue = Catalogue(
            self,
            [c.name for c in enabled],
            lambda name: self[name],
            CatalogueIndex(tool_names, filters),
            _GroupDemands(self),
        )
        self._events = EventHub(lambda: "group")
        self._catalogue.events = self._events
        self._members: dict[str, _Member] = {}
        for config in enabled:
            self._add_member(config)

    def _add_member(self, config: ServerConfig) -> _Member:
        """A member for an enabled server: its session, and the gate that starts it on demand and stops it idle."""
        transport = config.transport or _UNDECIDED_URL_TRANSPORT
        session = self._new_session(config)
        member = _Member(config, session, transport)
        member.demand = Demand(
            session,
            lazy=self._is_lazy(config),
            idle_timeout=config.idle_timeout if config.idle_timeout is not None else self.idle_timeout,
            active=lambda: self._active,
            spawn=self._catalogue.spawn,
        )
        session.demand = member.demand
        self._members[config.name] = member
        return member

    @property
    def tool_names(self) -> NamingMode:
        """How the catalogue names tools: ``"prefixed"`` or ``"auto"``."""
        return self._catalogue.index.mode

    @classmethod
    def from_config(
        cls,
        source: str | os.PathLike[str] | Mapping[str, Any],
        *,
        errlog: TextSink | None = sys.stderr,
        tool_names: NamingMode = "prefixed",
        lazy: bool = False,
        idle_timeout: float | None = None,
        cache: bool = True,
        cache_dir: str | os.PathLike[str] | None = None,
        **defaults: Any,
    ) -> ServerGroup:
        """A group from a config file's path, or from the parsed mapping (``{"mcpServers": {...}}``); the keywords
        are those of ``ServerGroup()``."""
        configs = parse_config(source) if isinstance(source, Mapping) else load_config(source)
        return cls(
            configs,
            errlog=errlog,
            tool_names=tool_names,
            lazy=lazy,
            idle_timeout=idle_timeout,
            cache=cache,
            cache_dir=cache_dir,
            **defaults,
        )

    # -- building sessions -----------------------------------------------------------------------------

    def _is_lazy(self, config: ServerConfig) -> bool:
        """An entry's ``start`` wins; else the group's ``lazy``, which leaves ``required`` servers eager (they
        are checked by ``start()``)."""
        if config.start is not None:
            return config.start == "lazy"
        return self.lazy and not config.required

    def _new_session(self, config: ServerConfig) -> OnDemandSession:
        manager = self._new_manager(config)
        options = dict(self._defaults)
        options.update(bind_host_callbacks(self._host_callbacks, config.name))
        for key in _SESSION_OPTIONS:
            value = getattr(config, key)
            if key == "restart":
                if value != "default":
                    options["restart"] = value
            elif value is not None:
                options[key] = value
        session = OnDemandSession(manager, **options)
        session._events.parent = self._events  # the group's on_event sees every server's events
        self._catalogue.attach(config.name, session)
        return session

    def _new_manager(self, config: ServerConfig) -> ConnectionManager[Any]:
        errlog = None if self._errlog is None else PrefixedTextSink(f"[{config.name}] ", self._errlog)
        return registry.build(config, TransportOptions(errlog=errlog))

    def _transport_of(self, member: _Member) -> str:
        """The transport a server uses: as configured, or as its manager found out by connecting."""
        manager = member.session.manager
        used = manager.used_transport if isinstance(manager, _FindsTransport) else None
        return used or member.transport

    # -- access ----------------------------------------------------------------------------------------

    @property
    def names(self) -> list[str]:
        """The enabled servers, in config order."""
        return list(self._members)

    def __getitem__(self, name: str) -> ManagedSession:
        try:
            return self._members[name].session
        except KeyError:
            known = ", ".join(self._members) or "none"
            raise KeyError(f"no enabled server {name!r} in this group (servers: {known})") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._members)

    def __len__(self) -> int:
        return len(self._members)

    def __repr__(self) -> str:
        return f"<ServerGroup {len(self._members)} servers: {', '.join(self._members)}>"

    def status(self) -> dict[str, ServerStatus]:
        """Every enabled server's status."""
        result: dict[str, ServerStatus] = {}
        for name, member in self._members.items():
            session = member.session
            error = session.error or member.start_error
            manager = session.manager
            pid = getattr(manager, "pid", None) if isinstance(manager, StdioConnectionManager) else None
            listed = self._catalogue.tool_count(name)
            demand = member.demand
            assert demand is not None
            result[name] = ServerStatus(
                name=name,
                transport=self._transport_of(member),
                state=session.state,
                ready_in=member.ready_in if member.ready_in is not None else demand.ready_in,
                restarts=session.restarts,
                pid=pid,
                tools=listed if listed is not None else member.tool_count,
                error=str(error) if error is not None else None,
                protocol_version=session.protocol_version,
                lazy=demand.lazy,
                idle=demand.idle and session.state is ConnectionState.STOPPED,
                cached=bool(member.cached) and session.state is not ConnectionState.CONNECTED,
            )
        return result

    # -- lifecycle -------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start every enabled server concurrently, but the lazy ones (they start on first use).

        A failing server is isolated (see ``status()``); if a ``required`` one fails, every server is
        stopped and ``GroupStartError`` lists all the failures. Lazy servers enter the catalogue with their
        lists from the disk cache, when it has them.
        """
        running = [n for n, m in self._members.items() if m.session.state in RUNNING_STATES]
        if running:
            raise RuntimeError(f"start() called while servers are running ({', '.join(running)}); call stop() first")
        for member in self._members.values():
            member.start_error = member.ready_in = None
            member.cached, member.disk = set(), {}
            assert member.demand is not None
            member.demand.reset()
        self._active = True
        for member in self._members.values():
            assert member.demand is not None
            self._read_cache(member, seed=member.demand.lazy)
        await self._catalogue.start()
        started = time.perf_counter()

        async def start_one(member: _Member) -> None:
            try:
                await self._start_server(member.config.name)
            except MCPConnectionError as exc:
                member.start_error = exc
                logger.warning("%s: failed to start: %s", member.config.name, exc)
                return
            member.ready_in = time.perf_counter() - started

        try:
            async with anyio.create_task_group() as tg:
                for member in self._members.values():
                    assert member.demand is not None
                    if not member.demand.lazy:
                        tg.start_soon(start_one, member)
        except BaseException:  # cancelled: each session stopped itself; the catalogue's task must end too
            self._active = False
            with anyio.CancelScope(shield=True):
                self._catalogue.drop_all()
                await self._catalogue.aclose()
            raise
        failures = {n: m.start_error for n, m in self._members.items() if m.start_error is not None}
        if any(self._members[n].config.required for n in failures):
            await self.stop()
            raise GroupStartError(failures)

    async def _start_server(self, name: str) -> None:
        await self._members[name].session.start()

    def _read_cache(self, member: _Member, *, seed: bool) -> None:
        """What the disk cache holds for a server: the catalogue's starting point for a lazy one (``seed``); for an
        eager one only what the next write merges with (its live lists come at once)."""
        if self.cache is None:
            return
        cached = self.cache.load(member.config)
        member.disk = dict(cached)
        if seed and cached:
            member.cached = set(cached)
            self._catalogue.seed(member.config.name, {kind: entry.items for kind, entry in cached.items()})

    def _listed(self, name: str, kind: Kind, items: list[Any], ttl_ms: int | None) -> None:
        """A live listing came in: it replaces the cached list, and the disk cache gets the server's lists."""
        member = self._members[name]
        member.cached.discard(kind)
        if self.cache is None:
            return
        previous = member.disk.get(kind)
        if previous is not None and previous.expires_at is None and ttl_ms is None and previous.items == items:
            return  # the file has it already
        # Written at each listing, not once all three are in: a group stopped right after tools() keeps its tools.
        member.disk[kind] = CachedList(list(items), None if ttl_ms is None else time.time() + ttl_ms / 1000)
        self.cache.save(member.config, member.disk)

    def _cached_list_expired(self, name: str, kind: Kind) -> bool:
        member = self._members[name]
        return kind in member.cached and member.disk[kind].expired()

    async def stop(self, timeout: float | None = 30.0) -> None:
        """Stop every server concurrently, within ``timeout`` (plus a small margin); never raises."""
        self._active = False  # nothing starts on demand from now on, and lazy servers leave the catalogue
        async with anyio.create_task_group() as tg:
            for member in self._members.values():
                tg.start_soon(member.session.stop, timeout)
        for member in self._members.values():
            member.cached = set()
            assert member.demand is not None
            member.demand.idle = False  # asleep no more: stopped, like every server of the group
        self._catalogue.drop_all()
        await self._catalogue.aclose()

    async def __aenter__(self) -> ServerGroup:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # -- the catalogue ----------------------------------------------------------------------------------

    async def tools(self) -> list[GroupTool]:
        """The catalogue: every tool of every connected server, servers in config order, tools in their order.

        Each ``GroupTool`` has a ``name`` unique in the group (``^[a-zA-Z0-9_-]{1,64}$``, made by ``tool_names``),
        its ``server`` and the ``tool`` as the server sent it. Lists are cached: a server is listed when it
        (re)connects and when it announces a change, not on every call. A server that is reconnecting under its
        restart policy keeps its tools; one that failed, stopped or never connected has none here. Tools filtered
        out by the config's ``include_tools``/``exclude_tools`` are not listed.

        A lazy server that is not running (not started yet, stopped for idleness, or failed on its last start)
        keeps the tools it had, or those of the disk cache; one with none is started here first.
        """
        return await self._catalogue.tools()

    async def call(
        self,
        name: str,
        arguments: dict[str, Any] | None = None,
        *,
        timeout: float | None = _UNSET,
        progress_callback: ProgressFnT | None = None,
        meta: types.RequestParamsMeta | None = None,
    ) -> types.CallToolResult:
        """Call the catalogue's tool ``name`` on its server (``timeout`` defaults to the server's
        ``request_timeout``).

        Raises ``ToolNotFoundError`` (listing close names) for a name not in the catalogue or filtered out, and
        the server's ``ConnectError``/``ConnectionLostError`` when the server is down; a call to a server that is
        reconnecting waits for it within ``timeout``. A tool's own failure is a result with ``is_error``.
        A call to a lazy (or idle-stopped) server starts it first; when that fails, the call raises the
        ``ConnectError`` and the next use tries again.
        """
        return await self._catalogue.call(
            name, arguments, timeout=timeout, progress_callback=progress_callback, meta=meta
        )

    def on_event(self, callback: EventCallback) -> Callable[[], None]:
        """Call ``callback(event)`` for every event of every server (``mcp_connections.events``): state changes,
        restarts with their cause, catalogue changes and the end of each request; returns a remover. Plain or
        ``async def``; one that raises is logged with the server's name and breaks nothing."""
        return self._events.add(callback)

    def on_tools_changed(self, callback: ChangeCallback) -> None:
        """Call ``callback(group)`` after every change of the catalogue's tools (plain or ``async``; changes that
        come in a burst may be told once). A restart that brings back the same tools changes nothing."""
        self._catalogue.on_changed("tools", callback)

    def on_prompts_changed(self, callback: ChangeCallback) -> None:
        """Call ``callback(group)`` after every change of the catalogue's prompts."""
        self._catalogue.on_changed("prompts", callback)

    def on_resources_changed(self, callback: ChangeCallback) -> None:
        """Call ``callback(group)`` after every change of the catalogue's resources."""
        self._catalogue.on_changed("resources", callback)

    async def prompts(self) -> list[GroupPrompt]:
        """Every prompt of every connected server, named like tools (``GroupPrompt``: name, server, prompt)."""
        return await self._catalogue.prompts()

    async def get_prompt(
        self, name: str, arguments: dict[str, str] | None = None, *, timeout: float | None = _UNSET
    ) -> types.GetPromptResult:
        """Get the catalogue's prompt ``name`` from its server; ``ToolNotFoundError`` when it is not listed."""
        return await self._catalogue.get_prompt(name, arguments, timeout=timeout)

    async def resources(self) -> list[GroupResource]:
        """Every resource of every connected server (``GroupResource``: server, resource), in config order."""
        return await self._catalogue.resources()

    async def read_resource(
        self, uri: str, server: str | None = None, *, timeout: float | None = _UNSET
    ) -> types.ReadResourceResult:
        """Read ``uri`` from the first server (in config order) that listed it, or from ``server`` when given
        (also for URIs no server lists, such as those of resource templates)."""
        if server is not None:
            self[server]  # KeyError naming the servers, now
        return await self._catalogue.read_resource(uri, server, timeout=timeout)

    # -- requests to one server ----------------------------------------------------------------------------

    async def list_tools(self) -> dict[str, list[types.Tool]]:
        """``{server: [Tool]}`` for every connected server, asked now and concurrently (failures are logged).

        Unlike ``tools()``, this asks every server each time and applies no filter."""
        tools: dict[str, list[types.Tool]] = {}

        async def list_one(name: str, member: _Member) -> None:
            try:
                tools[name] = await member.session.list_tools()
            except (MCPConnectionError, RuntimeError) as exc:
                logger.warning("%s: list_tools failed: %s", name, exc)
            else:
                member.tool_count = len(tools[name])

        async with anyio.create_task_group() as tg:
            for name, member in self._members.items():
                if member.session.state is ConnectionState.CONNECTED:
                    tg.start_soon(list_one, name, member)
        return {name: tools[name] for name in self._members if name in tools}

    async def call_tool(self, server: str, tool: str, arguments: dict[str, Any] | None = None) -> types.CallToolResult:
        """Call ``tool`` (the server's own name for it) on ``server``."""
        return await self[server].call_tool(tool, arguments)


class _GroupDemands:
    """What the catalogue asks a group about servers started on demand (``_catalogue.Demands``)."""

    def __init__(self, group: ServerGroup) -> None:
        self._group = group

    def _demand(self, name: str) -> Demand:
        demand = self._group._members[name].demand
        assert demand is not None
        return demand

    def active(self) -> bool:
        return self._group._active

    def keeps(self, name: str) -> bool:
        return name in self._group._members and self._demand(name).keeps_lists()

    def wants_start(self, name: str, kind: Kind, has_list: bool) -> bool:
        fresh = has_list and not self._group._cached_list_expired(name, kind)
        return self._demand(name).wants_start(fresh)

    async def start(self, name: str) -> None:
        await self._demand(name).start_for_catalogue()

    def listed(self, name: str, kind: Kind, items: list[Any], ttl_ms: int | None) -> None:
        self._group._listed(name, kind, items, ttl_ms)

"""The gateway: a ``ServerGroup``'s catalogue served as one MCP server, built on the SDK's low-level ``Server``.

Design: a ``Gateway`` owns a ``ServerGroup`` (every server of a config, supervised under a restart
policy) and an ``mcp.server.lowlevel.Server`` whose handlers route each request to the group: tools by
catalogue name (``group.call``), prompts the same way, resources by URI (``_routing.Snapshot``).
Transports (``_stdio``, ``_http``) only run that ``Server``; the SDK serves both protocol generations
on it (a legacy client's ``initialize``, a modern client's ``server/discover`` and per-request
envelope).

Whatever may change the served catalogue (the group's ``on_tools_changed``, a server's state change,
a reload) only marks it dirty; one task takes a new snapshot, compares it with the last one served,
and tells every connected client about exactly the lists that differ: legacy clients on their
standalone channel (``notifications/*/list_changed``), modern ones through ``subscriptions/listen``.

A call's failure that the model can act on (the server is down, restarting past the call's timeout,
or timing out) comes back as a ``CallToolResult`` with ``isError`` whose text names the server; an
unknown tool name is a JSON-RPC error (-32602). Requests from a backend to its client (sampling,
elicitation, roots) go to the gateway client whose request is in flight on that server, when that
client declared the capability; otherwise the backend gets an error.
"""

from __future__ import annotations

import inspect
import logging
import sys
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, TextIO, cast

import anyio
import anyio.abc
import mcp_types as types
from mcp.client.session import ClientRequestContext
from mcp.server.context import ServerRequestContext
from mcp.server.lowlevel.server import NotificationOptions, Server
from mcp.server.subscriptions import (
    InMemorySubscriptionBus,
    ListenHandler,
    PromptsListChanged,
    ResourcesListChanged,
    ServerEvent,
    ToolsListChanged,
)
from mcp.shared.dispatcher import ProgressFnT
from mcp.shared.exceptions import MCPError
from mcp.shared.message import ServerMessageMetadata
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from .._catalogue import KINDS, _Job, _ServerLists
from .._lazy import OnDemandSession
from .._naming import ToolFilter
from ..base import ConnectionState
from ..config import ServerConfig
from ..errors import GroupStartError, MCPConnectionError
from ..group import ServerGroup
from ..restart import RestartPolicy
from ._diff import ConfigDiff, diff_configs
from ._routing import ServedTemplate, Snapshot, health, log_level_allows, most_verbose, union_capabilities

__all__ = ["DEFAULT_REQUEST_TIMEOUT", "Gateway"]

logger = logging.getLogger(__name__)

# A call through the gateway gets this long unless its server's entry says otherwise: a host waits on it,
# and a server restarting for longer than this is down as far as the model is concerned.
DEFAULT_REQUEST_TIMEOUT = 60.0

# Every server of the gateway stops within this (the issue gives 10 s for the whole shutdown).
STOP_TIMEOUT = 8.0

# Change notifications often come in bursts (a server re-registering twenty tools): one snapshot per burst.
REFRESH_DEBOUNCE = 0.05

# What initialize and server/discover wait for the servers' start before answering with what runs then: less
# than the 10 s a modern client's discover probe waits (later requests wait for the whole start).
HANDSHAKE_START_WAIT = 3.0

# Bound on the listings a snapshot asks a backend for itself (resource templates).
LIST_TIMEOUT = 10.0

# Resource not found: the code the spec gives for a resources/read of an unknown URI.
RESOURCE_NOT_FOUND = -32002

_LIST_EVENTS: dict[str, Callable[[], ServerEvent]] = {
    "tools": ToolsListChanged,
    "prompts": PromptsListChanged,
    "resources": ResourcesListChanged,
}
_LIST_METHODS = {
    "tools": "notifications/tools/list_changed",
    "prompts": "notifications/prompts/list_changed",
    "resources": "notifications/resources/list_changed",
}


@dataclass(eq=False)
class _Client:
    """A legacy (handshake) client connection: where its notifications go, and its log level."""

    connection: Any  # mcp.server.connection.Connection
    level: str | None = None


@dataclass(eq=False)
class _Call:
    """A request of a gateway client in flight on a backend: where that backend's own requests go."""

    ctx: ServerRequestContext[Any, Any]


@dataclass
class _ServerHooks:
    """Per-server ClientSession callbacks, so that logs and requests from a backend know who sent them."""

    gateway: Gateway
    name: str
    calls: list[_Call] = field(default_factory=list)

    def options(self) -> dict[str, Any]:
        return {
            # Modern servers log only for requests that opt in: opt in to everything, and filter per client here.
            "log_level": "debug",
            "logging_callback": self.on_log,
            "sampling_callback": self.on_sampling,
            "elicitation_callback": self.on_elicitation,
            "list_roots_callback": self.on_list_roots,
        }

    async def on_log(self, params: types.LoggingMessageNotificationParams) -> None:
        await self.gateway._relay_log(self.name, params)

    async def on_sampling(
        self, context: ClientRequestContext, params: types.CreateMessageRequestParams
    ) -> types.CreateMessageResult | types.CreateMessageResultWithTools | types.ErrorData:
        capability = types.ClientCapabilities(sampling=types.SamplingCapability())
        result_type: Any = types.CreateMessageResultWithTools if params.tools else types.CreateMessageResult
        request = types.CreateMessageRequest(params=params)
        return cast(types.CreateMessageResult, await self._forward("sampling", capability, request, result_type))

    async def on_elicitation(
        self, context: ClientRequestContext, params: types.ElicitRequestParams
    ) -> types.ElicitResult | types.ErrorData:
        capability = types.ClientCapabilities(elicitation=types.ElicitationCapability())
        request = types.ElicitRequest(params=params)
        return cast(types.ElicitResult, await self._forward("elicitation", capability, request, types.ElicitResult))

    async def on_list_roots(self, context: ClientRequestContext) -> types.ListRootsResult | types.ErrorData:
        capability = types.ClientCapabilities(roots=types.RootsCapability())
        request = types.ListRootsRequest()
        return cast(types.ListRootsResult, await self._forward("roots", capability, request, types.ListRootsResult))

    async def _forward(self, what: str, capability: types.ClientCapabilities, request: Any, result_type: Any) -> Any:
        call = self.calls[-1] if self.calls else None
        if call is None:
            message = f"the gateway has no client request in flight on {self.name!r} to forward {what} to"
            return types.ErrorData(code=types.INVALID_REQUEST, message=message)
        session = call.ctx.session
        if not session.can_send_request or not session.check_client_capability(capability):
            message = f"the gateway's client did not declare the {what} capability; {self.name!r} cannot use it"
            return types.ErrorData(code=types.INVALID_REQUEST, message=message)
        try:
            return await session.send_request(
                request, result_type, metadata=ServerMessageMetadata(related_request_id=call.ctx.request_id)
            )
        except MCPError as exc:
            return exc.error
        except Exception as exc:
            logger.warning("%s: forwarding %s to the client failed: %s", self.name, what, exc)
            return types.ErrorData(code=types.INTERNAL_ERROR, message=f"forwarding {what} to the client failed")

    @contextmanager
    def in_flight(self, ctx: ServerRequestContext[Any, Any]) -> Iterator[None]:
        call = _Call(ctx)
        self.calls.append(call)
        try:
            yield
        finally:
            self.calls.remove(call)


class _GatewayGroup(ServerGroup):
    """The group, with each session given its server's own callbacks."""

    def __init__(self, gateway: Gateway, configs: Mapping[str, ServerConfig], **defaults: Any) -> None:
        self._gateway = gateway
        super().__init__(configs, **defaults)

    def _new_session(self, config: ServerConfig) -> OnDemandSession:
        session = super()._new_session(config)
        session.session_options.update(self._gateway._hooks_for(config.name).options())
        return session

    # A reload changes the servers of a running group. ServerGroup has no public API for that (yet), so this
    # subclass keeps the group's members and its catalogue's per-server records in step itself.

    def add_server(self, config: ServerConfig) -> None:
        """Add a server (not started) to the group and to its catalogue."""
        if config.name in self._members:
            raise ValueError(f"server {config.name!r} is already in the group")
        self.configs[config.name] = config
        if config.disabled:
            return
        catalogue = self._catalogue
        lists = _ServerLists(config.name)
        for kind in KINDS:
            lists.jobs[kind] = _Job(catalogue._lister(lists, kind))
        catalogue._servers[config.name] = lists
        catalogue.index.filters[config.name] = ToolFilter(config.include_tools, config.exclude_tools)
        self._add_member(config)

    async def start_server(self, name: str) -> None:
        """Start one server of a running group; a failure is recorded in its status and raised."""
        member = self._members[name]
        started = time.perf_counter()
        try:
            await self._start_server(name)
        except MCPConnectionError as exc:
            member.start_error = exc
            raise
        member.ready_in = time.perf_counter() - started

    async def remove_server(self, name: str, timeout: float | None) -> None:
        """Stop a server and take it out of the group and of its catalogue (whose clients hear of it)."""
        member = self._members.get(name)
        if member is not None:
            await member.session.stop(timeout)  # STOPPED: the catalogue drops its lists and tells its callbacks
        self._members.pop(name, None)
        self.configs.pop(name, None)
        catalogue = self._catalogue
        catalogue._servers.pop(name, None)
        catalogue.index.filters.pop(name, None)
        catalogue._rebuild(name, KINDS)

    def reorder(self, configs: Mapping[str, ServerConfig]) -> None:
        """Take the new config's entries and order (the catalogue's order follows it)."""
        self._members = {n: self._members[n] for n in configs if n in self._members}
        catalogue = self._catalogue
        catalogue._servers = {n: catalogue._servers[n] for n in configs if n in catalogue._servers}
        self.configs = dict(configs)
        catalogue._rebuild("reload", KINDS)


class _GatewayServer(Server[Any]):
    """The SDK's server, declaring the union of what the running backends offer."""

    def __init__(self, gateway: Gateway, name: str, version: str) -> None:
        super().__init__(name, version=version, instructions="Tools, prompts and resources of several MCP servers.")
        self._gateway = gateway

    def get_capabilities(
        self,
        notification_options: NotificationOptions | None = None,
        experimental_capabilities: dict[str, dict[str, Any]] | None = None,
        extensions: dict[str, dict[str, Any]] | None = None,
        *,
        protocol_version: str | None = None,
    ) -> types.ServerCapabilities:
        # The gateway always sends list_changed for its own lists, whatever the backends do.
        full = super().get_capabilities(
            NotificationOptions(prompts_changed=True, resources_changed=True, tools_changed=True),
            experimental_capabilities,
            extensions,
            protocol_version=protocol_version,
        )
        offered = self._gateway.offered_capabilities() | {"tools"}  # a gateway always has a (maybe empty) tool list
        return full.model_copy(
            update={name: None for name in ("prompts", "resources", "logging", "completions") if name not in offered}
        )


class Gateway:
    """Every server of a config, supervised, served as one MCP server (see the module docstring).

    ``async with Gateway(configs) as gateway:`` starts the group in the background (concurrently; a failing
    server is isolated unless ``required``; ``await gateway.wait_started()`` waits for it, requests to
    ``gateway.server`` wait for it too) and the catalogue watcher; ``gateway.server`` is the SDK server to run
    on a transport; ``await gateway.reload(new_configs)`` applies a new config; leaving stops everything.
    """

    def __init__(
        self,
        configs: Mapping[str, ServerConfig],
        *,
        tool_names: str = "prefixed",
        request_timeout: float | None = DEFAULT_REQUEST_TIMEOUT,
        restart: RestartPolicy | None = None,
        errlog: TextIO | None = None,
        name: str = "mcp-connections",
    ) -> None:
        from .. import __version__

        self._hooks: dict[str, _ServerHooks] = {}
        self._clients: dict[int, _Client] = {}
        self._snapshot = Snapshot(server_order=tuple(n for n, c in configs.items() if not c.disabled))
        self._started = anyio.Event()
        self.start_error: GroupStartError | None = None
        self._capabilities: dict[str, types.ServerCapabilities] = {}
        self._dirty = anyio.Event()
        self._reload_lock = anyio.Lock()
        self._task_group: anyio.abc.TaskGroup | None = None
        self._backend_levels: dict[str, tuple[object, str]] = {}
        self._bus = InMemorySubscriptionBus()
        self._listen = ListenHandler(self._bus)
        self.tool_names = tool_names
        self.configs = dict(configs)
        self.group = _GatewayGroup(
            self,
            configs,
            tool_names=tool_names,
            request_timeout=request_timeout,
            restart=restart if restart is not None else RestartPolicy(),
            errlog=errlog if errlog is not None else sys.stderr,
        )
        self._watch_states(self.group.names)
        self.group.on_tools_changed(self._catalogue_changed)
        self.group.on_prompts_changed(self._catalogue_changed)
        self.group.on_resources_changed(self._catalogue_changed)
        self.server = self._build_server(name, __version__)

    # -- lifecycle -------------------------------------------------------------------------------------

    async def __aenter__(self) -> Gateway:
        """Start the group in the background (see ``wait_started``) and the catalogue watcher."""
        task_group = anyio.create_task_group()
        await task_group.__aenter__()
        self._task_group = task_group
        task_group.start_soon(self._start_then_watch)
        return self

    @property
    def started(self) -> anyio.Event:
        """Set once every server has started or failed (``start_error`` says whether a required one failed)."""
        return self._started

    async def wait_started(self) -> None:
        """Return once every server has started or failed; raise ``GroupStartError`` if a required one failed."""
        await self._started.wait()
        if self.start_error is not None:
            raise self.start_error

    async def _start_then_watch(self) -> None:
        try:
            await self.group.start()  # a required server's failure raises GroupStartError (all stopped)
        except GroupStartError as exc:
            self.start_error = exc
            self._started.set()
            return
        await self.refresh()
        self._started.set()
        await self._watch_catalogue()

    async def _gate(self, ctx: ServerRequestContext[Any, Any], call_next: Callable[..., Awaitable[Any]]) -> Any:
        """Requests wait for the servers' start; the handshake only briefly, so that a client's probe is answered."""
        if ctx.request_id is not None and ctx.method != "ping" and not self._started.is_set():
            if ctx.method in ("initialize", "server/discover"):
                with anyio.move_on_after(HANDSHAKE_START_WAIT):
                    await self._started.wait()
            else:
                await self._started.wait()
        return await call_next(ctx)

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Stop the watcher and every server (within ``STOP_TIMEOUT``); in the task that entered the gateway."""
        task_group, self._task_group = self._task_group, None
        try:
            if task_group is not None:
                task_group.cancel_scope.cancel()
                await task_group.__aexit__(None, None, None)
        finally:
            with anyio.CancelScope(shield=True):
                self._listen.close()
                await self.group.stop(STOP_TIMEOUT)

    # -- health ----------------------------------------------------------------------------------------

    def health(self, *, show_errors: bool) -> tuple[int, dict[str, Any]]:
        """The ``/healthz`` answer: (status code, JSON body)."""
        required = {name: self.group.configs[name].required for name in self.group.names}
        return health(self.group.status(), required, show_errors=show_errors)

    def offered_capabilities(self) -> set[str]:
        """What the running backends offer (``tools``, ``prompts``, ``resources``, ``logging``, ``completions``)."""
        running = [
            caps
            for name, caps in self._capabilities.items()
            if name in self.group.names and self.group[name].state is ConnectionState.CONNECTED
        ]
        return union_capabilities(running)

    # -- reload ----------------------------------------------------------------------------------------

    async def reload(self, configs: Mapping[str, ServerConfig]) -> ConfigDiff:
        """Apply a new config: added servers start, removed ones stop, changed ones restart, the rest keep running."""
        async with self._reload_lock:
            diff = diff_configs(self.configs, configs)
            if diff.empty:
                self.configs = dict(configs)
                return diff
            logger.info("gateway: reloading the config: %s", diff)
            group = self.group
            async with anyio.create_task_group() as tg:
                for name in (*diff.removed, *diff.changed):
                    tg.start_soon(group.remove_server, name, STOP_TIMEOUT)
            for name in (*diff.removed, *diff.changed):
                self._hooks.pop(name, None)
                self._capabilities.pop(name, None)
            new = [configs[name] for name in (*diff.added, *diff.changed)]
            for config in new:
                group.add_server(config)
            group.reorder(configs)
            self._watch_states([config.name for config in new if not config.disabled])
            async with anyio.create_task_group() as tg:
                for config in new:
                    if not config.disabled:
                        tg.start_soon(self._start_added, config.name)
            self.configs = dict(configs)
            self._mark_dirty()
            return diff

    async def _start_added(self, name: str) -> None:
        try:
            await self.group.start_server(name)
        except MCPConnectionError as exc:
            logger.warning("%s: failed to start after the reload: %s", name, exc)

    # -- the catalogue ---------------------------------------------------------------------------------

    def _hooks_for(self, name: str) -> _ServerHooks:
        hooks = self._hooks.get(name)
        if hooks is None:
            hooks = self._hooks[name] = _ServerHooks(self, name)
        return hooks

    def _watch_states(self, names: list[str]) -> None:
        for name in names:
            self.group[name].on_state_change(lambda old, new: self._mark_dirty())

    def _catalogue_changed(self, group: object) -> None:
        self._mark_dirty()

    def _mark_dirty(self) -> None:
        self._dirty.set()

    async def _watch_catalogue(self) -> None:
        while True:
            await self._dirty.wait()
            await anyio.sleep(REFRESH_DEBOUNCE)
            self._dirty = anyio.Event()
            await self.refresh()

    async def refresh(self) -> list[str]:
        """Take a new snapshot of the catalogue; tell every client which lists changed (returned too)."""
        try:
            snapshot = await self._take_snapshot()
        except Exception:
            logger.exception("gateway: could not take a snapshot of the catalogue")
            return []
        previous, self._snapshot = self._snapshot, snapshot
        changed = snapshot.changed_lists(previous) if previous.server_order else []
        for kind in changed:
            logger.debug("gateway: the %s list changed; telling %d clients", kind, len(self._clients))
            await self._announce(kind)
        await self._apply_log_level()
        return changed

    async def _take_snapshot(self) -> Snapshot:
        group = self.group
        for name in group.names:
            capabilities = getattr(group[name], "capabilities", None)  # what the server declared (either generation)
            if capabilities is not None:
                self._capabilities[name] = capabilities
        tools = await group.tools()
        prompts = await group.prompts()
        resources = await group.resources()
        templates: dict[str, list[ServedTemplate]] = {}

        async def list_templates(name: str, session: Any) -> None:
            try:
                with anyio.fail_after(LIST_TIMEOUT):
                    result = await session.list_resource_templates()
                found = [ServedTemplate(name, t) for t in result.resource_templates]
                seen: set[str] = set()
                while result.next_cursor and result.next_cursor not in seen:
                    seen.add(result.next_cursor)
                    with anyio.fail_after(LIST_TIMEOUT):
                        result = await session.list_resource_templates(
                            params=types.PaginatedRequestParams(cursor=result.next_cursor)
                        )
                    found.extend(ServedTemplate(name, t) for t in result.resource_templates)
                templates[name] = found
            except Exception as exc:
                logger.debug("%s: resources/templates/list failed: %s", name, exc)

        async with anyio.create_task_group() as tg:
            for name in group.names:
                session = group[name].session
                caps = self._capabilities.get(name)
                if session is not None and caps is not None and caps.resources is not None:
                    tg.start_soon(list_templates, name, session)
        ordered = [t for name in group.names for t in templates.get(name, [])]
        return Snapshot(tools, prompts, resources, ordered, tuple(group.names))

    async def _announce(self, kind: str) -> None:
        for client in list(self._clients.values()):
            await client.connection.notify(_LIST_METHODS[kind], None)
        try:
            await self._bus.publish(_LIST_EVENTS[kind]())
        except Exception:
            logger.exception("gateway: publishing %s list_changed failed", kind)

    # -- logs ------------------------------------------------------------------------------------------

    async def _relay_log(self, server: str, params: types.LoggingMessageNotificationParams) -> None:
        message = {"level": params.level, "logger": server, "data": params.data}
        for client in list(self._clients.values()):
            if log_level_allows(client.level, params.level):
                await client.connection.notify("notifications/message", message)

    async def _apply_log_level(self) -> None:
        """Tell every connected backend that logs the most verbose level a client asked for (once per connection)."""
        level = most_verbose(client.level for client in self._clients.values())
        if level is None:
            return
        for name in self.group.names:
            session = self.group[name].session
            caps = self._capabilities.get(name)
            if session is None or caps is None or caps.logging is None:
                continue
            if self._backend_levels.get(name) == (session, level):
                continue
            try:
                with anyio.fail_after(LIST_TIMEOUT):
                    await session.set_logging_level(level)  # type: ignore[arg-type]
                self._backend_levels[name] = (session, level)
            except Exception as exc:
                logger.info("%s: logging/setLevel failed: %s", name, exc)

    # -- the server's handlers -------------------------------------------------------------------------

    def _build_server(self, name: str, version: str) -> Server[Any]:
        server = _GatewayServer(self, name, version)
        handlers: list[tuple[str, type[Any], Callable[..., Awaitable[Any]]]] = [
            ("tools/list", types.PaginatedRequestParams, self._list_tools),
            ("tools/call", types.CallToolRequestParams, self._call_tool),
            ("prompts/list", types.PaginatedRequestParams, self._list_prompts),
            ("prompts/get", types.GetPromptRequestParams, self._get_prompt),
            ("resources/list", types.PaginatedRequestParams, self._list_resources),
            ("resources/templates/list", types.PaginatedRequestParams, self._list_templates),
            ("resources/read", types.ReadResourceRequestParams, self._read_resource),
            ("completion/complete", types.CompleteRequestParams, self._complete),
            ("logging/setLevel", types.SetLevelRequestParams, self._set_level),
            ("subscriptions/listen", types.SubscriptionsListenRequestParams, self._listen),
        ]
        for method, params_type, handler in handlers:
            server.add_request_handler(method, params_type, handler)
        server.add_notification_handler("notifications/initialized", types.NotificationParams, self._initialized)
        server.middleware.append(self._gate)
        return server

    def _client_of(self, ctx: ServerRequestContext[Any, Any]) -> _Client | None:
        # The SDK gives handlers no public handle on their connection yet (its Context.connection is not
        # what the runner builds); ServerSession keeps it as _connection.
        connection = getattr(ctx.session, "_connection", None)
        if connection is None or not connection.has_standalone_channel:
            return None
        if connection.protocol_version in MODERN_PROTOCOL_VERSIONS:
            return None  # modern clients hear of changes through subscriptions/listen, and get no standalone logs
        client = self._clients.get(id(connection))
        if client is None:
            client = self._clients[id(connection)] = _Client(connection)
            connection.exit_stack.callback(self._clients.pop, id(connection), None)
        return client

    async def _initialized(self, ctx: ServerRequestContext[Any, Any], params: types.NotificationParams) -> None:
        self._client_of(ctx)

    async def _list_tools(
        self, ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams
    ) -> types.ListToolsResult:
        self._client_of(ctx)
        entries = await self.group.tools()
        return types.ListToolsResult(tools=[entry.tool.model_copy(update={"name": entry.name}) for entry in entries])

    async def _call_tool(
        self, ctx: ServerRequestContext[Any, Any], params: types.CallToolRequestParams
    ) -> types.CallToolResult:
        entry = self._snapshot.tool(params.name)
        if entry is None:
            entry = next((e for e in await self.group.tools() if e.name == params.name), None)
        server = entry.server if entry is not None else None
        progress = _progress_relay(ctx)
        meta = _meta_for_backend(params.meta)
        hooks = self._hooks_for(server) if server is not None else None
        try:
            with hooks.in_flight(ctx) if hooks is not None else _nothing():
                return await self.group.call(params.name, params.arguments, progress_callback=progress, meta=meta)
        except MCPConnectionError as exc:
            if isinstance(exc, LookupError):  # ToolNotFoundError: not in the catalogue (or filtered out)
                raise MCPError(code=types.INVALID_PARAMS, message=str(exc)) from exc
            return _error_result(exc.server or server, params.name, exc)
        except RuntimeError as exc:  # the session is not running (stopped, or removed by a reload)
            return _error_result(server, params.name, exc)

    async def _list_prompts(
        self, ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams
    ) -> types.ListPromptsResult:
        self._client_of(ctx)
        entries = await self.group.prompts()
        return types.ListPromptsResult(
            prompts=[entry.prompt.model_copy(update={"name": entry.name}) for entry in entries]
        )

    async def _get_prompt(
        self, ctx: ServerRequestContext[Any, Any], params: types.GetPromptRequestParams
    ) -> types.GetPromptResult:
        entry = self._snapshot.prompt(params.name)
        server = entry.server if entry is not None else None
        hooks = self._hooks_for(server) if server is not None else None
        try:
            with hooks.in_flight(ctx) if hooks is not None else _nothing():
                return await self.group.get_prompt(params.name, params.arguments)
        except LookupError as exc:
            raise MCPError(code=types.INVALID_PARAMS, message=str(exc)) from exc
        except (MCPConnectionError, RuntimeError) as exc:
            raise MCPError(code=types.INTERNAL_ERROR, message=_describe(server, exc)) from exc

    async def _list_resources(
        self, ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams
    ) -> types.ListResourcesResult:
        self._client_of(ctx)
        return types.ListResourcesResult(resources=[entry.resource for entry in await self.group.resources()])

    async def _list_templates(
        self, ctx: ServerRequestContext[Any, Any], params: types.PaginatedRequestParams
    ) -> types.ListResourceTemplatesResult:
        return types.ListResourceTemplatesResult(resource_templates=[t.template for t in self._snapshot.templates])

    async def _read_resource(
        self, ctx: ServerRequestContext[Any, Any], params: types.ReadResourceRequestParams
    ) -> types.ReadResourceResult:
        uri = str(params.uri)
        server = self._snapshot.resource_server(uri)
        if server is None:
            listed = {str(e.resource.uri): str(e.server) for e in reversed(await self.group.resources())}
            server = listed.get(uri)
        if server is None or server not in self.group.names:
            raise MCPError(code=RESOURCE_NOT_FOUND, message="Resource not found", data={"uri": uri})
        try:
            with self._hooks_for(server).in_flight(ctx):
                return await self.group[server].read_resource(uri)
        except (MCPConnectionError, RuntimeError) as exc:
            raise MCPError(code=types.INTERNAL_ERROR, message=_describe(server, exc)) from exc

    async def _complete(
        self, ctx: ServerRequestContext[Any, Any], params: types.CompleteRequestParams
    ) -> types.CompleteResult:
        empty = types.CompleteResult(completion=types.Completion(values=[]))
        ref = params.ref
        backend_ref: types.PromptReference | types.ResourceTemplateReference
        if isinstance(ref, types.PromptReference):
            entry = self._snapshot.prompt(ref.name)
            if entry is None:
                raise MCPError(code=types.INVALID_PARAMS, message=f"no prompt {ref.name!r} in the gateway")
            server, backend_ref = entry.server, ref.model_copy(update={"name": entry.prompt.name})
        else:
            server = self._snapshot.template_server(ref.uri) or self._snapshot.resource_server(ref.uri)
            if server is None:
                raise MCPError(code=types.INVALID_PARAMS, message=f"no resource template {ref.uri!r} in the gateway")
            backend_ref = ref
        session = self.group[server].session if server in self.group.names else None
        caps = self._capabilities.get(server)
        if session is None or caps is None or caps.completions is None:
            return empty
        context = params.context.arguments if params.context is not None else None
        try:
            with anyio.fail_after(self.group[server].request_timeout or DEFAULT_REQUEST_TIMEOUT):
                return await session.complete(
                    backend_ref, params.argument.model_dump(exclude_none=True), context_arguments=context
                )
        except MCPError:
            raise
        except Exception as exc:
            raise MCPError(code=types.INTERNAL_ERROR, message=_describe(server, exc)) from exc

    async def _set_level(
        self, ctx: ServerRequestContext[Any, Any], params: types.SetLevelRequestParams
    ) -> types.EmptyResult:
        client = self._client_of(ctx)
        if client is not None:
            client.level = params.level
        await self._apply_log_level()
        return types.EmptyResult()


@contextmanager
def _nothing() -> Iterator[None]:
    yield


def _progress_relay(ctx: ServerRequestContext[Any, Any]) -> ProgressFnT | None:
    """A progress callback that relays the backend's progress under the client's own token, if it sent one."""
    meta: Mapping[str, Any] = ctx.meta or {}
    if meta.get("progress_token", meta.get("progressToken")) is None:
        return None

    async def relay(progress: float, total: float | None = None, message: str | None = None) -> None:
        await ctx.session.report_progress(progress, total, message)

    return relay


def _meta_for_backend(meta: types.RequestParamsMeta | None) -> types.RequestParamsMeta | None:
    """The client's ``_meta`` for the backend, without its progress token (the backend gets the gateway's)."""
    if not meta:
        return None
    data = {k: v for k, v in meta.items() if k not in ("progress_token", "progressToken")}
    kept = {k: v for k, v in data.items() if not k.startswith("io.modelcontextprotocol/")}
    return cast(types.RequestParamsMeta, kept) if kept else None


def _describe(server: str | None, exc: BaseException) -> str:
    text = str(exc)
    if server and not text.startswith(f"{server}:"):
        text = f"{server}: {text}"
    return text


def _error_result(server: str | None, tool: str, exc: BaseException) -> types.CallToolResult:
    """What a model reads when a call could not reach its server: which server, and why."""
    where = f"server {server!r}" if server else "its server"
    text = f"The tool {tool!r} could not run: {where} is unavailable ({_describe(server, exc)})."
    return types.CallToolResult(content=[types.TextContent(type="text", text=text)], is_error=True)


def _awaitable(value: object) -> bool:
    return inspect.isawaitable(value)

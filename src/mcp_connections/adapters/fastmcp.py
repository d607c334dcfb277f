"""A fastmcp ``ClientTransport`` backed by a ``ManagedSession``: fastmcp's ``Client`` over our supervision.

Pydantic AI's ``MCPToolset`` and LangChain's ``langchain.mcp`` are built on ``fastmcp.Client``, and a
``Client`` takes a transport. ``ManagedSessionTransport(session)`` (or ``(group, server="name")``, which
follows the group's current session for that server) is one: their users keep their stack and get our
restarts, health checks and bounded stops underneath::

    client = fastmcp.Client(ManagedSessionTransport(session))
    toolset = MCPToolset(client)                       # Pydantic AI, through fastmcp

Design: fastmcp wants an *uninitialized* ``ClientSession`` that it initializes itself, while ours is
initialized and reconnects on its own. So each ``connect_session`` runs a small MCP server in memory (the
SDK's lowlevel ``Server`` over memory streams, as fastmcp's own in-memory transport does) whose handlers
forward to the managed session: tools, resources and prompts, with the backend's name, version and
instructions. The client's session never sees a restart: a call made while the server restarts waits for
the new connection within its timeout; a call cut by a crash answers as a failed tool (``isError``, which
fastmcp raises as ``ToolError``) that says why; the next call goes to the restarted server. The backend's
``list_changed`` notifications are passed on to every connected client. Closing the client ends only the
in-memory session: the managed session stays up for the next user, unless the transport started it
(it was not running), in which case the last connection to close stops it (for a group: the whole group).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncGenerator, Awaitable
from typing import Any, TypeVar

from ._extras import missing

try:
    from fastmcp.client.transports import ClientTransport
    from fastmcp.client.transports.base import SessionKwargs, TransportOptions
except ImportError as _exc:
    raise missing("fastmcp", "fastmcp", "fastmcp", _exc) from _exc

import anyio
import mcp_types as types
from mcp.server.lowlevel import NotificationOptions, Server
from mcp.shared.exceptions import MCPError
from mcp.shared.memory import create_client_server_memory_streams
from mcp.shared.message import SessionMessage
from typing_extensions import Unpack

from ..errors import MCPConnectionError
from ..session import ManagedSession
from ._content import failure_result
from ._source import Lifecycle

__all__ = ["ManagedSessionTransport"]

logger = logging.getLogger(__name__)

R = TypeVar("R")

# What the backend's list_changed kinds are called on the wire.
_LIST_CHANGED = {
    "tools": "notifications/tools/list_changed",
    "prompts": "notifications/prompts/list_changed",
    "resources": "notifications/resources/list_changed",
}


class ManagedSessionTransport(ClientTransport):
    """A fastmcp ``ClientTransport`` over a ``ManagedSession``, or over one server of a ``ServerGroup``."""

    def __init__(self, target: Any, server: str | None = None) -> None:
        if isinstance(target, ManagedSession):
            if server is not None:
                raise TypeError("server= is for a ServerGroup; a ManagedSession is one server already")
        elif server is None:
            raise TypeError("a ServerGroup needs server=: the name of the server this transport connects to")
        else:
            target[server]  # a KeyError that lists the servers, now rather than at connect time
        self.target = target
        self.server = server
        self._lifecycle = Lifecycle(target)
        self._watched: set[int] = set()
        # One writer per connected client: the server side of its in-memory stream, to pass list_changed on.
        self._clients: set[Any] = set()

    def managed_session(self) -> ManagedSession:
        """The session calls go to (for a group, its current session for ``server``)."""
        if isinstance(self.target, ManagedSession):
            return self.target
        session: ManagedSession = self.target[self.server]
        return session

    def __repr__(self) -> str:
        return f"<ManagedSessionTransport {self.managed_session().name!r}>"

    @contextlib.asynccontextmanager
    async def connect_session(
        self, *, transport_options: TransportOptions | None = None, **session_kwargs: Unpack[SessionKwargs]
    ) -> AsyncGenerator[Any, None]:
        options = transport_options or TransportOptions()
        # A group that is not running is started whole (its catalogue and the rest stay consistent); then the
        # server's session is looked up, since a start may replace it (the SSE fallback).
        await self._lifecycle.enter()
        try:
            managed = self.managed_session()
            self._watch(managed)
            proxy = self._proxy(managed)
            init = proxy.create_initialization_options(
                NotificationOptions(prompts_changed=True, resources_changed=True, tools_changed=True)
            )
            async with (
                create_client_server_memory_streams() as (client_streams, server_streams),
                anyio.create_task_group() as tg,
            ):
                tg.start_soon(lambda: proxy.run(server_streams[0], server_streams[1], init))
                writer = server_streams[1]
                self._clients.add(writer)
                try:
                    async with options.session_class(
                        read_stream=client_streams[0], write_stream=client_streams[1], **session_kwargs
                    ) as client_session:
                        yield client_session
                finally:
                    self._clients.discard(writer)
                    tg.cancel_scope.cancel()
        finally:
            with anyio.CancelScope(shield=True):
                await self._lifecycle.exit()

    def _watch(self, managed: ManagedSession) -> None:
        """Pass the backend's list_changed on to connected clients (sessions that can tell us of them)."""
        on_list_changed = getattr(managed, "on_list_changed", None)
        if id(managed) in self._watched or not callable(on_list_changed):
            return
        self._watched.add(id(managed))

        async def forward(kind: str) -> None:
            if kind not in _LIST_CHANGED:
                return
            message = SessionMessage(types.JSONRPCNotification(jsonrpc="2.0", method=_LIST_CHANGED[kind]))
            for writer in list(self._clients):
                try:
                    await writer.send(message)
                except (anyio.ClosedResourceError, anyio.BrokenResourceError):  # that client has gone
                    self._clients.discard(writer)

        on_list_changed(forward)

    def _proxy(self, managed: ManagedSession) -> Server[Any]:
        """An in-memory MCP server whose every handler forwards to ``managed``."""

        async def list_tools(ctx: Any, params: Any) -> types.ListToolsResult:
            return types.ListToolsResult(tools=await _forward(managed.list_tools()))

        async def call_tool(ctx: Any, params: types.CallToolRequestParams) -> types.CallToolResult:
            try:
                return await managed.call_tool(params.name, params.arguments)
            except MCPConnectionError as exc:  # the tool could not run: a failed tool, which the client reports
                return failure_result(exc)

        async def list_resources(ctx: Any, params: Any) -> types.ListResourcesResult:
            return types.ListResourcesResult(resources=await _forward(managed.list_resources()))

        async def read_resource(ctx: Any, params: types.ReadResourceRequestParams) -> types.ReadResourceResult:
            return await _forward(managed.read_resource(str(params.uri)))

        async def list_prompts(ctx: Any, params: Any) -> types.ListPromptsResult:
            return types.ListPromptsResult(prompts=await _forward(managed.list_prompts()))

        async def get_prompt(ctx: Any, params: types.GetPromptRequestParams) -> types.GetPromptResult:
            return await _forward(managed.get_prompt(params.name, params.arguments))

        # What the backend said of itself, in either protocol generation (None before it first connected).
        capabilities: types.ServerCapabilities | None = getattr(managed, "capabilities", None)
        server_info: types.Implementation | None = getattr(managed, "server_info", None)
        negotiated = managed.initialize_result or getattr(managed, "discover_result", None)
        handlers: dict[str, Any] = {"on_list_tools": list_tools, "on_call_tool": call_tool}
        if capabilities is None or capabilities.resources is not None:
            handlers.update(on_list_resources=list_resources, on_read_resource=read_resource)
        if capabilities is None or capabilities.prompts is not None:
            handlers.update(on_list_prompts=list_prompts, on_get_prompt=get_prompt)
        return Server(
            server_info.name if server_info is not None else managed.name,
            version=server_info.version if server_info is not None else "",
            instructions=negotiated.instructions if negotiated is not None else None,
            **handlers,
        )


async def _forward(request: Awaitable[R]) -> R:
    """Await a request to the managed session; our errors go to the client as MCP errors that say why."""
    try:
        return await request
    except MCPConnectionError as exc:
        raise MCPError(types.INTERNAL_ERROR, str(exc)) from exc

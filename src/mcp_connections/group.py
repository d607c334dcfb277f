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
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Protocol, runtime_checkable

import anyio
import mcp_types as types

from ._textsink import PrefixedTextSink, TextSink
from .base import RUNNING_STATES, ConnectionManager, ConnectionState
from .config import ServerConfig, load_config, parse_config
from .errors import GroupStartError, MCPConnectionError
from .session import ManagedSession
from .stdio import StdioConnectionManager
from .transports import TransportOptions, registry

__all__ = ["ServerGroup", "ServerStatus"]

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


@runtime_checkable
class _FindsTransport(Protocol):
    """A manager that finds out its transport by connecting (the registry's URL fallback)."""

    @property
    def used_transport(self) -> str | None: ...


class ServerGroup:
    """Many managed sessions, one per server of an ``mcpServers`` config."""

    def __init__(self, configs: Mapping[str, ServerConfig], **defaults: Any) -> None:
        """``defaults`` are ``ManagedSession`` options (``restart``, ``init_timeout``, ``request_timeout``,
        ``ping_interval``, ``ping_timeout``, ``client_info``, ...) that entries do not set themselves, plus
        ``errlog``, where the stderr of every stdio server goes (each line prefixed with its name; default
        ``sys.stderr``, ``None`` discards it)."""
        self.configs = dict(configs)
        self._errlog: TextSink | None = defaults.pop("errlog", sys.stderr)
        self._defaults = defaults
        self._sessions: dict[str, ManagedSession] = {}
        self._transports: dict[str, str] = {}
        self._ready_in: dict[str, float | None] = {}
        self._tool_counts: dict[str, int] = {}
        self._start_errors: dict[str, BaseException] = {}
        for name, config in self.configs.items():
            if not config.disabled:
                self._sessions[name] = self._new_session(config)

    @classmethod
    def from_config(cls, source: str | os.PathLike[str] | Mapping[str, Any], **defaults: Any) -> ServerGroup:
        """A group from a config file's path, or from the parsed mapping (``{"mcpServers": {...}}``)."""
        if isinstance(source, Mapping):
            return cls(parse_config(source), **defaults)
        return cls(load_config(source), **defaults)

    # -- building sessions -----------------------------------------------------------------------------

    def _new_session(self, config: ServerConfig) -> ManagedSession:
        manager = self._new_manager(config)
        options = dict(self._defaults)
        for key in _SESSION_OPTIONS:
            value = getattr(config, key)
            if key == "restart":
                if value != "default":
                    options["restart"] = value
            elif value is not None:
                options[key] = value
        self._transports[config.name] = config.transport or _UNDECIDED_URL_TRANSPORT
        return ManagedSession(manager, **options)

    def _new_manager(self, config: ServerConfig) -> ConnectionManager[Any]:
        errlog = None if self._errlog is None else PrefixedTextSink(f"[{config.name}] ", self._errlog)
        return registry.build(config, TransportOptions(errlog=errlog))

    def _transport_of(self, name: str) -> str:
        """The transport a server uses: as configured, or as its manager found out by connecting."""
        manager = self._sessions[name].manager
        used = manager.used_transport if isinstance(manager, _FindsTransport) else None
        return used or self._transports[name]

    # -- access ----------------------------------------------------------------------------------------

    @property
    def names(self) -> list[str]:
        """The enabled servers, in config order."""
        return list(self._sessions)

    def __getitem__(self, name: str) -> ManagedSession:
        try:
            return self._sessions[name]
        except KeyError:
            known = ", ".join(self._sessions) or "none"
            raise KeyError(f"no enabled server {name!r} in this group (servers: {known})") from None

    def __iter__(self) -> Iterator[str]:
        return iter(self._sessions)

    def __len__(self) -> int:
        return len(self._sessions)

    def __repr__(self) -> str:
        return f"<ServerGroup {len(self._sessions)} servers: {', '.join(self._sessions)}>"

    def status(self) -> dict[str, ServerStatus]:
        """Every enabled server's status."""
        result: dict[str, ServerStatus] = {}
        for name, session in self._sessions.items():
            error = session.error or self._start_errors.get(name)
            manager = session.manager
            pid = getattr(manager, "pid", None) if isinstance(manager, StdioConnectionManager) else None
            result[name] = ServerStatus(
                name=name,
                transport=self._transport_of(name),
                state=session.state,
                ready_in=self._ready_in.get(name),
                restarts=session.restarts,
                pid=pid,
                tools=self._tool_counts.get(name),
                error=str(error) if error is not None else None,
                protocol_version=session.protocol_version,
            )
        return result

    # -- lifecycle -------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Start every enabled server concurrently.

        A failing server is isolated (see ``status()``); if a ``required`` one fails, every server is
        stopped and ``GroupStartError`` lists all the failures.
        """
        running = [n for n, s in self._sessions.items() if s.state in RUNNING_STATES]
        if running:
            raise RuntimeError(f"start() called while servers are running ({', '.join(running)}); call stop() first")
        self._start_errors.clear()
        self._ready_in.clear()
        started = time.perf_counter()

        async def start_one(name: str) -> None:
            try:
                await self._start_server(name)
            except MCPConnectionError as exc:
                self._start_errors[name] = exc
                logger.warning("%s: failed to start: %s", name, exc)
                return
            self._ready_in[name] = time.perf_counter() - started

        async with anyio.create_task_group() as tg:
            for name in self._sessions:
                tg.start_soon(start_one, name)
        required = [n for n in self._sessions if self.configs[n].required and n in self._start_errors]
        if required:
            await self.stop()
            raise GroupStartError(self._start_errors)

    async def _start_server(self, name: str) -> None:
        await self._sessions[name].start()

    async def stop(self, timeout: float | None = 30.0) -> None:
        """Stop every server concurrently, within ``timeout`` (plus a small margin); never raises."""
        async with anyio.create_task_group() as tg:
            for session in self._sessions.values():
                tg.start_soon(session.stop, timeout)

    async def __aenter__(self) -> ServerGroup:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # -- requests across the group -----------------------------------------------------------------------

    async def list_tools(self) -> dict[str, list[types.Tool]]:
        """``{server: [Tool]}`` for every connected server, asked concurrently (failures are logged)."""
        tools: dict[str, list[types.Tool]] = {}

        async def list_one(name: str, session: ManagedSession) -> None:
            try:
                tools[name] = await session.list_tools()
            except (MCPConnectionError, RuntimeError) as exc:
                logger.warning("%s: list_tools failed: %s", name, exc)
            else:
                self._tool_counts[name] = len(tools[name])

        async with anyio.create_task_group() as tg:
            for name, session in self._sessions.items():
                if session.state is ConnectionState.CONNECTED:
                    tg.start_soon(list_one, name, session)
        return {name: tools[name] for name in self._sessions if name in tools}

    async def call_tool(self, server: str, tool: str, arguments: dict[str, Any] | None = None) -> types.CallToolResult:
        """Call ``tool`` on ``server``."""
        return await self[server].call_tool(tool, arguments)

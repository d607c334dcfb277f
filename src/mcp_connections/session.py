"""A session that stays usable: the MCP handshake, timeouts, health checks and restarts over a manager.

Design: one task that the session owns (the *owner*) starts the manager, enters ``mcp.ClientSession``,
runs ``initialize`` under ``init_timeout``, and then watches the connection: the manager ending (the
server died), a ping going unanswered (the server hung), or ``stop()``. On a loss it tears the
connection down, and when a ``RestartPolicy`` allows it, waits the policy's backoff and opens a new
connection with a fresh ``initialize``. Every entry and exit of the transport and the ``ClientSession``
happens in that one task, so any task may call the session's methods or stop it.

Requests run in the caller's task against the current connection, each inside a cancel scope that
the owner cancels when that connection is lost: an in-flight request fails with
``ConnectionLostError`` as soon as the loss is known, whatever the transport does with it. Requests are
never retried on another connection (a tool call is not idempotent); requests made while the session
reconnects wait for the new connection, within their timeout. One exception, which the streamable HTTP
spec asks for: a request that finds its HTTP session expired (404) re-initializes and is sent once more,
since the server never saw it.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any, TypeVar

import anyio
import mcp_types as types
from mcp import ClientSession
from mcp.shared.exceptions import MCPError

from .base import RUNNING_STATES, ConnectionManager, ConnectionState, consume_result, describe_exception
from .errors import (
    ConnectError,
    ConnectionLostError,
    HandshakeTimeoutError,
    MCPConnectionError,
    RequestTimeoutError,
)
from .restart import RestartPolicy, RestartTracker

__all__ = ["ManagedSession", "StateCallback"]

logger = logging.getLogger(__name__)

R = TypeVar("R")
StateCallback = Callable[[ConnectionState, ConnectionState], object]

# Time a hung server (no answer to ping) gets to die before SIGKILL; it is hung, so no use waiting long.
HUNG_SERVER_STOP_TIMEOUT = 1.0

# Time to wait, after a request saw its connection close, for the manager to say why.
_LOSS_REASON_WAIT = 0.5

# What stop() may take beyond its timeout to wind the owner task down.
_STOP_MARGIN = 0.5

_UNSET: Any = object()


@dataclass(eq=False)
class _Connection:
    """One connection's life: its ClientSession and the requests in flight on it."""

    session: ClientSession
    scopes: set[anyio.CancelScope] = field(default_factory=set)
    lost: MCPConnectionError | None = None
    ended: anyio.Event = field(default_factory=anyio.Event)

    def end(self, error: MCPConnectionError) -> None:
        if self.lost is None:
            self.lost = error
        self.ended.set()
        for scope in list(self.scopes):
            scope.cancel()


class ManagedSession:
    """An ``mcp.ClientSession`` over a connection manager, kept alive and restarted by policy.

    ``session_options`` go to ``mcp.ClientSession`` (``client_info``, ``sampling_callback``,
    ``elicitation_callback``, ``list_roots_callback``, ``logging_callback``, ``message_handler``, ...).
    """

    def __init__(
        self,
        manager: ConnectionManager[Any],
        *,
        restart: RestartPolicy | None = None,
        init_timeout: float = 30.0,
        request_timeout: float | None = None,
        ping_interval: float | None = None,
        ping_timeout: float = 10.0,
        **session_options: Any,
    ) -> None:
        self.manager = manager
        self.restart_policy = restart
        self.init_timeout = init_timeout
        self.request_timeout = request_timeout
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.session_options = session_options
        self.restarts = 0
        self.initialize_result: types.InitializeResult | None = None
        self._state = ConnectionState.IDLE
        self._error: BaseException | None = None
        self._callbacks: list[StateCallback] = []
        self._current: _Connection | None = None
        self._changed: anyio.Event | None = None
        self._closed: anyio.Event | None = None
        self._owner: asyncio.Task[None] | None = None
        self._owner_scope: anyio.CancelScope | None = None
        self._stop_called = False
        self._stop_deadline: float | None = None
        self._renew: _Connection | None = None

    # -- state -----------------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """How errors and logs name this server: the manager's name."""
        return self.manager.name

    @property
    def state(self) -> ConnectionState:
        """Where the session is in its life; ``CONNECTING`` also while it reconnects."""
        return self._state

    @property
    def error(self) -> BaseException | None:
        """Why the session failed (or, while it reconnects, why it was lost), else None."""
        return self._error

    @property
    def session(self) -> ClientSession | None:
        """The current ``mcp.ClientSession``, for everything this class does not wrap; None when not connected."""
        current = self._current
        return current.session if current is not None and self._state is ConnectionState.CONNECTED else None

    def on_state_change(self, callback: StateCallback) -> None:
        """Call ``callback(old, new)`` at every change of ``state``."""
        self._callbacks.append(callback)

    def _set_state(self, new: ConnectionState) -> None:
        old = self._state
        if new is old:
            return
        self._state = new
        logger.debug("%s: session %s -> %s", self.name, old, new)
        if self._changed is not None:
            self._changed.set()
            self._changed = anyio.Event()
        for callback in list(self._callbacks):
            try:
                callback(old, new)
            except Exception:
                logger.exception("%s: state callback %r raised", self.name, callback)

    # -- lifecycle -------------------------------------------------------------------------------------

    async def start(self) -> types.InitializeResult:
        """Connect and initialize; return the server's ``InitializeResult``.

        Raises ``RuntimeError`` when already running, ``HandshakeTimeoutError`` when the server does not
        answer ``initialize`` within ``init_timeout`` (the server is stopped), and the manager's error
        when the connection cannot be made.
        """
        if self._state is ConnectionState.STOPPING:
            await self.wait_closed()
        if self._state in RUNNING_STATES:
            raise RuntimeError(f"{self.name}: start() called while {self._state}; call stop() first")
        self._error = None
        self._stop_called = False
        self._stop_deadline = None
        self._owner_scope = None
        self.restarts = 0
        self._changed = anyio.Event()
        self._closed = anyio.Event()
        self._set_state(ConnectionState.CONNECTING)
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[types.InitializeResult] = loop.create_future()
        self._owner = loop.create_task(self._run(ready), name=f"mcp-connections session of {self.name}")
        try:
            return await asyncio.shield(ready)
        except asyncio.CancelledError:
            ready.add_done_callback(consume_result)
            with anyio.CancelScope(shield=True):
                await self.stop(HUNG_SERVER_STOP_TIMEOUT * 5)
            raise

    async def stop(self, timeout: float | None = 30.0) -> None:
        """Close the session and its connection within ``timeout`` (plus a small margin); never raises."""
        try:
            if self._state not in RUNNING_STATES:
                return
            limit = timeout if timeout is not None and timeout > 0 else None
            if not self._stop_called:
                self._stop_called = True
                self._stop_deadline = None if limit is None else anyio.current_time() + limit
                self._set_state(ConnectionState.STOPPING)
                if self._current is not None:  # in-flight requests learn why before the transport closes
                    self._current.end(ConnectionLostError("the session was stopped", server=self.name))
                if self._owner_scope is not None:
                    self._owner_scope.cancel()
            await self.manager.stop(self._budget())
            closed = self._closed
            assert closed is not None
            with anyio.move_on_after(_STOP_MARGIN):
                await closed.wait()
        except Exception:
            logger.exception("%s: error while stopping the session", self.name)

    async def wait_closed(self) -> None:
        """Return once the session has ended for good (stopped, or failed past its restart policy)."""
        if self._closed is not None and self._state in RUNNING_STATES:
            await self._closed.wait()

    async def __aenter__(self) -> ManagedSession:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    def __repr__(self) -> str:
        return f"<ManagedSession {self.name!r} state={self._state} restarts={self.restarts}>"

    def _budget(self) -> float | None:
        if self._stop_deadline is None:
            return None
        return max(0.0, self._stop_deadline - anyio.current_time())

    # -- the owner task --------------------------------------------------------------------------------

    async def _run(self, ready: asyncio.Future[types.InitializeResult]) -> None:
        tracker = RestartTracker(self.restart_policy) if self.restart_policy is not None else None
        failure: BaseException | None = None
        try:
            with anyio.CancelScope() as scope:
                self._owner_scope = scope
                if self._stop_called:
                    scope.cancel()
                while True:
                    try:
                        await self._connect_and_serve(ready, tracker)
                    except MCPConnectionError as exc:
                        failure = exc
                    else:
                        # The HTTP session expired: a new one at once, not a restart the policy counts.
                        self._set_state(ConnectionState.CONNECTING)
                        continue
                    if self._stop_called:
                        break
                    self._error = failure
                    if not ready.done():
                        break  # the first connection failed: start() reports it, no restart
                    delay = tracker.lost(anyio.current_time()) if tracker is not None else None
                    if delay is None:
                        if tracker is not None:
                            logger.warning("%s: giving up after %d restarts: %s", self.name, self.restarts, failure)
                        break
                    self._set_state(ConnectionState.CONNECTING)
                    logger.info("%s: connection lost (%s); restarting in %.2fs", self.name, failure, delay)
                    await anyio.sleep(delay)
                    self.restarts += 1
        except Exception as exc:  # a bug of ours must not leave the session looking alive
            logger.exception("%s: session task failed", self.name)
            failure = ConnectError(f"session task failed: {describe_exception(exc)}", server=self.name)
            failure.__cause__ = exc
        finally:
            with anyio.CancelScope(shield=True):
                await self.manager.stop(self._budget())
            current, self._current = self._current, None
            if current is not None:
                current.end(ConnectionLostError("the session was stopped", server=self.name))
            if self._stop_called:
                if not ready.done():
                    ready.set_exception(
                        failure
                        if isinstance(failure, MCPConnectionError) and not isinstance(failure, ConnectionLostError)
                        else ConnectError("stop() was called before the session was initialized", server=self.name)
                    )
                self._set_state(ConnectionState.STOPPED)
            else:
                self._error = failure
                if not ready.done():
                    ready.set_exception(failure or ConnectError("the session ended", server=self.name))
                self._set_state(ConnectionState.FAILED)
            assert self._closed is not None
            self._closed.set()

    async def _connect_and_serve(
        self, ready: asyncio.Future[types.InitializeResult], tracker: RestartTracker | None
    ) -> None:
        """One connection, from start to end: raise the error that ended it; return to renew at once."""
        streams = await self.manager.start()
        try:
            # Errors are returned out of the ClientSession, not raised inside it: its task group would
            # wrap them in an ExceptionGroup.
            async with ClientSession(*streams, **self.session_options) as session:
                error = await self._serve(session, ready, tracker)
        finally:
            with anyio.CancelScope(shield=True):
                await self.manager.stop(self._budget() if self._stop_called else HUNG_SERVER_STOP_TIMEOUT)
        if error is not None:
            raise error

    async def _serve(
        self, session: ClientSession, ready: asyncio.Future[types.InitializeResult], tracker: RestartTracker | None
    ) -> MCPConnectionError | None:
        try:
            with anyio.fail_after(self.init_timeout):
                result = await session.initialize()
        except TimeoutError as exc:
            error: MCPConnectionError = HandshakeTimeoutError(
                f"no answer to initialize within {self.init_timeout:g}s; the server was stopped. "
                "Check that it speaks MCP on this transport, or raise init_timeout.",
                server=self.name,
            )
            error.__cause__ = exc
            return error
        except (MCPError, anyio.BrokenResourceError, anyio.ClosedResourceError) as exc:
            error = await self._loss_reason(exc, "initialize")
            if error.__cause__ is None:
                error.__cause__ = exc
            return error
        connection = _Connection(session)
        self.initialize_result = result
        self._current = connection
        self._error = None
        if tracker is not None:
            tracker.connected(anyio.current_time())
        self._set_state(ConnectionState.CONNECTED)
        if not ready.done():
            ready.set_result(result)
        try:
            error = await self._watch(connection)
            if self._renew is connection and not self._stop_called:
                self._renew = None
                return None
            return error
        finally:
            self._current = None
            connection.end(
                ConnectionLostError("the session was stopped", server=self.name)
                if self._stop_called
                else ConnectionLostError("the connection was lost", server=self.name)
            )

    async def _watch(self, connection: _Connection) -> MCPConnectionError:
        """Wait until the connection ends; return why (and end the connection's requests with it)."""

        def manager_closed() -> None:
            error = self.manager.error
            if not isinstance(error, MCPConnectionError):
                error = ConnectionLostError("the connection closed", server=self.name)
            connection.end(error)

        # A callback, not a task: one task less per connection, in memory and in start-up time.
        remove = self.manager._on_closed(manager_closed)
        try:
            if not self.ping_interval:
                await connection.ended.wait()
            else:
                async with anyio.create_task_group() as tg:
                    tg.start_soon(self._ping_until_hung, connection, self.ping_interval)
                    await connection.ended.wait()
                    tg.cancel_scope.cancel()
        finally:
            remove()
        assert connection.lost is not None
        return connection.lost

    async def _ping_until_hung(self, connection: _Connection, interval: float) -> None:
        while True:
            await anyio.sleep(interval)
            try:
                with anyio.fail_after(self.ping_timeout):
                    await connection.session.send_ping()
            except TimeoutError:
                logger.warning("%s: no answer to ping within %gs; stopping it", self.name, self.ping_timeout)
                connection.end(
                    ConnectionLostError(
                        f"the server did not answer a ping within {self.ping_timeout:g}s and was stopped as hung",
                        server=self.name,
                    )
                )
            except MCPError as exc:
                if exc.code == types.CONNECTION_CLOSED:
                    return  # the manager reports the reason
                logger.debug("%s: ping answered with an error (alive): %s", self.name, exc)

    async def _loss_reason(self, exc: BaseException, what: str) -> MCPConnectionError:
        """The manager's account of a connection that closed under a request, or a generic one."""
        if isinstance(exc, MCPError) and exc.code != types.CONNECTION_CLOSED:
            return ConnectError(f"the server answered {what} with an error: {exc}", server=self.name)
        with anyio.move_on_after(_LOSS_REASON_WAIT):
            while self.manager.error is None and self.manager.state is ConnectionState.CONNECTED:
                await anyio.sleep(0.01)
        error = self.manager.error
        if isinstance(error, MCPConnectionError):
            return error
        return ConnectionLostError(f"the connection closed during {what}: {describe_exception(exc)}", server=self.name)

    # -- requests --------------------------------------------------------------------------------------

    async def _acquire(self, deadline: float) -> _Connection:
        """The current connection, waiting (until ``deadline``) while the session (re)connects."""
        while True:
            state = self._state
            current = self._current
            if state is ConnectionState.CONNECTED and current is not None and current.lost is None:
                return current
            if state is ConnectionState.FAILED:
                raise ConnectionLostError(
                    f"the session has failed ({self._error}); start() it again", server=self.name
                ) from self._error
            if state in (ConnectionState.IDLE, ConnectionState.STOPPED, ConnectionState.STOPPING):
                raise RuntimeError(f"{self.name}: the session is not running ({state}); call start() first")
            changed = self._changed
            assert changed is not None
            with anyio.move_on_after(deadline - anyio.current_time()):
                await changed.wait()
                continue
            raise RequestTimeoutError("no connection became ready before the request's timeout", server=self.name)

    async def _request(
        self, what: str, send: Callable[[ClientSession], Awaitable[R]], timeout: float | None = _UNSET
    ) -> R:
        if timeout is _UNSET:
            timeout = self.request_timeout
        deadline = anyio.current_time() + timeout if timeout is not None and timeout > 0 else math.inf
        retried = False
        while True:
            connection = self._current
            if self._state is not ConnectionState.CONNECTED or connection is None or connection.lost is not None:
                connection = await self._acquire(deadline)
            with anyio.CancelScope(deadline=deadline) as scope:
                connection.scopes.add(scope)
                try:
                    return await send(connection.session)
                except MCPError as exc:
                    if exc.code == types.CONNECTION_CLOSED:
                        lost = await self._lost_during(connection, what, exc)
                        raise lost from lost.__cause__
                    if _session_expired(exc) and not retried:
                        retried = True
                        logger.info("%s: HTTP session expired; re-initializing and sending %s again", self.name, what)
                        connection.end(ConnectionLostError("the HTTP session expired", server=self.name))
                        self._renew = connection
                        continue
                    raise
                except (anyio.BrokenResourceError, anyio.ClosedResourceError) as exc:
                    lost = await self._lost_during(connection, what, exc)
                    raise lost from lost.__cause__
                finally:
                    connection.scopes.discard(scope)
            if connection.lost is not None:
                lost = await self._lost_during(connection, what, None)
                raise lost from lost.__cause__
            raise RequestTimeoutError(
                f"{what} got no answer within {timeout:g}s; it was cancelled on the server", server=self.name
            )

    async def _lost_during(self, connection: _Connection, what: str, exc: BaseException | None) -> ConnectionLostError:
        if connection.lost is None and exc is not None:
            connection.end(await self._loss_reason(exc, what))
        reason = connection.lost
        error = ConnectionLostError(f"connection lost during {what}: {reason}", server=self.name)
        error.__cause__ = reason
        return error

    async def send_ping(self, *, timeout: float | None = _UNSET) -> types.EmptyResult:
        """Ping the server."""
        return await self._request("ping", lambda s: s.send_ping(), timeout)

    async def list_tools(self, *, timeout: float | None = _UNSET) -> list[types.Tool]:
        """Every tool of the server (all pages)."""

        async def send(s: ClientSession) -> list[types.Tool]:
            return await _all_pages(s.list_tools, lambda r: r.tools)

        return await self._request("tools/list", send, timeout)

    async def call_tool(
        self, name: str, arguments: dict[str, Any] | None = None, *, timeout: float | None = _UNSET
    ) -> types.CallToolResult:
        """Call a tool; a tool's own failure comes back as a result with ``is_error``, not as an exception."""

        async def send(s: ClientSession) -> types.CallToolResult:
            return await s.call_tool(name, arguments)

        return await self._request(f"tools/call {name!r}", send, timeout)

    async def list_resources(self, *, timeout: float | None = _UNSET) -> list[types.Resource]:
        """Every resource of the server (all pages)."""

        async def send(s: ClientSession) -> list[types.Resource]:
            return await _all_pages(s.list_resources, lambda r: r.resources)

        return await self._request("resources/list", send, timeout)

    async def read_resource(self, uri: str, *, timeout: float | None = _UNSET) -> types.ReadResourceResult:
        """Read one resource."""

        async def send(s: ClientSession) -> types.ReadResourceResult:
            return await s.read_resource(uri)

        return await self._request(f"resources/read {uri!r}", send, timeout)

    async def list_prompts(self, *, timeout: float | None = _UNSET) -> list[types.Prompt]:
        """Every prompt of the server (all pages)."""

        async def send(s: ClientSession) -> list[types.Prompt]:
            return await _all_pages(s.list_prompts, lambda r: r.prompts)

        return await self._request("prompts/list", send, timeout)

    async def get_prompt(
        self, name: str, arguments: dict[str, str] | None = None, *, timeout: float | None = _UNSET
    ) -> types.GetPromptResult:
        """Get one prompt, filled with ``arguments``."""

        async def send(s: ClientSession) -> types.GetPromptResult:
            return await s.get_prompt(name, arguments)

        return await self._request(f"prompts/get {name!r}", send, timeout)


async def _all_pages(list_page: Callable[..., Awaitable[Any]], items: Callable[[Any], list[R]]) -> list[R]:
    """Follow ``next_cursor`` through every page of a list request."""
    result = await list_page()
    collected = list(items(result))
    seen: set[str] = set()
    while result.next_cursor and result.next_cursor not in seen:
        seen.add(result.next_cursor)
        result = await list_page(params=types.PaginatedRequestParams(cursor=result.next_cursor))
        collected.extend(items(result))
    return collected


def _session_expired(exc: MCPError) -> bool:
    """Whether an error is the streamable HTTP transport's "session terminated" (HTTP 404 with a session id)."""
    return exc.code == types.INVALID_REQUEST and exc.message == "Session terminated"

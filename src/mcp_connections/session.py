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

import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio
import mcp_types as types
from mcp import ClientSession
from mcp.shared.exceptions import MCPError

from ._lifecycle import ABANDONED_START_STOP_TIMEOUT, RUNNING_STATES, ConnectionState, Lifecycle, LifecycleOwner, Ready
from .base import ConnectionManager, describe_exception
from .errors import (
    ConnectError,
    ConnectionLostError,
    HandshakeTimeoutError,
    MCPConnectionError,
    RequestTimeoutError,
)
from .restart import RestartPolicy, RestartTracker

__all__ = ["ManagedSession", "StateCallback"]

logger = logging.getLogger("mcp_connections.session")

R = TypeVar("R")
StateCallback = Callable[[ConnectionState, ConnectionState], object]

# Time a hung server (no answer to ping) gets to die before SIGKILL; it is hung, so no use waiting long.
HUNG_SERVER_STOP_TIMEOUT = 1.0

# Time to wait, after a request saw its connection close, for the manager to say why.
_LOSS_REASON_WAIT = 0.5

_UNSET: Any = object()


@dataclass(eq=False)
class _Connection:
    """One connection's life: its ClientSession and the requests in flight on it."""

    session: ClientSession
    scopes: set[anyio.CancelScope] = field(default_factory=set)
    lost: MCPConnectionError | None = None
    ended: anyio.Event = field(default_factory=anyio.Event)
    # Its HTTP session expired under a request: open a new one at once, not a restart the policy counts.
    renew: bool = False

    def end(self, error: MCPConnectionError) -> None:
        if self.lost is None:
            self.lost = error
        self.ended.set()
        for scope in list(self.scopes):
            scope.cancel()


class ManagedSession(LifecycleOwner):
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
        self._lifecycle: Lifecycle[types.InitializeResult] = Lifecycle(
            self,
            lambda: self.name,
            logger,
            what="session",
            stopped_early="stop() was called before the session was initialized",
            on_change=self._state_changed,
        )
        self._callbacks: list[StateCallback] = []
        self._current: _Connection | None = None
        # Set (and replaced) at every change of state: requests waiting for a connection watch it.
        self._changed = anyio.Event()
        # One callback for the manager's whole life: it ends whichever connection is current.
        manager.add_close_callback(self._manager_closed)

    # -- state -----------------------------------------------------------------------------------------

    @property
    def name(self) -> str:
        """How errors and logs name this server: the manager's name."""
        return self.manager.name

    @property
    def session(self) -> ClientSession | None:
        """The current ``mcp.ClientSession``, for everything this class does not wrap; None when not connected."""
        current = self._current
        return current.session if current is not None and self.state is ConnectionState.CONNECTED else None

    def on_state_change(self, callback: StateCallback) -> None:
        """Call ``callback(old, new)`` at every change of ``state``."""
        self._callbacks.append(callback)

    def _set_state(self, new: ConnectionState) -> None:
        self._lifecycle.set_state(new)

    def _state_changed(self, old: ConnectionState, new: ConnectionState) -> None:
        self._changed.set()
        self._changed = anyio.Event()
        for callback in list(self._callbacks):
            try:
                callback(old, new)
            except Exception:
                logger.exception("%s: state callback %r raised", self.name, callback)

    def _manager_closed(self, manager: ConnectionManager[Any]) -> None:
        current = self._current
        if current is None:
            return
        error = manager.error
        if not isinstance(error, MCPConnectionError):
            error = ConnectionLostError("the connection closed", server=self.name)
        current.end(error)

    # -- lifecycle -------------------------------------------------------------------------------------

    async def start(self) -> types.InitializeResult:
        """Connect and initialize; return the server's ``InitializeResult``.

        Raises ``RuntimeError`` when already running, ``HandshakeTimeoutError`` when the server does not
        answer ``initialize`` within ``init_timeout`` (the server is stopped), and the manager's error
        when the connection cannot be made.
        """
        await self._lifecycle.prepare_start()
        self.restarts = 0
        self._changed = anyio.Event()
        return await self._lifecycle.start(self._run, lambda: self.stop(ABANDONED_START_STOP_TIMEOUT))

    async def stop(self, timeout: float | None = 30.0) -> None:
        """Close the session and its connection within ``timeout`` (plus a small margin); never raises."""

        def request(previous: ConnectionState) -> None:
            if self._current is not None:  # in-flight requests learn why before the transport closes
                self._current.end(ConnectionLostError("the session was stopped", server=self.name))
            self._lifecycle.cancel_owner()

        await self._lifecycle.stop(timeout, request, lambda: self.manager.stop(self._stop_budget()))

    async def __aenter__(self) -> ManagedSession:
        await self.start()
        return self

    def __repr__(self) -> str:
        return f"<ManagedSession {self.name!r} state={self.state} restarts={self.restarts}>"

    # -- the owner task --------------------------------------------------------------------------------

    async def _run(self, ready: Ready[types.InitializeResult]) -> BaseException | None:
        tracker = RestartTracker(self.restart_policy) if self.restart_policy is not None else None
        failure: BaseException | None = None
        try:
            with self._lifecycle.scope:
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
                    self._lifecycle.error = failure
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
        finally:
            with anyio.CancelScope(shield=True):
                await self.manager.stop(self._stop_budget())
            current, self._current = self._current, None
            if current is not None:
                current.end(ConnectionLostError("the session was stopped", server=self.name))
        if self._stop_called:
            if isinstance(failure, MCPConnectionError) and not isinstance(failure, ConnectionLostError):
                ready.fail(failure)  # start() says why it did not get through, though the end is STOPPED
            return None
        return failure or ConnectError("the session ended", server=self.name)

    async def _connect_and_serve(self, ready: Ready[types.InitializeResult], tracker: RestartTracker | None) -> None:
        """One connection, from start to end: raise the error that ended it; return to renew at once."""
        streams = await self.manager.start()
        try:
            # Errors are returned out of the ClientSession, not raised inside it: its task group would
            # wrap them in an ExceptionGroup.
            async with ClientSession(*streams, **self.session_options) as session:
                error = await self._serve(session, ready, tracker)
        finally:
            with anyio.CancelScope(shield=True):
                await self.manager.stop(self._stop_budget() if self._stop_called else HUNG_SERVER_STOP_TIMEOUT)
        if error is not None:
            raise error

    async def _serve(
        self, session: ClientSession, ready: Ready[types.InitializeResult], tracker: RestartTracker | None
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
        self._lifecycle.error = None
        if tracker is not None:
            tracker.connected(anyio.current_time())
        self._set_state(ConnectionState.CONNECTED)
        ready.succeed(result)
        try:
            error = await self._watch(connection)
            if connection.renew and not self._stop_called:
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
        if self.manager.state not in RUNNING_STATES:  # closed before we looked: the close callback came too early
            self._manager_closed(self.manager)
        if not self.ping_interval:
            await connection.ended.wait()
        else:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._ping_until_hung, connection, self.ping_interval)
                await connection.ended.wait()
                tg.cancel_scope.cancel()
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
            state = self.state
            current = self._current
            if state is ConnectionState.CONNECTED and current is not None and current.lost is None:
                return current
            if state is ConnectionState.FAILED:
                raise ConnectionLostError(
                    f"the session has failed ({self.error}); start() it again", server=self.name
                ) from self.error
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
            if self.state is not ConnectionState.CONNECTED or connection is None or connection.lost is not None:
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
                        connection.renew = True
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

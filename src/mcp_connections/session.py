"""A session that stays usable: negotiation, timeouts, health checks and restarts over a manager.

Design: one task that the session owns (the *owner*) starts the manager, enters the SDK's ``mcp.Client``
over its streams, lets it negotiate the protocol generation under ``init_timeout`` (``mode="auto"``:
``server/discover``, falling back to the ``initialize`` handshake; see ``_generations``), and then watches
the connection: the manager ending (the server died), a health probe going unanswered (the server hung),
or ``stop()``. Beside it run the listen stream of a modern server and the delivery of list-changed
callbacks. On a loss it tears the connection down, and when a ``RestartPolicy`` allows it, waits the
policy's backoff and opens a new connection, negotiated afresh. Every entry and exit of the transport
and the ``Client`` happens in that one task, so any task may call the session's methods or stop it.

Requests run in the caller's task against the current connection, each inside a cancel scope that
the owner cancels when that connection is lost: an in-flight request fails with
``ConnectionLostError`` as soon as the loss is known, whatever the transport does with it. Requests are
never retried on another connection (a tool call is not idempotent); requests made while the session
reconnects wait for the new connection, within their timeout. One exception, which the streamable HTTP
spec asks for: a request that finds its HTTP session expired (404) re-initializes and is sent once more,
since the server never saw it.
"""

from __future__ import annotations

import inspect
import logging
import math
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

import anyio
import anyio.abc
import mcp_types as types
from mcp import Client, ClientSession
from mcp.client.subscriptions import ListenNotSupportedError, SubscriptionLost
from mcp.shared.exceptions import MCPError

from ._events import EventHub, observe
from ._generations import (
    CLIENT_OPTIONS,
    ChangeKind,
    StreamsTransport,
    change_kind,
    check_mode,
    is_modern,
    listen_filter,
)
from ._lifecycle import ABANDONED_START_STOP_TIMEOUT, RUNNING_STATES, ConnectionState, Lifecycle, LifecycleOwner, Ready
from ._otel import traced_streams
from ._requests import _UNSET, SessionRequests
from .base import ConnectionManager, describe_exception
from .errors import (
    ConfigError,
    ConnectError,
    ConnectionLostError,
    HandshakeTimeoutError,
    MCPConnectionError,
    RequestTimeoutError,
)
from .events import EventCallback
from .restart import RestartPolicy, RestartTracker

__all__ = ["ListChangedCallback", "ManagedSession", "StateCallback"]

logger = logging.getLogger(__name__)

R = TypeVar("R")
StateCallback = Callable[[ConnectionState, ConnectionState], object]
ListChangedCallback = Callable[[ChangeKind], object]

# Time a hung server (no answer to ping) gets to die before SIGKILL; it is hung, so no use waiting long.
HUNG_SERVER_STOP_TIMEOUT = 1.0

# Time to wait, after a request saw its connection close, for the manager to say why.
_LOSS_REASON_WAIT = 0.5

# Wait before re-opening a modern server's listen stream that dropped while the connection lived.
_RELISTEN_DELAY = 1.0


@dataclass(eq=False)
class _Connection:
    """One connection's life: its ClientSession and the requests in flight on it."""

    client: Client
    scopes: set[anyio.CancelScope] = field(default_factory=set)
    lost: MCPConnectionError | None = None
    ended: anyio.Event = field(default_factory=anyio.Event)
    # Its HTTP session expired under a request: open a new one at once, not a restart the policy counts.
    renew: bool = False
    # Where list-changed callbacks run (not in the SDK's receive loop, which a callback's request would block).
    tasks: anyio.abc.TaskGroup | None = None

    @property
    def session(self) -> ClientSession:
        return self.client.session

    def end(self, error: MCPConnectionError) -> None:
        if self.lost is None:
            self.lost = error
        self.ended.set()
        for scope in list(self.scopes):
            scope.cancel()

    def list_changed(self, kind: ChangeKind, session: ManagedSession) -> None:
        if self.tasks is not None and session._list_changed:
            self.tasks.start_soon(session._deliver_list_changed, kind)


class ManagedSession(SessionRequests, LifecycleOwner):
    """An MCP session over a connection manager, of either protocol generation, kept alive and restarted by policy.

    ``mode`` is ``"auto"`` (probe ``server/discover``, fall back to the handshake, as ``mcp.Client`` does),
    ``"legacy"`` (the handshake only) or a modern version string such as ``"2026-07-28"`` (pinned).
    ``session_options`` go to ``mcp.Client`` (``client_info``, ``sampling_callback``, ``elicitation_callback``,
    ``input_required_max_rounds``, ``list_roots_callback``, ``logging_callback``, ``message_handler``,
    ``cache``, ...).
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
        mode: str = "auto",
        **session_options: Any,
    ) -> None:
        if (problem := check_mode(mode)) is not None:
            raise ConfigError(problem, server=manager.name)
        unknown = sorted(set(session_options) - CLIENT_OPTIONS)
        if unknown:
            raise TypeError(f"ManagedSession got unknown options {unknown}; it takes those of mcp.Client")
        self.manager = manager
        self.mode = mode
        self.restart_policy = restart
        self.init_timeout = init_timeout
        self.request_timeout = request_timeout
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.session_options = session_options
        self.restarts = 0
        self.initialize_result: types.InitializeResult | None = None
        self.discover_result: types.DiscoverResult | None = None
        self.protocol_version: str | None = None
        self.server_info: types.Implementation | None = None
        self.capabilities: types.ServerCapabilities | None = None
        self._list_changed: list[ListChangedCallback] = []
        self._lifecycle: Lifecycle[types.InitializeResult | types.DiscoverResult] = Lifecycle(
            self,
            lambda: self.name,
            logger,
            what="session",
            stopped_early="stop() was called before the session was initialized",
            on_change=self._state_changed,
        )
        self._callbacks: list[StateCallback] = []
        self._events = EventHub(lambda: self.name)
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

    def on_event(self, callback: EventCallback) -> Callable[[], None]:
        """Call ``callback(event)`` for every event of this session (``mcp_connections.events``): state changes,
        restarts with their cause, and the end of each request; returns a remover. Plain or ``async def``."""
        return self._events.add(callback)

    def on_list_changed(self, callback: ListChangedCallback) -> Callable[[], None]:
        """Call ``callback(kind)`` when the server's tools, prompts or resources change; returns a remover.

        ``kind`` is ``"tools"``, ``"prompts"`` or ``"resources"``. It fires for a legacy server's
        ``notifications/*/list_changed`` and for a modern server's ``subscriptions/listen`` events (the stream
        is kept open by the session and opened again after a reconnect). The session's cached lists are
        invalidated before it runs, so a ``list_tools()`` inside it sees the change. Plain or ``async def``;
        one that raises is logged with the server's name.
        """
        self._list_changed.append(callback)

        def remove() -> None:
            if callback in self._list_changed:
                self._list_changed.remove(callback)

        return remove

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
        self._events.state_changed(old, new, self._lifecycle.error)

    def _manager_closed(self, manager: ConnectionManager[Any]) -> None:
        current = self._current
        if current is None:
            return
        error = manager.error
        if not isinstance(error, MCPConnectionError):
            error = ConnectionLostError("the connection closed", server=self.name)
        current.end(error)

    # -- lifecycle -------------------------------------------------------------------------------------

    async def start(self) -> types.InitializeResult | types.DiscoverResult:
        """Connect and negotiate; return the server's ``InitializeResult`` (legacy) or ``DiscoverResult`` (modern).

        Raises ``RuntimeError`` when already running, ``HandshakeTimeoutError`` when the server does not
        answer the negotiation within ``init_timeout`` (the server is stopped), and the manager's error
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

    async def _run(self, ready: Ready[types.InitializeResult | types.DiscoverResult]) -> BaseException | None:
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
                    self._events.restarted(self.restarts, failure, delay)
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

    async def _connect_and_serve(
        self, ready: Ready[types.InitializeResult | types.DiscoverResult], tracker: RestartTracker | None
    ) -> None:
        """One connection, from start to end: raise the error that ended it; return to renew at once."""
        streams = await self.manager.start()
        try:
            error = await self._negotiate_and_serve(streams, ready, tracker)
        finally:
            with anyio.CancelScope(shield=True):
                await self.manager.stop(self._stop_budget() if self._stop_called else HUNG_SERVER_STOP_TIMEOUT)
        if error is not None:
            raise error

    async def _negotiate_and_serve(
        self, streams: Any, ready: Ready[types.InitializeResult | types.DiscoverResult], tracker: RestartTracker | None
    ) -> MCPConnectionError | None:
        connection: _Connection | None = None

        async def on_message(message: Any) -> None:
            kind = change_kind(message)
            if kind is not None and connection is not None:
                connection.list_changed(kind, self)
            user = self.session_options.get("message_handler")
            if user is not None:
                await user(message)

        options = {**self.session_options, "message_handler": on_message}
        client = Client(StreamsTransport(traced_streams(streams)), mode=self.mode, **options)
        # Errors are returned out of the Client, not raised inside it: its task group would wrap them in an
        # ExceptionGroup. The negotiation's deadline is lifted once it is done, from a scope that encloses the
        # Client's task group (a scope around __aenter__ alone would be exited out of order).
        with anyio.CancelScope(deadline=anyio.current_time() + self.init_timeout) as negotiation:
            try:
                await client.__aenter__()
            except Exception as exc:
                return await self._negotiation_failed(exc)
            try:
                negotiation.deadline = math.inf
                connection = _Connection(client)
                self._connected(client.session)
                self._current = connection

                def connected() -> None:
                    self._lifecycle.error = None
                    if tracker is not None:
                        tracker.connected(anyio.current_time())
                    self._set_state(ConnectionState.CONNECTED)
                    ready.succeed(self.initialize_result or client.session.discover_result or _synthesized(client))

                try:
                    error = await self._watch(connection, connected)
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
            finally:
                # Right here, in no scope of its own: the Client's task group must be exited where it was entered.
                try:
                    await client.__aexit__(None, None, None)
                except Exception as exc:  # the connection is over; how its teardown went is no news
                    logger.debug("%s: closing the client: %s", self.name, describe_exception(exc))
        return self._handshake_timeout(None)

    def _connected(self, session: ClientSession) -> None:
        """Record what the negotiation gave: version, server, capabilities."""
        self.protocol_version = session.protocol_version
        self.initialize_result = session.initialize_result
        self.discover_result = session.discover_result
        self.server_info = session.server_info
        self.capabilities = session.server_capabilities

    def _handshake_timeout(self, exc: BaseException | None) -> MCPConnectionError:
        how = "" if self.mode == "legacy" else " (negotiating: server/discover, then the initialize handshake)"
        error = HandshakeTimeoutError(
            f"no answer to initialize within {self.init_timeout:g}s{how}; the server was stopped. "
            "Check that it speaks MCP on this transport, or raise init_timeout.",
            server=self.name,
        )
        error.__cause__ = exc or TimeoutError(f"no answer within init_timeout={self.init_timeout:g}s")
        return error

    async def _negotiation_failed(self, exc: BaseException) -> MCPConnectionError:
        leaf = exc
        while isinstance(leaf, BaseExceptionGroup):
            leaf = next((e for e in leaf.exceptions if isinstance(e, Exception)), leaf.exceptions[0])
        if isinstance(leaf, TimeoutError) or (isinstance(leaf, MCPError) and leaf.code == types.REQUEST_TIMEOUT):
            return self._handshake_timeout(leaf)
        if isinstance(leaf, MCPConnectionError):
            return leaf
        if isinstance(leaf, MCPError | anyio.BrokenResourceError | anyio.ClosedResourceError):
            # In auto mode, an error that reaches here came from initialize (the fallback) or is a refusal of
            # every version we speak (-32022, which the message quotes).
            what = "initialize" if self.mode in ("auto", "legacy") else "the negotiation"
            error = await self._loss_reason(leaf, what)
            if error.__cause__ is None:
                error.__cause__ = leaf
            return error
        error = ConnectError(f"the negotiation failed: {describe_exception(leaf)}", server=self.name)
        error.__cause__ = leaf
        return error

    async def _watch(self, connection: _Connection, connected: Callable[[], None]) -> MCPConnectionError:
        """Declare the connection up, once a modern server's listen stream is open (so that no change made
        right after start() goes unheard), and wait until it ends; return why."""
        if self.manager.state not in RUNNING_STATES:  # closed before we looked: the close callback came too early
            self._manager_closed(self.manager)
        async with anyio.create_task_group() as tg:
            connection.tasks = tg
            if is_modern(self.protocol_version):
                await tg.start(self._listen, connection)
            connected()
            if self.ping_interval:
                tg.start_soon(self._ping_until_hung, connection, self.ping_interval)
            await connection.ended.wait()
            connection.tasks = None
            tg.cancel_scope.cancel()
        assert connection.lost is not None
        return connection.lost

    async def _listen(
        self, connection: _Connection, *, task_status: anyio.abc.TaskStatus[None] = anyio.TASK_STATUS_IGNORED
    ) -> None:
        """Keep a modern server's ``subscriptions/listen`` stream open, so that its change events arrive.

        Reports started once the server acknowledged the stream (or it could not be opened: the session
        works without it)."""
        wanted = listen_filter(self.capabilities)
        started = False
        try:
            while any(wanted.values()):
                try:
                    # The ack may take init_timeout; once it came, the stream stays open as long as it likes.
                    with anyio.CancelScope(deadline=anyio.current_time() + self.init_timeout) as ack:
                        async with connection.client.listen(
                            tools_list_changed=wanted["tools"],
                            prompts_list_changed=wanted["prompts"],
                            resources_list_changed=wanted["resources"],
                        ) as subscription:
                            ack.deadline = math.inf
                            if not started:
                                started = True
                                task_status.started()
                            # Each event is also handed to the message handler as the legacy notification
                            # (after the cache eviction): on_message fires the callbacks, for both generations.
                            async for _event in subscription:
                                pass
                    if ack.cancelled_caught:
                        logger.info("%s: no answer to subscriptions/listen within %gs", self.name, self.init_timeout)
                    return  # closed gracefully (or never acknowledged): the server has nothing more to tell
                except ListenNotSupportedError:
                    return
                except (
                    MCPError,
                    SubscriptionLost,
                    TimeoutError,
                    anyio.BrokenResourceError,
                    anyio.ClosedResourceError,
                ) as exc:
                    if isinstance(exc, MCPError) and exc.code != types.CONNECTION_CLOSED:
                        logger.info("%s: the server refused subscriptions/listen: %s", self.name, exc)
                        return
                    logger.debug("%s: the listen stream dropped (%s); opening it again", self.name, exc)
                if not started:
                    started = True
                    task_status.started()
                await anyio.sleep(_RELISTEN_DELAY)
        finally:
            if not started:
                task_status.started()

    async def _deliver_list_changed(self, kind: ChangeKind) -> None:
        for callback in list(self._list_changed):
            try:
                result = callback(kind)
                if inspect.isawaitable(result):
                    await result
            except Exception:
                logger.exception("%s: list-changed callback %r raised", self.name, callback)

    async def _ping_until_hung(self, connection: _Connection, interval: float) -> None:
        while True:
            await anyio.sleep(interval)
            what = "server/discover" if is_modern(self.protocol_version) else "ping"
            try:
                with anyio.fail_after(self.ping_timeout):
                    await self._probe(connection)
            except TimeoutError:
                logger.warning("%s: no answer to %s within %gs; stopping it", self.name, what, self.ping_timeout)
                connection.end(
                    ConnectionLostError(
                        f"the server did not answer a ping within {self.ping_timeout:g}s ({what}) "
                        "and was stopped as hung",
                        server=self.name,
                    )
                )
            except MCPError as exc:
                if exc.code == types.CONNECTION_CLOSED:
                    return  # the manager reports the reason
                logger.debug("%s: ping answered with an error (alive): %s", self.name, exc)

    async def _probe(self, connection: _Connection) -> None:
        """The cheapest request of the connection's generation: ``ping``, or ``server/discover`` (ping is gone)."""
        session = connection.session
        if is_modern(session.protocol_version):
            assert session.protocol_version is not None
            await session.send_discover(session.protocol_version)
        else:
            await session.send_ping()

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
        self,
        what: str,
        send: Callable[[Client], Awaitable[R]],
        timeout: float | None = _UNSET,
        *,
        target: str | None = None,
    ) -> R:
        # Its event and span (``_events``); ``target`` is the tool or prompt name, or the resource URI.
        return await observe(self._events, self, what, target, lambda: self._send_request(what, send, timeout))

    async def _send_request(self, what: str, send: Callable[[Client], Awaitable[R]], timeout: float | None) -> R:
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
                    return await send(connection.client)
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


def _synthesized(client: Client) -> types.DiscoverResult:
    """What a pinned version stands on when no DiscoverResult was given: the version alone."""
    return types.DiscoverResult(
        supported_versions=[client.protocol_version],
        capabilities=client.server_capabilities,
        result_type="complete",
        ttl_ms=0,
        cache_scope="public",
    )


def _session_expired(exc: MCPError) -> bool:
    """Whether an error is the streamable HTTP transport's "session terminated" (HTTP 404 with a session id)."""
    return exc.code == types.INVALID_REQUEST and exc.message == "Session terminated"

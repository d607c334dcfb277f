"""The connection lifecycle that every transport shares.

Design: a transport is an async context manager (the MCP SDK's own shape) that must be entered and exited
in one task, because anyio cancel scopes belong to the task that opened them. A ``ConnectionManager``
therefore runs that context manager in a task of its own, the *owner task*: ``start()`` creates the
owner, which enters the transport, hands the connection back and then waits until either ``stop()``
asks it to leave or the transport reports that the connection ended on its own. Whoever calls
``start()`` or ``stop()``, the transport is entered and exited by the owner, so opening in one task and
closing in another is fine, and the caller of ``start()`` may end while the connection lives on.

Adding a transport
------------------
Subclass ``ConnectionManager[T]`` and implement ``_connect()``, an async context manager that yields
the connection and releases everything on exit::

    class MyManager(ConnectionManager[tuple[ReadStream, WriteStream]]):
        @asynccontextmanager
        async def _connect(self):
            async with my_transport(...) as streams:
                yield streams

Inside it, three helpers are there for the transport:

* ``self._connection_lost(error)``: the connection ended on its own (server exited, socket closed).
  The owner leaves the context manager, and the manager ends ``FAILED`` with ``error``.
* ``self._stop_budget()``: seconds the cleanup may still take before ``stop()``'s deadline
  (``None`` for no limit); scale every wait in the exit path to it.
* ``self.name``: how errors and logs name this server.

Exceptions that escape ``_connect()`` are turned into ``ConnectError`` (while connecting) or
``ConnectionLostError`` (once connected) by ``_translate_error()``, which a subclass may override.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from types import TracebackType
from typing import Any, Generic, Literal, TypeVar

import anyio

from .errors import ConnectError, ConnectionLostError, MCPConnectionError

__all__ = ["ConnectionManager", "ConnectionState"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

# What stop() may take beyond its timeout: time to cut off a cleanup that overran and let it unwind.
STOP_MARGIN = 0.5

# Bound on the stop() that start() runs when its caller is cancelled mid-connect.
_ABANDONED_START_STOP_TIMEOUT = 5.0


class ConnectionState(enum.StrEnum):
    """Where a connection is in its life (a ``str``: ``ConnectionState.CONNECTED == "connected"``)."""

    IDLE = "idle"
    CONNECTING = "connecting"
    CONNECTED = "connected"
    STOPPING = "stopping"
    STOPPED = "stopped"
    FAILED = "failed"


# The states in which a connection holds resources that stop() must release.
RUNNING_STATES = frozenset({ConnectionState.CONNECTING, ConnectionState.CONNECTED, ConnectionState.STOPPING})


def unwrap_exception(exc: BaseException) -> BaseException:
    """The one exception that explains a (possibly nested) exception group: its first non-cancel leaf."""
    while isinstance(exc, BaseExceptionGroup):
        leaves = [e for e in exc.exceptions if not isinstance(e, asyncio.CancelledError)]
        exc = (leaves or list(exc.exceptions))[0]
    return exc


def describe_exception(exc: BaseException) -> str:
    """A one-line description of an exception for a message: its type and text."""
    text = str(exc).strip()
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


class ConnectionManager(ABC, Generic[T]):
    """Owns one connection to an MCP server: starts it, watches it, and stops it.

    ``start()`` returns the connection, ``stop()`` releases it from any task, ``get_streams()`` gives it
    while connected, and ``async with manager as connection:`` does both. ``state`` and ``error`` tell
    the truth about the connection at all times; ``wait_closed()`` returns once it has ended.
    """

    def __init__(self, *, name: str | None = None) -> None:
        """``name`` is how errors and logs name this server (a transport picks a default: its command or URL)."""
        self.name: str = name or type(self).__name__
        self._state = ConnectionState.IDLE
        self._error: BaseException | None = None
        self._connection: T | None = None
        self._owner: asyncio.Task[None] | None = None
        self._owner_scope: anyio.CancelScope | None = None
        self._leave: anyio.Event | None = None
        self._closed: anyio.Event | None = None
        self._lost_error: MCPConnectionError | None = None
        self._stop_called = False
        self._stop_deadline: float | None = None
        self._close_callbacks: list[Callable[[], object]] = []

    # -- the transport's side -------------------------------------------------------------------

    @abstractmethod
    def _connect(self) -> AbstractAsyncContextManager[T]:
        """Open the transport: yield the connection, release everything on exit (see the module doc)."""

    def _connection_lost(self, error: MCPConnectionError) -> None:
        """Report that the connection ended on its own; the first report wins."""
        if self._lost_error is None and not self._stop_called:
            self._lost_error = error
            self._error = error  # known now, before the cleanup ends: pending requests can name it
            logger.info("%s: %s", self.name, error.message)
        if self._leave is not None:
            self._leave.set()

    def _on_closed(self, callback: Callable[[], object]) -> Callable[[], None]:
        """Call ``callback()`` once the connection has ended (at once if it is not running); returns a remover.

        For layers above a manager (sessions), which would otherwise spend a task waiting on wait_closed().
        """
        if self._state not in RUNNING_STATES:
            callback()
            return lambda: None
        self._close_callbacks.append(callback)
        return lambda: self._close_callbacks.remove(callback) if callback in self._close_callbacks else None

    def _stop_budget(self) -> float | None:
        """Seconds the cleanup may still take before stop()'s deadline, or None for no limit."""
        if self._stop_deadline is None:
            return None
        return max(0.0, self._stop_deadline - anyio.current_time())

    def _translate_error(self, exc: BaseException, phase: Literal["connect", "connected"]) -> MCPConnectionError:
        """Turn an exception that escaped the transport into this library's error (cause chained by caller)."""
        leaf = unwrap_exception(exc)
        if isinstance(leaf, MCPConnectionError):
            return leaf
        if phase == "connect":
            return ConnectError(
                f"could not connect: {describe_exception(leaf)}. Check that the server is running and reachable.",
                server=self.name,
            )
        return ConnectionLostError(f"connection lost: {describe_exception(leaf)}", server=self.name)

    # -- the public API ------------------------------------------------------------------------------

    @property
    def state(self) -> ConnectionState:
        """Where the connection is in its life."""
        return self._state

    @property
    def error(self) -> BaseException | None:
        """Why the connection failed, or None."""
        return self._error

    def get_streams(self) -> T | None:
        """The connection while connected, else None."""
        return self._connection if self._state is ConnectionState.CONNECTED else None

    async def start(self) -> T:
        """Establish the connection in a task that the manager owns, and return it.

        Raises ``RuntimeError`` while connecting or connected, and an ``MCPConnectionError`` subclass
        (cause chained) when the connection cannot be established.
        """
        if self._state is ConnectionState.STOPPING:
            await self.wait_closed()
        if self._state in RUNNING_STATES:
            raise RuntimeError(f"{self.name}: start() called while {self._state}; call stop() first")
        self._error = None
        self._lost_error = None
        self._connection = None
        self._stop_called = False
        self._stop_deadline = None
        self._owner_scope = None
        self._leave = anyio.Event()
        self._closed = anyio.Event()
        self._set_state(ConnectionState.CONNECTING)
        loop = asyncio.get_running_loop()
        ready: asyncio.Future[T] = loop.create_future()
        self._owner = loop.create_task(self._run_owner(ready), name=f"mcp-connections owner of {self.name}")
        try:
            return await asyncio.shield(ready)
        except asyncio.CancelledError:
            # The caller gave up: the attempt must not outlive it.
            ready.add_done_callback(consume_result)
            with anyio.CancelScope(shield=True):
                await self.stop(_ABANDONED_START_STOP_TIMEOUT)
            raise

    async def stop(self, timeout: float | None = 30.0) -> None:
        """Close the connection and release every resource, within ``timeout`` seconds plus a small margin.

        Idempotent, safe from any task and concurrently, and never raises. ``None`` or ``<= 0`` means no
        limit.
        """
        try:
            if self._state not in RUNNING_STATES:
                return
            limit = timeout if timeout is not None and timeout > 0 else None
            if not self._stop_called:
                self._stop_called = True
                self._stop_deadline = None if limit is None else anyio.current_time() + limit
                if self._state is ConnectionState.CONNECTING:
                    if self._owner_scope is not None:
                        self._owner_scope.cancel()
                else:
                    self._set_state(ConnectionState.STOPPING)
                assert self._leave is not None
                self._leave.set()
            closed = self._closed
            assert closed is not None
            with anyio.move_on_after(None if limit is None else limit + STOP_MARGIN / 2):
                await closed.wait()
            if not closed.is_set():
                # The cleanup overran its budget: cut it off (shielded kills still complete).
                logger.warning("%s: stop() timed out after %.1fs; cutting off the cleanup", self.name, limit)
                if self._owner_scope is not None:
                    self._owner_scope.cancel()
                with anyio.move_on_after(STOP_MARGIN / 2):
                    await closed.wait()
        except Exception:  # stop() never raises: a failing cleanup is logged, not thrown at the caller
            logger.exception("%s: error while stopping", self.name)

    async def wait_closed(self) -> None:
        """Return once the connection has ended for any reason (at once when it is not running)."""
        if self._closed is not None and self._state in RUNNING_STATES:
            await self._closed.wait()

    async def __aenter__(self) -> T:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} state={self._state}>"

    # -- the owner task ------------------------------------------------------------------------------

    def _set_state(self, new: ConnectionState) -> None:
        if new is not self._state:
            logger.debug("%s: %s -> %s", self.name, self._state, new)
            self._state = new

    async def _run_owner(self, ready: asyncio.Future[T]) -> None:
        failure: MCPConnectionError | None = None
        assert self._leave is not None and self._closed is not None
        try:
            with anyio.CancelScope() as scope:
                self._owner_scope = scope
                if self._stop_called:
                    scope.cancel()
                async with self._connect() as connection:
                    if not self._leave.is_set():
                        self._connection = connection
                        self._set_state(ConnectionState.CONNECTED)
                        ready.set_result(connection)
                        await self._leave.wait()
                    self._connection = None
                    if self._lost_error is None:
                        self._set_state(ConnectionState.STOPPING)
        except Exception as exc:
            failure = self._translate_error(exc, "connected" if ready.done() else "connect")
            if failure is not exc and failure.__cause__ is None:
                failure.__cause__ = unwrap_exception(exc)
        finally:
            self._connection = None
            if self._lost_error is not None:
                failure = self._lost_error
            elif self._stop_called and failure is not None:
                # Asked to stop: whatever the cleanup raised is not the connection's failure.
                logger.debug("%s: error while stopping: %s", self.name, failure)
                failure = None
            if failure is not None:
                self._error = failure
                if not ready.done():
                    ready.set_exception(failure)
                self._set_state(ConnectionState.FAILED)
            else:
                if not ready.done():
                    ready.set_exception(
                        ConnectError("stop() was called before the connection was established", server=self.name)
                    )
                self._set_state(ConnectionState.STOPPED)
            self._closed.set()
            callbacks, self._close_callbacks = self._close_callbacks, []
            for callback in callbacks:
                try:
                    callback()
                except Exception:
                    logger.exception("%s: close callback %r raised", self.name, callback)


def consume_result(future: asyncio.Future[Any]) -> None:
    """Mark a future's exception as retrieved, so asyncio does not log it as lost."""
    if not future.cancelled():
        future.exception()

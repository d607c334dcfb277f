"""The connection lifecycle that every transport shares.

Design: a transport is an async context manager (the MCP SDK's own shape) that must be entered and exited
in one task, because anyio cancel scopes belong to the task that opened them. A ``ConnectionManager``
therefore runs that context manager in a task of its own, the *owner task*: ``start()`` creates the
owner, which enters the transport, hands the connection back and then waits until either ``stop()``
asks it to leave or the transport reports that the connection ended on its own. Whoever calls
``start()`` or ``stop()``, the transport is entered and exited by the owner, so opening in one task and
closing in another is fine, and the caller of ``start()`` may end while the connection lives on.
That part (the owner task on asyncio or trio, the state table, the stop deadline, close callbacks) is
``_lifecycle``'s, shared with ``ManagedSession``; this module adds what a transport means to it.

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

import logging
from abc import ABC, abstractmethod
from contextlib import AbstractAsyncContextManager
from typing import Generic, Literal, TypeVar

import anyio

from ._lifecycle import ABANDONED_START_STOP_TIMEOUT, ConnectionState, Lifecycle, LifecycleOwner, Ready
from ._lifecycle import RUNNING_STATES as RUNNING_STATES  # re-exported: transports and layers import them here
from ._lifecycle import STOP_MARGIN as STOP_MARGIN
from ._lifecycle import describe_exception as describe_exception
from .errors import ConnectError, ConnectionLostError, MCPConnectionError

__all__ = ["ConnectionManager", "ConnectionState"]

logger = logging.getLogger(__name__)

T = TypeVar("T")


def unwrap_exception(exc: BaseException) -> BaseException:
    """The one exception that explains a (possibly nested) exception group: its first non-cancel leaf."""
    while isinstance(exc, BaseExceptionGroup):
        leaves: list[BaseException] = [e for e in exc.exceptions if isinstance(e, Exception)]
        exc = (leaves or list(exc.exceptions))[0]
    return exc


class ConnectionManager(LifecycleOwner, ABC, Generic[T]):
    """Owns one connection to an MCP server: starts it, watches it, and stops it.

    ``start()`` returns the connection, ``stop()`` releases it from any task, ``get_streams()`` gives it
    while connected, and ``async with manager as connection:`` does both. ``state`` and ``error`` tell
    the truth about the connection at all times; ``wait_closed()`` returns once it has ended, and the
    functions given to ``add_close_callback()`` run then.
    """

    def __init__(self, *, name: str | None = None) -> None:
        """``name`` is how errors and logs name this server (a transport picks a default: its command or URL)."""
        self.name: str = name or type(self).__name__
        self._lifecycle: Lifecycle[T] = Lifecycle(
            self,
            lambda: self.name,
            logger,
            what="connection",
            stopped_early="stop() was called before the connection was established",
        )
        self._connection: T | None = None
        # Wakes the owner to leave the transport: set by stop() and by a lost connection.
        self._leave = anyio.Event()

    # -- the transport's side -------------------------------------------------------------------

    @abstractmethod
    def _connect(self) -> AbstractAsyncContextManager[T]:
        """Open the transport: yield the connection, release everything on exit (see the module doc)."""

    def _connection_lost(self, error: MCPConnectionError) -> None:
        """Report that the connection ended on its own; the first report wins, and none after stop()."""
        lifecycle = self._lifecycle
        if lifecycle.error is None and lifecycle.state in (ConnectionState.CONNECTING, ConnectionState.CONNECTED):
            lifecycle.error = error  # known now, before the cleanup ends: pending requests can name it
            logger.info("%s: %s", self.name, error.message)
        self._leave.set()

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

    def get_streams(self) -> T | None:
        """The connection while connected, else None."""
        return self._connection if self.state is ConnectionState.CONNECTED else None

    async def start(self) -> T:
        """Establish the connection in a task that the manager owns, and return it.

        Raises ``RuntimeError`` while connecting or connected, and an ``MCPConnectionError`` subclass
        (cause chained) when the connection cannot be established.
        """
        await self._lifecycle.prepare_start()
        self._connection = None
        self._leave = anyio.Event()
        return await self._lifecycle.start(self._run_owner, lambda: self.stop(ABANDONED_START_STOP_TIMEOUT))

    async def stop(self, timeout: float | None = 30.0) -> None:
        """Close the connection and release every resource, within ``timeout`` seconds plus a small margin.

        Idempotent, safe from any task and concurrently, and never raises. ``None`` or ``<= 0`` means no
        limit.
        """

        def request(previous: ConnectionState) -> None:
            if previous is ConnectionState.CONNECTING:
                self._lifecycle.cancel_owner()  # nothing to close gracefully yet
            self._leave.set()

        await self._lifecycle.stop(timeout, request)

    async def __aenter__(self) -> T:
        return await self.start()

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.name!r} state={self.state}>"

    # -- the owner task ------------------------------------------------------------------------------

    async def _run_owner(self, ready: Ready[T]) -> BaseException | None:
        """Enter the transport, hand the connection to start(), wait to leave; return the failure, if any."""
        lifecycle = self._lifecycle
        failure: MCPConnectionError | None = None
        try:
            with lifecycle.scope:
                async with self._connect() as connection:
                    if not self._leave.is_set():
                        self._connection = connection
                        lifecycle.set_state(ConnectionState.CONNECTED)
                        ready.succeed(connection)
                        await self._leave.wait()
                    self._connection = None
        except Exception as exc:
            failure = self._translate_error(exc, "connected" if ready.done() else "connect")
            cause = unwrap_exception(exc)
            # A library error raised inside the transport's task group is its own leaf: chaining it to
            # itself would make a cycle that every walk down __cause__ loops on.
            if failure is not exc and failure is not cause and failure.__cause__ is None:
                failure.__cause__ = cause
        finally:
            self._connection = None
        if lifecycle.error is not None:
            return lifecycle.error  # lost: that is the truth, whatever the cleanup raised
        if lifecycle.stopping and failure is not None:
            # Asked to stop: whatever the cleanup raised is not the connection's failure.
            logger.debug("%s: error while stopping: %s", self.name, failure)
            return None
        return failure

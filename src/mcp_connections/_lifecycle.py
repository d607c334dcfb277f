"""The lifecycle that connection managers and sessions share: one owner task and one state machine.

Design: an object with a lifecycle (a ``ConnectionManager``, a ``ManagedSession``) runs its work in a task
of its own, the *owner*, so that ``start()`` may be called from any task and what it starts outlives that
task; transports and the SDK's sessions must be entered and exited in one task, and the owner is it.
``Lifecycle`` does the part every such object repeats: spawning the owner (``_owner_task``, the one
backend-specific module), handing the owner's result or error back to ``start()``, stopping a start whose
caller was cancelled, the stop deadline and the margin past it, the closed event, state and error, and the
close callbacks. The object supplies the owner's body and what a stop request means to it.

The state machine is a table, as h11 keeps one: ``TRANSITIONS`` lists every legal move, and
``Lifecycle.set_state`` refuses any other (``LifecycleError``, always a bug of ours). A stop request is the
move to ``STOPPING``; a connection lost is ``error`` set while running; neither needs a flag of its own.

Never stuck: whatever fails between the move to ``CONNECTING`` and the owner's body running (the task
cannot be spawned, or it is cancelled before its first step) ends the object ``FAILED`` with the error,
its closed event set, so ``stop()``, ``wait_closed()`` and a new ``start()`` behave as documented.
"""

from __future__ import annotations

import enum
import inspect
import logging
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Generic, TypeVar

import anyio

from ._owner_task import OwnerTask, spawn_owner
from .errors import ConnectError, MCPConnectionError

__all__ = [
    "RUNNING_STATES",
    "TRANSITIONS",
    "ConnectionState",
    "Lifecycle",
    "LifecycleError",
    "LifecycleOwner",
    "Ready",
    "describe_exception",
]

R = TypeVar("R")

# What stop() may take beyond its timeout: time to cut off a cleanup that overran and let it unwind.
STOP_MARGIN = 0.5

# Bound on the stop() that start() runs when its caller is cancelled mid-connect.
ABANDONED_START_STOP_TIMEOUT = 5.0

# Bound on each async close callback: a callback must not hold a close (and the stop() waiting on it) forever.
CLOSE_CALLBACK_TIMEOUT = 5.0


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

_S = ConnectionState

# Every legal move. CONNECTED -> CONNECTING is a session reconnecting; CONNECTED -> FAILED a connection lost;
# STOPPING -> FAILED a stop that came after a loss (the loss is the truth).
TRANSITIONS: dict[ConnectionState, frozenset[ConnectionState]] = {
    _S.IDLE: frozenset({_S.CONNECTING}),
    _S.CONNECTING: frozenset({_S.CONNECTED, _S.STOPPING, _S.FAILED}),
    _S.CONNECTED: frozenset({_S.CONNECTING, _S.STOPPING, _S.FAILED}),
    _S.STOPPING: frozenset({_S.STOPPED, _S.FAILED}),
    _S.STOPPED: frozenset({_S.CONNECTING}),
    _S.FAILED: frozenset({_S.CONNECTING}),
}

CloseCallback = Callable[[Any], object]
StateHook = Callable[[ConnectionState, ConnectionState], None]


class LifecycleError(RuntimeError):
    """A move the state table does not allow: a bug in this library, never the server's fault."""


def describe_exception(exc: BaseException) -> str:
    """A one-line description of an exception for a message: its type and text."""
    text = str(exc).strip()
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


class Ready(Generic[R]):
    """The owner's answer to ``start()``: a result or an error, given once."""

    __slots__ = ("_error", "_event", "_value")

    def __init__(self) -> None:
        self._event = anyio.Event()
        self._value: R | None = None
        self._error: BaseException | None = None

    def done(self) -> bool:
        return self._event.is_set()

    def succeed(self, value: R) -> None:
        if not self.done():
            self._value = value
            self._event.set()

    def fail(self, error: BaseException) -> None:
        if not self.done():
            self._error = error
            self._event.set()

    async def wait(self) -> R:
        await self._event.wait()
        if self._error is not None:
            raise self._error
        return self._value  # type: ignore[return-value]  # set by succeed()


class Lifecycle(Generic[R]):
    """State, error, owner task, stop deadline, closed event and close callbacks of one object.

    ``owner`` is the object itself (close callbacks receive it); ``name`` says how logs name it;
    ``on_change(old, new)`` runs at every move; ``stopped_early`` is the message ``start()`` raises when
    ``stop()`` came first.
    """

    def __init__(
        self,
        owner: object,
        name: Callable[[], str],
        logger: logging.Logger,
        *,
        what: str,
        stopped_early: str,
        on_change: StateHook | None = None,
    ) -> None:
        self._owner, self._name, self._logger, self._on_change = owner, name, logger, on_change
        self._what, self._stopped_early = what, stopped_early
        self.state = ConnectionState.IDLE
        self.error: BaseException | None = None
        self.deadline: float | None = None
        self.closed: anyio.Event | None = None
        # The owner's cancel scope, made anew by each start() (stop() may cancel it before the owner enters it).
        self._scope: anyio.CancelScope | None = None
        self._task: OwnerTask | None = None
        self._close_callbacks: list[CloseCallback] = []

    # -- state -------------------------------------------------------------------------------------------

    @property
    def running(self) -> bool:
        return self.state in RUNNING_STATES

    @property
    def stopping(self) -> bool:
        """Whether stop() has been asked for (and the object has not closed yet)."""
        return self.state is ConnectionState.STOPPING

    def set_state(self, new: ConnectionState) -> None:
        old = self.state
        if new is old:
            return
        if new not in TRANSITIONS[old]:
            raise LifecycleError(f"{self._name()}: illegal state change {old} -> {new}")
        self.state = new
        self._logger.debug("%s: %s %s -> %s", self._name(), self._what, old, new)
        if self._on_change is not None:
            self._on_change(old, new)

    @property
    def scope(self) -> anyio.CancelScope:
        """The cancel scope the owner's body enters around its work."""
        assert self._scope is not None, "start() makes the scope"
        return self._scope

    def cancel_owner(self) -> None:
        """Cancel the owner's work (its cleanup, shielded, still runs)."""
        if self._scope is not None:
            self._scope.cancel()

    def budget(self) -> float | None:
        """Seconds left before stop()'s deadline, or None for no limit (or no stop yet)."""
        if self.deadline is None:
            return None
        return max(0.0, self.deadline - anyio.current_time())

    def add_close_callback(self, callback: CloseCallback) -> Callable[[], None]:
        """Call ``callback(owner)`` every time the object closes; returns a function that removes it."""
        self._close_callbacks.append(callback)

        def remove() -> None:
            if callback in self._close_callbacks:
                self._close_callbacks.remove(callback)

        return remove

    # -- start -------------------------------------------------------------------------------------------

    async def prepare_start(self) -> None:
        """Wait out a stop in progress; raise ``RuntimeError`` when already running."""
        if self.state is ConnectionState.STOPPING:
            await self.wait_closed()
        if self.running:
            raise RuntimeError(f"{self._name()}: start() called while {self.state}; call stop() first")

    async def start(
        self, body: Callable[[Ready[R]], Awaitable[BaseException | None]], stop: Callable[[], Awaitable[None]]
    ) -> R:
        """Spawn the owner running ``body(ready)`` and return what it hands to ``ready``.

        ``body`` returns the error the object failed with, or None when it was stopped; it enters
        ``self.scope`` around its work (stop() and the cut-off cancel it). When the caller is cancelled,
        ``stop()`` runs (shielded) before the cancellation goes on: the attempt must not outlive its caller.
        Call ``prepare_start()`` first, and reset the object's own fields in between.
        """
        self.error = None
        self.deadline = None
        self.closed = anyio.Event()
        self._scope = anyio.CancelScope()
        ready: Ready[R] = Ready()
        self.set_state(ConnectionState.CONNECTING)
        try:
            self._task = spawn_owner(
                lambda: self._own(body, ready),
                name=f"mcp-connections {self._what} of {self._name()}",
                on_never_ran=lambda: self._finish_now(ready, self._never_ran_error()),
            )
        except BaseException as exc:
            error = ConnectError(
                f"could not start the {self._what}'s task: {describe_exception(exc)}", server=self._name()
            )
            error.__cause__ = exc
            self._finish_now(ready, error)
            raise error from exc
        try:
            return await ready.wait()
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True):
                await stop()
            raise

    def _never_ran_error(self) -> MCPConnectionError:
        what = f"the {self._what}'s task was cancelled before it ran (is the event loop closing?)"
        return ConnectError(what, server=self._name())

    async def _own(self, body: Callable[[Ready[R]], Awaitable[BaseException | None]], ready: Ready[R]) -> None:
        failure: BaseException | None = None
        try:
            failure = await body(ready)
        except anyio.get_cancelled_exc_class():
            # Not our scope (the body handles that): the event loop is winding down under us.
            if not self.stopping:
                failure = ConnectError(
                    f"the {self._what}'s task was cancelled (is the event loop closing?)", server=self._name()
                )
            raise
        except Exception as exc:  # a bug of ours must not leave the object looking alive
            self._logger.exception("%s: %s task failed", self._name(), self._what)
            failure = ConnectError(f"{self._what} task failed: {describe_exception(exc)}", server=self._name())
            failure.__cause__ = exc
        finally:
            with anyio.CancelScope(shield=True):
                callbacks = self._settle(ready, failure)
                await self._run_close_callbacks(callbacks)
                assert self.closed is not None
                self.closed.set()

    def _settle(self, ready: Ready[R], failure: BaseException | None) -> list[CloseCallback]:
        """The final state from the owner's outcome; ``start()`` learns it if it still waits."""
        if failure is not None:
            self.error = failure
            ready.fail(failure)
            self.set_state(ConnectionState.FAILED)
        else:
            ready.fail(ConnectError(self._stopped_early, server=self._name()))
            if self.state is not ConnectionState.STOPPING:
                self.set_state(ConnectionState.STOPPING)
            self.set_state(ConnectionState.STOPPED)
        return list(self._close_callbacks)

    def _finish_now(self, ready: Ready[R], error: MCPConnectionError) -> None:
        """End at once, from synchronous code, when the owner never ran."""
        if not self.running:
            return
        callbacks = self._settle(ready, error)
        for callback in callbacks:
            try:
                result = callback(self._owner)
                if inspect.isawaitable(result):
                    close = getattr(result, "close", None)
                    if callable(close):
                        close()
                    self._logger.warning(
                        "%s: async close callback %r not run: no task to run it", self._name(), callback
                    )
            except Exception:
                self._logger.exception("%s: close callback %r raised", self._name(), callback)
        assert self.closed is not None
        self.closed.set()

    async def _run_close_callbacks(self, callbacks: list[CloseCallback]) -> None:
        for callback in callbacks:
            try:
                result = callback(self._owner)
                if inspect.isawaitable(result):
                    with anyio.move_on_after(CLOSE_CALLBACK_TIMEOUT) as scope:
                        await result
                    if scope.cancelled_caught:
                        self._logger.warning(
                            "%s: close callback %r took over %gs; cut off",
                            self._name(),
                            callback,
                            CLOSE_CALLBACK_TIMEOUT,
                        )
            except Exception:
                self._logger.exception("%s: close callback %r raised", self._name(), callback)

    # -- stop --------------------------------------------------------------------------------------------

    async def stop(
        self,
        timeout: float | None,
        on_request: Callable[[ConnectionState], None],
        then: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        """Ask the owner to stop and wait for the close, within ``timeout`` plus ``STOP_MARGIN``; never raises.

        The first call moves to ``STOPPING``, sets the deadline and calls ``on_request(previous_state)``;
        every call then awaits ``then()`` (if given) and waits for the close until the deadline and half
        the margin, then cuts the owner off and gives it the other half to unwind.
        """
        try:
            if not self.running:
                return
            limit = timeout if timeout is not None and timeout > 0 else None
            if not self.stopping:
                previous = self.state
                self.deadline = None if limit is None else anyio.current_time() + limit
                self.set_state(ConnectionState.STOPPING)
                on_request(previous)
            if then is not None:
                await then()
            closed = self.closed
            assert closed is not None
            wait = None if self.deadline is None else max(0.0, self.deadline - anyio.current_time()) + STOP_MARGIN / 2
            with anyio.move_on_after(wait):
                await closed.wait()
            if not closed.is_set():
                # The cleanup overran its budget: cut it off (shielded kills still complete).
                self._logger.warning("%s: stop() timed out after %.1fs; cutting off the cleanup", self._name(), limit)
                self.cancel_owner()
                with anyio.move_on_after(STOP_MARGIN / 2):
                    await closed.wait()
        except Exception:  # stop() never raises: a failing cleanup is logged, not thrown at the caller
            self._logger.exception("%s: error while stopping", self._name())

    async def wait_closed(self) -> None:
        """Return once the object has closed for any reason (at once when it is not running)."""
        if self.closed is not None and self.running:
            await self.closed.wait()


class LifecycleOwner:
    """The face of an object that keeps a ``Lifecycle`` in ``_lifecycle``: state, error, closing."""

    _lifecycle: Lifecycle[Any]

    @property
    def state(self) -> ConnectionState:
        """Where it is in its life (a session is ``CONNECTING`` also while it reconnects)."""
        return self._lifecycle.state

    @property
    def error(self) -> BaseException | None:
        """Why it failed (a session: also, while it reconnects, why it was lost), else None."""
        return self._lifecycle.error

    def add_close_callback(self, callback: CloseCallback) -> Callable[[], None]:
        """Call ``callback(obj)`` every time it closes (stopped, or failed for good); returns a remover.

        The callback runs once ``state`` and ``error`` are final, before ``wait_closed()`` and ``stop()``
        return. It may be a plain function or an ``async def`` (awaited, for at most 5 s); one that raises is
        logged with the server's name and keeps neither the next one from running nor ``stop()`` from
        finishing.
        """
        return self._lifecycle.add_close_callback(callback)

    async def wait_closed(self) -> None:
        """Return once it has closed for any reason (at once when it is not running)."""
        await self._lifecycle.wait_closed()

    async def stop(self, timeout: float | None = 30.0) -> None:
        raise NotImplementedError

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    @property
    def _stop_called(self) -> bool:
        """Whether stop() has been asked for (hooks then report nothing as lost)."""
        return self._lifecycle.stopping

    def _stop_budget(self) -> float | None:
        """Seconds the cleanup may still take before stop()'s deadline, or None for no limit."""
        return self._lifecycle.budget()

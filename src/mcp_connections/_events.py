"""Delivering events, and watching each request: the logic behind ``on_event`` and the OpenTelemetry hooks.

Design: a session and a group each own one ``EventHub``; a session's hub forwards to its group's, so a
group's callbacks see every server's events and its own catalogue's. Emitting must cost nothing when nobody
listens, so every hook first asks ``hub.wanted()`` (a list check, a parent's list check, and whether
OpenTelemetry metrics are being recorded) and builds no event when it is False. Plain callbacks run inline,
in order; an ``async def`` callback's awaitable is handed to a delivery task of the hub (spawned when needed
through ``_owner_task``, so on asyncio and trio; it ends when nothing is left to deliver), bounded by
``ASYNC_CALLBACK_TIMEOUT``. A callback that raises is logged with the server's name and breaks nothing.

``observe(...)`` wraps one request: it times it, classifies its outcome, emits ``RequestEnded`` and, when a
tracer provider is set, runs it inside an OpenTelemetry CLIENT span (``_otel``). With no listener and no
provider it calls the request directly.
"""

from __future__ import annotations

import inspect
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import anyio

from . import _otel
from .events import CatalogueChanged, Event, EventCallback, Outcome, RequestEnded, Restarted, StateChanged

if TYPE_CHECKING:
    from ._lifecycle import ConnectionState

__all__ = ["EventHub", "classify", "observe"]

logger = logging.getLogger(__name__)

R = TypeVar("R")

# Bound on each async event callback: a slow dashboard must not hold the events behind it forever.
ASYNC_CALLBACK_TIMEOUT = 5.0


class EventHub:
    """The callbacks of one session or group, and the hub it forwards to (a session's group)."""

    __slots__ = ("_callbacks", "_delivering", "_name", "_pending", "parent")

    def __init__(self, name: Callable[[], str]) -> None:
        self._name = name
        self._callbacks: list[EventCallback] = []
        self.parent: EventHub | None = None
        self._pending: deque[tuple[EventCallback, Awaitable[object]]] = deque()
        self._delivering = False

    def add(self, callback: EventCallback) -> Callable[[], None]:
        self._callbacks.append(callback)

        def remove() -> None:
            if callback in self._callbacks:
                self._callbacks.remove(callback)

        return remove

    def wanted(self) -> bool:
        """Whether an event emitted now would reach anyone (a callback here or upstream, or metrics)."""
        hub: EventHub | None = self
        while hub is not None:
            if hub._callbacks:
                return True
            hub = hub.parent
        return _otel.metrics_enabled()

    def emit(self, event: Event) -> None:
        hub: EventHub | None = self
        while hub is not None:
            if hub._callbacks:
                hub._deliver(event)
            hub = hub.parent
        if _otel.metrics_enabled():
            _otel.record(event)

    def _deliver(self, event: Event) -> None:
        for callback in list(self._callbacks):
            try:
                result = callback(event)
            except Exception:
                logger.exception("%s: event callback %r raised on %s", event.server, callback, type(event).__name__)
                continue
            if inspect.isawaitable(result):
                self._pending.append((callback, result))
        if self._pending and not self._delivering:
            self._start_delivery()

    def _start_delivery(self) -> None:
        from ._owner_task import spawn_owner

        try:
            self._delivering = True
            spawn_owner(self._drain, name=f"mcp-connections events of {self._name()}", on_never_ran=self._discard)
        except Exception as exc:  # no event loop to run it in (called from a thread, or a loop closing)
            self._delivering = False
            logger.warning("%s: async event callbacks not run: %s", self._name(), exc)
            self._discard()

    async def _drain(self) -> None:
        try:
            while self._pending:
                callback, awaitable = self._pending.popleft()
                try:
                    with anyio.move_on_after(ASYNC_CALLBACK_TIMEOUT) as scope:
                        await awaitable
                    if scope.cancelled_caught:
                        logger.warning(
                            "%s: event callback %r took over %gs; cut off",
                            self._name(),
                            callback,
                            ASYNC_CALLBACK_TIMEOUT,
                        )
                except Exception:
                    logger.exception("%s: event callback %r raised", self._name(), callback)
        finally:
            self._delivering = False
            self._discard()  # the loop is closing under us: what is left cannot run

    def _discard(self) -> None:
        self._delivering = False
        while self._pending:
            _, awaitable = self._pending.popleft()
            close = getattr(awaitable, "close", None)
            if callable(close):
                close()

    # -- the events the library emits ---------------------------------------------------------------

    def state_changed(self, old: ConnectionState, new: ConnectionState, error: BaseException | None) -> None:
        if self.wanted():
            self.emit(StateChanged(self._name(), old, new, str(error) if error is not None else None))

    def restarted(self, attempt: int, cause: BaseException | None, delay: float) -> None:
        if self.wanted():
            text = str(cause) if cause is not None else "the connection ended"
            kind = type(cause).__name__ if cause is not None else "ConnectionLostError"
            self.emit(Restarted(self._name(), attempt, text, kind, delay, cause))

    def catalogue_changed(self, server: str, catalogue: Any, count: int) -> None:
        if self.wanted():
            self.emit(CatalogueChanged(server, catalogue, count))


def classify(result: object, exc: BaseException | None) -> tuple[Outcome, str | None, str | None, int | None]:
    """A request's outcome, error type, error text and JSON-RPC code, from its result or exception (pure)."""
    if exc is None:
        if getattr(result, "is_error", False) is True:
            return "error", "tool_error", _result_text(result), None
        return "ok", None, None, None
    from mcp.shared.exceptions import MCPError

    from .errors import ConnectionLostError, RequestTimeoutError

    text = (str(exc).strip().splitlines() or [""])[0] or None
    if isinstance(exc, RequestTimeoutError):
        return "timeout", type(exc).__name__, text, None
    if isinstance(exc, ConnectionLostError):
        return "lost", type(exc).__name__, text, None
    if isinstance(exc, MCPError):
        return "failed", type(exc).__name__, text, exc.code
    if isinstance(exc, anyio.get_cancelled_exc_class()):
        return "failed", "cancelled", "the caller was cancelled", None
    return "failed", type(exc).__name__, text, None


def _result_text(result: object) -> str | None:
    for block in getattr(result, "content", None) or []:
        text = getattr(block, "text", None)
        if isinstance(text, str) and text.strip():
            return text.strip().splitlines()[0]
    return None


async def observe(hub: EventHub, session: Any, what: str, target: str | None, call: Callable[[], Awaitable[R]]) -> R:
    """Run one request (``call``) of ``session``, with its event and span; ``what`` starts with the method."""
    tracer = _otel.tracer()
    wanted = hub.wanted()
    if tracer is None and not wanted:
        return await call()
    method = what.split(" ", 1)[0]
    started = time.perf_counter()
    result: Any = None
    failure: BaseException | None = None
    span = _otel.start_span(tracer, session, method, target) if tracer is not None else None
    try:
        with _otel.current(span):
            result = await call()
        return result  # type: ignore[no-any-return]
    except BaseException as exc:
        failure = exc
        raise
    finally:
        duration = time.perf_counter() - started
        outcome, error_type, error, code = classify(result, failure)
        if span is not None:
            _otel.end_span(span, outcome, failure, code)
        if wanted:
            tool = target if method == "tools/call" else None
            hub.emit(
                RequestEnded(
                    session.name,
                    method,
                    duration,
                    outcome,
                    tool=tool,
                    target=target,
                    error_type=error_type,
                    error=error,
                    error_code=code,
                )
            )

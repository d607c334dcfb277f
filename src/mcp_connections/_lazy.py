"""Servers started on first use and stopped when idle: the group's side of "start nothing you do not need".

Design: every session of a group is an ``OnDemandSession``, a ``ManagedSession`` whose requests pass a gate
first (``Demand.use()``): the gate counts the request as in flight, and when the server is *on demand* and not
running, starts it and lets the request go on once it is connected. A server is on demand when its config
says ``"start": "lazy"`` (or the group ``lazy=True``), or once it has been stopped for idleness. So a call
routed by the catalogue, a prompt, a resource read, and a request made straight on ``group["name"]`` all start
it the same way, and nothing in ``session.py`` needs to know.

Concurrent first uses start it once: starts go through one lock per server, and a use that waited for the lock
while another attempt ran takes that attempt's outcome (its ``ConnectError`` too) instead of trying again. A
start that fails leaves the session ``FAILED`` with its error (what the status shows); the next use tries
again, paced by the server's restart policy when it has one (the policy's backoff between tries, and no more
than ``max_restarts`` failed starts in its ``window``; past that, uses fail at once with the last error until
the window has passed). Without a policy every use tries again; a catalogue listing (``tools()``) tries at
most once per ``CATALOGUE_RETRY_AFTER``, so a broken server cannot slow every ``tools()`` down.

Idle stop: with ``idle_timeout``, a watcher (a task in the catalogue's task group, one per connected server)
stops the server cleanly once no request has been in flight for that long. It decides and moves the session
to ``STOPPING`` without a checkpoint in between, holding the server's lock, so a request either counted
itself in flight first (and the server stays) or finds it stopping and waits at the lock for the stop to
finish and a new start: a call racing an idle stop waits for the restart and never fails for the race. The
status tells it apart by its own field (``ServerStatus.idle``), not by a new ``ConnectionState``: the session
really is ``STOPPED``, and every existing check of the state keeps its meaning.
"""

from __future__ import annotations

import logging
import math
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from contextlib import asynccontextmanager
from typing import Any, Literal, TypeVar

import anyio
from mcp import Client

from ._generations import is_modern
from .base import ConnectionState
from .errors import ConnectError, MCPConnectionError
from .restart import RestartTracker
from .session import ManagedSession

__all__ = ["CATALOGUE_RETRY_AFTER", "IDLE_STOP_TIMEOUT", "Demand", "OnDemandSession", "list_with_hint"]

logger = logging.getLogger(__name__)

Kind = Literal["tools", "prompts", "resources"]

# A lazy server whose last start failed is started again by a catalogue listing at most this often (a call
# routed to it always tries, within its restart policy).
CATALOGUE_RETRY_AFTER = 5.0

# Budget of the clean stop of an idle server (it has nothing in flight, so it should go at once).
IDLE_STOP_TIMEOUT = 10.0

R = TypeVar("R")

_DOWN = (ConnectionState.IDLE, ConnectionState.STOPPED, ConnectionState.FAILED)


class OnDemandSession(ManagedSession):
    """A group's ``ManagedSession``: each request passes its server's ``Demand`` gate first (see the module)."""

    demand: Demand | None = None

    async def _send_request(self, what: str, send: Callable[[Client], Awaitable[R]], timeout: float | None) -> R:
        demand = self.demand
        if demand is None:
            return await super()._send_request(what, send, timeout)
        async with demand.use():
            return await super()._send_request(what, send, timeout)


class Demand:
    """One server's on-demand state: lazy or not, requests in flight, last use, idle stop and failed starts.

    ``active()`` says whether the group is started (nothing starts on demand outside ``start()``..``stop()``);
    ``spawn(fn)`` runs ``fn()`` in the background (the catalogue's task group) and returns False if it cannot.
    """

    def __init__(
        self,
        session: ManagedSession,
        *,
        lazy: bool,
        idle_timeout: float | None,
        active: Callable[[], bool],
        spawn: Callable[[Callable[[], Coroutine[Any, Any, None]]], bool],
    ) -> None:
        self.session = session
        self.lazy = lazy
        self.idle_timeout = idle_timeout
        self._active = active
        self._spawn = spawn
        self.reset()
        session.on_state_change(self._state_changed)

    def reset(self) -> None:
        """Forget everything of the last run of the group (a new ``start()``)."""
        self.in_flight = 0
        self.last_used = -math.inf
        self.idle = False  # stopped for idleness, starts again on the next use
        self.resumable = False  # has been stopped for idleness in this run: on demand from then on
        self.ready_in: float | None = None  # how long its last start on demand took
        self._lock: anyio.Lock | None = None
        self._attempts = 0
        self._outcome: MCPConnectionError | None = None  # how the last attempt failed (None: it did not fail)
        self._starting = False
        self._last_error: MCPConnectionError | None = None
        self._failed_at: float | None = None
        self._failures: RestartTracker | None = None
        self._not_before = -math.inf
        self._gave_up = False
        self._watching = False

    @property
    def name(self) -> str:
        return self.session.name

    @property
    def on_demand(self) -> bool:
        """Whether the server is started by its next use when it is not running."""
        return self.lazy or self.resumable

    def keeps_lists(self) -> bool:
        """Whether the catalogue keeps this server's lists while it is not running."""
        return self.on_demand and self._active()

    def _get_lock(self) -> anyio.Lock:
        if self._lock is None:  # made in the event loop that uses it
            self._lock = anyio.Lock()
        return self._lock

    # -- the gate -------------------------------------------------------------------------------------------

    @asynccontextmanager
    async def use(self) -> AsyncIterator[None]:
        """One request: counted in flight (so no idle stop), the server started first when it is on demand."""
        self.in_flight += 1
        try:
            await self.ensure()
            yield
        finally:
            self.in_flight -= 1
            self.last_used = anyio.current_time()

    def _needs_start(self) -> bool:
        state = self.session.state
        if state is ConnectionState.CONNECTED:
            return False
        if state is ConnectionState.CONNECTING:
            return self._starting  # our start in progress; otherwise a reconnect the session's requests wait for
        return state is ConnectionState.STOPPING or state in _DOWN

    async def ensure(self, *, for_catalogue: bool = False) -> None:
        """Start the server if it is on demand and not running; raise its ``ConnectError`` when that fails.

        ``for_catalogue``: a listing wants the server's lists; it does not wait out a backoff and tries a failed
        server at most once per ``CATALOGUE_RETRY_AFTER`` (then it returns without starting)."""
        if not self.on_demand or not self._active() or not self._needs_start():
            return  # not ours to start: the session answers as it always does
        attempts = self._attempts
        async with self._get_lock():
            if not self._active() or not self.on_demand:
                return
            if self.session.state is ConnectionState.STOPPING:
                await self.session.wait_closed()
            if self.session.state not in _DOWN:
                return  # started (or reconnecting) meanwhile
            if self._attempts != attempts and self._outcome is not None:
                raise self._outcome  # the start this use waited for failed: one start for concurrent uses
            now = anyio.current_time()
            if for_catalogue and self._failed_at is not None and now - self._failed_at < CATALOGUE_RETRY_AFTER:
                return
            if now < self._not_before:
                if self._gave_up or for_catalogue:
                    if for_catalogue:
                        return
                    raise self._given_up_error()
                await anyio.sleep(self._not_before - now)
            await self._start()

    async def _start(self) -> None:
        self._attempts += 1
        self._outcome = None
        self._starting = True
        self.idle = False
        began = anyio.current_time()
        logger.info("%s: starting on demand", self.name)
        try:
            await self.session.start()
        except MCPConnectionError as exc:
            error = exc if isinstance(exc, ConnectError) else _as_connect_error(exc)
            self._failed(error)
            if error is exc:
                raise
            raise error from exc
        finally:
            self._starting = False
        self.ready_in = anyio.current_time() - began
        self._last_error = None
        self._failed_at = None
        self._failures = None
        self._not_before = -math.inf
        self._gave_up = False

    def _failed(self, exc: MCPConnectionError) -> None:
        now = anyio.current_time()
        self._last_error = self._outcome = exc
        self._failed_at = now
        policy = self.session.restart_policy
        if policy is None:
            logger.warning("%s: failed to start on demand: %s", self.name, exc.message)
            return
        if self._failures is None:
            self._failures = RestartTracker(policy)
        delay = self._failures.lost(now)
        if delay is None:
            self._gave_up = True
            self._not_before = now + policy.window
            logger.warning(
                "%s: failed to start on demand %d times within %gs; no more tries for %gs: %s",
                self.name,
                self._failures.recent_losses,
                policy.window,
                policy.window,
                exc.message,
            )
        else:
            self._not_before = now + delay
            logger.warning(
                "%s: failed to start on demand (next try in %.2fs at the earliest): %s", self.name, delay, exc
            )

    def _given_up_error(self) -> ConnectError:
        policy = self.session.restart_policy
        count = self._failures.recent_losses if self._failures is not None else 0
        window = policy.window if policy is not None else 0.0
        error = ConnectError(
            f"failed to start {count} times within {window:g}s ({self._last_error}); the restart policy allows "
            f"no more tries for {max(0.0, self._not_before - anyio.current_time()):.0f}s. Fix the server, or "
            "stop() and start() the group to try at once.",
            server=self.name,
        )
        error.__cause__ = self._last_error
        return error

    def wants_start(self, has_list: bool) -> bool:
        """Whether a catalogue listing should start this server: on demand, down, and with no (fresh) list."""
        return not has_list and self.on_demand and self._active() and self._needs_start()

    async def start_for_catalogue(self) -> None:
        """``ensure()`` for a listing: a failure is logged (the status says why), never raised."""
        try:
            await self.ensure(for_catalogue=True)
        except MCPConnectionError as exc:
            logger.debug("%s: not listed: %s", self.name, exc)

    # -- idle stop ------------------------------------------------------------------------------------------

    def _state_changed(self, old: ConnectionState, new: ConnectionState) -> None:
        if new is ConnectionState.CONNECTED:
            self.last_used = anyio.current_time()  # idle counts from the connection, not from before it
            if self.idle_timeout is not None and not self._watching and self._active():
                self._watching = self._spawn(self._watch_idle)

    async def _watch_idle(self) -> None:
        timeout = self.idle_timeout
        assert timeout is not None
        try:
            while self._active():
                state = self.session.state
                if state not in (ConnectionState.CONNECTED, ConnectionState.CONNECTING):
                    return
                if state is ConnectionState.CONNECTING or self.in_flight:
                    await anyio.sleep(timeout)  # the end of the request (or the reconnect) sets last_used
                    continue
                due = self.last_used + timeout
                now = anyio.current_time()
                if now < due:
                    await anyio.sleep(due - now)
                    continue
                if await self._stop_if_idle(timeout):
                    return
        finally:
            self._watching = False

    async def _stop_if_idle(self, timeout: float) -> bool:
        async with self._get_lock():
            # Decided and moved to STOPPING with no checkpoint in between: see the module docstring.
            if (
                self.in_flight
                or self.session.state is not ConnectionState.CONNECTED
                or anyio.current_time() - self.last_used < timeout
                or not self._active()
            ):
                return False
            self.idle = self.resumable = True
            logger.info("%s: no request for %gs; stopping it until its next use", self.name, timeout)
            await self.session.stop(IDLE_STOP_TIMEOUT)
            return True


def _as_connect_error(exc: MCPConnectionError) -> ConnectError:
    """A start that failed otherwise (the server exited during the handshake: ``ServerExitedError``) is, for the
    use that asked for it, a connection that could not be made."""
    error = ConnectError(f"could not start on demand: {exc.message}", server=exc.server)
    error.__cause__ = exc
    return error


async def list_with_hint(session: ManagedSession, kind: Kind, timeout: float | None) -> tuple[list[Any], int | None]:
    """One server's list of ``kind`` (all pages) and a modern server's ``ttlMs`` hint for it (None: no hint;
    ``ttlMs: 0``, the protocol's default, counts as none: see ``_cache``)."""

    async def send(client: Client) -> tuple[list[Any], int | None]:
        list_page: Callable[[str | None], Awaitable[Any]]
        if kind == "tools":
            list_page = lambda cursor: client.list_tools(cursor=cursor)  # noqa: E731
        elif kind == "prompts":
            list_page = lambda cursor: client.list_prompts(cursor=cursor)  # noqa: E731
        else:
            list_page = lambda cursor: client.list_resources(cursor=cursor)  # noqa: E731
        items: list[Any] = []
        hint: int | None = None
        seen: set[str] = set()
        cursor: str | None = None
        while True:
            result = await list_page(cursor)
            items.extend(getattr(result, kind))
            if is_modern(client.protocol_version) and "ttl_ms" in result.model_fields_set and result.ttl_ms > 0:
                hint = result.ttl_ms if hint is None else min(hint, result.ttl_ms)
            cursor = result.next_cursor
            if not cursor or cursor in seen:
                return items, hint
            seen.add(cursor)

    return await session._request(f"{kind}/list", send, timeout)

"""Blocking wrappers of ``ManagedSession`` and ``ServerGroup`` for synchronous code and notebooks.

Design: each ``BlockingSession`` or ``BlockingGroup`` owns one event loop, run by anyio's blocking portal
in a daemon thread of its own, opened by ``start()`` (or ``with``) and closed by ``close()``. Every
method hands its coroutine to that loop and waits for the answer, so the caller's thread never runs an
event loop: many threads may call at once, and code that already runs a loop (a notebook, a coroutine)
may call too, since nothing is ever run in the caller's loop.

A call waits on the portal's ``concurrent.futures.Future``; a ``KeyboardInterrupt`` while it waits
cancels that one call in the loop (a tool call is cancelled on the server as a timeout would be) and
is re-raised, and the session stays usable. ``stop()`` and ``close()`` are never cancelled that way:
the stop goes on in the loop, and ``close()`` may simply be called again.

The servers must not outlive the interpreter, even when ``close()`` is forgotten: a
``weakref.finalize`` closes the object when it is garbage collected, and, because a finalizer runs at
interpreter exit too, when it is still referenced then. The loop thread is a daemon thread, so it is
still running when ``atexit`` handlers run, and it stops the servers there.
"""

from __future__ import annotations

import concurrent.futures
import functools
import logging
import os
import threading
import weakref
from collections.abc import Awaitable, Callable, Iterator, Mapping
from contextlib import AbstractContextManager
from types import TracebackType
from typing import Any, Self, TypeVar

import mcp_types as types
from anyio.from_thread import BlockingPortal, start_blocking_portal
from mcp import ClientSession

from ._naming import GroupPrompt, GroupResource, GroupTool
from .base import ConnectionManager, ConnectionState
from .group import ServerGroup, ServerStatus
from .session import ManagedSession, StateCallback

__all__ = ["BlockingGroup", "BlockingSession"]

logger = logging.getLogger(__name__)

T = TypeVar("T")

_UNSET: Any = object()


class _Loop:
    """An event loop in a daemon thread behind a blocking portal: opened once, closed once, from any thread."""

    def __init__(self, name: str) -> None:
        self.name = name
        self.closed = False
        self._lock = threading.Lock()
        self._portal: BlockingPortal | None = None
        self._portal_cm: AbstractContextManager[BlockingPortal] | None = None
        self._thread: threading.Thread | None = None
        self._cleanup: concurrent.futures.Future[object] | None = None

    def _check_thread(self) -> None:
        thread = self._thread
        if thread is not None and thread.ident == threading.get_ident():
            raise RuntimeError(
                f"{self.name}: a blocking method was called from the loop that serves it (from a state "
                "callback?); that would wait for itself. Use the async API there."
            )

    def open(self) -> BlockingPortal:
        """The running portal, started on the first call."""
        self._check_thread()
        with self._lock:
            if self.closed:
                raise RuntimeError(f"{self.name}: closed; create a new one")
            if self._portal is None:
                portal_cm = start_blocking_portal("asyncio")
                portal = portal_cm.__enter__()
                try:
                    self._thread = portal.call(_name_thread, f"mcp-connections loop ({self.name})")
                except BaseException:
                    portal_cm.__exit__(None, None, None)
                    raise
                self._portal, self._portal_cm = portal, portal_cm
            return self._portal

    def current(self) -> BlockingPortal | None:
        """The running portal, or None when never opened or closed."""
        self._check_thread()
        return None if self.closed else self._portal

    def running(self, not_running: str) -> BlockingPortal:
        """The running portal; ``RuntimeError(not_running)`` when it was never opened."""
        self._check_thread()
        if self.closed:
            raise RuntimeError(f"{self.name}: closed; create a new one")
        portal = self._portal
        if portal is None:
            raise RuntimeError(not_running)
        return portal

    def run(self, portal: BlockingPortal, func: Callable[[], Awaitable[T]], *, cancel_on_interrupt: bool = True) -> T:
        """Run ``func()`` in the loop and wait for it; Ctrl-C cancels it (unless told not to) and is re-raised."""
        try:
            future = portal.start_task_soon(func)
        except RuntimeError:
            if self.closed:  # close() won the race: say so plainly
                raise RuntimeError(f"{self.name}: closed; create a new one") from None
            raise
        try:
            return future.result()
        except KeyboardInterrupt:
            if cancel_on_interrupt:
                future.cancel()
            raise

    def close(self, cleanup: Callable[[], Awaitable[object]]) -> None:
        """Run ``cleanup()`` in the loop, then end the loop and its thread; idempotent, and resumable after Ctrl-C."""
        thread = self._thread
        if thread is not None and thread.ident == threading.get_ident():
            # Called from the loop itself (garbage collected there): it cannot wait for itself.
            threading.Thread(target=self.close, args=(cleanup,), name=f"closing {self.name}", daemon=True).start()
            return
        with self._lock:
            self.closed = True
            portal = self._portal
            if portal is None:
                return
            if self._cleanup is None:
                try:
                    self._cleanup = portal.start_task_soon(cleanup)
                except RuntimeError:  # the portal is already gone
                    self._cleanup = concurrent.futures.Future()
                    self._cleanup.set_result(None)
            cleaning = self._cleanup
        try:
            cleaning.result()
        except Exception:
            logger.exception("%s: error while stopping", self.name)
        with self._lock:
            portal_cm, self._portal_cm = self._portal_cm, None
        if portal_cm is not None:
            portal_cm.__exit__(None, None, None)
        if self._thread is not None:
            self._thread.join()


def _name_thread(name: str) -> threading.Thread:
    thread = threading.current_thread()
    thread.name = name
    return thread


class _StartedInWith:
    """``with`` starts the object and closes it on the way out, or at once if starting failed."""

    def start(self) -> object:
        raise NotImplementedError

    def close(self) -> None:
        raise NotImplementedError

    def __enter__(self) -> Self:
        try:
            self.start()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()


class BlockingSession(_StartedInWith):
    """A ``ManagedSession`` with blocking methods, for synchronous code and notebooks.

    ``BlockingSession(manager, **options)`` takes the options of ``ManagedSession`` (``restart``,
    ``init_timeout``, ``request_timeout``, ``ping_interval``, ...). ``with BlockingSession(...) as s:``
    starts it and closes it; otherwise call ``start()`` and, at the end, ``close()``. Methods may be
    called from any thread, also one that runs an event loop; they raise what ``ManagedSession`` raises.
    ``on_state_change`` callbacks run in the session's loop thread and must not call blocking methods.
    """

    _finalizer: weakref.finalize[..., BlockingSession] | None

    def __init__(self, manager: ConnectionManager[Any], **options: Any) -> None:
        session = ManagedSession(manager, **options)
        self._attach(lambda: session, _Loop(session.name))
        # Also runs at interpreter exit while the object is still referenced: no server outlives us.
        self._finalizer = weakref.finalize(self, self._loop.close, session.stop)

    def _attach(self, get: Callable[[], ManagedSession], loop: _Loop, parent: BlockingGroup | None = None) -> None:
        """What every blocking session is made of: its session (looked up at each use), its loop and, for a
        group's member, the group (kept alive, with its loop, while the view is used)."""
        self._get = get
        self._loop = loop
        self._parent = parent
        self._finalizer = None

    # -- state -----------------------------------------------------------------------------------------

    @property
    def managed_session(self) -> ManagedSession:
        """The underlying ``ManagedSession`` (its coroutines belong to this object's loop thread)."""
        return self._get()

    @property
    def name(self) -> str:
        return self._get().name

    @property
    def manager(self) -> ConnectionManager[Any]:
        return self._get().manager

    @property
    def state(self) -> ConnectionState:
        return self._get().state

    @property
    def error(self) -> BaseException | None:
        return self._get().error

    @property
    def restarts(self) -> int:
        return self._get().restarts

    @property
    def initialize_result(self) -> types.InitializeResult | None:
        return self._get().initialize_result

    @property
    def protocol_version(self) -> str | None:
        return self._get().protocol_version

    @property
    def server_info(self) -> types.Implementation | None:
        return self._get().server_info

    @property
    def capabilities(self) -> types.ServerCapabilities | None:
        return self._get().capabilities

    def on_list_changed(self, callback: Callable[[str], object]) -> Callable[[], None]:
        """Call ``callback(kind)`` when the server's lists change, in the loop thread; see ``ManagedSession``."""
        return self._get().on_list_changed(callback)

    @property
    def session(self) -> ClientSession | None:
        """The current ``mcp.ClientSession`` (async; use it from the loop thread only), None when not connected."""
        return self._get().session

    def on_state_change(self, callback: StateCallback) -> None:
        """Call ``callback(old, new)`` at every change of ``state``, in the loop thread."""
        self._get().on_state_change(callback)

    def on_event(self, callback: Callable[[Any], object]) -> Callable[[], None]:
        """Call ``callback(event)`` for every event of the session (``mcp_connections.events``), in the loop
        thread (it must not call this object's blocking methods); returns a remover."""
        return self._get().on_event(callback)

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> types.InitializeResult | types.DiscoverResult:
        """Open the loop thread if needed, connect and initialize; see ``ManagedSession.start``."""
        portal = self._loop.open()
        return self._loop.run(portal, self._get().start)

    def stop(self, timeout: float | None = 30.0) -> None:
        """Stop the session (the loop thread stays, for a later ``start()``); never raises."""
        portal = self._loop.current()
        if portal is not None:
            self._loop.run(portal, functools.partial(self._get().stop, timeout), cancel_on_interrupt=False)

    def close(self) -> None:
        """Stop the session and end the loop thread; idempotent. A group's member only stops its server."""
        if self._finalizer is None:
            self.stop()
            return
        self._loop.close(self._get().stop)
        self._finalizer.detach()

    def __repr__(self) -> str:
        session = self._get()
        return f"<BlockingSession {session.name!r} state={session.state} restarts={session.restarts}>"

    # -- requests --------------------------------------------------------------------------------------

    def _request(self, method: Callable[..., Awaitable[T]], *args: Any, timeout: float | None, **options: Any) -> T:
        session = self._get()
        portal = self._loop.running(f"{session.name}: the session is not running ({session.state}); call start() first")
        kwargs = options if timeout is _UNSET else {**options, "timeout": timeout}
        return self._loop.run(portal, functools.partial(method, *args, **kwargs))

    def send_ping(self, *, timeout: float | None = _UNSET) -> types.EmptyResult:
        """Ping the server."""
        return self._request(self._get().send_ping, timeout=timeout)

    def list_tools(self, *, timeout: float | None = _UNSET) -> list[types.Tool]:
        """Every tool of the server (all pages)."""
        return self._request(self._get().list_tools, timeout=timeout)

    def call_tool(
        self,
        name: str,
        arguments: dict[str, Any] | None = None,
        *,
        timeout: float | None = _UNSET,
        progress_callback: Callable[[float, float | None, str | None], object] | None = None,
        meta: types.RequestParamsMeta | None = None,
    ) -> types.CallToolResult:
        """Call a tool; a tool's own failure comes back as a result with ``is_error``, not as an exception.

        ``progress_callback(progress, total, message)`` is a plain function, called in the loop thread.
        """
        progress = _async_progress(progress_callback)
        return self._request(
            self._get().call_tool, name, arguments, timeout=timeout, progress_callback=progress, meta=meta
        )

    def list_resources(self, *, timeout: float | None = _UNSET) -> list[types.Resource]:
        """Every resource of the server (all pages)."""
        return self._request(self._get().list_resources, timeout=timeout)

    def read_resource(
        self,
        uri: str,
        *,
        timeout: float | None = _UNSET,
        progress_callback: Callable[[float, float | None, str | None], object] | None = None,
        meta: types.RequestParamsMeta | None = None,
    ) -> types.ReadResourceResult:
        """Read one resource (``progress_callback`` as for ``call_tool``)."""
        progress = _async_progress(progress_callback)
        return self._request(self._get().read_resource, uri, timeout=timeout, progress_callback=progress, meta=meta)

    def list_prompts(self, *, timeout: float | None = _UNSET) -> list[types.Prompt]:
        """Every prompt of the server (all pages)."""
        return self._request(self._get().list_prompts, timeout=timeout)

    def get_prompt(
        self,
        name: str,
        arguments: dict[str, str] | None = None,
        *,
        timeout: float | None = _UNSET,
        progress_callback: Callable[[float, float | None, str | None], object] | None = None,
        meta: types.RequestParamsMeta | None = None,
    ) -> types.GetPromptResult:
        """Get one prompt, filled with ``arguments`` (``progress_callback`` as for ``call_tool``)."""
        progress = _async_progress(progress_callback)
        return self._request(
            self._get().get_prompt, name, arguments, timeout=timeout, progress_callback=progress, meta=meta
        )


def _async_progress(
    callback: Callable[[float, float | None, str | None], object] | None,
) -> Callable[[float, float | None, str | None], Awaitable[None]] | None:
    """A plain progress function as the SDK's awaited ``ProgressFnT``; one that raises is logged, not raised."""
    if callback is None:
        return None

    async def progress(value: float, total: float | None, message: str | None) -> None:
        try:
            callback(value, total, message)
        except Exception:
            logger.exception("progress callback %r raised", callback)

    return progress


class _GroupMember(BlockingSession):
    """A view of one server of a group, on the group's loop; it owns neither the session nor the loop."""

    def __init__(self, parent: BlockingGroup, name: str) -> None:  # not BlockingSession's: a view builds nothing
        group = parent.group
        self._attach(lambda: group[name], parent._loop, parent)


class BlockingGroup(_StartedInWith):
    """A ``ServerGroup`` with blocking methods, for synchronous code and notebooks.

    ``with BlockingGroup.from_config("servers.json") as group:`` starts every server (but lazy ones: they start
    on first use, as in ``ServerGroup``; ``from_config(..., lazy=True, idle_timeout=..., cache=...)``) and closes the
    group; ``group["name"]`` is a ``BlockingSession`` for one server, on the group's loop.
    """

    def __init__(self, group: ServerGroup) -> None:
        self.group = group
        self._loop = _Loop(f"group of {', '.join(group.names) or 'no servers'}")
        self._finalizer: weakref.finalize[..., BlockingGroup] = weakref.finalize(self, self._loop.close, group.stop)

    @classmethod
    def from_config(cls, source: str | os.PathLike[str] | Mapping[str, Any], **defaults: Any) -> BlockingGroup:
        """A group from a config file's path or the parsed mapping; the keywords of ``ServerGroup.from_config``
        (``errlog``, ``tool_names="prefixed"`` or ``"auto"``, session defaults)."""
        return cls(ServerGroup.from_config(source, **defaults))

    # -- access ----------------------------------------------------------------------------------------

    @property
    def names(self) -> list[str]:
        """The enabled servers, in config order."""
        return self.group.names

    def __getitem__(self, name: str) -> BlockingSession:
        self.group[name]  # KeyError for an unknown name, now
        return _GroupMember(self, name)

    def __iter__(self) -> Iterator[str]:
        return iter(self.group)

    def __len__(self) -> int:
        return len(self.group)

    def __repr__(self) -> str:
        return f"<BlockingGroup {len(self.group)} servers: {', '.join(self.group.names)}>"

    def status(self) -> dict[str, ServerStatus]:
        """Every enabled server's status."""
        return self.group.status()

    # -- lifecycle -------------------------------------------------------------------------------------

    def start(self) -> None:
        """Open the loop thread if needed and start every server; see ``ServerGroup.start``."""
        portal = self._loop.open()
        self._loop.run(portal, self.group.start)

    def stop(self, timeout: float | None = 30.0) -> None:
        """Stop every server (the loop thread stays, for a later ``start()``); never raises."""
        portal = self._loop.current()
        if portal is not None:
            self._loop.run(portal, functools.partial(self.group.stop, timeout), cancel_on_interrupt=False)

    def close(self) -> None:
        """Stop every server and end the loop thread; idempotent."""
        self._loop.close(self.group.stop)
        self._finalizer.detach()

    # -- requests across the group -----------------------------------------------------------------------

    def _running(self) -> BlockingPortal:
        return self._loop.running(f"{self._loop.name}: the group is not running; call start() first")

    def list_tools(self) -> dict[str, list[types.Tool]]:
        """``{server: [Tool]}`` for every connected server."""
        return self._loop.run(self._running(), self.group.list_tools)

    def call_tool(self, server: str, tool: str, arguments: dict[str, Any] | None = None) -> types.CallToolResult:
        """Call ``tool`` on ``server``."""
        return self._loop.run(self._running(), functools.partial(self.group.call_tool, server, tool, arguments))

    # -- the catalogue ---------------------------------------------------------------------------------

    def tools(self) -> list[GroupTool]:
        """The catalogue of every connected server's tools; see ``ServerGroup.tools``."""
        return self._loop.run(self._running(), self.group.tools)

    def call(
        self,
        name: str,
        arguments: dict[str, Any] | None = None,
        *,
        timeout: float | None = _UNSET,
        progress_callback: Callable[[float, float | None, str | None], object] | None = None,
        meta: types.RequestParamsMeta | None = None,
    ) -> types.CallToolResult:
        """Call the catalogue's tool ``name``; see ``ServerGroup.call``. ``progress_callback(progress, total,
        message)`` is a plain function, run in the group's loop thread."""
        relay = None
        if progress_callback is not None:
            plain = progress_callback

            async def relay(progress: float, total: float | None, message: str | None) -> None:
                plain(progress, total, message)

        options: dict[str, Any] = {} if timeout is _UNSET else {"timeout": timeout}
        call = functools.partial(self.group.call, name, arguments, progress_callback=relay, meta=meta, **options)
        return self._loop.run(self._running(), call)

    def on_event(self, callback: Callable[[Any], object]) -> Callable[[], None]:
        """Call ``callback(event)`` for every event of every server (``mcp_connections.events``), in the loop
        thread (it must not call this object's blocking methods); returns a remover."""
        return self.group.on_event(callback)

    def on_tools_changed(self, callback: Callable[[BlockingGroup], object]) -> None:
        """Call ``callback(blocking_group)`` after every change of the catalogue's tools, in the loop thread (it must
        not call this object's blocking methods)."""
        self.group.on_tools_changed(lambda group: callback(self))

    def on_prompts_changed(self, callback: Callable[[BlockingGroup], object]) -> None:
        """Call ``callback(blocking_group)`` after every change of the catalogue's prompts, in the loop thread."""
        self.group.on_prompts_changed(lambda group: callback(self))

    def on_resources_changed(self, callback: Callable[[BlockingGroup], object]) -> None:
        """Call ``callback(blocking_group)`` after every change of the catalogue's resources, in the loop thread."""
        self.group.on_resources_changed(lambda group: callback(self))

    def prompts(self) -> list[GroupPrompt]:
        """Every prompt of every connected server; see ``ServerGroup.prompts``."""
        return self._loop.run(self._running(), self.group.prompts)

    def get_prompt(
        self, name: str, arguments: dict[str, str] | None = None, *, timeout: float | None = _UNSET
    ) -> types.GetPromptResult:
        """Get the catalogue's prompt ``name``; see ``ServerGroup.get_prompt``."""
        options: dict[str, Any] = {} if timeout is _UNSET else {"timeout": timeout}
        return self._loop.run(self._running(), functools.partial(self.group.get_prompt, name, arguments, **options))

    def resources(self) -> list[GroupResource]:
        """Every resource of every connected server; see ``ServerGroup.resources``."""
        return self._loop.run(self._running(), self.group.resources)

    def read_resource(
        self, uri: str, server: str | None = None, *, timeout: float | None = _UNSET
    ) -> types.ReadResourceResult:
        """Read ``uri`` from the server that listed it (or ``server``); see ``ServerGroup.read_resource``."""
        options: dict[str, Any] = {} if timeout is _UNSET else {"timeout": timeout}
        return self._loop.run(self._running(), functools.partial(self.group.read_resource, uri, server, **options))

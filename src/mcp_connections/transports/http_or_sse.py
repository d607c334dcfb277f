"""A server at a URL whose transport is found out by connecting: streamable HTTP first, then the older SSE.

Design: the SDK's streamable HTTP client connects lazily, so whether a URL speaks it is only known when the
first request (``initialize``) is answered. This manager therefore hands the session streams of its own
and routes them to an inner ``StreamableHttpConnectionManager``, keeping a copy of every message sent
until the server has answered once. If that first exchange fails with HTTP 400, 404 or 405 (what servers
that only speak SSE answer a POST with), the inner manager has failed with a ``ConnectError`` carrying
the status; the manager then starts an inner ``SseConnectionManager`` on the same URL and sends the kept
messages again, so the session never learns of the detour (the SDK's error answer to the refused request
is dropped, it belongs to the transport that failed). ``used_transport`` says which one carries the
connection; once SSE has worked, later connects (restarts) go straight to SSE, as the server said it does
not speak streamable HTTP.

Both inner managers are named after this one, so their errors name the server as the caller knows it;
their failures once connected are this manager's lost connection.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager, suppress
from typing import Literal

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.shared.message import SessionMessage

from .._bridge import OUTGOING_BUFFER, RemoteStreams
from .._exceptions import chain
from .._http_hooks import HttpClientFactory
from ..auth import AuthSpec
from ..base import ConnectionManager
from ..errors import ConnectError, ConnectionLostError, MCPConnectionError
from ..sse import SseConnectionManager
from ..streamable_http import StreamableHttpConnectionManager

__all__ = ["FALLBACK_STATUSES", "StreamableHttpOrSseConnectionManager"]

logger = logging.getLogger(__name__)

# Statuses with which a streamable HTTP endpoint says "not here, try the older SSE transport".
FALLBACK_STATUSES = frozenset({400, 404, 405})

# Least time given to stopping an inner manager when stop()'s budget is spent (stop(0) would mean no limit).
_MIN_INNER_STOP_TIME = 0.05

UsedTransport = Literal["streamable-http", "sse"]


class StreamableHttpOrSseConnectionManager(ConnectionManager[RemoteStreams]):
    """Connects to a URL over streamable HTTP, or over SSE when the server answers 400, 404 or 405.

    The arguments are those of ``StreamableHttpConnectionManager`` (``read_timeout`` is SSE's
    ``sse_read_timeout`` too). ``timeout`` bounds each attempt, so a connect may take two of them.
    The connection is ``(read_stream, write_stream)``, ready for ``mcp.ClientSession(read, write)``.
    """

    def __init__(
        self,
        url: str,
        headers: Mapping[str, str] | None = None,
        timeout: float = 5,
        read_timeout: float = 300,
        auth: AuthSpec | None = None,
        httpx_client_factory: HttpClientFactory | None = None,
        *,
        name: str | None = None,
    ) -> None:
        http = StreamableHttpConnectionManager(
            url, headers, timeout, read_timeout, auth, httpx_client_factory, name=name
        )
        super().__init__(name=http.name)
        self.url = http.url
        self.timeout = http.timeout
        self.read_timeout = http.read_timeout
        self.streamable_http = http
        self.sse = SseConnectionManager(url, headers, timeout, read_timeout, auth, httpx_client_factory, name=self.name)
        self._used: UsedTransport | None = None
        self._sse_only = False

    @property
    def used_transport(self) -> UsedTransport | None:
        """``"streamable-http"`` or ``"sse"``: what carries the current (or last) connection; None before the first."""
        return self._used

    def _inner(self) -> StreamableHttpConnectionManager | SseConnectionManager:
        return self.sse if self._used == "sse" else self.streamable_http

    @asynccontextmanager
    async def _connect(self) -> AsyncIterator[RemoteStreams]:
        self._used = "sse" if self._sse_only else "streamable-http"
        inner_streams = await self._inner().start()  # streamable HTTP: nothing on the network yet
        read_writer, read_stream = anyio.create_memory_object_stream[SessionMessage | Exception](0)
        write_stream, write_reader = anyio.create_memory_object_stream[SessionMessage](OUTGOING_BUFFER)
        route = _Route(inner_streams, decided=self._sse_only)
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._pump_in, route, read_writer)
                tg.start_soon(self._pump_out, route, write_reader)
                try:
                    yield read_stream, write_stream
                finally:
                    tg.cancel_scope.cancel()
        finally:
            for stream in (read_writer, read_stream, write_stream, write_reader):
                stream.close()
            with anyio.CancelScope(shield=True):
                for inner in (self.streamable_http, self.sse):
                    budget = self._stop_budget()
                    await inner.stop(None if budget is None else max(_MIN_INNER_STOP_TIME, budget))

    async def _pump_in(self, route: _Route, sink: MemoryObjectSendStream[SessionMessage | Exception]) -> None:
        try:
            while True:
                try:
                    item = await route.read.receive()
                except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
                    if not await self._after_inner_ended(route):
                        return
                    continue
                if not route.decided:
                    if self._inner().error is not None:
                        continue  # the SDK's answer to a refused request: the transport failed, not the request
                    if isinstance(item, SessionMessage):
                        route.decide()
                # The session may have left: keep draining, so the inner transport never blocks.
                with suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                    await sink.send(item)
        finally:
            sink.close()  # pending requests fail now

    async def _after_inner_ended(self, route: _Route) -> bool:
        """The inner connection ended: fall back to SSE (True) or report the loss (False)."""
        inner = self._inner()
        await inner.wait_closed()
        error = inner.error
        undecided = not route.decided and self._used == "streamable-http"
        if undecided and isinstance(error, ConnectError) and _http_status(error) in FALLBACK_STATUSES:
            return await self._fall_back(route, error)
        if isinstance(error, MCPConnectionError):
            self._connection_lost(error)
        else:
            self._connection_lost(ConnectionLostError(f"connection lost over {self._used}", server=self.name))
        return False

    async def _fall_back(self, route: _Route, http_error: ConnectError) -> bool:
        logger.info("%s: no streamable HTTP endpoint (%s); trying SSE", self.name, http_error.message)
        async with route.lock:
            self._used = "sse"
            try:
                streams = await self.sse.start()
            except MCPConnectionError as sse_error:
                error = ConnectError(
                    f"neither streamable HTTP ({http_error.message}) nor SSE ({sse_error.message}) worked",
                    server=self.name,
                )
                self._connection_lost(chain(error, sse_error))
                return False
            self._sse_only = True
            route.read, route.write = streams
            for message in route.sent:
                await route.write.send(message)
        return True

    async def _pump_out(self, route: _Route, source: MemoryObjectReceiveStream[SessionMessage]) -> None:
        async for message in source:
            async with route.lock:
                if not route.decided:
                    route.sent.append(message)  # sent again if the first transport turns out to be the wrong one
                # If the inner connection ended, _pump_in falls back (and resends) or reports why.
                with suppress(anyio.BrokenResourceError, anyio.ClosedResourceError):
                    await route.write.send(message)
        # The session closing its write stream ends nothing: the inner streams stay open until stop().


class _Route:
    """Where the session's messages go now, and what was sent before the server first answered."""

    def __init__(self, streams: RemoteStreams, *, decided: bool) -> None:
        self.read, self.write = streams
        self.decided = decided
        self.sent: list[SessionMessage] = []
        self.lock = anyio.Lock()

    def decide(self) -> None:
        self.decided = True
        self.sent.clear()


def _http_status(error: BaseException) -> int | None:
    """The HTTP status a connect error was about, if any (from the error or its causes)."""
    current: BaseException | None = error
    while current is not None:
        if isinstance(current, ConnectError) and current.http_status is not None:
            return current.http_status
        current = current.__cause__
    return None

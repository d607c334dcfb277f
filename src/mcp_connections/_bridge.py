"""What the remote transports (streamable HTTP, SSE, WebSocket) share: the URL, its secrets, and the stream bridge.

Design: every remote manager hands the session a pair of anyio memory object streams of its own, the
same shape as the stdio transport's, and pumps messages between them and the wire (or the SDK's
transport streams). Owning the session's streams is what lets a manager keep its promises whatever the
SDK does underneath: when the connection is lost the manager reports why and then ends the session's
read stream, so pending requests fail at once instead of waiting for a read timeout, and a failure the
SDK would only log (a dropped event stream, an HTTP error it turns into a JSON-RPC error) still ends the
connection with an error that names the server and says what to do. What the HTTP transports add (the
httpx2 client and its hooks) is in ``_http_hooks``; how failures are put in words is in ``_failures``.

Secrets: the URL's userinfo is taken out before any library sees the URL and travels as an
``Authorization`` header instead; ``name`` (and so every message and log line of this library) is the
URL as ``redact_url`` shows it; header values and ``auth`` are kept in private attributes and never
formatted.
"""

from __future__ import annotations

import functools
from abc import abstractmethod
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import AbstractAsyncContextManager, AbstractContextManager, asynccontextmanager
from typing import Literal, Protocol, TypeVar

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.shared.message import SessionMessage

from ._exceptions import map_exceptions
from ._failures import Failure
from ._redact import basic_authorization, install_url_redaction, redact_url, split_userinfo
from .base import ConnectionManager, unwrap_exception
from .errors import ConfigError, ConnectError, ConnectionLostError, MCPConnectionError

__all__ = [
    "MAX_MESSAGE_SIZE",
    "OUTGOING_BUFFER",
    "SECRET_HEADERS",
    "RemoteConnectionManager",
    "RemoteStreams",
    "translated",
]

install_url_redaction()

RemoteStreams = tuple[MemoryObjectReceiveStream[SessionMessage | Exception], MemoryObjectSendStream[SessionMessage]]


# Headers whose values are credentials whoever set them; every header the caller gives is treated as
# secret too, these are for the ones a library adds on its own.
SECRET_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", "set-cookie", "x-api-key"})

# Messages the session may hand over before the transport has taken the previous ones.
OUTGOING_BUFFER = 32

# Largest message accepted from a server (an SSE event or a WebSocket frame): tool results can be large,
# but no limit at all lets a server exhaust our memory, and the libraries' 1 MiB defaults are too small.
MAX_MESSAGE_SIZE = 32 * 1024 * 1024


_Manager = TypeVar("_Manager", bound="RemoteConnectionManager")


def translated(
    connect: Callable[[_Manager], AbstractAsyncContextManager[RemoteStreams]],
) -> Callable[[_Manager], AbstractAsyncContextManager[RemoteStreams]]:
    """Decorates a remote transport's ``_connect()``: whatever escapes it is translated at this boundary,
    into a ``ConnectError`` until the server has answered once and a ``ConnectionLostError`` after, with
    the third-party exception as its cause (``_exceptions.map_exceptions``)."""

    @asynccontextmanager
    async def translated_connect(self: _Manager) -> AsyncIterator[RemoteStreams]:
        with self._translated():
            async with connect(self) as streams:
                yield streams

    return functools.wraps(connect)(translated_connect)


class _Source(Protocol):
    async def receive(self) -> SessionMessage | Exception: ...


class _Sink(Protocol):
    async def send(self, item: SessionMessage, /) -> None: ...


class RemoteConnectionManager(ConnectionManager[RemoteStreams]):
    """A connection to an MCP server at a URL; the base of the HTTP and WebSocket managers."""

    _schemes: tuple[str, ...] = ()
    _transport_name = "remote"
    # What it means when the transport's read stream ends on its own.
    _transport_ended = "the transport closed the connection"

    def __init__(self, url: str, headers: Mapping[str, str] | None, timeout: float, name: str | None = None) -> None:
        super().__init__(name=name)
        self.url = redact_url(url)
        self.name = name or self.url
        try:
            bare_url, credentials = split_userinfo(url)
        except ValueError as exc:
            raise ConfigError(f"invalid URL: {exc}", server=self.name) from None
        if bare_url.partition(":")[0].lower() not in self._schemes:
            schemes = " or ".join(f"{scheme}://" for scheme in self._schemes)
            raise ConfigError(f"a {self._transport_name} URL must start with {schemes}", server=self.name)
        if not timeout > 0:
            raise ConfigError(f"timeout must be positive, not {timeout!r}", server=self.name)
        self.timeout = float(timeout)
        self._url = bare_url
        self._credentials = credentials
        self._headers = dict(headers or {})
        # Whether the server has sent a message on this connection: failures before are failed connects.
        self._established = False

    # -- what each transport says about itself -----------------------------------------------------------

    # How a 404 hint names the paths this transport's servers usually serve.
    _usual_paths = "the path"

    @abstractmethod
    def _describe_failure(self, exc: BaseException) -> Failure:
        """What went wrong, in words, from an exception the transport raised: no URL, no secret."""

    def _connect_hint(self) -> str:
        return "Check the URL and that the server is running and reachable."

    def _as_connect_error(self, failure: Failure) -> ConnectError:
        return ConnectError(
            f"could not connect: {failure.what}. {failure.hint or self._connect_hint()}",
            server=self.name,
            http_status=failure.status,
        )

    def _as_lost(self, failure: Failure) -> ConnectionLostError:
        hint = f". {failure.hint}" if failure.hint else ""
        return ConnectionLostError(f"connection lost: {failure.what}{hint}", server=self.name)

    # -- errors --------------------------------------------------------------------------------------------

    def _translate_error(self, exc: BaseException, phase: Literal["connect", "connected"]) -> MCPConnectionError:
        leaf = unwrap_exception(exc)
        if isinstance(leaf, MCPConnectionError):
            return leaf
        failure = self._describe_failure(leaf)
        if phase == "connect" or not self._established:
            # The SDK's HTTP transport connects lazily: a first request that fails is a failed connect.
            return self._as_connect_error(failure)
        return self._as_lost(failure)

    def _translated(self) -> AbstractContextManager[None]:
        """What escapes the block becomes this library's error, cause chained (see ``translated``)."""
        return map_exceptions(lambda exc: self._translate_error(exc, "connected" if self._established else "connect"))

    def _report_lost(self, failure: Failure) -> None:
        """The connection ended on its own: a ConnectError if the server never answered."""
        self._connection_lost(self._as_lost(failure) if self._established else self._as_connect_error(failure))

    def _auth_headers(self) -> dict[str, str]:
        """The caller's headers, plus Basic authentication from the URL's userinfo when no header sets it."""
        headers = dict(self._headers)
        if self._credentials is not None and not any(k.lower() == "authorization" for k in headers):
            headers["Authorization"] = basic_authorization(self._credentials)
        return headers

    # -- the session's streams -----------------------------------------------------------------------------

    @asynccontextmanager
    async def _bridge(self, source: _Source, sink: _Sink) -> AsyncIterator[RemoteStreams]:
        """The session's streams, pumped to and from a transport's: the transport ending is a lost connection."""
        read_writer, read_stream = anyio.create_memory_object_stream[SessionMessage | Exception](0)
        # A buffer on the way out: the SDK's streamable HTTP writer POSTs notifications inline, so a server
        # slow to take one would otherwise block every sender, even the shielded courtesy cancel that the
        # SDK sends when a request times out, and hold that request's RequestTimeoutError for seconds.
        write_stream, write_reader = anyio.create_memory_object_stream[SessionMessage](OUTGOING_BUFFER)
        leaving = anyio.Event()
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._pump_in, source, read_writer, leaving)
                tg.start_soon(self._pump_out, write_reader, sink, leaving)
                try:
                    yield read_stream, write_stream
                finally:
                    leaving.set()
                    tg.cancel_scope.cancel()
        finally:
            for stream in (read_writer, read_stream, write_stream, write_reader):
                stream.close()

    async def _pump_in(
        self, source: _Source, sink: MemoryObjectSendStream[SessionMessage | Exception], leaving: anyio.Event
    ) -> None:
        session_gone = False
        try:
            while True:
                item = await source.receive()
                if isinstance(item, SessionMessage):
                    self._established = True
                if not session_gone:  # else keep draining, so the transport never blocks on a reader that left
                    try:
                        await sink.send(item)
                    except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                        session_gone = True  # the session closed its read stream: not the connection's end
                self._delivered(item)
        except (anyio.EndOfStream, anyio.ClosedResourceError, anyio.BrokenResourceError):
            if not leaving.is_set():
                self._report_lost(Failure(self._transport_ended))
        finally:
            # End the session's read stream, so that pending requests fail now.
            sink.close()

    def _delivered(self, item: SessionMessage | Exception) -> None:
        """Look at what the transport delivered, after the session got it (a transport may learn from it)."""

    async def _pump_out(
        self, source: MemoryObjectReceiveStream[SessionMessage], sink: _Sink, leaving: anyio.Event
    ) -> None:
        try:
            async for message in source:
                await sink.send(message)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError):
            if not leaving.is_set():
                self._report_lost(Failure("the transport stopped accepting messages"))
        # The session closing its write stream ends nothing: the transport's streams stay open until stop().

"""A connection to an MCP server over a WebSocket (subprotocol ``mcp``, one JSON-RPC message per text frame).

Design: the transport is written here on the ``websockets`` library's asyncio client, since the SDK has
none; it is therefore the one transport that needs asyncio (under trio, ``start()`` raises a
``ConnectError`` that says so). ``start()`` performs the opening handshake, bounded by ``timeout``: a
refused connection, an unknown host, a TLS failure or an HTTP status instead of the upgrade (401, 403,
404) fails ``start()`` with a ``ConnectError``. Two tasks run beside the connection: frames to the session
(each text frame parsed as one message, a frame that is not JSON-RPC handed to the session as the error)
and the session to frames.
The connection ending in any way, a close frame, a dropped socket or a keepalive ping with no pong, is a
lost connection: the manager reports why and ends the session's read stream, so pending requests fail
at once. The library's keepalive pings notice a server that vanished without closing its socket.

Secrets: userinfo in the URL travels as an ``Authorization: Basic`` header, redirects are only followed
within the URL's origin (the headers go with them), and the library's debug log of the handshake goes
through an adapter that hides header values.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping, MutableMapping
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import urlsplit

import anyio
import sniffio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.shared.message import SessionMessage
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as websockets_connect
from websockets.exceptions import (
    ConnectionClosed,
    InvalidHandshake,
    InvalidStatus,
    InvalidURI,
    WebSocketException,
)
from websockets.typing import Subprotocol
from websockets.uri import parse_uri

from ._bridge import MAX_MESSAGE_SIZE, SECRET_HEADERS, RemoteConnectionManager, RemoteStreams, translated
from ._failures import Failure, describe_network_error, describe_status
from ._framing import parse_message
from ._redact import REDACTED, redact_url
from .base import describe_exception
from .errors import ConfigError, ConnectError

__all__ = ["WebSocketConnectionManager"]

logger = logging.getLogger(__name__)

SUBPROTOCOL = Subprotocol("mcp")


# Keepalive: a server that vanished without closing its socket (host down, network cut) is noticed
# within interval + timeout; without pings such a connection would look alive until the next send.
WS_PING_INTERVAL = 20.0
WS_PING_TIMEOUT = 20.0

# Bound on the closing handshake at stop (our close frame, the server's, the TCP close); after it the
# socket is aborted.
WS_CLOSE_TIMEOUT = 2.0


class WebSocketConnectionManager(RemoteConnectionManager):
    """Connects to an MCP server's WebSocket endpoint (``ws://`` or ``wss://``).

    ``headers`` are sent on the opening handshake; userinfo in the URL is sent as HTTP Basic
    authentication. ``timeout`` bounds the opening handshake; ``name`` is how errors and logs name the server
    (default: the URL, redacted). The connection is
    ``(read_stream, write_stream)``, ready for ``mcp.ClientSession(read, write)``.
    """

    _schemes = ("ws", "wss")
    _transport_name = "WebSocket"
    _usual_paths = "a path such as /mcp or /ws"
    _transport_ended = "the WebSocket closed"

    def __init__(
        self, url: str, headers: Mapping[str, str] | None = None, timeout: float = 5, *, name: str | None = None
    ) -> None:
        super().__init__(url, headers, timeout, name)
        try:
            parse_uri(self._url)
        except InvalidURI:
            raise ConfigError("invalid WebSocket URL", server=self.name) from None

    @translated
    @asynccontextmanager
    async def _connect(self) -> AsyncIterator[RemoteStreams]:
        self._established = False
        library = sniffio.current_async_library()
        if library != "asyncio":
            raise ConnectError(
                f"the WebSocket transport needs asyncio (it runs on the websockets library's asyncio client), "
                f"not {library}. Run this server under asyncio, or reach it over streamable HTTP.",
                server=self.name,
            )
        ws = await self._open()
        # No await between the open and the shielded cleanup below, or a cancellation would leak the socket.
        read_writer, read_stream = anyio.create_memory_object_stream[SessionMessage | Exception](0)
        write_stream, write_reader = anyio.create_memory_object_stream[SessionMessage](0)
        leaving = anyio.Event()
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._receive_frames, ws, read_writer, leaving)
                tg.start_soon(self._send_frames, ws, write_reader, leaving)
                try:
                    yield read_stream, write_stream
                finally:
                    leaving.set()
                    read_writer.close()
                    write_reader.close()
                    with anyio.CancelScope(shield=True):
                        await self._close(ws)
                    tg.cancel_scope.cancel()
        finally:
            if not ws.transport.is_closing():
                ws.transport.abort()
            for stream in (read_writer, read_stream, write_stream, write_reader):
                stream.close()

    async def _open(self) -> ClientConnection:
        return await _SameOriginConnect(
            self._url,
            subprotocols=[SUBPROTOCOL],
            additional_headers=self._auth_headers(),
            open_timeout=self.timeout,
            ping_interval=WS_PING_INTERVAL,
            ping_timeout=WS_PING_TIMEOUT,
            close_timeout=WS_CLOSE_TIMEOUT,
            max_size=MAX_MESSAGE_SIZE,
            logger=_RedactingLogger(logging.getLogger("websockets.client"), self._headers),
        )

    async def _close(self, ws: ClientConnection) -> None:
        budget = self._stop_budget()
        with anyio.move_on_after(WS_CLOSE_TIMEOUT if budget is None else min(WS_CLOSE_TIMEOUT, budget)):
            await ws.close()

    async def _receive_frames(
        self, ws: ClientConnection, sink: MemoryObjectSendStream[SessionMessage | Exception], leaving: anyio.Event
    ) -> None:
        session_gone = False
        try:
            async for frame in ws:
                item = _parse_frame(frame)
                if isinstance(item, SessionMessage):
                    self._established = True
                if session_gone:
                    continue  # the session left; keep reading so the server is not stalled
                try:
                    await sink.send(item)
                except (anyio.BrokenResourceError, anyio.ClosedResourceError):
                    session_gone = True
            failure = _describe_close(ws)
        except ConnectionClosed:
            failure = _describe_close(ws)
        except OSError as exc:
            failure = describe_network_error(exc) or Failure(describe_exception(exc))
        finally:
            sink.close()  # pending requests fail now
        if not leaving.is_set():
            self._report_lost(failure)

    async def _send_frames(
        self, ws: ClientConnection, source: MemoryObjectReceiveStream[SessionMessage], leaving: anyio.Event
    ) -> None:
        async with source:
            async for message in source:
                try:
                    await ws.send(message.message.model_dump_json(by_alias=True, exclude_unset=True))
                except ConnectionClosed:
                    # The receiving task reports why; the session's next sends fail at once.
                    return

    def _describe_failure(self, exc: BaseException) -> Failure:
        if isinstance(exc, InvalidStatus):
            return describe_status(exc.response.status_code, exc.response.reason_phrase, "GET", self._usual_paths)
        if isinstance(exc, TimeoutError):
            return Failure(f"the opening handshake timed out after {self.timeout:g}s")
        network = describe_network_error(exc)
        if network is not None:
            return network
        if isinstance(exc, InvalidHandshake):
            return Failure(f"the WebSocket handshake failed ({type(exc).__name__}: {exc})")
        if isinstance(exc, ConnectionClosed):
            return _describe_close_exception(exc)
        if isinstance(exc, WebSocketException):
            return Failure(f"WebSocket error ({type(exc).__name__})")
        return Failure(describe_exception(exc))

    def _connect_hint(self) -> str:
        return "Check the URL and that the server is running, reachable and speaks MCP over WebSocket."


class _SameOriginConnect(websockets_connect):
    """The library's connect, following a redirect only within the URL's origin: headers go with it."""

    def process_redirect(self, exc: Exception) -> Exception | str:
        target = super().process_redirect(exc)
        if isinstance(target, str) and _origin(target) != _origin(self.uri):
            return exc
        return target


def _origin(url: str) -> tuple[str, str | None, int | None]:
    parts = urlsplit(url)
    return parts.scheme, parts.hostname, parts.port


class _RedactingLogger(logging.LoggerAdapter[logging.Logger]):
    """The library's logger, with header values and query tokens hidden from its handshake debug lines."""

    def __init__(self, logger: logging.Logger, headers: Mapping[str, str]) -> None:
        super().__init__(logger, {})
        self._secret = SECRET_HEADERS | {name.lower() for name in headers}

    def log(self, level: int, msg: object, *args: object, **kwargs: Any) -> None:
        if msg in ("> %s: %s", "< %s: %s") and len(args) == 2 and str(args[0]).lower() in self._secret:
            args = (args[0], REDACTED)
        elif msg == "> GET %s HTTP/1.1" and len(args) == 1:
            args = (redact_url(str(args[0])),)
        super().log(level, msg, *args, **kwargs)

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, MutableMapping[str, Any]]:
        return msg, kwargs


def _parse_frame(frame: str | bytes) -> SessionMessage | Exception:
    """One frame as a message; a frame that is not a JSON-RPC text message comes back as the error."""
    if isinstance(frame, bytes):
        logger.warning("server sent a binary frame (%d bytes); MCP over WebSocket uses text frames", len(frame))
        return ValueError("binary WebSocket frame; MCP messages are sent as text frames")
    return parse_message(frame, "frame", logger)


_DROPPED = Failure("the connection dropped without a closing handshake (the server went away)")


def _describe_close(ws: ClientConnection) -> Failure:
    code, reason = ws.close_code, ws.close_reason
    if code is None or code == 1006:
        return _DROPPED
    detail = f"code {code}" + (f": {reason}" if reason else "")
    if code == 1011 and "keepalive" in (reason or ""):
        return Failure(f"the server stopped answering keepalive pings ({detail})")
    return Failure(f"the server closed the WebSocket ({detail})")


def _describe_close_exception(exc: ConnectionClosed) -> Failure:
    frame = exc.rcvd
    if frame is None:
        return _DROPPED
    return Failure(
        f"the server closed the WebSocket (code {frame.code}" + (f": {frame.reason})" if frame.reason else ")")
    )

"""What the remote transports (streamable HTTP, SSE, WebSocket) share.

Design: every remote manager hands the session a pair of anyio memory object streams of its own, the
same shape as the stdio transport's, and pumps messages between them and the wire (or the SDK's
transport streams). Owning the session's streams is what lets a manager keep its promises whatever the
SDK does underneath: when the connection is lost the manager reports why and then ends the session's
read stream, so pending requests fail at once instead of waiting for a read timeout, and a failure the
SDK would only log (a dropped event stream, an HTTP error it turns into a JSON-RPC error) still ends the
connection with an error that names the server and says what to do.

Secrets: the URL's userinfo is taken out before any library sees the URL and travels as an
``Authorization`` header instead; ``name`` (and so every message and log line of this library) is the
URL as ``redact_url`` shows it; header values and ``auth`` are kept in private attributes and never
formatted.
"""

from __future__ import annotations

import errno
import logging
import math
import socket
import ssl
from abc import abstractmethod
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Literal, NamedTuple, Protocol

import anyio
import httpx2
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream
from mcp.shared.message import SessionMessage

from ._redact import basic_authorization, install_url_redaction, redact_url, split_userinfo
from .base import ConnectionManager, describe_exception, unwrap_exception
from .errors import ConfigError, ConnectError, ConnectionLostError, MCPConnectionError

__all__ = ["Failure", "HttpClientFactory", "RemoteConnectionManager", "RemoteHttpConnectionManager", "RemoteStreams"]

logger = logging.getLogger("mcp_connections.remote")

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


def _is_notification(request: httpx2.Request) -> bool:
    """Whether a POST carries a JSON-RPC notification (a method and no id)."""
    try:
        body = request.content
    except httpx2.RequestNotRead:
        return False
    return b'"method"' in body and b'"id"' not in body


# Bound on closing an HTTP client's pool; closing sockets is local, only a TLS close_notify can wait.
CLIENT_CLOSE_TIMEOUT = 1.0

# Least time given to closing a pool when stop()'s budget is spent: enough for the local closes.
_MIN_CLOSE_TIME = 0.05


class Failure(NamedTuple):
    """What went wrong, and what to do about it when this failure alone says."""

    what: str
    hint: str | None = None
    status: int | None = None  # the HTTP status it was about, if any


SESSION_GONE = Failure(
    "the server no longer knows this session (HTTP 404): it restarted or expired it",
    "Start the connection again for a new session.",
)


class HttpClientFactory(Protocol):
    """Builds the ``httpx2.AsyncClient`` of one connection; the signature of the SDK's ``create_mcp_http_client``."""

    def __call__(
        self,
        headers: dict[str, str] | None = None,
        timeout: httpx2.Timeout | None = None,
        auth: httpx2.Auth | None = None,
    ) -> httpx2.AsyncClient: ...


def default_http_client(
    headers: dict[str, str] | None = None,
    timeout: httpx2.Timeout | None = None,
    auth: httpx2.Auth | None = None,
) -> httpx2.AsyncClient:
    """What the SDK's ``create_mcp_http_client`` builds: redirects are left to the SDK, which keeps them
    on the endpoint's origin so that headers and credentials never go elsewhere."""
    return httpx2.AsyncClient(headers=headers, timeout=timeout, auth=auth, follow_redirects=False)


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


# -- HTTP -----------------------------------------------------------------------------------------------------


class RemoteHttpConnectionManager(RemoteConnectionManager):
    """What the two HTTP managers share: the httpx2 client, its response watch and HTTP errors."""

    _schemes = ("http", "https")

    def __init__(
        self,
        url: str,
        headers: Mapping[str, str] | None,
        timeout: float,
        read_timeout: float,
        auth: httpx2.Auth | None,
        httpx_client_factory: HttpClientFactory | None,
        name: str | None = None,
    ) -> None:
        super().__init__(url, headers, timeout, name)
        if not read_timeout > 0:
            raise ConfigError(f"read timeout must be positive, not {read_timeout!r}", server=self.name)
        self.read_timeout = float(read_timeout)
        self._auth = auth
        self._client_factory = httpx_client_factory or default_http_client
        self._endpoint = httpx2.URL(self._url)

    def _new_client(self) -> httpx2.AsyncClient:
        """A client for one connection, from the factory, with this manager's response watch added."""
        client = self._client_factory(
            headers=self._auth_headers(),
            timeout=httpx2.Timeout(self.timeout, read=self.read_timeout),
            auth=self._auth,
        )
        hooks = client.event_hooks
        client.event_hooks = {
            "request": [*hooks.get("request", []), self._watch_request],
            "response": [*hooks.get("response", []), self._watch_response],
        }
        return client

    async def _watch_request(self, request: httpx2.Request) -> None:
        """Event hook on every request: until the server has answered once, ``timeout`` bounds every wait.

        The first request is the connect of a lazy transport; with ``read_timeout`` (minutes, for long
        tool calls) a server that accepts connections but never answers would hang it. POSTs only: an
        event stream opened now must stay quiet for as long as ``read_timeout`` allows.
        """
        if request.method != "POST" or not self._is_mcp_request(request):
            return
        if not self._established or _is_notification(request):
            # A notification's POST is answered at once (202) by a working server, and the SDK sends it
            # inline, ahead of every later message: read_timeout must not apply to it.
            request.extensions = {**request.extensions, "timeout": httpx2.Timeout(self.timeout).as_dict()}

    async def _watch_response(self, response: httpx2.Response) -> None:
        """Event hook on every response: HTTP errors that end the connection, and bodies that break."""
        request = response.request
        if not self._is_mcp_request(request):
            return  # an auth flow's own requests (metadata, tokens) are its business
        status = response.status_code
        if status < 300:
            if isinstance(response.stream, httpx2.AsyncByteStream):
                response.stream = _WatchedBody(response.stream, self._body_failed)
        elif status >= 400 and not self._stop_called:
            error = self._status_error(request, response)
            if error is not None:
                logger.debug("%s: %s %s answered %d", self.name, request.method, redact_url(str(request.url)), status)
                self._connection_lost(error)

    def _is_mcp_request(self, request: httpx2.Request) -> bool:
        """A request the SDK made for MCP: to the endpoint, or a JSON-RPC message posted anywhere on its origin."""
        url = request.url
        if (url.scheme, url.host, url.port) != (self._endpoint.scheme, self._endpoint.host, self._endpoint.port):
            return False
        if url.path.rstrip("/") == self._endpoint.path.rstrip("/"):
            return True
        try:
            return request.method == "POST" and b'"jsonrpc"' in request.content
        except httpx2.RequestNotRead:
            return False

    @abstractmethod
    def _status_error(self, request: httpx2.Request, response: httpx2.Response) -> MCPConnectionError | None:
        """The error an HTTP error status means for this transport, or None if the SDK handles it."""

    def _rejects_credentials(self, status: int) -> bool:
        """Whether a 401/403 is final: an ``httpx2.Auth`` flow of the caller's may still answer a challenge."""
        return status in (401, 403) and self._auth is None

    def _body_failed(self, exc: httpx2.TransportError) -> None:
        if isinstance(exc, httpx2.TimeoutException) and self._established:
            return  # a quiet stream outlived read_timeout: the SDK reopens or fails that one request
        if not self._stop_called:
            what = describe_http_error(exc, self.timeout, self._usual_paths).what
            self._report_lost(Failure(f"the server went away mid-response ({what})"))

    def _describe_failure(self, exc: BaseException) -> Failure:
        return describe_http_error(exc, self.timeout, self._usual_paths)

    async def _close_client(self, client: httpx2.AsyncClient) -> None:
        """Close the client's connection pool even under cancellation: sockets must not outlive stop().

        Cutting the close short is safe: a TLS stream whose goodbye is cut off is closed forcefully.
        """
        budget = self._stop_budget()
        limit = CLIENT_CLOSE_TIMEOUT if budget is None else max(_MIN_CLOSE_TIME, min(CLIENT_CLOSE_TIMEOUT, budget))
        with anyio.CancelScope(shield=True), anyio.move_on_after(limit):
            await client.aclose()


class _WatchedBody(httpx2.AsyncByteStream):
    """A response body that reports a transport error while it is read (the server died mid-stream)."""

    def __init__(self, inner: httpx2.AsyncByteStream, on_error: _BodyErrorHandler) -> None:
        self._inner = inner
        self._on_error = on_error

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._inner:
                yield chunk
        except httpx2.TransportError as exc:
            self._on_error(exc)
            raise

    async def aclose(self) -> None:
        await self._inner.aclose()

    @property
    def elapsed(self) -> object:
        return getattr(self._inner, "elapsed", None)


class _BodyErrorHandler(Protocol):
    def __call__(self, exc: httpx2.TransportError, /) -> None: ...


# -- connecting within a deadline -----------------------------------------------------------------------


class Lifetime:
    """A cancel scope around a whole transport context: a deadline while connecting, none while
    connected, and the cleanup's budget once leaving (cancel scopes must nest, so one scope does all)."""

    def __init__(self, connect_timeout: float) -> None:
        self.scope = anyio.CancelScope(deadline=anyio.current_time() + connect_timeout)
        self.connected = False

    def connected_now(self) -> None:
        self.connected = True
        self.scope.deadline = math.inf

    def leaving(self, budget: float) -> None:
        self.scope.deadline = anyio.current_time() + budget

    @property
    def timed_out(self) -> bool:
        return self.scope.cancelled_caught and not self.connected


# -- describing failures ---------------------------------------------------------------------------------


def describe_status(status: int, reason: str, method: str, usual_paths: str = "the path") -> Failure:
    """What an HTTP error status from an MCP endpoint means, and what to do about it."""
    return _status_words(status, reason, method, usual_paths)._replace(status=status)


def _status_words(status: int, reason: str, method: str, usual_paths: str) -> Failure:
    text = f"HTTP {status} {reason}".rstrip()
    if status == 401:
        return Failure(f"the server rejected the credentials ({text})", "Check the token in the headers or auth.")
    if status == 403:
        return Failure(f"access denied ({text})", "The credentials lack permission for this endpoint.")
    if status == 404:
        return Failure(f"no MCP endpoint at this URL ({text})", f"Check the path: servers usually serve {usual_paths}.")
    if status == 405:
        return Failure(
            f"the server does not accept {method} at this URL ({text})",
            "Is it the endpoint of another MCP transport (streamable HTTP, SSE, WebSocket)?",
        )
    if status == 407:
        return Failure(f"the proxy requires authentication ({text})", "Configure the proxy's credentials.")
    if 300 <= status < 400:
        return Failure(f"redirected ({text}) and not followed", "Use the final URL if it is the intended server.")
    return Failure(f"the server answered {text}")


def describe_http_error(exc: BaseException, timeout: float, usual_paths: str = "the path") -> Failure:
    """An httpx2 (or network) failure in words, without the URL that some exception texts carry."""
    if isinstance(exc, httpx2.HTTPStatusError):
        response = exc.response
        return describe_status(response.status_code, response.reason_phrase, response.request.method, usual_paths)
    if isinstance(exc, httpx2.ConnectTimeout):
        return Failure(f"timed out after {timeout:g}s connecting")
    if isinstance(exc, httpx2.TimeoutException):
        return Failure(f"timed out waiting for the server ({type(exc).__name__})")
    network = describe_network_error(exc)
    if network is not None:
        return network
    if isinstance(exc, httpx2.RemoteProtocolError):
        return Failure(f"the connection ended early: {exc}")
    if isinstance(exc, httpx2.InvalidURL | httpx2.UnsupportedProtocol):
        return Failure(f"invalid URL ({type(exc).__name__})")
    return Failure(describe_exception(exc))


def describe_network_error(exc: BaseException) -> Failure | None:
    """Connection refused, unknown host, TLS failure: the cause found anywhere in ``exc``'s chain."""
    for cause in _causes(exc):
        if isinstance(cause, ssl.SSLCertVerificationError):
            return Failure(
                f"TLS certificate verification failed ({cause.verify_message or cause})",
                "Check the server's certificate, or the CA bundle (SSL_CERT_FILE) that should trust it.",
            )
        if isinstance(cause, ssl.SSLError):
            return Failure(
                f"TLS handshake failed ({cause.reason or cause})",
                "Check that the URL's scheme (https/wss or http/ws) matches what the server speaks.",
            )
        if isinstance(cause, socket.gaierror):
            return Failure(f"unknown host ({cause.strerror or cause})", "Check the host name in the URL.")
        if isinstance(cause, ConnectionRefusedError) or getattr(cause, "errno", None) == errno.ECONNREFUSED:
            return Failure(
                "connection refused: nothing listens at that address and port",
                "Check that the server is running and the URL's host and port.",
            )
        if isinstance(cause, ConnectionResetError):
            return Failure("the server reset the connection")
        if isinstance(cause, OSError) and cause.errno in (errno.EHOSTUNREACH, errno.ENETUNREACH):
            return Failure(f"host unreachable ({cause.strerror})")
    return None


def _causes(exc: BaseException) -> list[BaseException]:
    """``exc``, its causes and contexts, and the members of any exception group among them."""
    seen: list[BaseException] = []
    pending = [exc]
    while pending and len(seen) < 50:
        current = pending.pop(0)
        if any(current is s for s in seen):
            continue
        seen.append(current)
        if isinstance(current, BaseExceptionGroup):
            pending.extend(current.exceptions)
        for linked in (current.__cause__, current.__context__):
            if linked is not None:
                pending.append(linked)
    return seen

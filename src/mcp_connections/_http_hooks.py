"""What the two HTTP transports (streamable HTTP, SSE) share: the httpx2 client and the hooks that watch it.

Design: the SDK reports HTTP failures in ways a caller cannot act on (an error status becomes a JSON-RPC
error, a body that breaks only ends one call's event stream), so the HTTP managers give the SDK a client
of their own with httpx2 event hooks: one on every request, which bounds every wait by ``timeout`` until
the server has answered once, and one on every response, which turns the error statuses that end a
connection into a lost connection and wraps each body so that a transport error while it is read is one
too. ``Lifetime`` bounds the whole transport context with one cancel scope.
"""

from __future__ import annotations

import logging
import math
from abc import abstractmethod
from collections.abc import AsyncIterator, Mapping
from typing import Protocol

import anyio
import httpx2

from ._bridge import RemoteConnectionManager
from ._failures import Failure, describe_http_error
from ._redact import redact_url
from .errors import ConfigError, MCPConnectionError

__all__ = [
    "CLIENT_CLOSE_TIMEOUT",
    "HttpClientFactory",
    "Lifetime",
    "RemoteHttpConnectionManager",
    "default_http_client",
]

logger = logging.getLogger(__name__)

# Bound on closing an HTTP client's pool; closing sockets is local, only a TLS close_notify can wait.
CLIENT_CLOSE_TIMEOUT = 1.0

# Least time given to closing a pool when stop()'s budget is spent: enough for the local closes.
_MIN_CLOSE_TIME = 0.05


def _is_notification(request: httpx2.Request) -> bool:
    """Whether a POST carries a JSON-RPC notification (a method and no id)."""
    try:
        body = request.content
    except httpx2.RequestNotRead:
        return False
    return b'"method"' in body and b'"id"' not in body


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
        # The streamable HTTP session's id once the server gave one (for spans: mcp.session.id).
        self.http_session_id: str | None = None

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
            self.http_session_id = response.headers.get("mcp-session-id") or self.http_session_id
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

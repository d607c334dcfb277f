"""A connection to an MCP server over streamable HTTP (one endpoint, POST per message, SSE answers).

Design: the SDK's ``streamable_http_client`` connects lazily, so ``start()`` opens nothing on the network
and the first request (``initialize``) is what meets the server. The SDK reports what goes wrong there in
ways a caller cannot act on: a refused connection crashes its task group (a bare ``ExceptionGroup``), an
HTTP 401/404 becomes a JSON-RPC error on the read stream, and a server that dies mid-call only ends that
call's event stream. So this manager watches the HTTP traffic itself, with an httpx2 response event hook
on the client it gives the SDK:

* before the server has ever answered, every wait is bounded by ``timeout`` (not ``read_timeout``),
  and a 401/403 (without an ``httpx2.Auth`` flow that could answer it) or a 404/405/410 is a
  ``ConnectError``;
* a 404 later means the server forgot the session (it restarted or expired it), a
  ``ConnectionLostError``; for a request it is reported just after the SDK's "Session terminated" error
  reaches the session, so a session layer can tell an expired session from a dead server;
* every response body is wrapped, so a transport error while it is read (the server went away) is a lost
  connection at once, in-flight requests included, whether it was a call's event stream or the idle GET
  stream;
* anything that escapes the SDK (its task group crashing) is translated: a ``ConnectError`` while the
  server has never answered, a ``ConnectionLostError`` after.

The manager owns the session's streams (see ``_bridge``), so once the loss is known the session's read
stream ends and pending requests fail with "connection closed" within moments, not after ``read_timeout``.
On stop the SDK ends the session with a DELETE, bounded by ``SESSION_END_TIMEOUT`` and stop()'s budget.
"""

from __future__ import annotations

import json
import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import httpx2
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.message import SessionMessage
from mcp_types import INVALID_REQUEST, JSONRPCError

from ._bridge import MAX_MESSAGE_SIZE, RemoteStreams, translated
from ._failures import SESSION_GONE, describe_status
from ._http_hooks import HttpClientFactory, Lifetime, RemoteHttpConnectionManager
from .auth import AuthSpec, resolve_auth
from .errors import ConnectError, MCPConnectionError

__all__ = ["StreamableHttpConnectionManager"]

logger = logging.getLogger(__name__)

# Bound on the DELETE that ends the server's session at stop: a courtesy to the server, which expires
# idle sessions anyway, so not worth holding up a stop (and pointless once the server is gone).
SESSION_END_TIMEOUT = 2.0

# Statuses that, before the server has ever answered, mean the URL is not an MCP endpoint we may use.
_NOT_AN_ENDPOINT = (404, 405, 410)


class StreamableHttpConnectionManager(RemoteHttpConnectionManager):
    """Connects to an MCP server's streamable HTTP endpoint.

    ``timeout`` bounds connecting and every HTTP operation but reading; ``read_timeout`` bounds the wait
    for the next bytes of an answer (a long tool call) or of the server's event stream. ``headers`` go on
    every request; ``auth`` is an ``OAuth`` (or ``"oauth"``, or a config file's ``"auth"`` object: see
    ``mcp_connections.auth``) or any ``httpx2.Auth``; ``httpx_client_factory``,
    when given, builds the client the way the SDK's ``create_mcp_http_client`` does. Userinfo in the URL
    is sent as HTTP Basic authentication. ``name`` is how errors and logs name the server (default: the
    URL, redacted). The connection is ``(read_stream, write_stream)``, ready for ``mcp.ClientSession(read, write)``.
    """

    _transport_name = "streamable HTTP"
    _usual_paths = "/mcp"

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
        super().__init__(url, headers, timeout, read_timeout, None, httpx_client_factory, name)
        # OAuth (or "oauth", a config "auth" mapping) becomes an httpx2.Auth kept for every reconnect.
        self._auth, auth_headers = resolve_auth(auth, self._url, lambda: self.name)
        self._headers.update(auth_headers)

    @translated
    @asynccontextmanager
    async def _connect(self) -> AsyncIterator[RemoteStreams]:
        self._established = False
        client = self._new_client()
        lifetime = Lifetime(self.timeout)
        try:
            with lifetime.scope:
                async with streamable_http_client(
                    self._url, http_client=client, terminate_on_close=True, max_sse_event_size=MAX_MESSAGE_SIZE
                ) as (
                    sdk_read,
                    sdk_write,
                ):
                    lifetime.connected_now()
                    try:
                        async with self._bridge(sdk_read, sdk_write) as streams:
                            yield streams
                    finally:
                        budget = self._stop_budget()
                        lifetime.leaving(SESSION_END_TIMEOUT if budget is None else min(SESSION_END_TIMEOUT, budget))
            if lifetime.timed_out:
                raise ConnectError(f"could not connect: timed out after {self.timeout:g}s", server=self.name)
        finally:
            await self._close_client(client)

    def _status_error(self, request: httpx2.Request, response: httpx2.Response) -> MCPConnectionError | None:
        status = response.status_code
        if request.method == "DELETE":
            return None  # ending the session: the SDK logs it, nothing is lost
        failure = describe_status(status, response.reason_phrase, request.method, self._usual_paths)
        if not self._established:
            if status in _NOT_AN_ENDPOINT or self._rejects_credentials(status) or _bare_bad_request(response):
                return self._as_connect_error(failure)
            return None  # a server that answers initialize with an error: the session reports it
        if status == 404 and "mcp-session-id" in request.headers and not _is_request(request):
            # A request's 404 is reported once its "Session terminated" error is delivered (see _delivered).
            return self._as_lost(SESSION_GONE)
        return None

    def _delivered(self, item: SessionMessage | Exception) -> None:
        # The SDK answers a request that met a 404 with this error. The session sees it before the loss,
        # so it can tell an expired session (start a new one, send again) from a dead server.
        message = item.message if isinstance(item, SessionMessage) else None
        if (
            isinstance(message, JSONRPCError)
            and message.error.code == INVALID_REQUEST
            and message.error.message == "Session terminated"
            and not self._stop_called
        ):
            self._report_lost(SESSION_GONE)


def _bare_bad_request(response: httpx2.Response) -> bool:
    """A 400 without a JSON-RPC error in its body: not an MCP endpoint refusing a message, but no endpoint at all
    (servers that only speak the older SSE transport answer a POST so)."""
    return response.status_code == 400 and not response.headers.get("content-type", "").startswith("application/json")


def _is_request(request: httpx2.Request) -> bool:
    """Whether an HTTP request carries a JSON-RPC request (the SDK answers those with an error of its own)."""
    try:
        body = json.loads(request.content)
    except (httpx2.RequestNotRead, ValueError):
        return False
    return isinstance(body, dict) and "method" in body and "id" in body

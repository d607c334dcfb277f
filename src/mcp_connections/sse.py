"""A connection to an MCP server over the legacy HTTP+SSE transport (an event stream plus POSTs).

Design: the SDK's ``sse_client`` opens the event stream at once and waits for the server's ``endpoint``
event, so ``start()`` meets the server: an unreachable server or an HTTP error on the stream fails
``start()`` with a ``ConnectError``, and the whole connect is bounded by ``timeout`` (the SDK would wait
``sse_read_timeout`` for the endpoint event). Once connected, the SDK logs failures rather than reporting
them: a dropped event stream ends its read stream, and a POST that fails stops its writer for good while
the request waits for an answer that cannot come. The manager watches for both with an httpx2 response
event hook on the client the SDK builds (through ``httpx_client_factory``): the event stream's body is
wrapped so a transport error on it is a lost connection, an event stream that ends is one too, and a POST
answered with an error status is one (the SDK's writer is gone after it). The manager owns the session's
streams (see ``_bridge``), so pending requests fail as soon as the loss is known.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager

import httpx2
from mcp.client.sse import sse_client

from ._bridge import RemoteStreams, translated
from ._failures import SESSION_GONE, Failure, describe_status
from ._http_hooks import HttpClientFactory, Lifetime, RemoteHttpConnectionManager
from .auth import AuthSpec, resolve_auth
from .errors import ConnectError, MCPConnectionError

__all__ = ["SseConnectionManager"]

logger = logging.getLogger(__name__)

# Bound on leaving the SDK's transport at stop: it only cancels its tasks and closes its client, so
# anything slower is a stuck socket close.
TRANSPORT_EXIT_TIMEOUT = 1.0


class SseConnectionManager(RemoteHttpConnectionManager):
    """Connects to an MCP server's SSE endpoint (the transport before streamable HTTP).

    ``timeout`` bounds connecting (up to the server's endpoint event) and every HTTP operation but
    reading the event stream; ``sse_read_timeout`` is how long the event stream may stay silent.
    ``headers``, ``auth``, ``httpx_client_factory``, ``name`` and userinfo in the URL work as for
    ``StreamableHttpConnectionManager``. The connection is ``(read_stream, write_stream)``.
    """

    _transport_name = "SSE"
    _usual_paths = "/sse"
    _transport_ended = "the server closed its event stream"

    def __init__(
        self,
        url: str,
        headers: Mapping[str, str] | None = None,
        timeout: float = 5,
        sse_read_timeout: float = 300,
        auth: AuthSpec | None = None,
        httpx_client_factory: HttpClientFactory | None = None,
        *,
        name: str | None = None,
    ) -> None:
        super().__init__(url, headers, timeout, sse_read_timeout, None, httpx_client_factory, name)
        # OAuth (or "oauth", a config "auth" mapping) becomes an httpx2.Auth kept for every reconnect.
        self._auth, auth_headers = resolve_auth(auth, self._url, lambda: self.name)
        self._headers.update(auth_headers)
        self.sse_read_timeout = self.read_timeout

    @translated
    @asynccontextmanager
    async def _connect(self) -> AsyncIterator[RemoteStreams]:
        self._established = False
        clients: list[httpx2.AsyncClient] = []

        def client_factory(
            headers: dict[str, str] | None = None,
            timeout: httpx2.Timeout | None = None,
            auth: httpx2.Auth | None = None,
        ) -> httpx2.AsyncClient:
            # The SDK builds the client from our arguments; ours are the ones that count.
            client = self._new_client()
            clients.append(client)
            return client

        lifetime = Lifetime(self.timeout)
        try:
            with lifetime.scope:
                async with sse_client(
                    self._url,
                    timeout=self.timeout,
                    sse_read_timeout=self.read_timeout,
                    httpx_client_factory=client_factory,
                ) as (sdk_read, sdk_write):
                    lifetime.connected_now()
                    try:
                        async with self._bridge(sdk_read, sdk_write) as streams:
                            yield streams
                    finally:
                        budget = self._stop_budget()
                        exit_budget = TRANSPORT_EXIT_TIMEOUT if budget is None else min(TRANSPORT_EXIT_TIMEOUT, budget)
                        lifetime.leaving(exit_budget)
            if lifetime.timed_out:
                raise ConnectError(
                    f"could not connect: timed out after {self.timeout:g}s waiting for the server to open its "
                    "event stream and announce its message endpoint. Check that the URL is an SSE endpoint "
                    "and that the server is not overloaded.",
                    server=self.name,
                )
        finally:
            for client in clients:
                await self._close_client(client)

    def _status_error(self, request: httpx2.Request, response: httpx2.Response) -> MCPConnectionError | None:
        status = response.status_code
        if request.method != "POST":
            return None  # the event stream's own status: the SDK raises, _translate_error explains
        # The SDK's message writer stops for good after a refused POST: nothing more can be sent, and the
        # request waits for an answer that cannot come.
        if status == 404 and self._established:
            failure = SESSION_GONE
        else:
            refused = describe_status(status, response.reason_phrase, request.method, self._usual_paths)
            failure = Failure(f"the server refused a message: {refused.what}", refused.hint)
        return self._as_lost(failure) if self._established else self._as_connect_error(failure)

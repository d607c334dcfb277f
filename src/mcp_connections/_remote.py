"""The remote transports' shared parts, by their former single name (kept so that imports of it keep working).

They live in three modules now: ``_bridge`` (the base of the remote managers and the stream bridge),
``_http_hooks`` (the httpx2 client of the HTTP transports and its hooks) and ``_failures`` (failures in words).
"""

from ._bridge import MAX_MESSAGE_SIZE, OUTGOING_BUFFER, SECRET_HEADERS, RemoteConnectionManager, RemoteStreams
from ._failures import SESSION_GONE, Failure, describe_http_error, describe_network_error, describe_status
from ._http_hooks import (
    CLIENT_CLOSE_TIMEOUT,
    HttpClientFactory,
    Lifetime,
    RemoteHttpConnectionManager,
    default_http_client,
)

__all__ = [
    "CLIENT_CLOSE_TIMEOUT",
    "MAX_MESSAGE_SIZE",
    "OUTGOING_BUFFER",
    "SECRET_HEADERS",
    "SESSION_GONE",
    "Failure",
    "HttpClientFactory",
    "Lifetime",
    "RemoteConnectionManager",
    "RemoteHttpConnectionManager",
    "RemoteStreams",
    "default_http_client",
    "describe_http_error",
    "describe_network_error",
    "describe_status",
]

"""Connections to MCP servers that start, stay up, notice death, restart and shut down cleanly."""

import logging as _logging

from .auth import FileTokenStore, MemoryTokenStore, OAuth, TokenStore
from .base import ConnectionManager, ConnectionState
from .blocking import BlockingGroup, BlockingSession
from .config import ServerConfig
from .errors import (
    AuthError,
    ConfigError,
    ConnectError,
    ConnectionLostError,
    GroupStartError,
    HandshakeTimeoutError,
    MCPConnectionError,
    RequestTimeoutError,
    ServerExitedError,
    ServerStartError,
)
from .group import ServerGroup, ServerStatus
from .restart import RestartPolicy
from .session import ManagedSession
from .sse import SseConnectionManager
from .stdio import StdioConnectionManager
from .streamable_http import StreamableHttpConnectionManager
from .websocket import WebSocketConnectionManager

__version__ = "0.1.0"

# A library logs; the application decides where it goes. Without this, Python's last-resort handler
# would print our warnings to stderr in applications that configured no logging at all.
_logging.getLogger("mcp_connections").addHandler(_logging.NullHandler())

__all__ = [
    "AuthError",
    "BlockingGroup",
    "BlockingSession",
    "ConfigError",
    "ConnectError",
    "ConnectionLostError",
    "ConnectionManager",
    "ConnectionState",
    "FileTokenStore",
    "GroupStartError",
    "HandshakeTimeoutError",
    "MCPConnectionError",
    "ManagedSession",
    "MemoryTokenStore",
    "OAuth",
    "RequestTimeoutError",
    "RestartPolicy",
    "ServerConfig",
    "ServerExitedError",
    "ServerGroup",
    "ServerStartError",
    "ServerStatus",
    "SseConnectionManager",
    "StdioConnectionManager",
    "StreamableHttpConnectionManager",
    "TokenStore",
    "WebSocketConnectionManager",
]

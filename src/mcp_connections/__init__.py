"""Connections to MCP servers that start, stay up, notice death, restart and shut down cleanly."""

from .base import ConnectionManager, ConnectionState
from .config import ServerConfig
from .errors import (
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
from .stdio import StdioConnectionManager

__version__ = "0.1.0"

__all__ = [
    "ConfigError",
    "ConnectError",
    "ConnectionLostError",
    "ConnectionManager",
    "ConnectionState",
    "GroupStartError",
    "HandshakeTimeoutError",
    "MCPConnectionError",
    "ManagedSession",
    "RequestTimeoutError",
    "RestartPolicy",
    "ServerConfig",
    "ServerExitedError",
    "ServerGroup",
    "ServerStartError",
    "ServerStatus",
    "StdioConnectionManager",
]

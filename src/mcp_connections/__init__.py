"""Connections to MCP servers that start, stay up, notice death, restart and shut down cleanly.

Design: ``import mcp_connections`` must be cheap, because a command line that only prints its help (or an
application that only reads a config) should not pay for the MCP SDK, anyio, httpx2 and pydantic. So this
module imports eagerly only the errors (and installs the log filter below); every other public name is listed
in ``_LAZY`` with the module that defines it, and ``__getattr__`` (PEP 562) imports that module on the first
use of the name. Type checkers and IDEs see ordinary imports through the ``TYPE_CHECKING`` block, so
completion and ``mypy --strict`` work as if everything were imported here.
"""

import importlib as _importlib
import logging as _logging
import typing as _typing

from ._redact import install_url_redaction as _install_url_redaction
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
    ToolNotFoundError,
)

if _typing.TYPE_CHECKING:
    from ._textsink import TextSink
    from .auth import FileTokenStore, MemoryTokenStore, OAuth, TokenStore
    from .base import ConnectionManager, ConnectionState
    from .blocking import BlockingGroup, BlockingSession
    from .config import ServerConfig
    from .group import GroupPrompt, GroupResource, GroupTool, ServerGroup, ServerStatus
    from .memory import InMemoryConnectionManager
    from .restart import RestartPolicy
    from .session import ManagedSession
    from .sse import SseConnectionManager
    from .stdio import StdioConnectionManager
    from .streamable_http import StreamableHttpConnectionManager
    from .transports.http_or_sse import StreamableHttpOrSseConnectionManager
    from .websocket import WebSocketConnectionManager

__version__ = "0.1.0"

# A library logs; the application decides where it goes. Without this, Python's last-resort handler
# would print our warnings to stderr in applications that configured no logging at all.
_logging.getLogger("mcp_connections").addHandler(_logging.NullHandler())

# The HTTP libraries log the URLs they request, query tokens included. The remote transports install the
# redacting filter when they load, which is now on first use; installing it here as well keeps it where it
# was before imports became lazy: in place from `import mcp_connections` on (it needs the standard library).
_install_url_redaction()

# Public name -> the module that defines it, imported on first use of the name (see the docstring).
_LAZY: dict[str, str] = {
    "BlockingGroup": ".blocking",
    "BlockingSession": ".blocking",
    "ConnectionManager": ".base",
    "ConnectionState": ".base",
    "InMemoryConnectionManager": ".memory",
    "FileTokenStore": ".auth",
    "GroupPrompt": ".group",
    "GroupResource": ".group",
    "GroupTool": ".group",
    "ManagedSession": ".session",
    "MemoryTokenStore": ".auth",
    "OAuth": ".auth",
    "RestartPolicy": ".restart",
    "ServerConfig": ".config",
    "ServerGroup": ".group",
    "ServerStatus": ".group",
    "SseConnectionManager": ".sse",
    "StdioConnectionManager": ".stdio",
    "StreamableHttpConnectionManager": ".streamable_http",
    "StreamableHttpOrSseConnectionManager": ".transports.http_or_sse",
    "TextSink": "._textsink",
    "TokenStore": ".auth",
    "WebSocketConnectionManager": ".websocket",
}

if not _typing.TYPE_CHECKING:  # hidden from type checkers, so that a misspelt name stays an error there

    def __getattr__(name: str) -> object:
        module = _LAZY.get(name)
        if module is None:
            if not name.startswith("_"):
                # `mcp_connections.stdio` without importing it first: it worked when every module loaded eagerly.
                try:
                    return _importlib.import_module(f"{__name__}.{name}")
                except ModuleNotFoundError as exc:
                    if exc.name != f"{__name__}.{name}":
                        raise
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        value = getattr(_importlib.import_module(module, __name__), name)
        globals()[name] = value  # later uses are plain attribute lookups
        return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))


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
    "GroupPrompt",
    "GroupResource",
    "GroupStartError",
    "GroupTool",
    "HandshakeTimeoutError",
    "InMemoryConnectionManager",
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
    "StreamableHttpOrSseConnectionManager",
    "TextSink",
    "TokenStore",
    "ToolNotFoundError",
    "WebSocketConnectionManager",
]

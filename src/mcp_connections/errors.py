"""Every error this library raises on purpose.

The hierarchy::

    MCPConnectionError
    ├── ConnectError
    │   ├── ServerStartError
    │   ├── HandshakeTimeoutError
    │   └── AuthError
    ├── ConnectionLostError
    │   └── ServerExitedError
    ├── RequestTimeoutError (also a TimeoutError)
    ├── ConfigError (also a ValueError)
    ├── GroupStartError
    └── ToolNotFoundError (also a LookupError)

Each message names the server, says what happened and, where there is one, what to do. The original
exception is always chained (``raise ... from exc``), so ``__cause__`` keeps the detail.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

__all__ = [
    "AuthError",
    "ConfigError",
    "ConnectError",
    "ConnectionLostError",
    "GroupStartError",
    "HandshakeTimeoutError",
    "MCPConnectionError",
    "RequestTimeoutError",
    "ServerExitedError",
    "ServerStartError",
    "ToolNotFoundError",
]


class MCPConnectionError(Exception):
    """Base class of every error about a connection to an MCP server."""

    def __init__(self, message: str, *, server: str | None = None) -> None:
        self.server = server
        self.message = message
        super().__init__(f"{server}: {message}" if server else message)


class ConnectError(MCPConnectionError):
    """The connection could not be established.

    ``http_status`` is the HTTP status the server answered with, when that is why (remote transports).
    """

    def __init__(self, message: str, *, server: str | None = None, http_status: int | None = None) -> None:
        self.http_status = http_status
        super().__init__(message, server=server)


class ServerStartError(ConnectError):
    """The server process could not be spawned (command not found, permission denied, bad cwd)."""


class HandshakeTimeoutError(ConnectError):
    """The server did not answer ``initialize`` in time."""


class AuthError(ConnectError):
    """Authorizing with the server failed: sign-in timed out or was refused, tokens were rejected.

    ``needs_login`` is true when only a person can fix it: the server wants an interactive sign-in that
    this process may not start (``mcp-connections login CONFIG SERVER`` does it ahead of time).
    """

    def __init__(self, message: str, *, server: str | None = None, needs_login: bool = False) -> None:
        self.needs_login = needs_login
        super().__init__(message, server=server)


class ConnectionLostError(MCPConnectionError):
    """The connection ended without ``stop()``."""


class ServerExitedError(ConnectionLostError):
    """The server process exited on its own."""

    def __init__(self, message: str, *, server: str | None = None, returncode: int | None, stderr_tail: str) -> None:
        self.returncode = returncode
        self.stderr_tail = stderr_tail
        super().__init__(message, server=server)


class RequestTimeoutError(MCPConnectionError, TimeoutError):
    """A request got no answer within its timeout; it was cancelled on the server."""


class ConfigError(MCPConnectionError, ValueError):
    """A server configuration is invalid."""

    def __init__(self, message: str, *, source: str | None = None, server: str | None = None) -> None:
        self.source = source
        where = ", ".join(part for part in (source, f"server {server!r}" if server else None) if part)
        self.where = where
        MCPConnectionError.__init__(self, f"{where}: {message}" if where else message)
        self.server = server


class GroupStartError(MCPConnectionError):
    """A required server of a group failed to start; every failure is listed."""

    def __init__(self, failures: Mapping[str, BaseException]) -> None:
        self.failures = dict(failures)
        lines = [f"  {name}: {error}" for name, error in self.failures.items()]
        super().__init__("servers failed to start:\n" + "\n".join(lines))


class ToolNotFoundError(MCPConnectionError, LookupError):
    """A name that is not in a group's catalogue (a tool, or with ``kind`` "prompt"/"resource", a prompt or URI).

    ``name`` is what was asked for and ``close`` up to three catalogue names that look like it.
    """

    def __init__(self, name: str, close: Sequence[str] = (), *, kind: str = "tool", available: int = 0) -> None:
        self.name = name
        self.kind = kind
        self.close = list(close)[:3]
        if self.close:
            hint = "did you mean " + ", ".join(repr(c) for c in self.close) + "?"
        elif available:
            hint = f"the catalogue has {available} {kind}s; list them with group.{kind}s()"
        else:
            hint = f"the catalogue has no {kind}s: no server that has any is connected"
        super().__init__(f"no {kind} {name!r} in the group's catalogue; {hint}")

"""Builders of the library's own transports from config entries (imported when a group builds a manager).

Each builder names the manager after the entry, so errors and logs say ``files:`` rather than a command line.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config import ServerConfig
    from ..sse import SseConnectionManager
    from ..stdio import StdioConnectionManager
    from ..streamable_http import StreamableHttpConnectionManager
    from ..websocket import WebSocketConnectionManager
    from ._registry import TransportOptions
    from .http_or_sse import StreamableHttpOrSseConnectionManager

__all__ = ["http_or_sse", "sse", "stdio", "streamable_http", "websocket"]


def stdio(config: ServerConfig, options: TransportOptions) -> StdioConnectionManager:
    from mcp.client.stdio import StdioServerParameters

    from ..stdio import StdioConnectionManager

    if config.command is None:
        raise ValueError(f"{config.name}: the stdio transport needs 'command'")
    params = StdioServerParameters(
        command=config.command, args=list(config.args), env=dict(config.env) or None, cwd=config.cwd
    )
    return StdioConnectionManager(params, errlog=options.errlog, inherit_env=config.inherit_env, name=config.name)


def streamable_http(config: ServerConfig, options: TransportOptions) -> StreamableHttpConnectionManager:
    from ..streamable_http import StreamableHttpConnectionManager

    return StreamableHttpConnectionManager(
        _url(config), headers=dict(config.headers) or None, auth=config.auth, name=config.name
    )


def sse(config: ServerConfig, options: TransportOptions) -> SseConnectionManager:
    from ..sse import SseConnectionManager

    return SseConnectionManager(_url(config), headers=dict(config.headers) or None, auth=config.auth, name=config.name)


def websocket(config: ServerConfig, options: TransportOptions) -> WebSocketConnectionManager:
    from ..websocket import WebSocketConnectionManager

    return WebSocketConnectionManager(_url(config), headers=dict(config.headers) or None, name=config.name)


def http_or_sse(config: ServerConfig, options: TransportOptions) -> StreamableHttpOrSseConnectionManager:
    from .http_or_sse import StreamableHttpOrSseConnectionManager

    return StreamableHttpOrSseConnectionManager(
        _url(config), headers=dict(config.headers) or None, auth=config.auth, name=config.name
    )


def _url(config: ServerConfig) -> str:
    if config.url is None:
        raise ValueError(f"{config.name}: a remote transport needs 'url'")
    return config.url

"""``mcp-connections serve``: every server of a config, supervised, served as one MCP server.

``Gateway`` is the server (routing, notifications, reload), ``serve_stdio`` and ``serve_http`` run it
on a transport, and ``diff_configs`` is the pure comparison a reload applies. The command itself is
``mcp_connections.cli.serve``.
"""

from ._diff import ConfigDiff, diff_configs
from ._http import serve_http
from ._server import DEFAULT_REQUEST_TIMEOUT, Gateway
from ._stdio import serve_stdio

__all__ = ["DEFAULT_REQUEST_TIMEOUT", "ConfigDiff", "Gateway", "diff_configs", "serve_http", "serve_stdio"]

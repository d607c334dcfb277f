"""Transports by name: the registry that config files and groups use to build connection managers.

Every transport is one module with a ``ConnectionManager`` subclass (``mcp_connections.stdio``,
``.streamable_http``, ``.sse``, ``.websocket``, and ``.transports.http_or_sse`` for a URL whose transport is
found out by connecting) and one line below. The config's transport names and aliases, which URLs go to
which transport when an entry names none, and how a group builds each manager all come from here; this
module imports no transport, so reading a config stays cheap.

Adding a transport: write its module with the manager and a builder ``from_config(config, options)``, then::

    registry.register(TransportSpec("carrier-pigeon", "my_package.pigeon:from_config", aliases=("rfc1149",)))
"""

from __future__ import annotations

from ._registry import ManagerBuilder, TransportOptions, TransportRegistry, TransportSpec

__all__ = ["ManagerBuilder", "TransportOptions", "TransportRegistry", "TransportSpec", "registry"]

_BUILTIN = "mcp_connections.transports._builtin"


def _is_websocket_url(url: str) -> bool:
    return url.lower().startswith(("ws://", "wss://"))


def _is_sse_url(url: str) -> bool:
    if _is_websocket_url(url):
        return False
    path = url.lower().split("?", 1)[0].split("#", 1)[0].rstrip("/")
    return path.endswith("/sse")


#: The transports config files may name, and the URL fallback (streamable HTTP, then SSE) for those that do not.
registry = TransportRegistry(TransportSpec("streamable-http-or-sse", f"{_BUILTIN}:http_or_sse"))
registry.register(TransportSpec("stdio", f"{_BUILTIN}:stdio", needs="command"))
_STREAMABLE_HTTP_ALIASES = ("streamable_http", "streamablehttp", "http")
registry.register(TransportSpec("streamable-http", f"{_BUILTIN}:streamable_http", aliases=_STREAMABLE_HTTP_ALIASES))
registry.register(TransportSpec("sse", f"{_BUILTIN}:sse", claims_url=_is_sse_url))
registry.register(TransportSpec("websocket", f"{_BUILTIN}:websocket", aliases=("ws",), claims_url=_is_websocket_url))

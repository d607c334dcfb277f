"""A modern MCP server (the SDK's ``MCPServer``) whose list results carry a ``ttlMs`` hint.

    python ttl_server.py TTL_MS [TOOL ...]

Serves over stdio; its tools are ``TOOL ...`` (each echoes its text), or one called ``echo``. Every list
(tools, prompts, resources) says ``ttlMs: TTL_MS``, through the SDK's ``cache_hints``.
"""

import sys

from mcp.server.caching import CacheHint
from mcp.server.mcpserver import MCPServer

ttl_ms = int(sys.argv[1])
names = sys.argv[2:] or ["echo"]
hint = CacheHint(ttl_ms=ttl_ms, scope="public")
server = MCPServer(
    "ttl", log_level="WARNING", cache_hints={"tools/list": hint, "prompts/list": hint, "resources/list": hint}
)


def make(name: str) -> None:
    def tool(text: str) -> str:
        return text

    server.add_tool(tool, name=name, description=f"{name}: echoes its text")


for name in names:
    make(name)

server.run("stdio")

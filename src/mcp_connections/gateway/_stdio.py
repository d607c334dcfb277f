"""The gateway over stdio: stdout is the protocol, everything else goes to stderr; stdin's end is the client's."""

from __future__ import annotations

from mcp.server.runner import serve_dual_era_loop
from mcp.server.stdio import stdio_server

from ._server import Gateway

__all__ = ["serve_stdio"]


async def serve_stdio(gateway: Gateway) -> None:
    """Serve one client on this process's stdin and stdout until stdin closes."""
    server = gateway.server
    async with stdio_server() as (read_stream, write_stream), server.lifespan(server) as state:
        # init_options=None: the initialize result is built when the client asks, so the capabilities it
        # declares are those of the backends running then.
        await serve_dual_era_loop(server, read_stream, write_stream, lifespan_state=state, init_options=None)

"""The tool-call round trip over streamable HTTP, against the demo server run with ``--http``."""

from __future__ import annotations

import sys

import anyio

from .calls import bench_calls
from .clients import Client
from .harness import Counts, Report, figure, log


def http_available() -> bool:
    try:
        from mcp_connections.streamable_http import StreamableHttpConnectionManager  # noqa: F401
    except ImportError as exc:
        log(f"streamable HTTP: skipped, mcp_connections.streamable_http is not importable ({exc})")
        return False
    return True


@figure("http", 40, available=http_available)
async def bench_http(report: Report, counts: Counts) -> None:
    server = await anyio.open_process(
        [sys.executable, "-m", "mcp_connections._demo_server", "--http"], stderr=None, start_new_session=True
    )
    try:
        assert server.stdout is not None
        first = b""
        with anyio.fail_after(30):
            while b"\n" not in first:
                first += await server.stdout.receive()
        url = f"http://127.0.0.1:{int(first.split()[0])}/mcp"
        await bench_calls(
            report,
            counts,
            lambda side: Client.open_http(side, url),
            "streamable HTTP",
            counts.http_rounds,
            counts.http_calls,
        )
    finally:
        server.terminate()
        with anyio.move_on_after(5):
            await server.wait()
        if server.returncode is None:
            server.kill()
            await server.wait()
        await server.aclose()

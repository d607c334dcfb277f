"""The gateway (``mcp-connections serve``): what a call through it adds, and many HTTP clients at once.

"ours" here is a call through the gateway, "raw" the same call made directly to the server behind it, both
with the SDK's own client, so the ratio is the gateway's cost. Over stdio the backend is the stdlib server
(the cheapest server there is, so the gateway's share shows); over HTTP the client speaks streamable HTTP to
the gateway, which speaks streamable HTTP to the demo server, against the client speaking to the demo server
directly. Then ``GATEWAY_CLIENTS`` clients, each with its own HTTP session, call through the gateway at once:
calls per second and errors.

Peers (section ``peers``): the same call through fastmcp's ``create_proxy`` (over stdio and HTTP) and through
mcp-proxy (HTTP), against the gateway, all fronting the stdlib server. They need SDKs of their own (mcp-proxy
needs ``mcp<2``), so they live in venvs under ``.tools/peers`` that ``make bench-peers`` creates; without them the
section is skipped.
"""

from __future__ import annotations

import json
import socket
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client

from .clients import STDLIB_SERVER
from .harness import HERE, OURS, RAW, ROOT, Counts, Metric, Report, figure, log, percentile, sides

GATEWAY = [sys.executable, "-m", "mcp_connections.cli", "serve"]

# Clients calling through the gateway at once, each with its own HTTP session.
GATEWAY_CLIENTS = 100

# Calls each of those clients makes.
CALLS_PER_CLIENT = 20

# Bound on a server's (or the gateway's) start-up.
START_TIMEOUT = 60.0


def _config(directory: Path, servers: dict[str, Any]) -> Path:
    path = directory / "gateway.json"
    path.write_text(json.dumps({"mcpServers": servers}))
    return path


@asynccontextmanager
async def _process(command: list[str]) -> AsyncIterator[str]:
    """Run a server that prints its port (or ``serving URL``) first on stdout; yield its MCP URL."""
    process = await anyio.open_process(command, stderr=None, start_new_session=True)
    try:
        assert process.stdout is not None
        first = b""
        with anyio.fail_after(START_TIMEOUT):
            while b"\n" not in first:
                first += await process.stdout.receive()
        text = first.decode().split("\n")[0].strip()
        yield text.split()[1] if text.startswith("serving ") else f"http://127.0.0.1:{int(text)}/mcp"
    finally:
        process.terminate()
        with anyio.move_on_after(15):
            await process.wait()
        if process.returncode is None:
            process.kill()
            await process.wait()
        await process.aclose()


@asynccontextmanager
async def _stdio_session(params: StdioServerParameters) -> AsyncIterator[ClientSession]:
    async with stdio_client(params) as (read, write), ClientSession(read, write) as session:
        with anyio.fail_after(START_TIMEOUT):
            await session.initialize()
        yield session


@asynccontextmanager
async def _http_session(url: str) -> AsyncIterator[ClientSession]:
    from mcp.client.streamable_http import streamable_http_client

    async with streamable_http_client(url) as (read, write), ClientSession(read, write) as session:
        with anyio.fail_after(START_TIMEOUT):
            await session.initialize()
        yield session


async def _sequential(session: ClientSession, tool: str, n: int) -> list[float]:
    samples = []
    perf = time.perf_counter
    for _ in range(n):
        t0 = perf()
        result = await session.call_tool(tool, {"text": "hello"})
        samples.append(perf() - t0)
        if result.is_error:
            raise RuntimeError(f"{tool} failed: {result}")
    return samples


def _add(report: Report, transport: str, p50: dict[str, list[float]], p99: dict[str, list[float]]) -> None:
    note = "ours = through the gateway, raw = direct"
    report.add(
        Metric(f"gateway_p50_{transport}", f"gateway call p50, {transport}", "s", p50[OURS], p50[RAW], note=note)
    )
    report.add(
        Metric(f"gateway_p99_{transport}", f"gateway call p99, {transport}", "s", p99[OURS], p99[RAW], note=note)
    )


@figure("gateway", 60)
async def bench_gateway_stdio(report: Report, counts: Counts) -> None:
    rounds, n = counts.http_rounds, counts.http_calls
    log(f"gateway over stdio: {rounds} rounds of {n} sequential calls, through the gateway and direct")
    p50: dict[str, list[float]] = {OURS: [], RAW: []}
    p99: dict[str, list[float]] = {OURS: [], RAW: []}
    with tempfile.TemporaryDirectory() as tmp:
        config = _config(Path(tmp), {"s": {"command": STDLIB_SERVER.command, "args": list(STDLIB_SERVER.args)}})
        through = StdioServerParameters(command=GATEWAY[0], args=[*GATEWAY[1:], str(config)])
        for r in range(rounds):
            for side in sides(r):
                params, tool = (through, "s__echo") if side == OURS else (STDLIB_SERVER, "echo")
                async with _stdio_session(params) as session:
                    await _sequential(session, tool, 50)  # warm-up
                    samples = await _sequential(session, tool, n)
                p50[side].append(percentile(samples, 50))
                p99[side].append(percentile(samples, 99))
    _add(report, "stdio", p50, p99)


@figure("gateway", 61)
async def bench_gateway_http(report: Report, counts: Counts) -> None:
    rounds, n = counts.http_rounds, counts.http_calls
    log(f"gateway over streamable HTTP: {rounds} rounds of {n} sequential calls, through the gateway and direct")
    p50: dict[str, list[float]] = {OURS: [], RAW: []}
    p99: dict[str, list[float]] = {OURS: [], RAW: []}
    with tempfile.TemporaryDirectory() as tmp:
        async with AsyncExitStack() as stack:
            direct = await stack.enter_async_context(
                _process([sys.executable, "-m", "mcp_connections._demo_server", "--http"])
            )
            # The direct client speaks the handshake generation; so does the gateway to its backend, for a fair
            # comparison (on the 2026 generation the SDK's server does more per call).
            config = _config(Path(tmp), {"d": {"url": direct, "transport": "streamable-http", "mode": "legacy"}})
            through = await stack.enter_async_context(_process([*GATEWAY, str(config), "--http", "0"]))
            for r in range(rounds):
                for side in sides(r):
                    url, tool = (through, "d__echo") if side == OURS else (direct, "echo")
                    async with _http_session(url) as session:
                        await _sequential(session, tool, 20)
                        samples = await _sequential(session, tool, n)
                    p50[side].append(percentile(samples, 50))
                    p99[side].append(percentile(samples, 99))
            _add(report, "http", p50, p99)
            await _many_clients(report, through, "d__echo")


async def _many_clients(report: Report, url: str, tool: str) -> None:
    log(f"gateway: {GATEWAY_CLIENTS} HTTP clients at once, {CALLS_PER_CLIENT} calls each")
    errors = 0
    done = 0

    async def one_client() -> None:
        nonlocal errors, done
        try:
            async with _http_session(url) as session:
                for _ in range(CALLS_PER_CLIENT):
                    result = await session.call_tool(tool, {"text": "hello"})
                    if result.is_error:
                        errors += 1
                    else:
                        done += 1
        except Exception as exc:  # a client that could not even connect counts every call it did not make
            log(f"gateway: a client failed: {exc!r}")
            errors += CALLS_PER_CLIENT

    t0 = time.perf_counter()
    async with anyio.create_task_group() as tg:
        for _ in range(GATEWAY_CLIENTS):
            tg.start_soon(one_client)
    elapsed = time.perf_counter() - t0
    report.add(
        Metric(
            "gateway_http_clients_rate",
            f"gateway, {GATEWAY_CLIENTS} HTTP clients at once",
            "calls/s",
            [done / elapsed],
            note="sessions opened and closed inside the window",
        )
    )
    report.add(
        Metric(
            "gateway_http_clients_errors",
            "gateway, errors among those calls",
            "count",
            [errors],
            extra_ok=errors == 0,
            extra_note="no errors",
        )
    )


# Peers, each in a venv of its own (mcp-proxy needs mcp<2): `make bench-peers` makes them.
PEERS = ROOT / ".tools" / "peers"
FASTMCP_PYTHON = PEERS / "fastmcp" / "bin" / "python"
MCP_PROXY = PEERS / "mcp-proxy" / "bin" / "mcp-proxy"
FASTMCP_PROXY = HERE / "servers" / "fastmcp_proxy.py"


def peers_available() -> bool:
    if FASTMCP_PYTHON.exists() and MCP_PROXY.exists():
        return True
    log(f"gateway peers: skipped, no venvs under {PEERS} (make bench-peers makes them)")
    return False


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def _listening(command: list[str], port: int) -> AsyncIterator[str]:
    """Run an HTTP server that says nothing on stdout; yield its URL once its port accepts connections."""
    process = await anyio.open_process(command, stdout=None, stderr=None, start_new_session=True)
    try:
        with anyio.fail_after(START_TIMEOUT):
            while True:
                try:
                    stream = await anyio.connect_tcp("127.0.0.1", port)
                except OSError:
                    await anyio.sleep(0.1)
                    continue
                await stream.aclose()
                break
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        process.terminate()
        with anyio.move_on_after(15):
            await process.wait()
        if process.returncode is None:
            process.kill()
            await process.wait()
        await process.aclose()


async def _echo_tool(session: ClientSession) -> str:
    return next(tool.name for tool in (await session.list_tools()).tools if tool.name.endswith("echo"))


async def _p50(session: ClientSession, n: int) -> list[float]:
    tool = await _echo_tool(session)
    await _sequential(session, tool, 20)
    return await _sequential(session, tool, n)


@figure("peers", 62, available=peers_available)
async def bench_gateway_peers(report: Report, counts: Counts) -> None:
    """The gateway against fastmcp's create_proxy (stdio, HTTP) and mcp-proxy (HTTP), all before the stdlib server."""
    rounds, n = counts.http_rounds, counts.http_calls
    log(f"gateway peers: {rounds} rounds of {n} calls through ours, fastmcp's proxy and mcp-proxy")
    backend = {"command": STDLIB_SERVER.command, "args": list(STDLIB_SERVER.args)}
    with tempfile.TemporaryDirectory() as tmp:
        config = _config(Path(tmp), {"s": backend})
        stdio: dict[str, list[float]] = {OURS: [], RAW: []}
        fastmcp_stdio = StdioServerParameters(command=str(FASTMCP_PYTHON), args=[str(FASTMCP_PROXY), str(config)])
        ours_stdio = StdioServerParameters(command=GATEWAY[0], args=[*GATEWAY[1:], str(config)])
        for r in range(rounds):
            for side in sides(r):
                async with _stdio_session(ours_stdio if side == OURS else fastmcp_stdio) as session:
                    stdio[side].append(percentile(await _p50(session, n), 50))
        note = "ours = this gateway, raw = the peer, same backend"
        report.add(
            Metric(
                "peer_fastmcp_p50_stdio", "call p50 vs fastmcp proxy, stdio", "s", stdio[OURS], stdio[RAW], note=note
            )
        )
        async with AsyncExitStack() as stack:
            ours_url = await stack.enter_async_context(_process([*GATEWAY, str(config), "--http", "0"]))
            port = _free_port()
            fastmcp_url = await stack.enter_async_context(
                _listening([str(FASTMCP_PYTHON), str(FASTMCP_PROXY), str(config), str(port)], port)
            )
            port = _free_port()
            proxy_url = await stack.enter_async_context(
                _listening(
                    [
                        str(MCP_PROXY),
                        "--host",
                        "127.0.0.1",
                        "--port",
                        str(port),
                        "--",
                        backend["command"],
                        *backend["args"],
                    ],
                    port,
                )
            )
            for label, key, peer_url in (
                ("fastmcp proxy", "fastmcp", fastmcp_url),
                ("mcp-proxy", "mcp_proxy", proxy_url),
            ):
                http: dict[str, list[float]] = {OURS: [], RAW: []}
                for r in range(rounds):
                    for side in sides(r):
                        async with _http_session(ours_url if side == OURS else peer_url) as session:
                            http[side].append(percentile(await _p50(session, n), 50))
                report.add(
                    Metric(f"peer_{key}_p50_http", f"call p50 vs {label}, HTTP", "s", http[OURS], http[RAW], note=note)
                )

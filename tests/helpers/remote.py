"""Real MCP servers over HTTP and WebSocket for the remote transport tests (helpers and fixtures, no tests).

Each server is a subprocess on 127.0.0.1 with an ephemeral port (it prints the port as its first line);
it is killed and reaped when the test ends, so nothing outlives a test. Import the fixtures you use:
``from .helpers.remote import remote_server, transport  # noqa: F401``.
"""

from __future__ import annotations

import os
import selectors
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from mcp_connections._bridge import RemoteConnectionManager
from mcp_connections.sse import SseConnectionManager
from mcp_connections.streamable_http import StreamableHttpConnectionManager
from mcp_connections.websocket import WebSocketConnectionManager

from . import SERVERS, Snapshot, settle, skip_websocket_on_trio

TRANSPORTS = ("streamable-http", "sse", "websocket")

# Time for a server subprocess to import the SDK and listen (about half a second on a quiet machine).
SERVER_START_TIMEOUT = 15.0

_SCHEME = {"streamable-http": "http", "sse": "http", "websocket": "ws"}
_PATH = {"streamable-http": "/mcp", "sse": "/sse", "websocket": "/mcp"}


@dataclass
class RemoteServer:
    """A running test server: its transport, process and port."""

    transport: str
    process: subprocess.Popen[bytes]
    port: int

    @property
    def url(self) -> str:
        return self.url_for(_PATH[self.transport])

    def url_for(self, path: str, *, userinfo: str = "", scheme: str | None = None) -> str:
        return f"{scheme or _SCHEME[self.transport]}://{userinfo}127.0.0.1:{self.port}{path}"

    def kill(self) -> None:
        """Kill the server at once (SIGKILL), as a crash or an OOM kill would."""
        self.process.kill()
        self.process.wait()

    def freeze(self) -> None:
        """Stop the server process (SIGSTOP): its sockets stay open but nothing answers."""
        self.process.send_signal(signal.SIGSTOP)


def server_command(transport: str, *, require_bearer: str | None = None, extra: tuple[str, ...] = ()) -> list[str]:
    if transport == "websocket":
        command = [sys.executable, str(SERVERS / "ws_server.py")]
    else:
        command = [sys.executable, str(SERVERS / "http_server.py"), "--transport", transport]
    if require_bearer is not None:
        command += ["--require-bearer", require_bearer]
    return command + list(extra)


@contextmanager
def running_server(
    transport: str, *, require_bearer: str | None = None, extra: tuple[str, ...] = ()
) -> Iterator[RemoteServer]:
    """Start a test server for ``transport`` (``extra``: more switches), yield it once it listens, kill and reap it
    at the end."""
    process = subprocess.Popen(
        server_command(transport, require_bearer=require_bearer, extra=extra),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
    )
    try:
        yield RemoteServer(transport, process, _read_port(process))
    finally:
        process.kill()
        process.wait(timeout=10)
        assert process.stdout is not None
        process.stdout.close()


def _read_port(process: subprocess.Popen[bytes]) -> int:
    assert process.stdout is not None
    fd = process.stdout.fileno()
    data = b""
    deadline = time.monotonic() + SERVER_START_TIMEOUT
    with selectors.DefaultSelector() as selector:
        selector.register(fd, selectors.EVENT_READ)
        while b"\n" not in data:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise TimeoutError(f"test server did not print its port within {SERVER_START_TIMEOUT}s")
            if selector.select(remaining):
                chunk = os.read(fd, 64)
                if not chunk:
                    raise RuntimeError(f"test server exited before listening (code {process.wait()})")
                data += chunk
    return int(data.split(b"\n", 1)[0])


def free_port() -> int:
    """A loopback port that nothing listens on (bound and released, so the kernel just handed it out)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def make_manager(transport: str, url: str, **kwargs: Any) -> RemoteConnectionManager:
    """The manager class for ``transport``, with ``headers=`` and ``timeout=`` as every one takes them."""
    if transport == "streamable-http":
        return StreamableHttpConnectionManager(url, **kwargs)
    if transport == "sse":
        return SseConnectionManager(url, **kwargs)
    return WebSocketConnectionManager(url, **kwargs)


async def assert_no_growth(before: Snapshot) -> None:
    """No more descriptors, threads or asyncio tasks than ``before`` (the server subprocess may run on)."""
    await settle()
    after = Snapshot.take()
    assert after.fds <= before.fds, f"descriptors grew: {before.fds} -> {after.fds}"
    assert after.threads <= before.threads, f"threads grew: {before.threads} -> {after.threads}"
    if before.tasks is not None and after.tasks is not None:
        assert after.tasks <= before.tasks, f"tasks grew: {before.tasks} -> {after.tasks}"


# -- fixtures ------------------------------------------------------------------------------------------


@pytest.fixture(params=TRANSPORTS)
def transport(request: pytest.FixtureRequest, anyio_backend: str) -> str:
    """Each remote transport in turn (on trio, all but the WebSocket, which needs asyncio)."""
    name: str = request.param
    skip_websocket_on_trio(name, anyio_backend)
    return name


@pytest.fixture
def remote_server(transport: str) -> Iterator[RemoteServer]:
    """A test server for the transport, for this test only."""
    with running_server(transport) as server:
        yield server


BEARER_TOKEN = "tok-right-5f2c9e0a"


@pytest.fixture
def bearer_server(transport: str) -> Iterator[RemoteServer]:
    """A test server that answers 401 to requests without ``Authorization: Bearer BEARER_TOKEN``."""
    with running_server(transport, require_bearer=BEARER_TOKEN) as server:
        yield server

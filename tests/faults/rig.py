"""What the fault matrix and the soak share: server processes a test controls, and sessions over them.

``ServerProcess`` runs one test server (HTTP, WebSocket or the slow-loris one) as a subprocess on loopback,
waiting for its port without blocking the event loop, and can kill, freeze, resume and restart it on the
same port, as a supervisor would. ``Rig`` builds ``ManagedSession`` objects for one transport with one
restart policy, starts the server a session needs with the fault switches asked for, and releases all of it
at the end, so a test's leak check sees only what the library left behind.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from types import TracebackType
from typing import Any

import anyio
import sniffio

from mcp_connections import ConnectionState, ManagedSession, RestartPolicy, StdioConnectionManager

from ..helpers import SERVERS, misbehaving
from ..helpers.remote import SERVER_START_TIMEOUT, make_manager, server_command

STDIO = "stdio"
HTTP = "streamable-http"
WS = "websocket"
TRANSPORTS = (STDIO, HTTP, WS)
REMOTE = (HTTP, WS)

_PATH = {HTTP: "/mcp", WS: "/mcp"}
_SCHEME = {HTTP: "http", WS: "ws"}


class ServerProcess:
    """A test server subprocess that prints its port as its first line; killed and reaped by ``close()``."""

    def __init__(self, command: list[str], *, accepts_port: bool = True) -> None:
        self.command = command
        self.accepts_port = accepts_port
        self.process: subprocess.Popen[bytes] | None = None
        self.port = 0

    async def start(self) -> None:
        """Start the server (on its last port, if it had one) and return once it listens."""
        command = [*self.command, "--port", str(self.port)] if self.accepts_port and self.port else self.command
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
        assert self.process.stdout is not None
        fd = self.process.stdout.fileno()
        os.set_blocking(fd, False)
        data = b""
        deadline = time.monotonic() + SERVER_START_TIMEOUT
        while b"\n" not in data:
            try:
                chunk = os.read(fd, 64)
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{command} did not print its port within {SERVER_START_TIMEOUT}s") from None
                await anyio.sleep(0.02)
                continue
            if not chunk:
                raise RuntimeError(f"{command} exited before listening (code {self.process.wait()})")
            data += chunk
        self.port = int(data.split(b"\n", 1)[0])

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def kill(self) -> None:
        """SIGKILL the server, as a crash or an OOM kill would, and reap it."""
        process, self.process = self.process, None
        if process is None:
            return
        process.kill()
        process.wait()
        if process.stdout is not None:
            process.stdout.close()

    def freeze(self) -> None:
        """SIGSTOP: its sockets stay open and the kernel accepts connections, but nothing answers."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    async def restart(self) -> None:
        """Kill it if it still runs, and start it again on the same port."""
        self.kill()
        await self.start()

    def close(self) -> None:
        self.kill()


def remote_server(transport: str, *flags: str) -> ServerProcess:
    return ServerProcess([*server_command(transport), *flags])


def slowloris_server(mode: str) -> ServerProcess:
    return ServerProcess([sys.executable, str(SERVERS / "slowloris.py"), "--mode", mode], accepts_port=False)


async def warm_up() -> None:
    """Create what the event loop creates lazily and keeps (the default executor's threads, which run
    ``getaddrinfo``), so that a leak count taken after this sees only what was left behind."""
    if sniffio.current_async_library() != "asyncio":
        return  # trio runs getaddrinfo on its thread cache, whose idle workers the leak counts leave out
    loop = asyncio.get_running_loop()
    await asyncio.gather(*(loop.run_in_executor(None, time.sleep, 0.02) for _ in range((os.cpu_count() or 1) + 8)))


class Rig:
    """Sessions over one transport with one restart policy, and the servers behind them."""

    def __init__(self, transport: str, policy: RestartPolicy | None) -> None:
        self.transport = transport
        self.policy = policy
        self.sessions: list[ManagedSession] = []
        self.servers: list[ServerProcess] = []

    @property
    def server(self) -> ServerProcess:
        """The server of the last session (remote transports)."""
        return self.servers[-1]

    async def session(
        self,
        *flags: str,
        timeout: float = 3.0,
        server: ServerProcess | None = None,
        port: int | None = None,
        **options: Any,
    ) -> ManagedSession:
        """A ManagedSession (not started) to a fresh server started with ``flags``; ``options`` go to the session.

        ``timeout`` is a remote manager's connect timeout; ``server`` a server to use instead (started here);
        ``port`` a port to connect to where no server is started.
        """
        if self.transport == STDIO:
            manager: Any = StdioConnectionManager(misbehaving(*flags), errlog=None)
        else:
            if port is None:
                if server is None:
                    server = remote_server(self.transport, *flags)
                self.servers.append(server)
                await server.start()
                port = server.port
            url = f"{_SCHEME[self.transport]}://127.0.0.1:{port}{_PATH[self.transport]}"
            manager = make_manager(self.transport, url, timeout=timeout)
        session = ManagedSession(manager, restart=self.policy, **options)
        self.sessions.append(session)
        return session

    def kill(self, session: ManagedSession) -> None:
        """Kill the session's server with SIGKILL."""
        if self.transport == STDIO:
            assert isinstance(session.manager, StdioConnectionManager) and session.manager.pid is not None
            os.kill(session.manager.pid, signal.SIGKILL)
        else:
            self.server.kill()

    async def bring_back(self) -> None:
        """Start a killed remote server again on its port (what a supervisor does); stdio needs nothing."""
        if self.transport != STDIO:
            await self.server.restart()

    async def __aenter__(self) -> Rig:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        with anyio.CancelScope(shield=True):
            for session in self.sessions:
                await session.stop(timeout=1)
            for server in self.servers:
                server.close()


async def wait_for(session: ManagedSession, *states: ConnectionState, timeout: float = 10.0) -> None:
    """Wait until the session is in one of ``states``."""
    with anyio.fail_after(timeout):
        while session.state not in states:
            await anyio.sleep(0.01)

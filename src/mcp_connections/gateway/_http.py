"""The gateway over streamable HTTP: ``/mcp`` (the SDK's session manager), ``/healthz``, bearer auth.

Design: one small ASGI app routes ``/mcp`` to the SDK's ``StreamableHTTPSessionManager`` (which serves
both protocol generations and checks Host and Origin against DNS rebinding when the gateway listens on
loopback) and answers ``/healthz`` itself. With a token, every ``/mcp`` request must carry
``Authorization: Bearer <token>`` (compared in constant time, 401 otherwise); ``/healthz`` stays open
to load balancers but leaves out error texts, which may name internal hosts, unless the token is
presented. uvicorn serves the app on a socket bound before it starts (so port 0 is known), without
its own signal handling: the caller decides when to stop by setting an event.
"""

from __future__ import annotations

import contextlib
import hmac
import ipaddress
import json
import logging
import socket
from collections.abc import Callable, Iterator
from typing import Any

import anyio
import uvicorn
from mcp.server.streamable_http_manager import StreamableHTTPASGIApp, StreamableHTTPSessionManager
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import Receive, Scope, Send

from ._server import Gateway

__all__ = ["is_loopback", "parse_address", "serve_http"]

logger = logging.getLogger(__name__)

# Bound on uvicorn's start-up (binding is done already; this is its lifespan and first loop turn).
HTTP_START_TIMEOUT = 30.0

# Open streams (a client's GET stream never ends by itself) get this long to close at shutdown.
GRACEFUL_SHUTDOWN_TIMEOUT = 1

DEFAULT_HOST = "127.0.0.1"


def parse_address(value: str) -> tuple[str, int]:
    """``[HOST:]PORT`` (``8080``, ``0.0.0.0:8080``, ``[::1]:0``) as (host, port); ValueError if malformed."""
    host, _, port_text = value.rpartition(":")
    host = host.strip("[]") or DEFAULT_HOST
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise ValueError(f"expected [HOST:]PORT with a port from 0 to 65535, got {value!r}")
    return host, int(port_text)


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def security_settings(host: str) -> TransportSecuritySettings:
    """DNS-rebinding protection on loopback (only local Host and Origin headers); off for other hosts."""
    if not is_loopback(host):
        return TransportSecuritySettings(enable_dns_rebinding_protection=False)
    hosts = ["127.0.0.1", "localhost", "[::1]"]
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=[f"{h}:*" for h in hosts] + hosts,
        allowed_origins=[f"http://{h}:*" for h in hosts] + [f"http://{h}" for h in hosts],
    )


class GatewayApp:
    """``/mcp`` behind the bearer check, ``/healthz``, 404 elsewhere."""

    def __init__(self, gateway: Gateway, mcp_app: Any, token: str | None) -> None:
        self.gateway = gateway
        self.mcp_app = mcp_app
        self._expected = f"Bearer {token}".encode() if token else None

    def _authorized(self, scope: Scope) -> bool:
        if self._expected is None:
            return True
        presented = next((v for k, v in scope.get("headers", []) if k == b"authorization"), b"")
        return hmac.compare_digest(presented, self._expected)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        path = scope.get("path", "")
        if path == "/healthz":
            code, body = self.gateway.health(show_errors=self._authorized(scope))
            await _respond(send, code, body)
        elif path.rstrip("/") == "/mcp":
            if not self._authorized(scope):
                await _respond(
                    send,
                    401,
                    {"error": "unauthorized: send Authorization: Bearer <token>"},
                    [(b"www-authenticate", b'Bearer realm="mcp-connections"')],
                )
                return
            await self.mcp_app(scope, receive, send)
        else:
            await _respond(send, 404, {"error": f"not found; MCP is at /mcp, health at /healthz (not {path})"})


async def _respond(send: Send, code: int, body: dict[str, Any], headers: list[tuple[bytes, bytes]] = ()) -> None:  # type: ignore[assignment]
    data = json.dumps(body).encode()
    await send(
        {
            "type": "http.response.start",
            "status": code,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(data)).encode()), *headers],
        }
    )
    await send({"type": "http.response.body", "body": data})


class _Uvicorn(uvicorn.Server):
    """uvicorn without its signal handlers: the gateway has its own (reload, two-step Ctrl-C)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
        sock.listen(1024)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(False)
    return sock


def url_for(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/mcp"


async def serve_http(
    gateway: Gateway,
    host: str,
    port: int,
    *,
    token: str | None,
    stop: anyio.Event,
    on_ready: Callable[[str], object],
) -> None:
    """Serve the gateway at ``http://host:port/mcp`` until ``stop`` is set; ``on_ready(url)`` once it accepts."""
    if token is None and not is_loopback(host):
        logger.warning(
            "gateway: listening on %s without --token-env: anyone who can reach it can use every server", host
        )
    manager = StreamableHTTPSessionManager(app=gateway.server, security_settings=security_settings(host))
    app = GatewayApp(gateway, StreamableHTTPASGIApp(manager), token)
    sock = _bind(host, port)
    try:
        config = uvicorn.Config(
            app,
            lifespan="off",
            log_level="warning",
            timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_TIMEOUT,
            access_log=False,
        )
        server = _Uvicorn(config)
        async with manager.run(), anyio.create_task_group() as tg:
            done = anyio.Event()

            async def run_server() -> None:
                try:
                    await server.serve(sockets=[sock])
                finally:
                    done.set()

            tg.start_soon(run_server)
            with anyio.fail_after(HTTP_START_TIMEOUT):
                while not server.started and not done.is_set():
                    await anyio.sleep(0.01)
            if not done.is_set():
                on_ready(url_for(host, sock.getsockname()[1]))
                with anyio.CancelScope() as scope:
                    # Ended from outside (stop), or uvicorn ended by itself.
                    async def watch_done() -> None:
                        await done.wait()
                        scope.cancel()

                    tg.start_soon(watch_done)
                    await stop.wait()
            server.should_exit = True
            with anyio.move_on_after(GRACEFUL_SHUTDOWN_TIMEOUT * 3):
                await done.wait()
            tg.cancel_scope.cancel()
    finally:
        sock.close()

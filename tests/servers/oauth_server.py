"""A real MCP server over HTTP that requires OAuth, with a small authorization server on the same origin.

Usage: oauth_server.py [--transport streamable-http|sse] [--port PORT] [--state FILE] [--expires-in SECONDS]

Prints its port as stdout's first line once it listens (as http_server.py does). The MCP endpoint
(``/mcp``, or ``/sse`` and its message path) answers 401 with ``WWW-Authenticate: Bearer
resource_metadata=...`` unless the request carries a live access token. The authorization server
implements what the MCP authorization flow needs: protected resource metadata, authorization server
metadata, dynamic registration, an ``/authorize`` that approves at once (redirecting to the client's
redirect URI with a code and the state), and ``/token`` for the ``authorization_code`` (PKCE S256
checked) and ``refresh_token`` grants. Access tokens live ``--expires-in`` seconds.

``--state FILE`` keeps issued tokens, registrations and counts in a file, so a server killed and started
again on the same port still knows them. Test hooks: ``GET /test/stats`` (how many authorizations, code
exchanges, refreshes and registrations so far) and ``POST /test/revoke`` (every access token dies now;
refresh tokens stay good).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import secrets
import socket
import sys
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode

import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.types import ASGIApp, Receive, Scope, Send


class State:
    def __init__(self, path: Path | None) -> None:
        self.path = path
        self.data: dict[str, Any] = {
            "clients": {},
            "codes": {},
            "access": {},
            "refresh": {},
            "stats": {"authorize": 0, "code_exchange": 0, "refresh": 0, "register": 0, "rejected": 0},
            "seen": [],  # every secret handed out or received, for the tests that look for leaks
        }
        if path is not None and path.exists():
            self.data = json.loads(path.read_text())

    def save(self) -> None:
        if self.path is not None:
            self.path.write_text(json.dumps(self.data))

    def count(self, what: str) -> None:
        self.data["stats"][what] += 1
        self.save()


async def read_body(receive: Receive) -> bytes:
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body", False):
            return body


async def respond(send: Send, status: int, payload: Any = None, headers: dict[str, str] | None = None) -> None:
    body = json.dumps(payload).encode() if payload is not None else b""
    head = [(b"content-type", b"application/json")] + [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": head})
    await send({"type": "http.response.body", "body": body})


class OAuthServer:
    def __init__(self, mcp_app: ASGIApp, state: State, expires_in: int, mcp_paths: tuple[str, ...]) -> None:
        self.mcp_app = mcp_app
        self.state = state
        self.expires_in = expires_in
        self.mcp_paths = mcp_paths

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.mcp_app(scope, receive, send)
            return
        host = dict(scope["headers"]).get(b"host", b"127.0.0.1").decode()
        base = f"http://{host}"
        path = scope["path"]
        method = scope["method"]
        data = self.state.data
        if path.startswith(self.mcp_paths):
            authorization = dict(scope["headers"]).get(b"authorization", b"").decode()
            token = authorization.removeprefix("Bearer ")
            if not authorization.startswith("Bearer ") or data["access"].get(token, 0) < time.time():
                self.state.count("rejected")
                metadata = f"{base}/.well-known/oauth-protected-resource{self.mcp_paths[0]}"
                await respond(
                    send,
                    401,
                    {"error": "invalid_token"},
                    {"www-authenticate": f'Bearer error="invalid_token", resource_metadata="{metadata}"'},
                )
                return
            await self.mcp_app(scope, receive, send)
            return
        if path.startswith("/.well-known/oauth-protected-resource"):
            await respond(send, 200, {"resource": f"{base}{self.mcp_paths[0]}", "authorization_servers": [base]})
        elif path == "/.well-known/oauth-authorization-server":
            await respond(
                send,
                200,
                {
                    "issuer": base,
                    "authorization_endpoint": f"{base}/authorize",
                    "token_endpoint": f"{base}/token",
                    "registration_endpoint": f"{base}/register",
                    "response_types_supported": ["code"],
                    "grant_types_supported": ["authorization_code", "refresh_token"],
                    "code_challenge_methods_supported": ["S256"],
                    "token_endpoint_auth_methods_supported": ["none", "client_secret_post"],
                },
            )
        elif path == "/register" and method == "POST":
            request = json.loads(await read_body(receive))
            client_id = f"client-{secrets.token_hex(4)}"
            client_secret = f"cs-{secrets.token_urlsafe(24)}"
            data["clients"][client_id] = request.get("redirect_uris", [])
            data["seen"].append(client_secret)
            self.state.count("register")
            await respond(send, 201, {**request, "client_id": client_id, "client_secret": client_secret})
        elif path == "/authorize":
            query = {k: v[0] for k, v in parse_qs(scope["query_string"].decode()).items()}
            if query.get("redirect_uri") not in data["clients"].get(query.get("client_id"), []):
                await respond(send, 400, {"error": "invalid_request", "error_description": "unknown redirect_uri"})
                return
            code = secrets.token_urlsafe(16)
            data["codes"][code] = query["code_challenge"]
            data["seen"].append(code)
            self.state.count("authorize")
            location = f"{query['redirect_uri']}?{urlencode({'code': code, 'state': query.get('state', '')})}"
            await respond(send, 302, None, {"location": location})
        elif path == "/token" and method == "POST":
            form = {k: v[0] for k, v in parse_qs((await read_body(receive)).decode()).items()}
            if form.get("grant_type") == "authorization_code":
                challenge = data["codes"].pop(form.get("code", ""), None)
                verifier = form.get("code_verifier", "")
                data["seen"].append(verifier)
                digest = base64.urlsafe_b64encode(hashlib.sha256(verifier.encode()).digest()).rstrip(b"=").decode()
                if challenge is None or digest != challenge:
                    await respond(send, 400, {"error": "invalid_grant"})
                    return
                self.state.count("code_exchange")
            elif form.get("grant_type") == "refresh_token":
                if form.get("refresh_token") not in data["refresh"]:
                    await respond(send, 400, {"error": "invalid_grant"})
                    return
                self.state.count("refresh")
            else:
                await respond(send, 400, {"error": "unsupported_grant_type"})
                return
            access, refresh = f"at-{secrets.token_urlsafe(24)}", f"rt-{secrets.token_urlsafe(24)}"
            data["access"][access] = time.time() + self.expires_in
            data["refresh"][refresh] = True
            data["seen"] += [access, refresh]
            self.state.save()
            await respond(
                send,
                200,
                {
                    "access_token": access,
                    "token_type": "Bearer",
                    "expires_in": self.expires_in,
                    "refresh_token": refresh,
                },
            )
        elif path == "/test/stats":
            await respond(send, 200, data["stats"])
        elif path == "/test/secrets":
            await respond(send, 200, data["seen"])
        elif path == "/test/revoke" and method == "POST":
            data["access"].clear()
            self.state.save()
            await respond(send, 200, {})
        else:
            await respond(send, 404, {"error": "not_found"})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--transport", choices=["streamable-http", "sse"], default="streamable-http")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--state", type=Path)
    parser.add_argument("--expires-in", type=int, default=3600)
    args = parser.parse_args()

    server = MCPServer("oauth-test-server", log_level="WARNING")

    @server.tool()
    def echo(text: str) -> str:
        """Echo text back."""
        return text

    security = TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=["127.0.0.1:*", "localhost:*"],
        allowed_origins=["http://127.0.0.1:*", "http://localhost:*"],
    )
    if args.transport == "sse":
        mcp_app: ASGIApp = server.sse_app(transport_security=security)
        paths: tuple[str, ...] = ("/sse", "/messages")
    else:
        mcp_app = server.streamable_http_app(transport_security=security)
        paths = ("/mcp",)
    app = OAuthServer(mcp_app, State(args.state), args.expires_in, paths)

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", args.port))
    sock.listen(128)
    sys.stdout.write(f"{sock.getsockname()[1]}\n")
    sys.stdout.flush()
    config = uvicorn.Config(app, lifespan="on", log_level="warning", timeout_graceful_shutdown=1)
    uvicorn.Server(config).run(sockets=[sock])


if __name__ == "__main__":
    main()

"""The one-shot loopback server that receives the browser's redirect with the authorization code.

Design: the server runs in a thread of its own with a plain blocking socket, opened before the browser
is sent to the authorization page and closed as soon as one request brings a code with the right
``state``. A thread, not a task: the SDK calls the redirect handler and then the callback handler from
inside an httpx auth flow, and a headless "browser" (a test, the conformance client) may await the whole
redirect chain in the redirect handler, before anyone is waiting on the callback; a thread answers
whatever the event loop is doing. Requests for other paths (a favicon) get 404; a redirect whose
``state`` is not the one sent is answered 400 and ignored (it is someone else's, or forged), so the real
one can still arrive; an ``error`` redirect with the right state ends the wait with ``AuthError``. The
wait is bounded by ``timeout``; the code never appears in a log line or an error.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import socket
import threading
from dataclasses import dataclass
from urllib.parse import parse_qs, urlsplit

import anyio
from mcp.shared.auth import AuthorizationCodeResult

from .errors import AuthError

__all__ = ["LoopbackCallback", "free_loopback_port", "is_loopback_uri"]

logger = logging.getLogger("mcp_connections.auth")

# Bound on reading one request from the browser: it sends a few hundred bytes at once.
REQUEST_READ_TIMEOUT = 5.0

# How often the accept loop looks at its stop flag, and the waiter at the thread's result.
_POLL_INTERVAL = 0.05

# Largest request head accepted (a redirect URL with a code and a state is well under 8 KiB).
_MAX_REQUEST = 16 * 1024

_LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]", "::1")

_PAGE = (
    "<!doctype html><meta charset=utf-8><title>{title}</title>"
    "<body style='font-family:sans-serif;margin:3em'><h1>{title}</h1><p>{text}</p></body>"
)


def is_loopback_uri(uri: str) -> bool:
    """Whether a redirect URI points at this machine over plain HTTP (RFC 8252 §7.3)."""
    parts = urlsplit(uri)
    return parts.scheme == "http" and (parts.hostname or "") in _LOOPBACK_HOSTS


def free_loopback_port() -> int:
    """A port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class _Outcome:
    result: AuthorizationCodeResult | None = None
    error: AuthError | None = None


class LoopbackCallback:
    """Listens on 127.0.0.1 at ``redirect_uri``'s port and path for one authorization redirect."""

    def __init__(self, redirect_uri: str, *, timeout: float, server: str | None = None) -> None:
        parts = urlsplit(redirect_uri)
        self.redirect_uri = redirect_uri
        self.timeout = timeout
        self._server = server
        self._path = parts.path or "/"
        self._port = parts.port or 80
        self._expected_state: str | None = None
        self._socket: socket.socket | None = None
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()
        self._done = threading.Event()
        self._outcome = _Outcome()

    def __repr__(self) -> str:
        return f"<LoopbackCallback {self.redirect_uri!r}>"

    @property
    def port(self) -> int:
        return self._port

    def open(self, expected_state: str | None) -> None:
        """Start listening (before the browser is sent off), expecting ``state`` to come back."""
        self._expected_state = expected_state
        listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            listener.bind(("127.0.0.1", self._port))
            listener.listen(8)
            listener.settimeout(_POLL_INTERVAL)
        except OSError as exc:
            listener.close()
            raise AuthError(
                f"cannot listen for the sign-in redirect on 127.0.0.1:{self._port} ({exc.strerror}). "
                "Close what uses that port, or set another redirect_uri.",
                server=self._server,
            ) from exc
        self._socket = listener
        self._thread = threading.Thread(target=self._serve, name="mcp-connections oauth callback", daemon=True)
        self._thread.start()

    async def wait(self) -> AuthorizationCodeResult:
        """The code and state of the redirect, or ``AuthError`` once ``timeout`` has passed."""
        try:
            with anyio.move_on_after(self.timeout):
                while not self._done.is_set():
                    await anyio.sleep(_POLL_INTERVAL)
            if self._outcome.error is not None:
                raise self._outcome.error
            if self._outcome.result is None:
                raise AuthError(
                    f"sign-in timed out: no redirect reached {self.redirect_uri} within {self.timeout:g}s. "
                    "Finish signing in in the browser sooner (or raise the timeout), or run "
                    "`mcp-connections login` first.",
                    server=self._server,
                    needs_login=True,
                )
            return self._outcome.result
        finally:
            await self.aclose()

    async def aclose(self) -> None:
        """Stop listening: a later request finds the port closed."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(thread.join, 1.0)
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    # -- the thread --------------------------------------------------------------------------------------

    def _serve(self) -> None:
        listener = self._socket
        assert listener is not None
        try:
            while not self._stop.is_set() and not self._done.is_set():
                try:
                    connection, _ = listener.accept()
                except TimeoutError:
                    continue
                except OSError:
                    return  # closed under us
                with connection:
                    self._handle(connection)
        finally:
            listener.close()

    def _handle(self, connection: socket.socket) -> None:
        connection.settimeout(REQUEST_READ_TIMEOUT)
        head = b""
        try:
            while b"\r\n\r\n" not in head and len(head) < _MAX_REQUEST:
                chunk = connection.recv(4096)
                if not chunk:
                    break
                head += chunk
        except OSError:
            return
        line = head.split(b"\r\n", 1)[0].decode("latin-1")
        method, _, rest = line.partition(" ")
        target = rest.partition(" ")[0]
        parts = urlsplit(target)
        if method != "GET" or parts.path != self._path:
            self._respond(connection, 404, "Not found", "This address only receives the sign-in redirect.")
            return
        query = {name: values[0] for name, values in parse_qs(parts.query).items()}
        state = query.get("state")
        if self._expected_state is not None and (
            state is None or not secrets.compare_digest(state.encode(), self._expected_state.encode())
        ):
            logger.warning("%s: ignored a sign-in redirect with the wrong state", self._server or "oauth")
            self._respond(connection, 400, "Sign-in not accepted", "This redirect is not the one that was expected.")
            return
        if "error" in query:
            error = query["error"]
            description = query.get("error_description")
            self._respond(connection, 400, "Sign-in failed", f"The authorization server said: {error}.")
            self._outcome.error = AuthError(
                f"the authorization server refused the sign-in: {error}"
                + (f" ({description})" if description else "")
                + ". Try again, or check the client's registration and scopes.",
                server=self._server,
            )
        elif query.get("code"):
            self._respond(connection, 200, "Signed in", "You can close this tab and return to the application.")
            self._outcome.result = AuthorizationCodeResult(code=query["code"], state=state, iss=query.get("iss"))
        else:
            self._respond(connection, 400, "Sign-in failed", "The redirect carried no authorization code.")
            return
        self._done.set()

    @staticmethod
    def _respond(connection: socket.socket, status: int, title: str, text: str) -> None:
        body = _PAGE.format(title=title, text=text).encode()
        reason = {200: "OK", 400: "Bad Request", 404: "Not Found"}[status]
        head = (
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/html; charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n"
        )
        with contextlib.suppress(OSError):
            connection.sendall(head.encode() + body)

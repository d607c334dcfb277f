"""The SDK's OAuth providers, with what they get wrong for a long-lived client fixed around them.

Design: the whole MCP authorization flow (protected resource metadata, authorization server discovery,
dynamic registration or a client ID metadata document, PKCE, the token exchange, refresh, scope step-up,
client credentials and private-key JWT) is the SDK's ``OAuthClientProvider`` and its client-credentials
subclasses. This module only adds, by subclassing:

* **expiry that survives a restart**: the SDK keeps ``expires_in`` (relative) and sets its clock only
  when a token arrives; tokens read back from a store would look valid forever, so an expired one was
  sent, refused with 401 and answered with a whole new sign-in. The store keeps ``expires_at`` and
  ``_initialize`` restores it, so the SDK refreshes before asking the user again;
* **a 401 on a token that was sent refreshes once** before the SDK's full flow runs (the SDK goes
  straight to re-authorization, i.e. a browser, for a token the server revoked or expired early);
* **a refresh token that fails is forgotten** in the store too (the SDK clears it only in memory and
  would read the dead one back at its next initialization);
* **errors for people**: the SDK's ``OAuthFlowError`` family becomes ``AuthError`` naming the server,
  and a request still refused after the whole flow is an ``AuthError`` too (the SDK would hand the
  401 back as an anonymous JSON-RPC error); no token, code, verifier or secret is in the message;
* **secrets out of logs**: a filter on the SDK's and httpx's loggers replaces every secret this
  process holds (tokens, client secrets, codes) with ``REDACTED``, exception text included.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncGenerator, Callable
from typing import Any

import httpx2
from mcp.client.auth import OAuthClientProvider, OAuthFlowError
from mcp.client.auth.extensions.client_credentials import ClientCredentialsOAuthProvider, PrivateKeyJWTOAuthProvider
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken
from pydantic import ValidationError

from ._redact import REDACTED
from ._token_store import TokenStore
from .errors import AuthError

__all__ = [
    "AuthCodeProvider",
    "ClientCredentialsProvider",
    "JwtClientCredentialsProvider",
    "ServerStorage",
    "forget_secret",
    "install_secret_redaction",
    "remember_secret",
    "scrub",
]

logger = logging.getLogger("mcp_connections.auth")

# -- secrets out of logs ---------------------------------------------------------------------------------

# Values shorter than this are not scrubbed: they would turn up inside ordinary words.
_MIN_SECRET_LENGTH = 6

# Most secrets remembered at once (tokens rotate; the oldest are forgotten first).
_MAX_SECRETS = 512

_secrets: dict[str, None] = {}  # insertion-ordered set


def remember_secret(value: str | None) -> None:
    """Scrub ``value`` from every log line and error text of this process from now on."""
    if value and len(value) >= _MIN_SECRET_LENGTH:
        _secrets.pop(value, None)
        _secrets[value] = None
        while len(_secrets) > _MAX_SECRETS:
            del _secrets[next(iter(_secrets))]


def forget_secret(value: str | None) -> None:
    if value:
        _secrets.pop(value, None)


def scrub(text: str) -> str:
    """``text`` with every remembered secret replaced by ``REDACTED`` (longest first)."""
    if not _secrets:
        return text
    for secret in sorted(_secrets, key=len, reverse=True):
        if secret in text:
            text = text.replace(secret, REDACTED)
    return text


class _SecretScrubbingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        if not _secrets:
            return True
        message = record.getMessage()
        cleaned = scrub(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and not record.exc_text:
            record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = scrub(record.exc_text)
        return True


# Loggers that may see a secret: the SDK's auth flow (exception texts, server answers), the HTTP stack
# and the SDK's transports (URLs, messages), and ours.
_SECRET_LOGGERS = (
    "mcp.client.auth",
    "mcp.client.auth.oauth2",
    "mcp.client.auth.utils",
    "mcp.client.auth.extensions.client_credentials",
    "mcp.client.streamable_http",
    "mcp.client.sse",
    "httpx2",
    "httpcore2",
    "httpcore2.http11",
    "httpcore2.connection",
    "mcp_connections",
    "mcp_connections.auth",
    "mcp_connections.remote",
    "mcp_connections.session",
    "mcp_connections.streamable_http",
    "mcp_connections.sse",
    "mcp_connections.group",
)


def install_secret_redaction() -> None:
    """Put the scrubbing filter on every logger that may see a secret (once)."""
    for name in _SECRET_LOGGERS:
        target = logging.getLogger(name)
        if not any(isinstance(f, _SecretScrubbingFilter) for f in target.filters):
            target.addFilter(_SecretScrubbingFilter())


# -- the store, as the SDK's TokenStorage for one server -----------------------------------------------


class ServerStorage:
    """The SDK's ``TokenStorage`` over one entry of a ``TokenStore``, plus the absolute expiry time."""

    def __init__(self, store: TokenStore, server_url: str, server: Callable[[], str]) -> None:
        self.store = store
        self.server_url = server_url
        self._server = server
        self._entry: dict[str, Any] | None = None

    def __repr__(self) -> str:
        return f"<ServerStorage {self.store!r}>"

    async def _load(self) -> dict[str, Any]:
        if self._entry is None:
            try:
                self._entry = dict(await self.store.load(self.server_url) or {})
            except Exception:
                logger.exception("%s: the token store failed to load; signing in again", self._server())
                self._entry = {}
        return self._entry

    async def _save(self) -> None:
        assert self._entry is not None
        try:
            await self.store.save(self.server_url, self._entry)
        except Exception:
            # The tokens still work for this process; the next one signs in again.
            logger.exception("%s: the token store failed to save the tokens", self._server())

    async def get_tokens(self) -> OAuthToken | None:
        raw = (await self._load()).get("tokens")
        if not raw:
            return None
        try:
            tokens = OAuthToken.model_validate(raw)
        except ValidationError:
            logger.warning("%s: ignoring stored tokens that do not parse", self._server())
            return None
        remember_secret(tokens.access_token)
        remember_secret(tokens.refresh_token)
        return tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        remember_secret(tokens.access_token)
        remember_secret(tokens.refresh_token)
        entry = await self._load()
        entry["tokens"] = tokens.model_dump(mode="json", exclude_none=True)
        entry["expires_at"] = time.time() + float(tokens.expires_in) if tokens.expires_in is not None else None
        await self._save()

    async def clear_tokens(self) -> None:
        entry = await self._load()
        if entry.pop("tokens", None) is not None:
            entry.pop("expires_at", None)
            await self._save()

    async def expires_at(self) -> float | None:
        value = (await self._load()).get("expires_at")
        return float(value) if isinstance(value, int | float) else None

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        raw = (await self._load()).get("client_info")
        if not raw:
            return None
        try:
            info = OAuthClientInformationFull.model_validate(raw)
        except ValidationError:
            logger.warning("%s: ignoring a stored client registration that does not parse", self._server())
            return None
        remember_secret(info.client_secret)
        return info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        remember_secret(client_info.client_secret)
        entry = await self._load()
        entry["client_info"] = client_info.model_dump(mode="json", exclude_none=True)
        await self._save()


# -- the fixes, shared by the three providers -------------------------------------------------------------


class _Fixes:
    """Mixed in before an SDK provider class (see the module docstring for what and why)."""

    context: Any
    _initialized: bool

    def _setup_fixes(self, storage: ServerStorage, server: Callable[[], str]) -> None:
        self._storage = storage
        self._server = server

    def __repr__(self) -> str:
        return f"<{type(self).__name__} for {self._server()!r}>"

    async def _initialize(self) -> None:
        await super()._initialize()  # type: ignore[misc]
        # Stored tokens come back with their expiry, so an expired one is refreshed, not sent.
        if self.context.current_tokens is not None:
            self.context.token_expiry_time = await self._storage.expires_at()

    async def _handle_refresh_response(self, response: httpx2.Response) -> bool:
        ok: bool = await super()._handle_refresh_response(response)  # type: ignore[misc]
        if not ok:
            logger.info("%s: the refresh token was refused; signing in again", self._server())
            await self._storage.clear_tokens()
        return ok

    async def _auth_flow(self, request: httpx2.Request) -> AsyncGenerator[httpx2.Request, httpx2.Response]:
        flow = super()._auth_flow(request)  # type: ignore[misc]
        refreshed = False
        last: httpx2.Response | None = None
        try:
            outgoing: httpx2.Request = await flow.__anext__()
            while True:
                if _is_refresh(outgoing):
                    refreshed = True
                incoming: httpx2.Response = yield outgoing
                if outgoing is request:
                    if (
                        incoming.status_code == 401
                        and "authorization" in request.headers
                        and not refreshed
                        and self.context.can_refresh_token()
                    ):
                        # A token the server refused before it expired: try the refresh token once,
                        # ahead of the SDK's re-authorization (which asks the user).
                        refreshed = True
                        refresh_response = yield await self._refresh_token()  # type: ignore[attr-defined]
                        if await self._handle_refresh_response(refresh_response):
                            self._add_auth_header(request)  # type: ignore[attr-defined]
                            incoming = yield request
                    last = incoming
                outgoing = await flow.asend(incoming)
        except StopAsyncIteration:
            pass
        except OAuthFlowError as exc:
            raise AuthError(
                f"authorization failed: {scrub(str(exc))}. Check the server's OAuth settings "
                "(client_id, scopes, redirect_uri), or sign in again with `mcp-connections login`.",
                server=self._server(),
            ) from exc
        finally:
            await flow.aclose()
        if last is not None and last.status_code == 401:
            raise AuthError(
                "the server still rejects the credentials after authorization (HTTP 401). Sign in again "
                "with `mcp-connections logout` then `login`, or check that the client may use this server.",
                server=self._server(),
            )


def _is_refresh(request: httpx2.Request) -> bool:
    try:
        return request.method == "POST" and b"grant_type=refresh_token" in request.content
    except httpx2.RequestNotRead:
        return False


class AuthCodeProvider(_Fixes, OAuthClientProvider):
    """The authorization code flow with PKCE (a person signs in through a browser)."""


class ClientCredentialsProvider(_Fixes, ClientCredentialsOAuthProvider):
    """The client credentials grant with a client secret (machine clients)."""


class JwtClientCredentialsProvider(_Fixes, PrivateKeyJWTOAuthProvider):
    """The client credentials grant authenticated by a private-key JWT assertion (RFC 7523)."""

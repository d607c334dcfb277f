"""OAuth for remote servers: the ``OAuth`` helper, token stores, and the interactive sign-in.

Design: an ``OAuth`` object says *how* to authorize (the MCP authorization code flow, client credentials,
or a plain bearer token) and where tokens are kept; it holds no tokens itself. A manager given one asks
it for an ``httpx2.Auth`` bound to its server URL (``OAuth.http_auth``), built on the MCP SDK's
``OAuthClientProvider`` and client-credentials providers (see ``_oauth_provider`` for the few things
wrapped around them). The manager keeps that object across reconnects, so a restart reuses the tokens
in memory, and the store (one entry per server URL; by default a 0600 file in the user's data
directory) lets the next process reuse them too; an expired access token is refreshed before anyone is
asked to sign in again.

The interactive step, by default: the authorization URL is opened in the system browser
(``webbrowser``) and a one-shot server on 127.0.0.1 receives the redirect (``_loopback``), within
``callback_timeout``; ``state`` is checked. Hosts pass ``redirect_handler(url)`` (show the URL their
own way) and/or ``callback_handler() -> AuthorizationCodeResult`` (receive the code their own way).
Inside ``no_interactive_login()`` (``mcp-connections check`` uses it), a server that would need a
person fails at once with ``AuthError(needs_login=True)`` instead.

The same shapes are accepted wherever ``auth=`` is: ``"oauth"``, a mapping as in a config file's
``"auth"`` (``{"type": "oauth" | "client_credentials" | "bearer", ...}``), an ``OAuth``, or any
``httpx2.Auth``. Tokens, codes, verifiers and client secrets appear in no repr, log line or error.
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Awaitable, Callable, Generator, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import httpx2
from mcp.shared.auth import AuthorizationCodeResult, OAuthClientMetadata
from pydantic import AnyUrl

from ._loopback import is_loopback_uri
from ._oauth_provider import (
    AuthCodeProvider,
    ClientCredentialsProvider,
    JwtClientCredentialsProvider,
    ServerStorage,
    install_secret_redaction,
    remember_secret,
)
from ._sign_in import CALLBACK_PATH, BrowserProvider, Interaction, no_interactive_login
from ._token_store import FileTokenStore, MemoryTokenStore, TokenStore, default_token_directory
from .errors import ConfigError

__all__ = [
    "AuthKind",
    "AuthSpec",
    "CallbackHandler",
    "FileTokenStore",
    "MemoryTokenStore",
    "OAuth",
    "RedirectHandler",
    "TokenStore",
    "default_token_directory",
    "no_interactive_login",
]

logger = logging.getLogger("mcp_connections.auth")

install_secret_redaction()

AuthKind = Literal["oauth", "client_credentials", "bearer"]
RedirectHandler = Callable[[str], Awaitable[None] | None]
CallbackHandler = Callable[[], Awaitable[AuthorizationCodeResult]]

# How long a person may take to sign in in the browser before the wait ends with AuthError.
DEFAULT_CALLBACK_TIMEOUT = 300.0


_CONFIG_KEYS: dict[str, frozenset[str]] = {
    "oauth": frozenset(
        {
            "type",
            "client_id",
            "client_secret",
            "scopes",
            "redirect_uri",
            "client_metadata_url",
            "token_endpoint_auth_method",
            "client_name",
        }
    ),
    "client_credentials": frozenset(
        {
            "type",
            "client_id",
            "client_secret",
            "scopes",
            "token_endpoint_auth_method",
            "private_key",
            "private_key_file",
            "signing_algorithm",
            "assertion",
            "issuer",
        }
    ),
    "bearer": frozenset({"type", "token"}),
}


class OAuth:
    """How to authorize with a remote MCP server; give it to a manager as ``auth=``.

    ``OAuth()`` is the full MCP authorization flow (discovery, dynamic registration or
    ``client_metadata_url``, PKCE, refresh, scope step-up) with a browser sign-in; pass ``client_id``
    (and ``client_secret``) for a pre-registered client. ``OAuth.client_credentials(...)`` is for
    machine clients, ``OAuth.bearer(token)`` a fixed token. ``store`` keeps tokens (default: the
    user's data directory); ``redirect_handler``/``callback_handler`` replace the browser and the
    loopback server; ``callback_timeout`` bounds the wait for the browser.
    """

    def __init__(
        self,
        *,
        kind: AuthKind = "oauth",
        client_id: str | None = None,
        client_secret: str | None = None,
        scopes: str | Sequence[str] | None = None,
        redirect_uri: str | None = None,
        client_metadata_url: str | None = None,
        token_endpoint_auth_method: str | None = None,
        client_name: str = "mcp-connections",
        private_key: str | None = None,
        signing_algorithm: str = "RS256",
        assertion: str | None = None,
        issuer: str | None = None,
        token: str | None = None,
        store: TokenStore | None = None,
        redirect_handler: RedirectHandler | None = None,
        callback_handler: CallbackHandler | None = None,
        callback_timeout: float = DEFAULT_CALLBACK_TIMEOUT,
    ) -> None:
        if kind not in _CONFIG_KEYS:
            raise ConfigError(f"unknown auth kind {kind!r}; use one of {', '.join(_CONFIG_KEYS)}")
        if kind == "bearer" and not token:
            raise ConfigError("bearer auth needs a token")
        if kind == "client_credentials":
            if not client_id:
                raise ConfigError("client_credentials auth needs client_id")
            if sum(x is not None for x in (client_secret, private_key, assertion)) != 1:
                raise ConfigError("client_credentials auth needs exactly one of client_secret, private_key, assertion")
        if token_endpoint_auth_method is not None and token_endpoint_auth_method not in (
            "none",
            "client_secret_basic",
            "client_secret_post",
            "private_key_jwt",
        ):
            raise ConfigError(f"unknown token_endpoint_auth_method {token_endpoint_auth_method!r}")
        if redirect_uri is not None and callback_handler is None and not is_loopback_uri(redirect_uri):
            raise ConfigError(
                "a redirect_uri that is not http://127.0.0.1 or http://localhost needs a callback_handler "
                "that receives the code"
            )
        if not callback_timeout > 0:
            raise ConfigError(f"callback_timeout must be positive, not {callback_timeout!r}")
        self.kind: AuthKind = kind
        self.client_id = client_id
        self._client_secret = client_secret
        self.scopes: tuple[str, ...] = tuple(scopes.split() if isinstance(scopes, str) else scopes or ())
        self.redirect_uri = redirect_uri
        self.client_metadata_url = client_metadata_url
        self.token_endpoint_auth_method = token_endpoint_auth_method
        self.client_name = client_name
        self._private_key = private_key
        self.signing_algorithm = signing_algorithm
        self._assertion = assertion
        self.issuer = issuer
        self._token = token
        self.store: TokenStore = store if store is not None else FileTokenStore()
        self.redirect_handler = redirect_handler
        self.callback_handler = callback_handler
        self.callback_timeout = float(callback_timeout)
        for secret in (client_secret, private_key, assertion, token):
            remember_secret(secret)

    # -- other ways to build one -----------------------------------------------------------------------

    @classmethod
    def client_credentials(
        cls,
        client_id: str,
        client_secret: str | None = None,
        *,
        private_key: str | None = None,
        signing_algorithm: str = "RS256",
        assertion: str | None = None,
        scopes: str | Sequence[str] | None = None,
        token_endpoint_auth_method: Literal["client_secret_basic", "client_secret_post"] | None = None,
        issuer: str | None = None,
        store: TokenStore | None = None,
    ) -> OAuth:
        """A machine client: ``client_secret``, or a ``private_key`` (PEM) that signs a JWT assertion, or a
        pre-built ``assertion``."""
        return cls(
            kind="client_credentials",
            client_id=client_id,
            client_secret=client_secret,
            private_key=private_key,
            signing_algorithm=signing_algorithm,
            assertion=assertion,
            scopes=scopes,
            token_endpoint_auth_method=token_endpoint_auth_method,
            issuer=issuer,
            store=store,
        )

    @classmethod
    def bearer(cls, token: str) -> OAuth:
        """A fixed bearer token, sent as an ``Authorization`` header."""
        return cls(kind="bearer", token=token)

    @classmethod
    def from_config(cls, value: str | Mapping[str, Any], *, server: str | None = None, **options: Any) -> OAuth:
        """An ``OAuth`` from a config file's ``"auth"`` value (variables already expanded); ``options``
        (``store``, ``redirect_handler``, ...) are passed on."""
        if value == "oauth":
            return cls(**options)
        if not isinstance(value, Mapping):
            raise ConfigError(f"field 'auth': expected \"oauth\" or an object, got {value!r}", server=server)
        kind = value.get("type", "oauth")
        if kind not in _CONFIG_KEYS:
            raise ConfigError(
                f"field 'auth.type': unknown type {kind!r}; use one of {', '.join(_CONFIG_KEYS)}", server=server
            )
        unknown = sorted(set(value) - _CONFIG_KEYS[kind])
        if unknown:
            raise ConfigError(
                f"field 'auth': unknown settings {unknown} for type {kind!r}; known: {sorted(_CONFIG_KEYS[kind])}",
                server=server,
            )
        settings = {key: item for key, item in value.items() if key != "type"}
        key_file = settings.pop("private_key_file", None)
        if key_file is not None:
            try:
                settings["private_key"] = Path(key_file).expanduser().read_text(encoding="utf-8")
            except OSError as exc:
                raise ConfigError(
                    f"field 'auth.private_key_file': cannot read {key_file!r} ({exc.strerror})", server=server
                ) from exc
        try:
            return cls(kind=kind, **settings, **options)
        except ConfigError as exc:
            raise ConfigError(f"field 'auth': {exc.message}", server=server) from None
        except TypeError as exc:
            raise ConfigError(f"field 'auth': {exc}", server=server) from None

    def __repr__(self) -> str:
        shown = [f"kind={self.kind!r}"]
        if self.client_id is not None:
            shown.append(f"client_id={self.client_id!r}")
        if self.scopes:
            shown.append(f"scopes={' '.join(self.scopes)!r}")
        for label, secret in (
            ("client_secret", self._client_secret),
            ("private_key", self._private_key),
            ("assertion", self._assertion),
            ("token", self._token),
        ):
            if secret is not None:
                shown.append(f"{label}=<hidden>")
        return f"OAuth({', '.join(shown)})"

    # -- what managers use -----------------------------------------------------------------------------

    @property
    def bearer_token(self) -> str | None:
        """The fixed token of ``OAuth.bearer`` (sent as a header by the managers), else None."""
        return self._token if self.kind == "bearer" else None

    def http_auth(self, server_url: str, *, server: Callable[[], str] | str | None = None) -> httpx2.Auth:
        """An ``httpx2.Auth`` for ``server_url`` (keep it: it holds the tokens in memory across reconnects).

        ``server`` names the server in errors and logs (a callable is asked each time).
        """
        if callable(server):
            name_of: Callable[[], str] = server
        else:
            fixed = server or server_url
            name_of = lambda: fixed  # noqa: E731
        storage = ServerStorage(self.store, server_url, name_of)
        if self.kind == "bearer":
            return _BearerAuth(self._token or "")
        scope = " ".join(self.scopes) or None
        provider: AuthCodeProvider | ClientCredentialsProvider | JwtClientCredentialsProvider
        if self.kind == "client_credentials":
            assert self.client_id is not None
            with warnings.catch_warnings():
                # The SDK warns when no issuer pins the authorization server; the config format keeps it
                # optional (a machine client's server is usually the one its MCP server names).
                warnings.simplefilter("ignore")
                if self._client_secret is not None:
                    method = self.token_endpoint_auth_method or "client_secret_basic"
                    provider = ClientCredentialsProvider(
                        server_url=server_url,
                        storage=storage,
                        client_id=self.client_id,
                        client_secret=self._client_secret,
                        token_endpoint_auth_method=method,  # type: ignore[arg-type]
                        scope=scope,
                        issuer=self.issuer,
                    )
                else:
                    provider = JwtClientCredentialsProvider(
                        server_url=server_url,
                        storage=storage,
                        client_id=self.client_id,
                        assertion_provider=self._assertion_provider(),
                        scope=scope,
                        issuer=self.issuer,
                    )
            provider._setup_fixes(storage, name_of)
            return provider
        interaction = Interaction(self, name_of)
        metadata = OAuthClientMetadata(
            client_name=self.client_name,
            redirect_uris=[AnyUrl(self.redirect_uri or f"http://127.0.0.1:0{CALLBACK_PATH}")],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method=self.token_endpoint_auth_method  # type: ignore[arg-type]
            or "none",
            scope=scope,
        )
        provider = BrowserProvider(
            server_url=server_url,
            client_metadata=metadata,
            storage=storage,
            redirect_handler=interaction.redirect,
            callback_handler=interaction.callback,
            client_metadata_url=self.client_metadata_url,
        )
        provider._setup_fixes(storage, name_of)
        provider._setup_browser(self, interaction)
        return provider

    def _assertion_provider(self) -> Callable[[str], Awaitable[str]]:
        if self._assertion is not None:
            from mcp.client.auth.extensions.client_credentials import static_assertion_provider

            return static_assertion_provider(self._assertion)
        from mcp.client.auth.extensions.client_credentials import SignedJWTParameters

        assert self.client_id is not None and self._private_key is not None
        return SignedJWTParameters(
            issuer=self.client_id,
            subject=self.client_id,
            signing_key=self._private_key,
            signing_algorithm=self.signing_algorithm,
        ).create_assertion_provider()

    async def logout(self, server_url: str) -> bool:
        """Forget the tokens and registration stored for ``server_url``; whether there were any."""
        return await self.store.delete(server_url)


#: What ``auth=`` takes: an ``OAuth``, ``"oauth"``, a config-style mapping, or an ``httpx2.Auth``.
AuthSpec = OAuth | str | Mapping[str, Any] | httpx2.Auth


def resolve_auth(
    auth: AuthSpec | None,
    server_url: str,
    server: Callable[[], str],
) -> tuple[httpx2.Auth | None, dict[str, str]]:
    """What a manager does with its ``auth=``: the ``httpx2.Auth`` to use and headers to add."""
    if auth is None or isinstance(auth, httpx2.Auth):
        return auth, {}
    oauth = auth if isinstance(auth, OAuth) else OAuth.from_config(auth, server=server())
    if oauth.bearer_token is not None:
        return None, {"Authorization": f"Bearer {oauth.bearer_token}"}
    return oauth.http_auth(server_url, server=server), {}


class _BearerAuth(httpx2.Auth):
    """A fixed bearer token (only for callers that want it as an ``httpx2.Auth``)."""

    def __init__(self, token: str) -> None:
        self._token = token

    def __repr__(self) -> str:
        return "<bearer token auth>"

    def auth_flow(self, request: httpx2.Request) -> Generator[httpx2.Request, httpx2.Response, None]:
        request.headers["Authorization"] = f"Bearer {self._token}"
        yield request

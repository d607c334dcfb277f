"""The interactive step of the authorization code flow: the browser, the loopback redirect, or the host's own.

Design: the SDK's provider calls ``redirect_handler(url)`` and then ``callback_handler()``. ``Interaction``
is the pair given to it: the redirect opens the one-shot loopback server (``_loopback``) first, expecting
the ``state`` that the authorization URL carries, and then sends the user off (the system browser, or the
host's ``redirect_handler``); the callback waits for the loopback's answer (or calls the host's
``callback_handler``). ``BrowserProvider`` gives a new client a free loopback port for its redirect URI and
keeps a registered client's, since some servers accept only the URI that was registered; a pre-registered
``client_id`` stands in for dynamic registration. Inside ``no_interactive_login()`` the redirect fails at
once with ``AuthError(needs_login=True)``.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import TYPE_CHECKING
from urllib.parse import parse_qs, urlsplit

from mcp.shared.auth import AuthorizationCodeResult, OAuthClientInformationFull
from pydantic import AnyUrl

from ._loopback import LoopbackCallback, free_loopback_port, is_loopback_uri
from ._oauth_provider import AuthCodeProvider, remember_secret
from .errors import AuthError

if TYPE_CHECKING:
    from .auth import OAuth

__all__ = ["CALLBACK_PATH", "BrowserProvider", "Interaction", "no_interactive_login", "open_browser"]

logger = logging.getLogger("mcp_connections.auth")

# The path of the default loopback redirect URI.
CALLBACK_PATH = "/callback"

_interactive: ContextVar[bool] = ContextVar("mcp_connections_interactive_login", default=True)


@contextlib.contextmanager
def no_interactive_login() -> Iterator[None]:
    """Within this block (and tasks started in it), a sign-in that needs a person fails with
    ``AuthError(needs_login=True)`` instead of opening a browser."""
    token = _interactive.set(False)
    try:
        yield
    finally:
        _interactive.reset(token)


class BrowserProvider(AuthCodeProvider):
    """The authorization code provider, with a loopback redirect URI whose port stays the same across runs."""

    def _setup_browser(self, oauth: OAuth, interaction: Interaction) -> None:
        self._oauth = oauth
        self._interaction = interaction

    async def _initialize(self) -> None:
        await super()._initialize()
        oauth = self._oauth
        if oauth.client_id is not None and (
            self.context.client_info is None or self.context.client_info.client_id != oauth.client_id
        ):
            # A pre-registered client: its credentials stand in for dynamic registration.
            self.context.client_info = OAuthClientInformationFull(
                client_id=oauth.client_id,
                client_secret=oauth._client_secret,
                redirect_uris=self.context.client_metadata.redirect_uris,
                token_endpoint_auth_method=oauth.token_endpoint_auth_method
                or ("client_secret_basic" if oauth._client_secret else "none"),
            )
        if oauth.redirect_uri is not None:
            return
        # A registered client keeps the redirect URI it registered (some servers only accept that one);
        # a new client gets a free port now.
        registered = self.context.client_info.redirect_uris if self.context.client_info else None
        uri = next((str(u) for u in registered or () if is_loopback_uri(str(u))), None)
        if uri is None:
            uri = f"http://127.0.0.1:{free_loopback_port()}{CALLBACK_PATH}"
        self.context.client_metadata.redirect_uris = [AnyUrl(uri)]
        if self.context.client_info is not None and oauth.client_id is not None:
            self.context.client_info.redirect_uris = [AnyUrl(uri)]
        self._interaction.redirect_uri = uri


class Interaction:
    """The redirect and callback handlers given to the SDK: browser + loopback, or the host's own."""

    def __init__(self, oauth: OAuth, server: Callable[[], str]) -> None:
        self._oauth = oauth
        self._server = server
        self.redirect_uri = oauth.redirect_uri or ""
        self._loopback: LoopbackCallback | None = None

    async def redirect(self, authorization_url: str) -> None:
        if not _interactive.get():
            raise AuthError(
                "needs login: the server asks for a sign-in in the browser, which this run does not open. "
                "Run `mcp-connections login [CONFIG] SERVER` first.",
                server=self._server(),
                needs_login=True,
            )
        if self._oauth.callback_handler is None:
            state = parse_qs(urlsplit(authorization_url).query).get("state", [None])[0]
            self._loopback = LoopbackCallback(
                self.redirect_uri, timeout=self._oauth.callback_timeout, server=self._server()
            )
            self._loopback.open(state)
        try:
            handler = self._oauth.redirect_handler
            if handler is not None:
                result = handler(authorization_url)
                if inspect.isawaitable(result):
                    await result
            else:
                await open_browser(authorization_url, self._server())
        except BaseException:
            if self._loopback is not None:
                await self._loopback.aclose()
                self._loopback = None
            raise

    async def callback(self) -> AuthorizationCodeResult:
        if self._oauth.callback_handler is not None:
            result = await self._oauth.callback_handler()
        else:
            loopback, self._loopback = self._loopback, None
            if loopback is None:
                raise AuthError("sign-in callback requested before the redirect", server=self._server())
            result = await loopback.wait()
        remember_secret(result.code)
        return result


async def open_browser(url: str, server: str) -> None:
    import webbrowser

    import anyio

    logger.info("%s: opening the browser to sign in", server)
    opened = await anyio.to_thread.run_sync(webbrowser.open, url)
    if not opened:
        logger.warning("%s: no browser could be opened; to sign in, visit %s", server, url)

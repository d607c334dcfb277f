"""``mcp-connections login [CONFIG] SERVER``: sign in to a remote server now, so later runs need no browser.

The server's ``auth`` from the config is used as it is; the sign-in page opens in the browser and its URL
is printed too (``--no-browser``: only printed; the redirect must still reach this
machine's 127.0.0.1). The tokens go to the default token store, where every later run finds them.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ._configs import DEFAULT_CONFIG, config_path, load

__all__ = ["register", "run"]

# How long the sign-in in the browser may take unless --timeout says otherwise.
DEFAULT_LOGIN_TIMEOUT = 300.0

# What connecting takes beyond the person's part (discovery, registration, the token exchange).
_CONNECT_MARGIN = 30.0


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "login", help="sign in to a remote server (OAuth) ahead of time and store its tokens"
    )
    add_server_arguments(parser)
    parser.add_argument("--timeout", type=float, default=DEFAULT_LOGIN_TIMEOUT, help="bound on the sign-in (s)")
    parser.add_argument("--no-browser", action="store_true", help="only print the sign-in URL")


def add_server_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", nargs="?", default=DEFAULT_CONFIG, metavar="CONFIG")
    parser.add_argument("server", metavar="SERVER", help="the server's name in the config")


def run(options: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    import anyio

    return anyio.run(run_login, config_path(options.config), options.server, options.timeout, not options.no_browser)


async def run_login(path: str, name: str, timeout: float, browser: bool) -> int:
    import webbrowser

    import anyio

    from ..auth import OAuth
    from ..errors import ConfigError, MCPConnectionError
    from ..session import ManagedSession

    config = load(path, name)[name]
    if config.url is None or config.auth is None:
        raise ConfigError(
            'has no \'auth\' to sign in with; add "auth": "oauth" to its entry (remote servers only)',
            source=path,
            server=name,
        )

    async def show(url: str) -> None:
        print(f"Sign in to {name} at:\n  {url}", file=sys.stderr, flush=True)
        if browser:
            await anyio.to_thread.run_sync(webbrowser.open, url)

    oauth = OAuth.from_config(config.auth, server=name, redirect_handler=show, callback_timeout=timeout)
    manager: Any
    if config.transport == "sse":
        from ..sse import SseConnectionManager

        manager = SseConnectionManager(config.url, headers=dict(config.headers), auth=oauth)
    else:
        from ..streamable_http import StreamableHttpConnectionManager

        manager = StreamableHttpConnectionManager(config.url, headers=dict(config.headers), auth=oauth)
    manager.name = name
    try:
        async with ManagedSession(manager, init_timeout=timeout + _CONNECT_MARGIN):
            pass
    except MCPConnectionError as exc:
        print(f"mcp-connections: {exc}", file=sys.stderr)
        return 1
    where = getattr(oauth.store, "directory", None)
    print(f"Signed in to {name}." + (f" Tokens are stored in {where}." if where else ""), flush=True)
    return 0

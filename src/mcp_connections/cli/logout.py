"""``mcp-connections logout [CONFIG] SERVER``: delete the tokens stored for a remote server."""

from __future__ import annotations

import argparse
from typing import Any

from ._configs import config_path, load
from .login import add_server_arguments

__all__ = ["register", "run"]


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "logout", help="delete the OAuth tokens stored for a remote server"
    )
    add_server_arguments(parser)


def run(options: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .._redact import split_userinfo
    from ..auth import FileTokenStore
    from ..errors import ConfigError

    path = config_path(options.config)
    name = options.server
    config = load(path, name)[name]
    if config.url is None:
        raise ConfigError("is not a remote server: it has no tokens", source=path, server=name)
    url, _ = split_userinfo(config.url)
    if FileTokenStore().delete_sync(url):
        print(f"Signed out of {name}: its stored tokens are deleted.")
    else:
        print(f"{name} had no stored tokens.")
    return 0

"""Which config file a command reads, and loading it (with ``--server`` narrowing)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..config import ServerConfig

__all__ = ["DEFAULT_CONFIG", "add_config_argument", "config_path", "load"]

DEFAULT_CONFIG = "mcp.json"


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("config", nargs="?", default=DEFAULT_CONFIG, metavar="CONFIG")
    parser.add_argument("--json", action="store_true", help="machine-readable output")


def config_path(path: str) -> str:
    """The config file to read: ``path`` as given, or an error that says what to pass."""
    from ..errors import ConfigError

    candidate = Path(path)
    if not candidate.exists() and path == DEFAULT_CONFIG:
        raise ConfigError(f"no config file given and none at {candidate.resolve()}; pass CONFIG", source=path)
    return path


def load(path: str, only: str | None = None) -> dict[str, ServerConfig]:
    """The servers of a config file, or only the one named ``only``; every one eager (``"start": "lazy"`` is for
    hosts that run long: a one-shot command connects to what it reports on, and its result is never a cached list)."""
    import dataclasses

    from ..config import load_config
    from ..errors import ConfigError

    configs = load_config(path)
    if only is not None:
        if only not in configs:
            raise ConfigError(f"no server {only!r} (servers: {', '.join(configs) or 'none'})", source=path)
        configs = {only: configs[only]}
    return {name: dataclasses.replace(config, start="eager") for name, config in configs.items()}

"""``mcp-connections cache clear`` and ``cache dir``: the catalogue's disk cache (see ``_cache``).

``clear`` removes every cached entry (each server's tools, prompts and resources lists), so that the next
lazy start lists its servers live; ``dir`` prints where the cache is (``MCP_CONNECTIONS_CACHE_DIR`` when set,
else the user cache directory).
"""

from __future__ import annotations

import argparse
from typing import Any

__all__ = ["register", "run"]


def register(commands: Any) -> None:
    parser: argparse.ArgumentParser = commands.add_parser(
        "cache", help="the catalogue cache on disk: clear it, or show where it is"
    )
    actions = parser.add_subparsers(dest="cache_action", required=True, metavar="{clear,dir}")
    actions.add_parser("clear", help="remove every cached list (the next lazy start lists its servers live)")
    actions.add_parser("dir", help="print the directory of the cache")


def run(options: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    from .._cache import CatalogueCache

    cache = CatalogueCache()
    if options.cache_action == "dir":
        print(cache.directory)
        return 0
    try:
        removed = cache.clear()
    except OSError as exc:
        print(f"mcp-connections: cannot clear the cache in {cache.directory}: {exc}")
        return 1
    print(f"removed {removed} cached {'entry' if removed == 1 else 'entries'} from {cache.directory}")
    return 0

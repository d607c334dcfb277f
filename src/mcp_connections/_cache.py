"""The catalogue's lists on disk, so that a group answers ``tools()`` at once for servers it has not started.

Design: one JSON file per server in a directory of its own, named by the server's *key*: a SHA-256 of what
in its config entry decides which server it is (name, transport, command, args, env, cwd, url, headers,
auth, inherit_env, mode). A change of any of these gives another key, so the old entry is simply never read again:
a config change invalidates that server's entry without anyone having to say so. Settings that do not change
what the server lists (timeouts, restart, filters, ``start``, ``idle_timeout``) are left out of the key, so
that switching a server to lazy finds the lists its eager runs wrote. The file holds the server's name, the
key, when it was written and the three lists as the server sent them; never a config value (secrets in
``env``, ``headers`` and ``auth`` only ever reach the file as part of the hash).

The directory is ``MCP_CONNECTIONS_CACHE_DIR`` when set, else ``catalogue`` in the user cache directory
(``platformdirs``: ``~/.cache/mcp-connections/catalogue`` on Linux), else what ``ServerGroup(cache_dir=...)``
says. Files are written atomically (a temporary file beside it, then ``os.replace``), so a reader sees the old
file or the new one, never half of one. A file that cannot be read, is not JSON, is of another format or
version, holds another key, or lists something that does not validate is ignored with a log line (and
replaced at the next listing): the cache may only ever save time, never break a start.

Each list carries its expiry: a modern server's ``ttlMs`` hint when it gives one above 0. ``ttlMs: 0`` is the
protocol's default, which a server that sets no hint sends (the SDK's ``MCPServer`` does), and it is about
the request cache of a live connection; taken literally it would turn the cache off for every modern server,
so it counts as no hint. A legacy server gives no hint: its lists stay until the key changes, ``cache clear``
empties the directory, or the server's next start brings live lists (which replace them).

This module is plain file I/O: small files, read and written synchronously (a few hundred microseconds), so
that no thread is needed for them.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from .config import ServerConfig

__all__ = ["CACHE_DIR_ENV", "CachedList", "CatalogueCache", "cache_key", "default_cache_dir"]

logger = logging.getLogger(__name__)

Kind = Literal["tools", "prompts", "resources"]
KINDS: tuple[Kind, ...] = ("tools", "prompts", "resources")

#: Where the cache lives, when set (tests point it at a temporary directory).
CACHE_DIR_ENV = "MCP_CONNECTIONS_CACHE_DIR"

# What the first keys of a cache file say, so that any other JSON file in the directory is recognised as foreign.
FORMAT = "mcp-connections catalogue cache"
VERSION = 1


def default_cache_dir() -> Path:
    """``MCP_CONNECTIONS_CACHE_DIR``, else ``catalogue`` in the user cache directory of ``mcp-connections``."""
    override = os.environ.get(CACHE_DIR_ENV)
    if override:
        return Path(override)
    import platformdirs

    return Path(platformdirs.user_cache_dir("mcp-connections", appauthor=False)) / "catalogue"


def cache_key(config: ServerConfig) -> str:
    """The SHA-256 (hex) of what makes the server the server it is; see the module docstring."""
    identity = {
        "name": config.name,
        "transport": config.transport,
        "command": config.command,
        "args": list(config.args),
        "env": dict(sorted(config.env.items())),
        "cwd": config.cwd,
        "url": config.url,
        "headers": dict(sorted(config.headers.items())),
        "inherit_env": list(config.inherit_env) if isinstance(config.inherit_env, tuple) else config.inherit_env,
        "mode": config.mode,
        "auth": getattr(config, "auth", None),  # credentials may decide what a server lists; hashed like the rest
    }
    text = json.dumps(identity, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class CachedList:
    """One list as the cache holds it: the items (``Tool``, ``Prompt`` or ``Resource``) and when they expire."""

    items: list[Any]
    expires_at: float | None  # wall-clock time (time.time()); None: no hint, kept until replaced

    def expired(self, now: float | None = None) -> bool:
        return self.expires_at is not None and (time.time() if now is None else now) >= self.expires_at


class CatalogueCache:
    """The directory of cache files: ``load``, ``save`` and ``clear``; never raises for a file it cannot use."""

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        self._directory = Path(directory) if directory is not None else None

    @property
    def directory(self) -> Path:
        """Where the files are (the environment is read at each use, so a test may point it elsewhere)."""
        return self._directory if self._directory is not None else default_cache_dir()

    def path_for(self, config: ServerConfig) -> Path:
        return self.directory / f"{cache_key(config)}.json"

    def load(self, config: ServerConfig) -> dict[Kind, CachedList]:
        """The lists cached for this server that have not expired (an empty dict when there is nothing usable)."""
        path = self.path_for(config)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return {}
        except (OSError, UnicodeDecodeError) as exc:
            logger.warning("%s: cannot read the catalogue cache %s (%s); ignoring it", config.name, path, exc)
            return {}
        try:
            document = json.loads(text)
        except json.JSONDecodeError as exc:
            logger.warning("%s: the catalogue cache %s is not JSON (%s); ignoring it", config.name, path, exc)
            return {}
        if not isinstance(document, dict) or document.get("format") != FORMAT or document.get("version") != VERSION:
            logger.warning("%s: %s is not a catalogue cache of this version; ignoring it", config.name, path)
            return {}
        if document.get("key") != cache_key(config) or document.get("server") != config.name:
            logger.warning("%s: %s was written for another server; ignoring it", config.name, path)
            return {}
        try:
            lists = _parse_lists(document.get("lists"))
        except (TypeError, ValueError) as exc:  # pydantic's ValidationError is a ValueError
            logger.warning("%s: the catalogue cache %s is corrupt (%s); ignoring it", config.name, path, exc)
            return {}
        now = time.time()
        fresh = {kind: cached for kind, cached in lists.items() if not cached.expired(now)}
        if len(fresh) < len(lists):
            expired = ", ".join(kind for kind in lists if kind not in fresh)
            logger.info("%s: cached %s expired (the server's ttlMs)", config.name, expired)
        return fresh

    def save(self, config: ServerConfig, lists: Mapping[Kind, CachedList]) -> None:
        """Write the server's lists (each with its expiry), atomically; a failure is logged, never raised."""
        document = {
            "format": FORMAT,
            "version": VERSION,
            "server": config.name,
            "key": cache_key(config),
            "saved_at": time.time(),
            "lists": {
                kind: {"expires_at": cached.expires_at, "items": [_dump(item) for item in cached.items]}
                for kind, cached in lists.items()
            },
        }
        path = self.path_for(config)
        try:
            _write_atomically(path, json.dumps(document, ensure_ascii=False, separators=(",", ":")))
        except OSError as exc:
            logger.warning("%s: cannot write the catalogue cache %s (%s)", config.name, path, exc)

    def clear(self) -> int:
        """Remove every cache file (and leftovers of interrupted writes); how many entries were removed."""
        directory = self.directory
        removed = 0
        try:
            entries = list(directory.iterdir())
        except FileNotFoundError:
            return 0
        for entry in entries:
            if entry.suffix == ".json" or entry.name.startswith(_TEMP_PREFIX):
                try:
                    entry.unlink()
                except FileNotFoundError:
                    continue
                if entry.suffix == ".json":
                    removed += 1
        return removed


# Temporary files of a write in progress start with this, so that clear() knows them.
_TEMP_PREFIX = ".writing-"


def _write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp = tempfile.mkstemp(prefix=_TEMP_PREFIX, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise


def _dump(item: Any) -> Any:
    return item.model_dump(mode="json", by_alias=True, exclude_none=True)


def _parse_lists(raw: Any) -> dict[Kind, CachedList]:
    import mcp_types as types  # the SDK's models, only when there is a file to read

    models: dict[Kind, Any] = {"tools": types.Tool, "prompts": types.Prompt, "resources": types.Resource}
    if not isinstance(raw, dict):
        raise TypeError("no lists")
    lists: dict[Kind, CachedList] = {}
    for kind in KINDS:
        entry = raw.get(kind)
        if entry is None:
            continue
        if not isinstance(entry, dict) or not isinstance(entry.get("items"), list):
            raise TypeError(f"{kind}: not a list")
        expires_at = entry.get("expires_at")
        if expires_at is not None and (isinstance(expires_at, bool) or not isinstance(expires_at, int | float)):
            raise TypeError(f"{kind}: bad expiry {expires_at!r}")
        items = [models[kind].model_validate(item) for item in entry["items"]]
        lists[kind] = CachedList(items, None if expires_at is None else float(expires_at))
    return lists

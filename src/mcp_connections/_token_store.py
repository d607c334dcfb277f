"""Where OAuth tokens live between runs: the ``TokenStore`` protocol and its file and memory stores.

Design: a store is a key-value map from a server's URL to one JSON-able entry (``tokens``, the
registered ``client_info`` and ``expires_at``, the absolute time the access token expires: the SDK only
keeps ``expires_in``, relative to a moment it does not record, so a token read back after a restart
would otherwise look valid forever). The file store keeps one file per server URL (named by a hash of
the URL, so two processes signing in to two servers never rewrite each other's entry) in the user's data
directory, mode 0600 in a 0700 directory, each written to a temporary file that is fsynced and renamed
over the old one: a crash mid-write leaves the old entry or the new one, never half of each. An entry
that cannot be read is treated as absent (the user signs in again) and reported by path, never by content.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import anyio

__all__ = ["FileTokenStore", "MemoryTokenStore", "TokenStore", "default_token_directory"]

logger = logging.getLogger("mcp_connections.auth")

_FILE_MODE = 0o600
_DIRECTORY_MODE = 0o700


@runtime_checkable
class TokenStore(Protocol):
    """Keeps one entry per server URL: a JSON-able mapping with ``tokens``, ``client_info`` and ``expires_at``.

    Entries hold secrets (access and refresh tokens, client secrets): a store must keep them from other
    users and must never log them. Methods are ``async`` so a store may sit on a keyring or a network.
    """

    async def load(self, server_url: str) -> dict[str, Any] | None:
        """The entry for ``server_url``, or None when there is none (or it cannot be read)."""
        ...

    async def save(self, server_url: str, entry: Mapping[str, Any]) -> None:
        """Replace the entry for ``server_url``."""
        ...

    async def delete(self, server_url: str) -> bool:
        """Forget ``server_url``'s entry; whether there was one."""
        ...


def default_token_directory() -> Path:
    """``<user data directory>/mcp-connections/tokens`` (``$XDG_DATA_HOME`` on Linux, via platformdirs)."""
    import platformdirs

    return Path(platformdirs.user_data_dir("mcp-connections", appauthor=False)) / "tokens"


class FileTokenStore:
    """The default store: one file per server URL under ``directory`` (the user's data directory by default)."""

    def __init__(self, directory: str | os.PathLike[str] | None = None) -> None:
        self.directory = Path(directory) if directory is not None else default_token_directory()

    def __repr__(self) -> str:
        return f"FileTokenStore({str(self.directory)!r})"

    def path(self, server_url: str) -> Path:
        """The file that holds ``server_url``'s entry."""
        digest = hashlib.sha256(server_url.encode("utf-8")).hexdigest()[:32]
        return self.directory / f"{digest}.json"

    async def load(self, server_url: str) -> dict[str, Any] | None:
        return await anyio.to_thread.run_sync(self.load_sync, server_url)

    async def save(self, server_url: str, entry: Mapping[str, Any]) -> None:
        await anyio.to_thread.run_sync(self.save_sync, server_url, dict(entry))

    async def delete(self, server_url: str) -> bool:
        return await anyio.to_thread.run_sync(self.delete_sync, server_url)

    # The same, blocking (for the command line and for tests).

    def load_sync(self, server_url: str) -> dict[str, Any] | None:
        path = self.path(server_url)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            logger.warning("cannot read the token file %s (%s); signing in again will replace it", path, exc.strerror)
            return None
        try:
            data = json.loads(text)
        except ValueError:
            data = None
        if not isinstance(data, dict) or data.get("server_url") != server_url:
            logger.warning("ignoring the unreadable token file %s; signing in again will replace it", path)
            return None
        data.pop("server_url")
        return data

    def save_sync(self, server_url: str, entry: Mapping[str, Any]) -> None:
        self.directory.mkdir(mode=_DIRECTORY_MODE, parents=True, exist_ok=True)
        text = json.dumps({"server_url": server_url, **entry}, indent=2, sort_keys=True)
        fd, temporary = tempfile.mkstemp(dir=self.directory, prefix=".tmp-", suffix=".json")
        try:
            if sys.platform != "win32":  # Windows has no modes: the user's profile directory is private already
                os.fchmod(fd, _FILE_MODE)  # before any secret is written
            with os.fdopen(fd, "w", encoding="utf-8") as file:
                file.write(text)
                file.flush()
                os.fsync(file.fileno())
            os.replace(temporary, self.path(server_url))
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
        _fsync_directory(self.directory)

    def delete_sync(self, server_url: str) -> bool:
        try:
            self.path(server_url).unlink()
        except FileNotFoundError:
            return False
        _fsync_directory(self.directory)
        return True


class MemoryTokenStore:
    """Entries in this process only: nothing is written, every new process signs in again."""

    def __init__(self) -> None:
        self._entries: dict[str, dict[str, Any]] = {}

    def __repr__(self) -> str:
        return f"MemoryTokenStore(<{len(self._entries)} entries>)"

    async def load(self, server_url: str) -> dict[str, Any] | None:
        entry = self._entries.get(server_url)
        return json.loads(json.dumps(entry)) if entry is not None else None

    async def save(self, server_url: str, entry: Mapping[str, Any]) -> None:
        self._entries[server_url] = json.loads(json.dumps(dict(entry)))

    async def delete(self, server_url: str) -> bool:
        return self._entries.pop(server_url, None) is not None


def _fsync_directory(directory: Path) -> None:
    """Make a rename durable (POSIX); a platform that cannot open directories skips it."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)

"""What a reload changes: two ``{name: ServerConfig}`` maps compared, with no I/O (h11 style).

A server is *unchanged* when its checked entry is equal field by field (``ServerConfig`` is a frozen
dataclass, so equality covers the command, arguments, environment, URL, headers and every option),
*changed* when the name stays but anything differs, and *added* or *removed* by name. A server that
becomes ``disabled`` is removed from what runs, and one that stops being disabled is added: the
diff is about what runs, so it looks at enabled entries only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..config import ServerConfig

__all__ = ["ConfigDiff", "diff_configs"]


@dataclass(frozen=True)
class ConfigDiff:
    """Names of servers, each tuple in config order (the new config's, for all but ``removed``)."""

    added: tuple[str, ...]
    removed: tuple[str, ...]
    changed: tuple[str, ...]
    unchanged: tuple[str, ...]

    @property
    def empty(self) -> bool:
        """Whether nothing is to be started, stopped or restarted."""
        return not (self.added or self.removed or self.changed)

    def __str__(self) -> str:
        parts = [f"{label} {', '.join(names)}" for label, names in self._labelled() if names]
        return "; ".join(parts) if parts else "no changes"

    def _labelled(self) -> list[tuple[str, tuple[str, ...]]]:
        return [
            ("added", self.added),
            ("removed", self.removed),
            ("changed", self.changed),
            ("unchanged", self.unchanged),
        ]


def diff_configs(old: Mapping[str, ServerConfig], new: Mapping[str, ServerConfig]) -> ConfigDiff:
    """Compare the servers that run under ``old`` with those that would run under ``new``."""
    before = {name: config for name, config in old.items() if not config.disabled}
    after = {name: config for name, config in new.items() if not config.disabled}
    return ConfigDiff(
        added=tuple(name for name in after if name not in before),
        removed=tuple(name for name in before if name not in after),
        changed=tuple(name for name in after if name in before and before[name] != after[name]),
        unchanged=tuple(name for name in after if name in before and before[name] == after[name]),
    )

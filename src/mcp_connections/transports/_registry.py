"""The transport registry: pure logic, no I/O and no transport imported until a manager is built.

Design: a ``TransportSpec`` says what the config needs to know about a transport (its name, its aliases,
whether an entry reaches the server by ``command`` or by ``url``, and which URLs it claims when an entry
names no transport) and how to build its manager from a config entry. The builder is given as
``"module:function"`` and imported only when a manager is built, so that ``config.py`` can ask the
registry for names without importing a single transport (the SDK, httpx2, websockets).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    from .._textsink import TextSink
    from ..base import ConnectionManager
    from ..config import ServerConfig

__all__ = ["ManagerBuilder", "TransportOptions", "TransportRegistry", "TransportSpec"]


@dataclass(frozen=True)
class TransportOptions:
    """What a group gives every builder besides the entry: where stdio servers' stderr goes (``None``: discard)."""

    errlog: TextSink | None = None


class ManagerBuilder(Protocol):
    """Builds the connection manager of one config entry; the manager is named after the entry."""

    def __call__(self, config: ServerConfig, options: TransportOptions, /) -> ConnectionManager[Any]: ...


@dataclass(frozen=True)
class TransportSpec:
    """One transport as the config and the group know it.

    ``build`` is a ``ManagerBuilder`` or the ``"package.module:function"`` path of one, imported when a
    manager is first built. ``claims_url`` picks this transport for an entry that names none (first
    registered wins); a URL that no transport claims goes to the registry's ``url_fallback``.
    """

    name: str
    build: ManagerBuilder | str = field(repr=False)
    aliases: tuple[str, ...] = ()
    needs: Literal["command", "url"] = "url"
    claims_url: Callable[[str], bool] | None = field(default=None, repr=False)

    def builder(self) -> ManagerBuilder:
        """The builder, imported now if it was given by path."""
        if not isinstance(self.build, str):
            return self.build
        module, _, attribute = self.build.partition(":")
        builder: ManagerBuilder = getattr(importlib.import_module(module), attribute)
        return builder


class TransportRegistry:
    """Transports by name and alias (case-insensitive), in registration order."""

    def __init__(self, url_fallback: TransportSpec) -> None:
        """``url_fallback`` builds the manager of a URL entry whose transport is found out by connecting
        (the config's ``transport=None``); it has no name of its own in config files."""
        self.url_fallback = url_fallback
        self._specs: dict[str, TransportSpec] = {}
        self._names: dict[str, str] = {}

    def register(self, spec: TransportSpec) -> Callable[[], None]:
        """Add a transport; returns a function that removes it again (for tests and plugins)."""
        names = [spec.name, *spec.aliases]
        taken = [name for name in names if name.lower() in self._names]
        if taken:
            raise ValueError(f"transport names already registered: {', '.join(taken)}")
        self._specs[spec.name] = spec
        for name in names:
            self._names[name.lower()] = spec.name
        return lambda: self._unregister(spec)

    def _unregister(self, spec: TransportSpec) -> None:
        if self._specs.get(spec.name) is spec:
            del self._specs[spec.name]
            self._names = {alias: name for alias, name in self._names.items() if name != spec.name}

    def __iter__(self) -> Iterator[TransportSpec]:
        return iter(list(self._specs.values()))

    def __contains__(self, name: object) -> bool:
        return isinstance(name, str) and name.lower() in self._names

    def names(self) -> dict[str, str]:
        """Every accepted name and alias (lower case), with the transport's canonical name."""
        return dict(self._names)

    def canonical(self, name: str) -> str:
        """The canonical name for a name or an alias, any case; ``KeyError`` if unknown."""
        return self._names[name.lower()]

    def get(self, name: str | None) -> TransportSpec:
        """The spec for a name or an alias; ``None`` is the URL fallback."""
        return self.url_fallback if name is None else self._specs[self.canonical(name)]

    def for_command(self) -> str | None:
        """The transport of an entry with a ``command`` and no transport: the first that needs one."""
        return next((spec.name for spec in self if spec.needs == "command"), None)

    def guess(self, url: str) -> str | None:
        """The transport of a URL entry that names none: the first that claims the URL, else None (the fallback)."""
        return next((spec.name for spec in self if spec.claims_url is not None and spec.claims_url(url)), None)

    def build(self, config: ServerConfig, options: TransportOptions) -> ConnectionManager[Any]:
        """The manager for a config entry, by its transport (``None``: the URL fallback)."""
        return self.get(config.transport).builder()(config, options)

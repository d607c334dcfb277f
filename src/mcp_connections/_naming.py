"""The catalogue's pure logic: names a model accepts, tool filters, and the routing table. No I/O, no event loop.

Design (as h11 keeps its state machine apart from sockets): ``CatalogueIndex.build()`` takes what each server
listed, in config order, and returns a ``CatalogueSnapshot``: the catalogue entries with their names, and the
routes from a name (or a resource URI) back to the server. The I/O side (``_catalogue.py``) only decides when to
list and calls ``build()`` again with the new lists; everything that must be the same across runs lives here.

Names, in both modes, obey the rule of the model APIs (``^[a-zA-Z0-9_-]{1,64}$``):

- ``"prefixed"`` (the default): ``f"{server}__{name}"``, so names stay the same when servers are added;
  ``"auto"``: the item's own name, and ``server__name`` only for names that two servers share (both get it).
- Characters outside ``[a-zA-Z0-9_-]`` become ``_``; an empty name becomes ``_``.
- A name longer than 64 characters is cut and ends with ``_`` and 8 hex digits of the SHA-256 of the full name.
- A name that still clashes with an earlier one (in config order, then the server's order) gets ``_2``, ``_3``...,
  never a name that another entry would get on its own.

The result depends only on the ordered (server, name) pairs: the same config and lists give the same names in
every run and after every restart.
"""

from __future__ import annotations

import difflib
import fnmatch
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Literal

import mcp_types as types

__all__ = [
    "MAX_NAME_LENGTH",
    "SEPARATOR",
    "VALID_NAME",
    "CatalogueIndex",
    "CatalogueSnapshot",
    "GroupPrompt",
    "GroupResource",
    "GroupTool",
    "NameAssignment",
    "NamingMode",
    "ServerListing",
    "ToolFilter",
    "assign_names",
    "sanitize",
]

NamingMode = Literal["prefixed", "auto"]
NAMING_MODES: tuple[NamingMode, ...] = ("prefixed", "auto")

# The rule of OpenAI's and Anthropic's tool APIs.
VALID_NAME = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
MAX_NAME_LENGTH = 64
SEPARATOR = "__"

# Hex digits of the hash that ends a shortened name: 32 bits, enough that two long names of one group do not meet.
_HASH_LENGTH = 8

_INVALID = re.compile(r"[^a-zA-Z0-9_-]")


@dataclass(frozen=True)
class GroupTool:
    """One tool of a group's catalogue: its catalogue ``name``, its ``server`` (config name), and the ``tool``
    exactly as the server sent it (``tool.name`` is the server's own name for it)."""

    name: str
    server: str
    tool: types.Tool


@dataclass(frozen=True)
class GroupPrompt:
    """One prompt of a group's catalogue, named like tools."""

    name: str
    server: str
    prompt: types.Prompt


@dataclass(frozen=True)
class GroupResource:
    """One resource of a group's catalogue; ``resource.uri`` routes reads to ``server``."""

    server: str
    resource: types.Resource


def sanitize(text: str) -> str:
    """``text`` with every character outside ``[a-zA-Z0-9_-]`` replaced by ``_`` (``_`` for an empty text)."""
    return _INVALID.sub("_", text) or "_"


def _digest(text: str) -> str:
    # surrogatepass: names come from JSON and may hold lone surrogates; they still need a stable hash.
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:_HASH_LENGTH]


def _shorten(name: str, full: str) -> str:
    if len(name) <= MAX_NAME_LENGTH:
        return name
    return f"{name[: MAX_NAME_LENGTH - _HASH_LENGTH - 1]}_{_digest(full)}"


def _with_suffix(name: str, number: int) -> str:
    suffix = f"_{number}"
    return name[: MAX_NAME_LENGTH - len(suffix)] + suffix


@dataclass(frozen=True)
class NameAssignment:
    """Names for ordered (server, own name) pairs, and (auto mode) the own names that servers share."""

    names: tuple[str, ...]
    shared: frozenset[str] = frozenset()


def assign_names(pairs: Sequence[tuple[str, str]], mode: NamingMode = "prefixed") -> NameAssignment:
    """A unique valid name for each ``(server, own_name)`` pair, in order; see the module docstring for the rules."""
    if mode not in NAMING_MODES:
        raise ValueError(f"unknown naming mode {mode!r}; use 'prefixed' or 'auto'")
    shared: set[str] = set()
    if mode == "auto":
        servers_by_name: dict[str, set[str]] = {}
        for server, own in pairs:
            servers_by_name.setdefault(sanitize(own), set()).add(server)
        shared = {name for name, servers in servers_by_name.items() if len(servers) > 1}
    wanted: list[str] = []
    for server, own in pairs:
        if mode == "prefixed" or sanitize(own) in shared:
            wanted.append(_shorten(sanitize(server) + SEPARATOR + sanitize(own), server + SEPARATOR + own))
        else:
            wanted.append(_shorten(sanitize(own), own))
    first_choices = set(wanted)
    taken: set[str] = set()
    names: list[str] = []
    for name in wanted:
        if name in taken:
            number = 2
            while (candidate := _with_suffix(name, number)) in taken or candidate in first_choices:
                number += 1
            name = candidate
        taken.add(name)
        names.append(name)
    return NameAssignment(tuple(names), frozenset(shared))


@dataclass(frozen=True)
class ToolFilter:
    """Which tools of one server the catalogue shows: shell-style patterns on the tool's own name.

    ``include=None`` shows every tool, a list shows only the tools that match one of its patterns (so an empty
    list shows none); a tool that matches ``exclude`` is hidden whatever ``include`` says.
    """

    include: tuple[str, ...] | None = None
    exclude: tuple[str, ...] = ()

    def allows(self, name: str) -> bool:
        if any(fnmatch.fnmatchcase(name, pattern) for pattern in self.exclude):
            return False
        return self.include is None or any(fnmatch.fnmatchcase(name, pattern) for pattern in self.include)


_NO_FILTER = ToolFilter()


@dataclass(frozen=True)
class ServerListing:
    """What one server listed (``None``: nothing, because it is not connected or has not been listed yet)."""

    server: str
    tools: Sequence[types.Tool] | None = None
    prompts: Sequence[types.Prompt] | None = None
    resources: Sequence[types.Resource] | None = None


@dataclass(frozen=True)
class CatalogueSnapshot:
    """The catalogue at one moment: entries in order, and the routes back to servers."""

    tools: tuple[GroupTool, ...] = ()
    prompts: tuple[GroupPrompt, ...] = ()
    resources: tuple[GroupResource, ...] = ()
    shared: frozenset[str] = frozenset()
    _tool_routes: Mapping[str, GroupTool] = field(default_factory=dict, repr=False, compare=False)
    _prompt_routes: Mapping[str, GroupPrompt] = field(default_factory=dict, repr=False, compare=False)
    _resource_routes: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    def tool(self, name: str) -> GroupTool | None:
        return self._tool_routes.get(name)

    def prompt(self, name: str) -> GroupPrompt | None:
        return self._prompt_routes.get(name)

    def resource_server(self, uri: str) -> str | None:
        """The first server, in config order, that listed ``uri``."""
        return self._resource_routes.get(uri)

    def close_tool_names(self, name: str) -> list[str]:
        return close_names(name, self._tool_routes, (t.tool.name for t in self.tools))

    def close_prompt_names(self, name: str) -> list[str]:
        return close_names(name, self._prompt_routes, (p.prompt.name for p in self.prompts))

    def close_resource_uris(self, uri: str) -> list[str]:
        return close_names(uri, self._resource_routes, ())


def close_names(asked: str, names: Iterable[str], own_names: Iterable[str], limit: int = 3) -> list[str]:
    """Up to ``limit`` catalogue names that look like ``asked``: first those whose own name is ``asked`` (a bare
    tool name asked of a prefixed catalogue), then the closest by spelling of the name or of the own name."""
    catalogue = list(names)
    own = dict(zip(catalogue, own_names, strict=False))
    wanted = sanitize(asked)

    def score(name: str) -> float:
        if own.get(name) in (asked, wanted) or name.endswith(SEPARATOR + wanted):
            return 2.0
        ratios = [difflib.SequenceMatcher(None, asked, name).ratio()]
        if name in own:
            ratios.append(difflib.SequenceMatcher(None, asked, own[name]).ratio())
        return max(ratios)

    scored = sorted(((score(name), index, name) for index, name in enumerate(catalogue)), key=lambda s: (-s[0], s[1]))
    return [name for value, _, name in scored if value >= 0.6][:limit]


class CatalogueIndex:
    """Builds catalogue snapshots from servers' lists: names (by ``mode``), tool filters, routes.

    ``filters`` maps a server's config name to its ``ToolFilter``; servers without one show every tool.
    """

    def __init__(self, mode: NamingMode = "prefixed", filters: Mapping[str, ToolFilter] | None = None) -> None:
        if mode not in NAMING_MODES:
            raise ValueError(f"tool_names must be 'prefixed' or 'auto', got {mode!r}")
        self.mode: NamingMode = mode
        self.filters = dict(filters or {})

    def build(self, listings: Sequence[ServerListing]) -> CatalogueSnapshot:
        """The catalogue for these lists, given in config order."""
        tool_items = [
            (listing.server, tool)
            for listing in listings
            for tool in listing.tools or ()
            if self.filters.get(listing.server, _NO_FILTER).allows(tool.name)
        ]
        tool_names = assign_names([(server, tool.name) for server, tool in tool_items], self.mode)
        tools = tuple(
            GroupTool(name, server, tool) for name, (server, tool) in zip(tool_names.names, tool_items, strict=True)
        )
        prompt_items = [(listing.server, prompt) for listing in listings for prompt in listing.prompts or ()]
        prompt_names = assign_names([(server, prompt.name) for server, prompt in prompt_items], self.mode)
        prompts = tuple(
            GroupPrompt(name, server, prompt)
            for name, (server, prompt) in zip(prompt_names.names, prompt_items, strict=True)
        )
        resources = tuple(
            GroupResource(listing.server, resource) for listing in listings for resource in listing.resources or ()
        )
        resource_routes: dict[str, str] = {}
        for entry in resources:
            resource_routes.setdefault(str(entry.resource.uri), entry.server)
        return CatalogueSnapshot(
            tools=tools,
            prompts=prompts,
            resources=resources,
            shared=tool_names.shared,
            _tool_routes={t.name: t for t in tools},
            _prompt_routes={p.name: p for p in prompts},
            _resource_routes=resource_routes,
        )

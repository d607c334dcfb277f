"""Both protocol generations over one connection, through the SDK's own ``mcp.Client``.

Design: MCP 2026-07-28 replaced the ``initialize`` handshake with ``server/discover`` and self-contained
requests, and moved change notifications to a ``subscriptions/listen`` stream; servers serve both
generations. The SDK's ``mcp.Client`` already negotiates (``mode="auto"``: probe ``server/discover``, fall
back to the handshake), caches list results by the server's ``ttlMs``/``cacheScope`` hints, and drives
``InputRequiredResult`` rounds through the elicitation callback. A ``ManagedSession`` therefore builds one
``Client`` per connection over the manager's streams (``StreamsTransport``): negotiation runs again on
every reconnect and a reconnect starts with an empty cache. This module holds the pieces around that:
which options go to the ``Client``, the health probe of each generation, the list-changed kinds, and the
listen stream's filter.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Literal

import mcp_types as types
from mcp import Client
from mcp.client._transport import TransportStreams
from mcp.client.subscriptions import PromptsListChanged, ResourcesListChanged, ToolsListChanged
from mcp_types.version import HANDSHAKE_PROTOCOL_VERSIONS, MODERN_PROTOCOL_VERSIONS

__all__ = [
    "CLIENT_OPTIONS",
    "ChangeKind",
    "StreamsTransport",
    "change_kind",
    "check_mode",
    "is_modern",
    "listen_event_kind",
    "listen_filter",
]

ChangeKind = Literal["tools", "prompts", "resources"]

# What a session passes on to mcp.Client: every field it takes but the server and the mode.
CLIENT_OPTIONS = frozenset(f.name for f in dataclasses.fields(Client) if f.init) - {"server", "mode"}

_NOTIFICATION_KINDS: dict[type[Any], ChangeKind] = {
    types.ToolListChangedNotification: "tools",
    types.PromptListChangedNotification: "prompts",
    types.ResourceListChangedNotification: "resources",
}


class StreamsTransport:
    """A manager's streams as the SDK's ``Transport``: the ``Client`` enters and leaves it, the manager owns them."""

    def __init__(self, streams: TransportStreams) -> None:
        self._streams = streams

    async def __aenter__(self) -> TransportStreams:
        return self._streams

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        return None


def check_mode(mode: str) -> str | None:
    """Why ``mode`` is not one the SDK accepts (``"auto"``, ``"legacy"`` or a modern version), or None."""
    if mode in ("auto", "legacy") or mode in MODERN_PROTOCOL_VERSIONS:
        return None
    hint = f" ({mode!r} is a handshake-era version: use mode='legacy')" if mode in HANDSHAKE_PROTOCOL_VERSIONS else ""
    return f"mode must be 'auto', 'legacy' or one of {list(MODERN_PROTOCOL_VERSIONS)}, not {mode!r}{hint}"


def is_modern(protocol_version: str | None) -> bool:
    """Whether a negotiated version is of the 2026-07-28 generation (no handshake, no ping, listen)."""
    return protocol_version in MODERN_PROTOCOL_VERSIONS


def change_kind(message: object) -> ChangeKind | None:
    """The kind a legacy ``notifications/*/list_changed`` message is about, or None for any other message."""
    root = getattr(message, "root", message)
    return _NOTIFICATION_KINDS.get(type(root))


def listen_filter(capabilities: types.ServerCapabilities | None) -> dict[str, bool]:
    """The ``subscriptions/listen`` filter for what the server says can change (all three if it says nothing)."""
    if capabilities is None:
        return {"tools": True, "prompts": True, "resources": True}
    advertised: Mapping[str, Any] = {
        "tools": capabilities.tools,
        "prompts": capabilities.prompts,
        "resources": capabilities.resources,
    }
    return {key: cap is not None and bool(getattr(cap, "list_changed", False)) for key, cap in advertised.items()}


def listen_event_kind(event: object) -> ChangeKind | None:
    """The kind a ``subscriptions/listen`` event is about (list changes only; resource updates are not)."""
    if isinstance(event, ToolsListChanged):
        return "tools"
    if isinstance(event, PromptsListChanged):
        return "prompts"
    if isinstance(event, ResourcesListChanged):
        return "resources"
    return None

"""What the gateway serves and where each request goes: pure logic, no I/O (h11 style).

A ``Snapshot`` is the served catalogue at one moment: the tools, prompts, resources and resource
templates of the running servers, each with the server it came from, plus the capabilities those
servers declared. The gateway takes a new snapshot whenever the group says its catalogue changed or a
server's state changed, and compares it with the last one served: ``list_changed`` goes to clients
exactly for the lists that differ (``changed_lists``). Routing a request is a lookup in the snapshot:
``resource_server`` finds the server for a URI (the first server in config order that listed it, else
the first whose template matches it), ``template_server`` the one for a completion's template.

``health`` turns server statuses into the ``/healthz`` answer, and ``union_capabilities`` the backends'
capabilities into what the gateway declares.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import mcp_types as types
from mcp.shared.uri_template import InvalidUriTemplate, UriTemplate

__all__ = [
    "LOG_LEVELS",
    "Snapshot",
    "health",
    "log_level_allows",
    "most_verbose",
    "union_capabilities",
]

# Syslog order, as the spec gives it: a client at "warning" gets warning and everything above it.
LOG_LEVELS: tuple[str, ...] = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")

# The catalogue's lists, and the notification that tells clients one of them changed.
LIST_KINDS = ("tools", "prompts", "resources")


def log_level_allows(threshold: str | None, level: str) -> bool:
    """Whether a message at ``level`` passes a client's ``logging/setLevel`` (None: no filter)."""
    if threshold is None or threshold not in LOG_LEVELS or level not in LOG_LEVELS:
        return True
    return LOG_LEVELS.index(level) >= LOG_LEVELS.index(threshold)


def most_verbose(levels: Iterable[str | None]) -> str | None:
    """The lowest level any client asked for: what the backends are told, so that every client gets its share."""
    known = [level for level in levels if level in LOG_LEVELS]
    return min(known, key=LOG_LEVELS.index) if known else None


@dataclass(frozen=True)
class ServedTemplate:
    server: str
    template: types.ResourceTemplate


@dataclass(frozen=True)
class Snapshot:
    """The served catalogue at one moment, in config order."""

    tools: Sequence[Any] = ()  # GroupTool: name, server, tool
    prompts: Sequence[Any] = ()  # GroupPrompt: name, server, prompt
    resources: Sequence[Any] = ()  # GroupResource: server, resource
    templates: Sequence[ServedTemplate] = ()
    server_order: Sequence[str] = ()
    _tool_index: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    _prompt_index: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        self._tool_index.update({entry.name: entry for entry in self.tools})
        self._prompt_index.update({entry.name: entry for entry in self.prompts})

    # -- lookups ---------------------------------------------------------------------------------------

    def tool(self, name: str) -> Any | None:
        """The catalogue entry of a served tool name, or None."""
        return self._tool_index.get(name)

    def prompt(self, name: str) -> Any | None:
        """The catalogue entry of a served prompt name, or None."""
        return self._prompt_index.get(name)

    def resource_server(self, uri: str) -> str | None:
        """The server that serves ``uri``: the first that listed it, else the first whose template matches."""
        for entry in self.resources:
            if str(entry.resource.uri) == uri:
                return str(entry.server)
        order = {name: i for i, name in enumerate(self.server_order)}
        for served in sorted(self.templates, key=lambda t: order.get(t.server, len(order))):
            if _template_matches(served.template.uri_template, uri):
                return served.server
        return None

    def template_server(self, uri_template: str) -> str | None:
        """The server that listed a resource template (for ``completion/complete``)."""
        for served in self.templates:
            if served.template.uri_template == uri_template:
                return served.server
        return None

    # -- what changed ----------------------------------------------------------------------------------

    def fingerprint(self, kind: str) -> tuple[Any, ...]:
        """What a client sees of one list: names and definitions, in order."""
        if kind == "tools":
            return tuple((e.name, _dump(e.tool)) for e in self.tools)
        if kind == "prompts":
            return tuple((e.name, _dump(e.prompt)) for e in self.prompts)
        return tuple((str(e.server), _dump(e.resource)) for e in self.resources) + tuple(
            (t.server, _dump(t.template)) for t in self.templates
        )

    def changed_lists(self, previous: Snapshot | None) -> list[str]:
        """The kinds (``tools``, ``prompts``, ``resources``) whose served list differs from ``previous``."""
        if previous is None:
            return []
        return [kind for kind in LIST_KINDS if self.fingerprint(kind) != previous.fingerprint(kind)]


def _dump(model: Any) -> str:
    return str(model.model_dump_json(by_alias=True, exclude_none=True))


def _template_matches(template: str, uri: str) -> bool:
    try:
        return UriTemplate.parse(template).match(uri) is not None
    except (InvalidUriTemplate, ValueError):
        return False


def union_capabilities(offered: Iterable[types.ServerCapabilities | None]) -> set[str]:
    """The capability names (``tools``, ``prompts``, ``resources``, ``logging``, ``completions``) any backend offers."""
    names: set[str] = set()
    for capabilities in offered:
        if capabilities is None:
            continue
        for name in ("tools", "prompts", "resources", "logging", "completions"):
            if getattr(capabilities, name, None) is not None:
                names.add(name)
    return names


def health(
    statuses: Mapping[str, Any], required: Mapping[str, bool], *, show_errors: bool
) -> tuple[int, dict[str, Any]]:
    """``/healthz``: (HTTP status, JSON body) from ``group.status()``.

    200 when every enabled ``required`` server is connected, or, when none is marked required, every
    enabled server; 503 otherwise. Error texts only with ``show_errors`` (the caller presented the token).
    """
    servers: dict[str, Any] = {}
    for name, status in statuses.items():
        entry: dict[str, Any] = {
            "state": str(status.state),
            "transport": status.transport,
            "restarts": status.restarts,
        }
        if show_errors:
            entry["error"] = status.error
        servers[name] = entry
    watched = [name for name in statuses if required.get(name)] or list(statuses)
    healthy = all(str(statuses[name].state) == "connected" for name in watched)
    body = {"status": "ok" if healthy else "unavailable", "servers": servers}
    return (200 if healthy else 503), body

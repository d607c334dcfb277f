"""TEMPORARY: the catalogue of issue 14 in its contract's shape, until ServerGroup has it (then this is the group)."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import mcp_types as types

from ..base import ConnectionState
from ..errors import MCPConnectionError
from ..group import ServerGroup

logger = logging.getLogger("mcp_connections.gateway")


@dataclass(frozen=True)
class GroupTool:
    name: str
    server: str
    tool: types.Tool


@dataclass(frozen=True)
class GroupPrompt:
    name: str
    server: str
    prompt: types.Prompt


@dataclass(frozen=True)
class GroupResource:
    server: str
    resource: types.Resource


class ToolNotFoundError(MCPConnectionError, LookupError):
    pass


def _name(server: str, name: str) -> str:
    return re.sub(r"[^a-zA-Z0-9_-]", "_", f"{server}__{name}")[:64]


class _Shim(ServerGroup):
    def __init__(self, configs: Any, **defaults: Any) -> None:
        defaults.pop("tool_names", None)
        self._tools_changed: list[Callable[[Any], object]] = []
        self._cache: dict[str, dict[str, list[Any]]] = {}
        super().__init__(configs, **defaults)

    def on_tools_changed(self, callback: Callable[[Any], object]) -> None:
        self._tools_changed.append(callback)

    async def _listing(self, kind: str) -> dict[str, list[Any]]:
        result: dict[str, list[Any]] = {}
        for name in self.names:
            session = self[name]
            if session.state is ConnectionState.CONNECTED:
                try:
                    items = await getattr(session, f"list_{kind}")()
                except Exception as exc:
                    logger.info("%s: list %s failed: %s", name, kind, exc)
                    items = self._cache.get(kind, {}).get(name, [])
                result[name] = items
            elif session.state is ConnectionState.CONNECTING:
                result[name] = self._cache.get(kind, {}).get(name, [])
        self._cache[kind] = result
        return result

    async def tools(self) -> list[GroupTool]:
        return [GroupTool(_name(s, t.name), s, t) for s, items in (await self._listing("tools")).items() for t in items]

    async def prompts(self) -> list[GroupPrompt]:
        listing = await self._listing("prompts")
        return [GroupPrompt(_name(s, p.name), s, p) for s, items in listing.items() for p in items]

    async def resources(self) -> list[GroupResource]:
        return [GroupResource(s, r) for s, items in (await self._listing("resources")).items() for r in items]

    async def call(
        self, name: str, arguments: dict[str, Any] | None = None, *, progress_callback: Any = None, meta: Any = None
    ) -> types.CallToolResult:
        entry = next((t for t in await self.tools() if t.name == name), None)
        if entry is None:
            raise ToolNotFoundError(f"no tool {name!r}")
        session = self[entry.server]

        async def send(s: Any) -> types.CallToolResult:
            return await s.call_tool(entry.tool.name, arguments, progress_callback=progress_callback, meta=meta)

        return await session._request(f"tools/call {name!r}", send)

    async def get_prompt(self, name: str, arguments: dict[str, str] | None = None) -> types.GetPromptResult:
        entry = next((p for p in await self.prompts() if p.name == name), None)
        if entry is None:
            raise ToolNotFoundError(f"no prompt {name!r}")
        return await self[entry.server].get_prompt(entry.prompt.name, arguments)


CatalogueGroup: type[ServerGroup] = ServerGroup if hasattr(ServerGroup, "tools") else _Shim

"""The catalogue in the OpenAI Agents SDK: ``Agent(mcp_servers=[ManagedMCPServer(group)])``.

``ManagedMCPServer`` implements the SDK's ``MCPServer`` interface over a ``ServerGroup`` (its catalogue:
names as the group makes them, calls routed to each tool's server) or a single ``ManagedSession``. The SDK's
own server classes open a connection per ``connect()`` and have no restarts or health checks; here the
connection is ours, supervised, and shared: ``connect()`` starts the group or session only if it is not
running (and ``cleanup()`` then stops it), so an agent can come and go while the servers stay up.

What the SDK's servers offer is honoured: ``tool_filter`` (static ``allowed_tool_names`` and
``blocked_tool_names``, or a callable given a ``ToolFilterContext``, sync or async, applied to catalogue
names), ``cache_tools_list`` with ``invalidate_tools_cache()`` and ``cached_tools`` (the cache is also
dropped when a group announces a catalogue change, so a tool added by ``list_changed`` shows up on the next
turn even with caching on; a session's cache lasts until invalidated), and every option of ``MCPServer``
(``use_structured_content``, ``require_approval``, ``failure_error_function``, ``tool_meta_resolver``, ...).

Tools go to the SDK as the server sent them, renamed to their catalogue name; the SDK makes their schemas
strict itself when the agent asks for it. Results go back as the ``CallToolResult`` (the SDK maps text,
images and ``structuredContent``); an ``isError`` result is given to the model as the SDK does, and a
call that could not be made (server down past its restarts, unknown name) comes back as an ``isError``
result saying why, instead of an exception that would end the run.
"""

from __future__ import annotations

import copy
import inspect
import logging
import weakref
from typing import Any

from ._extras import missing

try:
    from agents.mcp import MCPServer, ToolFilterContext
except ImportError as _exc:
    raise missing("openai_agents", "the OpenAI Agents SDK (openai-agents)", "openai-agents", _exc) from _exc

import mcp_types as types

from ..session import ManagedSession
from ._source import Lifecycle, as_source, call_safely

__all__ = ["ManagedMCPServer"]

logger = logging.getLogger(__name__)


class ManagedMCPServer(MCPServer):
    """The Agents SDK's ``MCPServer`` over a ``ServerGroup`` (its catalogue) or a ``ManagedSession``."""

    def __init__(
        self,
        group: Any,
        *,
        name: str | None = None,
        cache_tools_list: bool = False,
        tool_filter: Any = None,
        **options: Any,
    ) -> None:
        """``options`` go to the SDK's ``MCPServer`` (``use_structured_content``, ``require_approval``, ...)."""
        super().__init__(**options)
        self.group = group
        self.source = as_source(group)
        self.cache_tools_list = cache_tools_list
        self.tool_filter = tool_filter
        self._name = name
        self._tools_list: list[types.Tool] | None = None
        self._cache_dirty = True
        self._lifecycle = Lifecycle(self.source)
        on_tools_changed = getattr(group, "on_tools_changed", None)
        if callable(on_tools_changed):
            # A weak reference: the group outlives the servers made over it, and must not keep them alive.
            this = weakref.ref(self)

            def changed(_group: Any) -> None:
                server = this()
                if server is not None:
                    server.invalidate_tools_cache()

            on_tools_changed(changed)

    @property
    def name(self) -> str:
        if self._name is not None:
            return self._name
        if isinstance(self.group, ManagedSession):
            return self.group.name
        names = getattr(self.group, "names", None)
        return f"mcp-connections group ({', '.join(names)})" if names else "mcp-connections group"

    def __repr__(self) -> str:
        return f"<ManagedMCPServer {self.name!r}>"

    async def connect(self) -> None:
        await self._lifecycle.enter()

    async def cleanup(self) -> None:
        await self._lifecycle.exit()

    async def __aenter__(self) -> ManagedMCPServer:
        await self.connect()
        return self

    async def __aexit__(self, *exc_info: Any) -> None:
        await self.cleanup()

    # -- tools -----------------------------------------------------------------------------------------

    @property
    def cached_tools(self) -> list[types.Tool] | None:
        """A copy of the cached tool list (unfiltered, catalogue names), or None when nothing is cached."""
        return None if self._tools_list is None else copy.deepcopy(self._tools_list)

    def invalidate_tools_cache(self) -> None:
        """List the tools again on the next ``list_tools()``."""
        self._cache_dirty = True

    async def list_tools(self, run_context: Any = None, agent: Any = None) -> list[types.Tool]:
        if self.cache_tools_list and not self._cache_dirty and self._tools_list is not None:
            tools = self._tools_list
        else:
            self._cache_dirty = False  # before the listing: a change announced during it marks it dirty again
            tools = [e.tool.model_copy(update={"name": e.name}) for e in await self.source.tools()]
            self._tools_list = tools
        return await self._filter(tools, run_context, agent)

    async def _filter(self, tools: list[types.Tool], run_context: Any, agent: Any) -> list[types.Tool]:
        tool_filter = self.tool_filter
        if tool_filter is None:
            return list(tools)
        if isinstance(tool_filter, dict):
            allowed = tool_filter.get("allowed_tool_names")
            blocked = tool_filter.get("blocked_tool_names") or ()
            return [t for t in tools if (allowed is None or t.name in allowed) and t.name not in blocked]
        if run_context is None or agent is None:
            from agents.exceptions import UserError

            raise UserError("run_context and agent are required for dynamic tool filtering")
        context = ToolFilterContext(run_context=run_context, agent=agent, server_name=self.name)
        kept: list[types.Tool] = []
        for tool in tools:
            try:
                verdict = tool_filter(context, tool.model_copy(deep=True))
                if inspect.isawaitable(verdict):
                    verdict = await verdict
            except Exception:  # as the SDK does: a filter that raises hides the tool
                logger.exception("%s: tool filter raised for %r; the tool is hidden", self.name, tool.name)
                continue
            if verdict:
                kept.append(tool)
        return kept

    async def call_tool(
        self, tool_name: str, arguments: dict[str, Any] | None, meta: dict[str, Any] | None = None
    ) -> types.CallToolResult:
        return await call_safely(self.source, tool_name, arguments, meta=meta)

    # -- prompts and resources -------------------------------------------------------------------------

    async def list_prompts(self) -> types.ListPromptsResult:
        if isinstance(self.group, ManagedSession):
            return types.ListPromptsResult(prompts=await self.group.list_prompts())
        entries = await self.group.prompts()
        return types.ListPromptsResult(prompts=[e.prompt.model_copy(update={"name": e.name}) for e in entries])

    async def get_prompt(self, name: str, arguments: dict[str, Any] | None = None) -> types.GetPromptResult:
        args = {k: str(v) for k, v in (arguments or {}).items()} or None  # MCP prompt arguments are strings
        return await self.group.get_prompt(name, args)  # type: ignore[no-any-return]

    async def list_resources(self, cursor: str | None = None) -> types.ListResourcesResult:
        if isinstance(self.group, ManagedSession):
            return types.ListResourcesResult(resources=await self.group.list_resources())
        return types.ListResourcesResult(resources=[e.resource for e in await self.group.resources()])

    async def read_resource(self, uri: str) -> types.ReadResourceResult:
        return await self.group.read_resource(uri)  # type: ignore[no-any-return]

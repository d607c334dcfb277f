"""The requests a ``ManagedSession`` wraps: each one a call of the SDK's ``mcp.Client`` on the current connection.

Design: ``ManagedSession._request`` runs a request against the current connection under its timeout and
turns a lost connection into ``ConnectionLostError``; the methods here say which ``Client`` call that is.
The ``Client`` brings what differs between the protocol generations: list results cached by the server's
``ttlMs``/``cacheScope`` hints (``cache_mode`` ``"use"``, ``"refresh"`` or ``"bypass"`` per call; a
reconnect starts with an empty cache, and change notifications evict), and ``InputRequiredResult`` rounds
answered through the session's ``elicitation_callback``, up to ``input_required_max_rounds``.
``get_prompt`` and ``read_resource`` with a ``progress_callback`` are sent through the ``ClientSession``
(the ``Client`` takes progress for tool calls only), with the same input-required driver.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import mcp_types as types
from mcp import Client
from mcp.client._input_required import run_input_required_driver
from mcp.client.caching import CacheMode
from mcp.client.session import ClientRequestContext
from mcp.shared.dispatcher import ProgressFnT
from mcp_types import RequestParamsMeta
from pydantic import TypeAdapter

__all__ = ["SessionRequests"]

R = TypeVar("R")
_UNSET: Any = object()

_PROMPT_RESULT: TypeAdapter[types.GetPromptResult | types.InputRequiredResult] = TypeAdapter(
    types.GetPromptResult | types.InputRequiredResult
)
_RESOURCE_RESULT: TypeAdapter[types.ReadResourceResult | types.InputRequiredResult] = TypeAdapter(
    types.ReadResourceResult | types.InputRequiredResult
)


class SessionRequests:
    """The request methods of ``ManagedSession`` (a mixin: ``_request`` is the session's)."""

    async def _request(
        self,
        what: str,
        send: Callable[[Client], Awaitable[R]],
        timeout: float | None = _UNSET,
        *,
        target: str | None = None,
    ) -> R:
        raise NotImplementedError

    async def send_ping(self, *, timeout: float | None = _UNSET) -> types.EmptyResult:
        """Ping the server: ``ping`` on a legacy connection, ``server/discover`` on a modern one (ping is gone)."""

        async def send(client: Client) -> types.EmptyResult:
            session = client.session
            if session.discover_result is not None and session.initialize_result is None:
                await session.send_discover(client.protocol_version)
                return types.EmptyResult()
            return await session.send_ping()

        return await self._request("ping", send, timeout)

    async def list_tools(self, *, timeout: float | None = _UNSET, cache_mode: CacheMode = "use") -> list[types.Tool]:
        """Every tool of the server (all pages); ``cache_mode="bypass"`` asks the server whatever the cache holds."""

        async def send(client: Client) -> list[types.Tool]:
            return await _all_pages(lambda c: client.list_tools(cursor=c, cache_mode=cache_mode), lambda r: r.tools)

        return await self._request("tools/list", send, timeout)

    async def call_tool(
        self,
        name: str,
        arguments: dict[str, Any] | None = None,
        *,
        timeout: float | None = _UNSET,
        progress_callback: ProgressFnT | None = None,
        meta: RequestParamsMeta | None = None,
    ) -> types.CallToolResult:
        """Call a tool; a tool's own failure comes back as a result with ``is_error``, not as an exception.

        ``progress_callback(progress, total, message)`` receives the server's progress notifications; ``meta``
        goes out as the request's ``_meta``. A tool that asks a question (elicitation on a legacy connection,
        ``InputRequiredResult`` on a modern one) is answered through the session's ``elicitation_callback``.
        """

        async def send(client: Client) -> types.CallToolResult:
            return await client.call_tool(name, arguments, progress_callback=progress_callback, meta=meta)

        return await self._request(f"tools/call {name!r}", send, timeout, target=name)

    async def list_resources(
        self, *, timeout: float | None = _UNSET, cache_mode: CacheMode = "use"
    ) -> list[types.Resource]:
        """Every resource of the server (all pages)."""

        async def send(client: Client) -> list[types.Resource]:
            return await _all_pages(
                lambda c: client.list_resources(cursor=c, cache_mode=cache_mode), lambda r: r.resources
            )

        return await self._request("resources/list", send, timeout)

    async def read_resource(
        self,
        uri: str,
        *,
        timeout: float | None = _UNSET,
        progress_callback: ProgressFnT | None = None,
        meta: RequestParamsMeta | None = None,
        cache_mode: CacheMode = "use",
    ) -> types.ReadResourceResult:
        """Read one resource."""

        async def send(client: Client) -> types.ReadResourceResult:
            if progress_callback is None:
                return await client.read_resource(uri, meta=meta, cache_mode=cache_mode)

            async def attempt(
                responses: types.InputResponses | None, state: str | None
            ) -> types.ReadResourceResult | types.InputRequiredResult:
                params = types.ReadResourceRequestParams(
                    uri=uri, input_responses=responses, request_state=state, _meta=meta
                )
                request = types.ReadResourceRequest(params=params)
                return await client.session.send_request(request, _RESOURCE_RESULT, progress_callback=progress_callback)

            return await _drive(client, attempt)

        return await self._request(f"resources/read {uri!r}", send, timeout, target=uri)

    async def list_prompts(
        self, *, timeout: float | None = _UNSET, cache_mode: CacheMode = "use"
    ) -> list[types.Prompt]:
        """Every prompt of the server (all pages)."""

        async def send(client: Client) -> list[types.Prompt]:
            return await _all_pages(lambda c: client.list_prompts(cursor=c, cache_mode=cache_mode), lambda r: r.prompts)

        return await self._request("prompts/list", send, timeout)

    async def get_prompt(
        self,
        name: str,
        arguments: dict[str, str] | None = None,
        *,
        timeout: float | None = _UNSET,
        progress_callback: ProgressFnT | None = None,
        meta: RequestParamsMeta | None = None,
    ) -> types.GetPromptResult:
        """Get one prompt, filled with ``arguments``."""

        async def send(client: Client) -> types.GetPromptResult:
            if progress_callback is None:
                return await client.get_prompt(name, arguments, meta=meta)

            async def attempt(
                responses: types.InputResponses | None, state: str | None
            ) -> types.GetPromptResult | types.InputRequiredResult:
                params = types.GetPromptRequestParams(
                    name=name, arguments=arguments, input_responses=responses, request_state=state, _meta=meta
                )
                request = types.GetPromptRequest(params=params)
                return await client.session.send_request(request, _PROMPT_RESULT, progress_callback=progress_callback)

            return await _drive(client, attempt)

        return await self._request(f"prompts/get {name!r}", send, timeout, target=name)


async def _drive(
    client: Client,
    attempt: Callable[[types.InputResponses | None, str | None], Awaitable[R | types.InputRequiredResult]],
) -> R:
    """Send once, then let the SDK's input-required driver answer the rounds, as ``mcp.Client`` does."""
    first = await attempt(None, None)
    if not isinstance(first, types.InputRequiredResult):
        return first
    session = client.session

    async def dispatch(key: str, request: types.InputRequest) -> types.InputResponse | types.ErrorData:
        meta = request.params.meta if request.params else None
        return await session.dispatch_input_request(
            ClientRequestContext(session=session, request_id=key, meta=meta), request
        )

    return await run_input_required_driver(
        first, dispatch=dispatch, retry=attempt, max_rounds=client.input_required_max_rounds
    )


async def _all_pages(list_page: Callable[[str | None], Awaitable[Any]], items: Callable[[Any], list[R]]) -> list[R]:
    """Follow ``next_cursor`` through every page of a list request."""
    result = await list_page(None)
    collected = list(items(result))
    seen: set[str] = set()
    while result.next_cursor and result.next_cursor not in seen:
        seen.add(result.next_cursor)
        result = await list_page(result.next_cursor)
        collected.extend(items(result))
    return collected

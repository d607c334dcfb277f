"""A host's answers to server requests (elicitation, sampling, roots), given once for a whole group.

Design: ``ServerGroup`` takes ``elicitation_callback``, ``sampling_callback`` and ``list_roots_callback``
once; each server's ``ClientSession`` gets an adapter that calls the host's function with the server's
config name first, then what the SDK passes:

* ``elicitation_callback(server_name, context, params) -> ElicitResult | ErrorData``
* ``sampling_callback(server_name, context, params) -> CreateMessageResult | ErrorData``
* ``list_roots_callback(server_name, context) -> ListRootsResult | ErrorData``

Each may be a plain function or ``async def``. A callback that raises is logged with the server's name
and the server gets a JSON-RPC error: the request fails, the session goes on. An accepted form
elicitation gets the schema's ``default`` for every field the host left out (SEP-1034), so a host that
accepts with ``{}`` sends the server's defaults.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, MutableMapping
from typing import Any

import mcp_types as types

__all__ = ["HOST_CALLBACKS", "apply_elicitation_defaults", "bind_host_callbacks", "pop_host_callbacks"]

logger = logging.getLogger("mcp_connections.group")

HOST_CALLBACKS = ("elicitation_callback", "sampling_callback", "list_roots_callback")


def pop_host_callbacks(options: MutableMapping[str, Any]) -> dict[str, Callable[..., Any]]:
    """Take the host callbacks out of a group's options (they are not passed to sessions as they are)."""
    return {name: options.pop(name) for name in HOST_CALLBACKS if options.get(name) is not None}


def bind_host_callbacks(callbacks: dict[str, Callable[..., Any]], server_name: str) -> dict[str, Any]:
    """``ClientSession`` callbacks for one server, each calling the host's with ``server_name`` first."""
    bound: dict[str, Any] = {}
    if "elicitation_callback" in callbacks:
        host_elicit = callbacks["elicitation_callback"]

        async def elicitation(context: Any, params: types.ElicitRequestParams) -> Any:
            result = await _call(host_elicit, server_name, "elicitation", context, params)
            if isinstance(result, types.ElicitResult) and isinstance(params, types.ElicitRequestFormParams):
                result = apply_elicitation_defaults(result, params.requested_schema)
            return result

        bound["elicitation_callback"] = elicitation
    if "sampling_callback" in callbacks:
        host_sample = callbacks["sampling_callback"]

        async def sampling(context: Any, params: types.CreateMessageRequestParams) -> Any:
            return await _call(host_sample, server_name, "sampling", context, params)

        bound["sampling_callback"] = sampling
    if "list_roots_callback" in callbacks:
        host_roots = callbacks["list_roots_callback"]

        async def list_roots(context: Any) -> Any:
            return await _call(host_roots, server_name, "list_roots", context)

        bound["list_roots_callback"] = list_roots
    return bound


async def _call(callback: Callable[..., Any], server_name: str, what: str, *args: Any) -> Any:
    try:
        result = callback(server_name, *args)
        if inspect.isawaitable(result):
            result = await result
    except Exception as exc:
        logger.exception("%s: the host's %s callback raised", server_name, what)
        return types.ErrorData(code=types.INTERNAL_ERROR, message=f"the client's {what} handler failed: {exc}")
    return result


def apply_elicitation_defaults(result: types.ElicitResult, schema: dict[str, Any]) -> types.ElicitResult:
    """``result`` with the schema's defaults filled in for the fields an accepting host left out."""
    if result.action != "accept":
        return result
    properties = schema.get("properties") if isinstance(schema, dict) else None
    if not isinstance(properties, dict):
        return result
    content = dict(result.content or {})
    for name, definition in properties.items():
        if name not in content and isinstance(definition, dict) and "default" in definition:
            content[name] = definition["default"]
    return result.model_copy(update={"content": content})

"""Fixtures of the adapters' tests: the content test server, as a session and inside a group."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from mcp.client.stdio import StdioServerParameters

from mcp_connections import ManagedSession, RestartPolicy, ServerGroup, StdioConnectionManager

SERVER = Path(__file__).parent / "server.py"


def content_server(*flags: str) -> StdioServerParameters:
    return StdioServerParameters(command=sys.executable, args=[str(SERVER), *flags])


def fast_restarts() -> RestartPolicy:
    return RestartPolicy(max_restarts=5, backoff_initial=0.05, backoff_max=0.2)


def group_config(*flags: str) -> dict[str, Any]:
    return {
        "mcpServers": {
            # Legacy: the test server announces changes with notifications/tools/list_changed, which a modern
            # session does not get (its changes come over subscriptions/listen, which this server does not serve).
            "content": {"command": sys.executable, "args": [str(SERVER), *flags], "mode": "legacy"},
            "demo": {"command": sys.executable, "args": ["-m", "mcp_connections._demo_server"]},
        }
    }


@pytest.fixture
def anyio_backend() -> str:
    """The agent frameworks run on asyncio (fastmcp's client, the Agents SDK, Pydantic AI and LangChain create
    asyncio tasks); the OpenAI and Anthropic adapters, which are anyio code of ours alone, also run on trio."""
    return "asyncio"


@pytest.fixture
async def session() -> AsyncIterator[ManagedSession]:
    async with ManagedSession(StdioConnectionManager(content_server()), restart=fast_restarts()) as s:
        yield s


@pytest.fixture
async def group() -> AsyncIterator[ServerGroup]:
    async with ServerGroup.from_config(group_config(), restart=fast_restarts()) as g:
        yield g


def materialize(value: Any) -> Any:
    """A validated payload with pydantic's lazy iterators (fields typed ``Iterable``) turned into lists."""
    if isinstance(value, dict):
        return {k: materialize(v) for k, v in value.items()}
    if isinstance(value, (str, bytes)):
        return value
    if isinstance(value, (list, tuple)) or type(value).__name__ == "ValidatorIterator":
        return [materialize(v) for v in value]
    return value


def assert_valid(kind: Any, payload: Any) -> None:
    """The payload is of the SDK's request type, with nothing dropped or coerced on the way."""
    from pydantic import TypeAdapter

    assert materialize(TypeAdapter(kind).validate_python(payload)) == payload

"""The MCP conformance suite's client under test, built only on mcp_connections' public API.

The suite runs ``python tests/conformance/client.py SERVER_URL`` with ``MCP_CONFORMANCE_SCENARIO`` (and,
for some scenarios, ``MCP_CONFORMANCE_CONTEXT``, a JSON object) set. Like the suite's own example client
(examples/clients/typescript/everything-client.ts), it connects, lists tools and calls the scenario's
tool. Its "browser" is headless: it follows the authorization server's redirect to the library's own
loopback callback server, so the default callback path is what the suite exercises. Tokens go to a
``FileTokenStore`` in a temporary directory, so runs share nothing.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
from typing import Any

import anyio
import httpx2
import mcp_types as types

from mcp_connections import (
    FileTokenStore,
    ManagedSession,
    OAuth,
    ServerGroup,
    StreamableHttpConnectionManager,
)

# The URL-based client ID the suite's CIMD scenario expects (the same one its example client uses).
CIMD_CLIENT_METADATA_URL = "https://conformance-test.local/client-metadata.json"

# Bounds on one scenario: the suite itself gives a client 30 s.
INIT_TIMEOUT = 20.0
REQUEST_TIMEOUT = 15.0


async def headless_browser(authorization_url: str) -> None:
    """What a person's browser does: open the page, which redirects (with the code) to our loopback."""
    async with httpx2.AsyncClient(follow_redirects=True, timeout=10) as browser:
        await browser.get(authorization_url)


def context() -> dict[str, Any]:
    raw = os.environ.get("MCP_CONFORMANCE_CONTEXT")
    return json.loads(raw) if raw else {}


def auth_for(scenario: str, store: FileTokenStore) -> OAuth | None:
    ctx = context()
    if scenario == "auth/client-credentials-basic":
        return OAuth.client_credentials(ctx["client_id"], ctx["client_secret"], store=store)
    if scenario == "auth/client-credentials-jwt":
        return OAuth.client_credentials(
            ctx["client_id"],
            private_key=ctx["private_key_pem"],
            signing_algorithm=ctx.get("signing_algorithm") or "ES256",
            store=store,
        )
    if scenario == "auth/pre-registration":
        return OAuth(
            client_id=ctx["client_id"],
            client_secret=ctx["client_secret"],
            store=store,
            redirect_handler=headless_browser,
        )
    if scenario.startswith("auth/"):
        return OAuth(client_metadata_url=CIMD_CLIENT_METADATA_URL, store=store, redirect_handler=headless_browser)
    return None


async def run_session(url: str, scenario: str, store: FileTokenStore) -> None:
    manager = StreamableHttpConnectionManager(url, auth=auth_for(scenario, store), timeout=10)
    async with ManagedSession(manager, init_timeout=INIT_TIMEOUT, request_timeout=REQUEST_TIMEOUT) as session:
        tools = await session.list_tools()
        names = {tool.name for tool in tools}
        if scenario == "tools_call":
            await session.call_tool("add_numbers", {"a": 2, "b": 3})
        elif scenario == "sse-retry":
            await session.call_tool("test_reconnection", {})
        elif "test-tool" in names:
            await session.call_tool("test-tool", {})


async def run_elicitation(url: str) -> None:
    def accept_with_defaults(server_name: str, context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        return types.ElicitResult(action="accept", content={})  # the library fills in the schema's defaults

    config = {"mcpServers": {"conformance": {"url": url, "type": "http"}}}
    group = ServerGroup.from_config(config, elicitation_callback=accept_with_defaults, init_timeout=INIT_TIMEOUT)
    async with group:
        await group["conformance"].call_tool("test_client_elicitation_defaults", {})


async def main() -> int:
    logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    scenario = os.environ.get("MCP_CONFORMANCE_SCENARIO", "")
    if len(sys.argv) != 2 or not scenario:
        print("usage: MCP_CONFORMANCE_SCENARIO=NAME client.py SERVER_URL", file=sys.stderr)
        return 2
    url = sys.argv[1]
    with tempfile.TemporaryDirectory(prefix="mcp-conformance-tokens-") as tokens:
        if scenario.startswith("elicitation"):
            await run_elicitation(url)
        else:
            await run_session(url, scenario, FileTokenStore(tokens))
    return 0


if __name__ == "__main__":
    sys.exit(anyio.run(main))

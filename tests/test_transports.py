"""The transport registry, the streamable-HTTP-then-SSE transport, and the seams around them.

The registry and ``map_exceptions`` are pure logic, tested without an event loop; the fallback transport
is tested against real test servers on loopback (tests/servers/http_server.py) that answer a streamable
HTTP POST with 404, 405 or a bare 400.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from mcp_connections import (
    ConfigError,
    ConnectError,
    ConnectionState,
    ManagedSession,
    ServerGroup,
    StdioConnectionManager,
    StreamableHttpOrSseConnectionManager,
)
from mcp_connections._exceptions import chain, leaf_exception, map_exceptions
from mcp_connections.config import parse_config
from mcp_connections.errors import ConnectionLostError, MCPConnectionError
from mcp_connections.transports import TransportOptions, TransportSpec, registry

from .helpers import MISBEHAVING, SERVERS, Snapshot, assert_no_leaks, misbehaving
from .helpers.remote import _read_port

pytestmark = pytest.mark.anyio

SRC = Path(__file__).parent.parent / "src" / "mcp_connections"


def one(entry: dict[str, Any]) -> Any:
    return parse_config({"mcpServers": {"s": entry}}, {})["s"]


# -- the registry: pure logic ------------------------------------------------------------------------------


def test_every_name_and_alias_the_config_accepts_comes_from_the_registry() -> None:
    names = registry.names()
    assert names["http"] == "streamable-http"
    assert names["ws"] == "websocket"
    for alias, canonical in names.items():
        entry = {"command": "x"} if registry.get(canonical).needs == "command" else {"url": "http://h/mcp"}
        assert one({**entry, "transport": alias.upper()}).transport == canonical


def test_a_url_that_no_transport_claims_is_left_to_the_fallback_transport() -> None:
    assert registry.guess("https://h/mcp") is None
    assert registry.get(None).name == "streamable-http-or-sse"
    assert registry.guess("wss://h/sse") == "websocket"
    assert registry.guess("http://h/v1/sse/") == "sse"


def test_a_registered_transport_is_one_line_and_the_config_knows_it_at_once() -> None:
    unregister = registry.register(
        TransportSpec("carrier-pigeon", f"{__name__}:build_pigeon", aliases=("rfc1149",), claims_url=_is_pigeon)
    )
    try:
        assert one({"url": "http://h/mcp", "transport": "RFC1149"}).transport == "carrier-pigeon"
        assert one({"url": "pigeon://loft/mcp"}).transport == "carrier-pigeon"
        with pytest.raises(ConfigError, match="carrier-pigeon transport needs 'url'"):
            one({"command": "x", "transport": "carrier-pigeon"})
        with pytest.raises(ValueError, match="already registered: rfc1149"):
            registry.register(TransportSpec("other", build_pigeon, aliases=("rfc1149",)))
    finally:
        unregister()
    with pytest.raises(ConfigError, match="unknown transport 'carrier-pigeon'"):
        one({"url": "http://h/mcp", "transport": "carrier-pigeon"})
    assert registry.guess("pigeon://loft/mcp") is None


def _is_pigeon(url: str) -> bool:
    return url.startswith("pigeon://")


def build_pigeon(config: Any, options: TransportOptions) -> StdioConnectionManager:
    """A fake transport for the tests: the misbehaving stdio server, whatever the entry says."""
    return StdioConnectionManager(misbehaving(), errlog=options.errlog, name=config.name)


def test_the_registry_imports_no_transport_so_reading_a_config_stays_cheap() -> None:
    for path in (SRC / "transports" / "__init__.py", SRC / "transports" / "_registry.py", SRC / "config.py"):
        tree = ast.parse(path.read_text())
        for node in tree.body:  # module level only: builders import lazily, TYPE_CHECKING blocks are types
            if isinstance(node, ast.ImportFrom):
                modules = [("." * node.level) + (node.module or "")]
            elif isinstance(node, ast.Import):
                modules = [alias.name for alias in node.names]
            else:
                continue
            for module in modules:
                assert module.lstrip(".").split(".")[0] not in {"mcp", "httpx2", "websockets", "anyio"}, path
                assert module.split(".")[-1] not in {"stdio", "sse", "streamable_http", "websocket", "http_or_sse"}


def test_every_module_logs_under_its_own_name() -> None:
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "getLogger" and node.args:
                argument = node.args[0]
                if isinstance(argument, ast.Constant) and str(argument.value).startswith("mcp_connections"):
                    # The package's own handler setup, and the command line (an application: it sets levels).
                    allowed = path == SRC / "__init__.py" or path.parent == SRC / "cli"
                    assert allowed, f"{path.name}: use logging.getLogger(__name__)"


async def test_a_group_builds_a_registered_transport_and_names_its_manager_after_the_entry() -> None:
    unregister = registry.register(TransportSpec("pigeon", build_pigeon))
    try:
        group = ServerGroup.from_config({"mcpServers": {"loft": {"url": "x://", "transport": "pigeon"}}}, errlog=None)
        async with group:
            assert group.status()["loft"].transport == "pigeon"
            assert group["loft"].manager.name == "loft"
            result = await group.call_tool("loft", "echo", {"text": "coo"})
            assert result.content[0].text == "coo"  # type: ignore[union-attr]
    finally:
        unregister()


# -- map_exceptions: pure logic ----------------------------------------------------------------------------


def test_map_exceptions_translates_at_the_boundary_and_chains_the_cause() -> None:
    with pytest.raises(ConnectError) as caught, map_exceptions(lambda exc: ConnectError(f"no: {exc}", server="s")):
        raise OSError("refused")
    assert isinstance(caught.value.__cause__, OSError)
    assert caught.value.__suppress_context__


def test_map_exceptions_explains_a_group_by_its_leaf_and_lets_library_errors_through() -> None:
    lost = ConnectionLostError("gone", server="s")
    with pytest.raises(ConnectionLostError) as caught, map_exceptions(lambda exc: None):
        raise ExceptionGroup("crashed", [lost])
    assert caught.value is lost
    with pytest.raises(ConnectError) as translated, map_exceptions(lambda exc: ConnectError(str(exc))):
        raise ExceptionGroup("crashed", [ExceptionGroup("inner", [ValueError("the leaf")])])
    assert isinstance(translated.value.__cause__, ValueError)
    assert str(translated.value) == "the leaf"


def test_map_exceptions_reraises_what_it_cannot_translate_and_never_touches_cancellation() -> None:
    with pytest.raises(KeyError), map_exceptions(lambda exc: None):
        raise KeyError("x")
    with pytest.raises(KeyboardInterrupt), map_exceptions(lambda exc: ConnectError("never")):
        raise KeyboardInterrupt


def test_chain_keeps_an_existing_cause() -> None:
    first, second = ValueError("first"), ValueError("second")
    error = chain(MCPConnectionError("x"), first)
    assert chain(error, second).__cause__ is first
    assert leaf_exception(ExceptionGroup("g", [first])) is first


def test_connect_error_takes_the_http_status_it_was_about() -> None:
    assert ConnectError("no", server="s", http_status=404).http_status == 404
    assert ConnectError("no").http_status is None


# -- errlog=None ---------------------------------------------------------------------------------------------


async def test_errlog_none_discards_server_stderr_and_the_tail_still_tells_it() -> None:
    manager = StdioConnectionManager(misbehaving(), errlog=None)
    async with ManagedSession(manager) as session:
        await session.call_tool("stderr", {"text": "into the void"})
        await session.call_tool("echo", {"text": "sync"})  # the stderr line is read by now, or very soon
    assert "into the void" in manager.stderr_tail


async def test_a_group_with_errlog_none_discards_its_servers_stderr() -> None:
    entry = {"command": sys.executable, "args": [str(MISBEHAVING)]}
    async with ServerGroup.from_config({"mcpServers": {"quiet": entry}}, errlog=None) as group:
        await group.call_tool("quiet", "stderr", {"text": "nobody hears"})
        assert group.status()["quiet"].state is ConnectionState.CONNECTED


# -- the streamable-HTTP-then-SSE transport, against real servers ---------------------------------------------


@contextmanager
def http_server(*args: str) -> Iterator[int]:
    process = subprocess.Popen(
        [sys.executable, str(SERVERS / "http_server.py"), *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE
    )
    try:
        yield _read_port(process)
    finally:
        process.kill()
        process.wait(timeout=10)
        assert process.stdout is not None
        process.stdout.close()


async def test_a_server_that_answers_a_bare_400_is_reached_over_sse_and_the_status_says_so() -> None:
    with http_server("--transport", "sse", "--sse-path", "/events", "--bare-400-on-sse-path") as port:
        group = ServerGroup.from_config({"mcpServers": {"old": {"url": f"http://127.0.0.1:{port}/events"}}})
        async with group:
            status = group.status()["old"]
            assert status.state is ConnectionState.CONNECTED, status.error
            assert status.transport == "sse"
            result = await group.call_tool("old", "echo", {"text": "after a 400"})
            assert result.content[0].text == "after a 400"  # type: ignore[union-attr]


async def test_the_fallback_transport_says_which_transport_it_used_and_restarts_leak_nothing() -> None:
    before = Snapshot.take()
    with http_server("--transport", "sse", "--sse-path", "/events") as port:
        manager = StreamableHttpOrSseConnectionManager(f"http://127.0.0.1:{port}/events", name="old")
        assert manager.used_transport is None
        session = ManagedSession(manager)
        for _ in range(2):  # the second start goes straight to SSE
            await session.start()
            try:
                assert manager.used_transport == "sse"
                assert (await session.call_tool("add", {"a": 2, "b": 3})).content[0].text in ("5", "5.0")  # type: ignore[union-attr]
            finally:
                await session.stop()
        assert session.state is ConnectionState.STOPPED
    await assert_no_leaks(before)


async def test_the_fallback_transport_stays_on_streamable_http_when_the_server_speaks_it() -> None:
    with http_server("--transport", "streamable-http") as port:
        manager = StreamableHttpOrSseConnectionManager(f"http://127.0.0.1:{port}/mcp")
        async with ManagedSession(manager) as session:
            assert manager.used_transport == "streamable-http"
            assert (await session.call_tool("echo", {"text": "new"})).content[0].text == "new"  # type: ignore[union-attr]


async def test_when_neither_transport_answers_the_error_names_both() -> None:
    with http_server("--transport", "streamable-http") as port:
        manager = StreamableHttpOrSseConnectionManager(f"http://127.0.0.1:{port}/nowhere", name="lost")
        session = ManagedSession(manager, init_timeout=20)
        with pytest.raises(ConnectError) as caught:
            await session.start()
        await session.stop()
    message = str(caught.value)
    assert message.startswith("lost: ")
    assert "neither streamable HTTP" in message and "nor SSE" in message, message
    assert isinstance(caught.value.__cause__, MCPConnectionError)


async def test_a_server_that_refuses_credentials_gets_no_sse_attempt() -> None:
    with http_server("--transport", "streamable-http", "--require-bearer", "right") as port:
        manager = StreamableHttpOrSseConnectionManager(
            f"http://127.0.0.1:{port}/mcp", headers={"Authorization": "Bearer wrong"}
        )
        session = ManagedSession(manager, init_timeout=20)
        with pytest.raises(ConnectError, match="rejected the credentials") as caught:
            await session.start()
        await session.stop()
    assert "neither" not in str(caught.value)
    assert caught.value.http_status == 401
    assert manager.used_transport == "streamable-http"

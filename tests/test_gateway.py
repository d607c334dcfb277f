"""``mcp-connections serve`` over stdio, driven by the SDK's own client, against the project's real test servers."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
import mcp_types as types
import pytest
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters, stdio_client
from mcp.shared.exceptions import MCPError

from .helpers import MISBEHAVING, SERVERS, pid_alive

SCRIPT = Path(sys.executable).parent / "mcp-connections"
BACKEND = SERVERS / "gateway_backend.py"


@pytest.fixture
def anyio_backend() -> str:
    # The gateway is a subprocess and these tests are its clients: one event loop for the client is enough.
    return "asyncio"


FAST_RESTART = {"max_restarts": 5, "backoff_initial": 0.1, "jitter": 0.1}


def backend(name: str, marker_dir: Path, **extra: Any) -> dict[str, Any]:
    return {"command": sys.executable, "args": [str(BACKEND), "--name", name, "--marker-dir", str(marker_dir)], **extra}


def misbehaving(*flags: str, **extra: Any) -> dict[str, Any]:
    return {"command": sys.executable, "args": [str(MISBEHAVING), *flags], **extra}


def demo(name: str) -> dict[str, Any]:
    return {"command": sys.executable, "args": ["-m", "mcp_connections._demo_server", "--name", name]}


def write_config(path: Path, servers: dict[str, Any]) -> Path:
    path.write_text(json.dumps({"mcpServers": servers}))
    return path


class Inbox:
    """Notifications a client received, and a bounded wait for one."""

    def __init__(self) -> None:
        self.items: list[Any] = []
        self.logs: list[types.LoggingMessageNotificationParams] = []

    async def message_handler(self, message: Any) -> None:
        self.items.append(message)

    async def logging_callback(self, params: types.LoggingMessageNotificationParams) -> None:
        self.logs.append(params)

    def count(self, kind: type[Any]) -> int:
        return sum(isinstance(item, kind) for item in self.items)

    async def wait_for(self, predicate: Callable[[], bool], timeout: float = 15.0) -> None:
        with anyio.fail_after(timeout):
            while not predicate():
                await anyio.sleep(0.05)


@asynccontextmanager
async def served_over_stdio(config: Path, *args: str, **session_options: Any) -> AsyncIterator[ClientSession]:
    params = StdioServerParameters(command=str(SCRIPT), args=["serve", str(config), *args])
    with open(config.with_suffix(".stderr"), "w") as errlog:  # noqa: ASYNC230 (a file for the child's stderr)
        async with stdio_client(params, errlog=errlog) as (read, write):
            async with ClientSession(read, write, **session_options) as session:
                with anyio.fail_after(30):
                    await session.initialize()
                yield session


def text_of(result: types.CallToolResult) -> str:
    return "".join(getattr(block, "text", "") for block in result.content)


async def call_until_ok(session: ClientSession, name: str, arguments: dict[str, Any], timeout: float = 20.0) -> str:
    with anyio.fail_after(timeout):
        while True:
            result = await session.call_tool(name, arguments)
            if not result.is_error:
                return text_of(result)
            await anyio.sleep(0.1)


@pytest.mark.anyio
async def test_a_stdio_client_lists_and_calls_the_tools_of_every_server_through_the_gateway(tmp_path: Path) -> None:
    config = write_config(tmp_path / "mcp.json", {"misb": misbehaving(), "demo": demo("demo")})
    async with served_over_stdio(config) as session:
        names = [tool.name for tool in (await session.list_tools()).tools]
        assert "misb__echo" in names and "demo__add" in names
        assert names.index("misb__echo") < names.index("demo__add"), "servers in config order"
        assert text_of(await session.call_tool("misb__echo", {"text": "hi"})) == "hi"
        result = await session.call_tool("demo__add", {"a": 2, "b": 3})
        assert not result.is_error and result.structured_content == {"result": 5.0}, "relayed unchanged"
        with pytest.raises(MCPError) as caught:
            await session.call_tool("no_such_tool", {})
        assert caught.value.error.code == types.INVALID_PARAMS


@pytest.mark.anyio
async def test_prompts_and_resources_are_routed_and_an_unknown_uri_is_resource_not_found(tmp_path: Path) -> None:
    config = write_config(tmp_path / "mcp.json", {"demo": demo("demo"), "back": backend("back", tmp_path)})
    async with served_over_stdio(config) as session:
        prompts = [prompt.name for prompt in (await session.list_prompts()).prompts]
        assert prompts == ["demo__greet"]
        prompt = await session.get_prompt("demo__greet", {"person": "Ada"})
        assert "Ada" in str(prompt.messages[0].content)
        assert [str(r.uri) for r in (await session.list_resources()).resources] == ["demo://readme"]
        read = await session.read_resource("demo://readme")
        assert "demo" in read.contents[0].text  # type: ignore[union-attr]
        templates = (await session.list_resource_templates()).resource_templates
        assert [t.uri_template for t in templates] == ["note://{key}"]
        read = await session.read_resource("note://x")
        assert read.contents[0].text == "note x from back"  # type: ignore[union-attr]
        with pytest.raises(MCPError) as caught:
            await session.read_resource("nowhere://at-all")
        assert caught.value.error.code == -32002


@pytest.mark.anyio
async def test_capabilities_are_the_union_of_what_the_running_backends_offer(tmp_path: Path) -> None:
    config = write_config(tmp_path / "mcp.json", {"misb": misbehaving()})
    async with served_over_stdio(config) as session:
        capabilities = session.server_capabilities
        assert capabilities is not None
        assert capabilities.tools is not None and capabilities.tools.list_changed
        assert capabilities.prompts is not None and capabilities.resources is not None
        assert capabilities.completions is None, "no backend offers completions"


@pytest.mark.anyio
async def test_a_killed_backend_gives_an_error_result_naming_it_and_works_again_after_its_restart(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path / "mcp.json", {"misb": misbehaving(restart=FAST_RESTART), "demo": demo("demo")})
    async with served_over_stdio(config) as session:
        before = await call_until_ok(session, "misb__pid", {})
        result = await session.call_tool("misb__crash", {})
        assert result.is_error
        assert "misb" in text_of(result)
        after = await call_until_ok(session, "misb__pid", {})
        assert after != before, "a new process answers"
        assert text_of(await session.call_tool("demo__echo", {"text": "still"})) == "still"


@pytest.mark.anyio
async def test_a_backend_that_fails_for_good_leaves_the_catalogue_and_every_client_gets_list_changed(
    tmp_path: Path,
) -> None:
    inbox = Inbox()
    config = write_config(tmp_path / "mcp.json", {"misb": misbehaving(restart="no"), "demo": demo("demo")})
    async with served_over_stdio(config, message_handler=inbox.message_handler) as session:
        assert "misb__echo" in [t.name for t in (await session.list_tools()).tools]
        result = await session.call_tool("misb__crash", {})
        assert result.is_error and "misb" in text_of(result)
        await inbox.wait_for(lambda: inbox.count(types.ToolListChangedNotification) >= 1)
        names = [t.name for t in (await session.list_tools()).tools]
        assert "misb__echo" not in names and "demo__echo" in names
        result = await session.call_tool("demo__echo", {"text": "ok"})
        assert text_of(result) == "ok"


@pytest.mark.anyio
async def test_a_backends_list_changed_becomes_one_for_the_client_with_the_new_tool_listed(tmp_path: Path) -> None:
    inbox = Inbox()
    config = write_config(tmp_path / "mcp.json", {"back": backend("back", tmp_path)})
    async with served_over_stdio(config, message_handler=inbox.message_handler) as session:
        assert "back__fresh" not in [t.name for t in (await session.list_tools()).tools]
        assert text_of(await session.call_tool("back__grow", {"tool": "fresh"})) == "grown"
        await inbox.wait_for(lambda: inbox.count(types.ToolListChangedNotification) >= 1)
        assert "back__fresh" in [t.name for t in (await session.list_tools()).tools]
        assert text_of(await session.call_tool("back__fresh", {})) == "new"


@pytest.mark.anyio
async def test_progress_of_a_backend_is_relayed_to_the_client(tmp_path: Path) -> None:
    config = write_config(tmp_path / "mcp.json", {"back": backend("back", tmp_path)})
    seen: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, total, message))

    async with served_over_stdio(config) as session:
        result = await session.call_tool("back__progress", {"steps": 3}, progress_callback=on_progress)
        assert text_of(result) == "done"
        with anyio.fail_after(5):
            while len(seen) < 3:
                await anyio.sleep(0.02)
        assert seen == [(1, 3, "step 1"), (2, 3, "step 2"), (3, 3, "step 3")]


@pytest.mark.anyio
async def test_a_call_the_client_cancels_is_cancelled_on_the_backend(tmp_path: Path) -> None:
    config = write_config(tmp_path / "mcp.json", {"back": backend("back", tmp_path)})
    marker = tmp_path / "back.cancelled"
    async with served_over_stdio(config) as session:
        assert text_of(await session.call_tool("back__pid", {})).isdigit()  # started: the next call reaches it
        with anyio.move_on_after(2.0):
            await session.call_tool("back__hold", {"seconds": 30})
        with anyio.fail_after(10):
            while not marker.exists():
                await anyio.sleep(0.05)
        assert text_of(await session.call_tool("back__pid", {})).isdigit(), "the gateway serves on"


@pytest.mark.anyio
async def test_backend_logs_reach_the_client_named_by_server_and_filtered_by_its_level(tmp_path: Path) -> None:
    inbox = Inbox()
    config = write_config(tmp_path / "mcp.json", {"back": backend("back", tmp_path)})
    async with served_over_stdio(config, logging_callback=inbox.logging_callback) as session:
        await session.set_logging_level("warning")
        await session.call_tool("back__log", {"level": "info", "text": "quiet"})
        await session.call_tool("back__log", {"level": "error", "text": "loud"})
        await inbox.wait_for(lambda: len(inbox.logs) >= 1, timeout=5)
        await anyio.sleep(0.2)
        assert [(log.logger, log.level, log.data) for log in inbox.logs] == [("back", "error", "loud")]


@pytest.mark.anyio
async def test_sampling_from_a_backend_goes_to_the_client_that_made_the_call(tmp_path: Path) -> None:
    # The handshake generation: there a server asks its client with a request of its own (sampling/createMessage).
    config = write_config(tmp_path / "mcp.json", {"back": backend("back", tmp_path, mode="legacy")})

    async def sample(context: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
        question = params.messages[0].content.text  # type: ignore[union-attr]
        return types.CreateMessageResult(
            role="assistant", content=types.TextContent(type="text", text=f"answer to {question}"), model="test"
        )

    async with served_over_stdio(config, sampling_callback=sample) as session:
        assert text_of(await session.call_tool("back__ask", {"question": "six times seven"})) == (
            "answer to six times seven"
        )
    async with served_over_stdio(config) as session:  # no sampling capability: the backend gets an error
        try:
            result = await session.call_tool("back__ask", {"question": "anything"})
        except MCPError as exc:  # the backend let the error fail its call: relayed as it came
            message = str(exc)
        else:
            assert result.is_error
            message = text_of(result)
        assert "sampling" in message


def test_stdin_eof_stops_every_server_and_exits_zero(tmp_path: Path) -> None:
    config = write_config(tmp_path / "mcp.json", {"a": misbehaving(), "b": misbehaving("--grandchild")})
    process = subprocess.Popen(
        [str(SCRIPT), "serve", str(config)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL
    )
    assert process.stdin is not None and process.stdout is not None

    def request(id_: int, method: str, params: dict[str, Any]) -> dict[str, Any]:
        assert process.stdin is not None and process.stdout is not None
        process.stdin.write(
            (json.dumps({"jsonrpc": "2.0", "id": id_, "method": method, "params": params}) + "\n").encode()
        )
        process.stdin.flush()
        return json.loads(process.stdout.readline())

    try:
        init = request(
            1,
            "initialize",
            {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "t", "version": "1"}},
        )
        assert init["result"]["serverInfo"]["name"] == "mcp-connections"
        process.stdin.write(b'{"jsonrpc": "2.0", "method": "notifications/initialized"}\n')
        pids = [
            int(request(i, "tools/call", {"name": f"{n}__pid", "arguments": {}})["result"]["content"][0]["text"])
            for i, n in ((2, "a"), (3, "b"))
        ]
        assert all(pid_alive(pid) for pid in pids)
        started = time.monotonic()
        process.stdin.close()
        assert process.wait(timeout=15) == 0
        assert time.monotonic() - started < 10
        deadline = time.monotonic() + 3
        while any(pid_alive(pid) for pid in pids) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(pid_alive(pid) for pid in pids), "a server outlived the gateway"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_sigterm_and_sigint_stop_every_server_and_exit_zero(tmp_path: Path) -> None:
    for signum in (signal.SIGTERM, signal.SIGINT):
        config = write_config(tmp_path / "mcp.json", {"a": misbehaving("--pidfile", str(tmp_path / "a.pid"))})
        process = subprocess.Popen(
            [str(SCRIPT), "serve", str(config)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        try:
            deadline = time.monotonic() + 20
            while not (tmp_path / "a.pid").exists() and time.monotonic() < deadline:
                time.sleep(0.05)
            pid = int((tmp_path / "a.pid").read_text().split()[0])
            time.sleep(0.5)  # the signal handlers are installed once the group has started
            process.send_signal(signum)
            assert process.wait(timeout=15) == 0, process.stderr.read() if process.stderr else ""
            assert not pid_alive(pid)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            (tmp_path / "a.pid").unlink(missing_ok=True)


def test_a_required_server_that_fails_stops_the_gateway_with_exit_one_and_says_why(tmp_path: Path) -> None:
    config = write_config(tmp_path / "mcp.json", {"bad": misbehaving("--exit-before-handshake", "3", required=True)})
    process = subprocess.Popen(
        [str(SCRIPT), "serve", str(config)],
        stdin=subprocess.PIPE,  # held open: the gateway ends on its own
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        process.wait(timeout=60)  # not communicate(): that would close stdin
        assert process.stdout is not None and process.stderr is not None
        stdout, stderr = process.stdout.read(), process.stderr.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 1
    assert "not serving" in stderr and "bad" in stderr and stdout == ""


@pytest.mark.anyio
async def test_a_modern_client_discovers_the_gateway_and_calls_through_it_whatever_the_backends_speak(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The gateway answers discover within a few seconds, but its own start-up on a loaded machine may eat the
    # SDK's 10 s probe budget: the probe gets more here.
    monkeypatch.setattr("mcp.client.session.DISCOVER_TIMEOUT_SECONDS", 60.0)
    config = write_config(tmp_path / "mcp.json", {"misb": misbehaving(), "demo": demo("demo")})
    params = StdioServerParameters(command=str(SCRIPT), args=["serve", str(config)])
    with open(tmp_path / "stderr", "w") as errlog:  # noqa: ASYNC230 (a file for the child's stderr)
        async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write) as session:
            with anyio.fail_after(30):
                discovered = await session.discover()
            assert discovered.capabilities.tools is not None
            assert "misb__echo" in [tool.name for tool in (await session.list_tools()).tools]
            assert text_of(await session.call_tool("misb__echo", {"text": "modern"})) == "modern"
            result = await session.call_tool("demo__add", {"a": 1, "b": 1})
            assert result.structured_content == {"result": 2.0}


@pytest.mark.anyio
async def test_a_modern_client_listening_for_changes_hears_of_a_backends_new_tool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mcp.client.subscriptions import ToolsListChanged, listen

    monkeypatch.setattr("mcp.client.session.DISCOVER_TIMEOUT_SECONDS", 60.0)
    config = write_config(tmp_path / "mcp.json", {"back": backend("back", tmp_path)})
    params = StdioServerParameters(command=str(SCRIPT), args=["serve", str(config)])
    with open(tmp_path / "stderr", "w") as errlog:  # noqa: ASYNC230 (a file for the child's stderr)
        async with stdio_client(params, errlog=errlog) as (read, write), ClientSession(read, write) as session:
            with anyio.fail_after(60):
                await session.discover()
            async with listen(session, tools_list_changed=True) as subscription:
                assert text_of(await session.call_tool("back__grow", {"tool": "later"})) == "grown"
                with anyio.fail_after(15):
                    event = await subscription.__anext__()
                assert isinstance(event, ToolsListChanged)
            assert "back__later" in [tool.name for tool in (await session.list_tools()).tools]


@pytest.mark.anyio
async def test_tool_names_auto_gives_own_names_and_prefixes_only_the_shared_ones(tmp_path: Path) -> None:
    config = write_config(tmp_path / "mcp.json", {"misb": misbehaving(), "demo": demo("demo")})
    async with served_over_stdio(config, "--tool-names", "auto") as session:
        names = [tool.name for tool in (await session.list_tools()).tools]
        assert "crash" in names and "whoami" in names, "names only one server has stay as they are"
        assert "misb__echo" in names and "demo__echo" in names, "a shared name gets the prefix on both"
        assert text_of(await session.call_tool("whoami", {})).startswith("demo")

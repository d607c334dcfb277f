"""``mcp-connections serve --http``: the SDK's streamable HTTP client, /healthz, bearer auth, reload and shutdown."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx2 as httpx
import mcp_types as types
import pytest
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

from .helpers import pid_alive
from .test_gateway import SCRIPT, Inbox, backend, demo, misbehaving, text_of, write_config


@pytest.fixture
def anyio_backend() -> str:
    # The gateway is a subprocess and these tests are its clients: one event loop for the client is enough.
    return "asyncio"


TOKEN = "test-token-not-a-secret"


@dataclass
class Served:
    process: subprocess.Popen[bytes]
    url: str
    stderr: Path

    @property
    def health_url(self) -> str:
        return self.url.replace("/mcp", "/healthz")

    def log(self) -> str:
        return self.stderr.read_text(errors="replace")


@contextmanager
def serve_http(config: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[Served]:
    stderr = config.with_suffix(".stderr")
    with open(stderr, "wb") as errlog:
        process = subprocess.Popen(
            [str(SCRIPT), "serve", str(config), "--http", "127.0.0.1:0", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=errlog,
            env={**os.environ, **(env or {})},
        )
    lines: list[bytes] = []
    reader = threading.Thread(target=lambda: lines.append(process.stdout.readline()), daemon=True)  # type: ignore[union-attr]
    reader.start()
    reader.join(60)
    try:
        assert lines and lines[0].startswith(b"serving http://127.0.0.1:"), (lines, stderr.read_text())
        yield Served(process, lines[0].decode().split()[1], stderr)
    finally:
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        if process.stdout is not None:
            process.stdout.close()


@asynccontextmanager
async def client(url: str, token: str | None = None, **options: Any) -> AsyncIterator[ClientSession]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with httpx.AsyncClient(headers=headers, timeout=30) as http:
        async with streamable_http_client(url, http_client=http) as (read, write):
            async with ClientSession(read, write, **options) as session:
                with anyio.fail_after(30):
                    await session.initialize()
                yield session


async def tool_names(session: ClientSession) -> list[str]:
    return [tool.name for tool in (await session.list_tools()).tools]


@pytest.mark.anyio
async def test_an_http_client_lists_and_calls_tools_and_sigterm_stops_every_server_with_exit_zero(
    tmp_path: Path,
) -> None:
    config = write_config(tmp_path / "mcp.json", {"misb": misbehaving(), "demo": demo("demo")})
    with serve_http(config) as served:
        async with client(served.url) as session:
            assert "misb__pid" in await tool_names(session)
            pid = int(text_of(await session.call_tool("misb__pid", {})))
            result = await session.call_tool("demo__add", {"a": 1, "b": 2})
            assert result.structured_content == {"result": 3.0}
        served.process.send_signal(signal.SIGTERM)
        assert served.process.wait(15) == 0
        assert not pid_alive(pid)


@pytest.mark.anyio
async def test_healthz_is_200_when_the_required_servers_are_connected_and_503_when_not(tmp_path: Path) -> None:
    broken = misbehaving("--exit-before-handshake", "3")
    config = write_config(tmp_path / "mcp.json", {"ok": misbehaving(required=True), "bad": broken})
    with serve_http(config) as served:
        answer = httpx.get(served.health_url, timeout=10)
        assert answer.status_code == 200
        body = answer.json()
        assert body["servers"]["ok"] == {"state": "connected", "transport": "stdio", "restarts": 0, "error": None}
        assert body["servers"]["bad"]["state"] == "failed"
    config = write_config(tmp_path / "mcp.json", {"ok": misbehaving(), "bad": broken})
    with serve_http(config) as served:
        answer = httpx.get(served.health_url, timeout=10)
        assert answer.status_code == 503, "none is required: every enabled server counts"
        assert "cannot open the database" in (answer.json()["servers"]["bad"]["error"] or "")


@pytest.mark.anyio
async def test_with_a_token_mcp_answers_401_without_it_and_healthz_hides_error_texts(tmp_path: Path) -> None:
    broken = misbehaving("--exit-before-handshake", "3")
    config = write_config(tmp_path / "mcp.json", {"ok": misbehaving(), "bad": broken})
    with serve_http(config, "--token-env", "GATEWAY_TOKEN", env={"GATEWAY_TOKEN": TOKEN}) as served:
        init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}
        assert httpx.post(served.url, json=init, timeout=10).status_code == 401
        wrong = {"Authorization": "Bearer wrong"}
        assert httpx.post(served.url, json=init, headers=wrong, timeout=10).status_code == 401
        anonymous = httpx.get(served.health_url, timeout=10).json()
        assert "error" not in anonymous["servers"]["bad"]
        authorized = httpx.get(served.health_url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10).json()
        assert "cannot open the database" in authorized["servers"]["bad"]["error"]
        async with client(served.url, TOKEN) as session:
            assert text_of(await session.call_tool("ok__echo", {"text": "in"})) == "in"
        assert TOKEN not in served.log()


def test_dns_rebinding_protection_refuses_a_foreign_host_header_on_loopback(tmp_path: Path) -> None:
    config = write_config(tmp_path / "mcp.json", {"ok": misbehaving()})
    with serve_http(config) as served:
        init = {"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {}}
        headers = {"Host": "evil.example:80", "Accept": "application/json, text/event-stream"}
        assert httpx.post(served.url, json=init, headers=headers, timeout=10).status_code in (403, 421)


@pytest.mark.anyio
async def test_sighup_reload_starts_added_stops_removed_and_keeps_an_unchanged_server_running(tmp_path: Path) -> None:
    config = write_config(tmp_path / "mcp.json", {"keep": misbehaving(), "gone": misbehaving()})
    inbox = Inbox()
    with serve_http(config) as served:
        async with client(served.url, message_handler=inbox.message_handler) as session:
            keep_pid = int(text_of(await session.call_tool("keep__pid", {})))
            gone_pid = int(text_of(await session.call_tool("gone__pid", {})))
            write_config(config, {"keep": misbehaving(), "added": demo("added")})
            served.process.send_signal(signal.SIGHUP)
            with anyio.fail_after(30):
                while "added__echo" not in (names := await tool_names(session)) or "gone__pid" in names:
                    await anyio.sleep(0.1)
            assert int(text_of(await session.call_tool("keep__pid", {}))) == keep_pid, "unchanged: same process"
            assert not pid_alive(gone_pid)
            await inbox.wait_for(lambda: inbox.count(types.ToolListChangedNotification) >= 1)
            assert text_of(await session.call_tool("added__echo", {"text": "new"})) == "new"
        assert "reloaded" in served.log()


@pytest.mark.anyio
async def test_a_broken_new_config_is_rejected_with_a_log_line_and_the_old_one_keeps_running(tmp_path: Path) -> None:
    config = write_config(tmp_path / "mcp.json", {"keep": misbehaving()})
    with serve_http(config) as served:
        async with client(served.url) as session:
            pid = text_of(await session.call_tool("keep__pid", {}))
            config.write_text('{"mcpServers": {"keep": ')
            served.process.send_signal(signal.SIGHUP)
            deadline = time.monotonic() + 15
            while "rejected" not in served.log() and time.monotonic() < deadline:
                await anyio.sleep(0.1)
            assert "rejected" in served.log() and "invalid JSON" in served.log()
            assert text_of(await session.call_tool("keep__pid", {})) == pid


@pytest.mark.anyio
async def test_watch_reloads_when_the_config_file_changes(tmp_path: Path) -> None:
    config = write_config(tmp_path / "mcp.json", {"one": misbehaving()})
    with serve_http(config, "--watch") as served:
        async with client(served.url) as session:
            assert "two__echo" not in await tool_names(session)
            await anyio.sleep(0.5)  # the watcher starts after the servers
            write_config(config, {"one": misbehaving(), "two": misbehaving()})
            with anyio.fail_after(30):
                while "two__echo" not in await tool_names(session):
                    await anyio.sleep(0.2)


@pytest.mark.anyio
async def test_a_gateway_serves_as_a_server_inside_a_server_group(tmp_path: Path) -> None:
    from mcp_connections import ServerGroup

    inner = write_config(tmp_path / "inner.json", {"misb": misbehaving(), "back": backend("back", tmp_path)})
    outer = {"mcpServers": {"gw": {"command": str(SCRIPT), "args": ["serve", str(inner)]}}}
    async with ServerGroup.from_config(outer) as group:
        names = [entry.name for entry in await group.tools()]  # type: ignore[attr-defined]
        assert "gw__misb__echo" in names and "gw__back__pid" in names
        result = await group.call("gw__misb__echo", {"text": "deep"})  # type: ignore[attr-defined]
        assert text_of(result) == "deep"

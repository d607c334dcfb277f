"""OAuth end to end against a real MCP server on loopback that requires it (tests/servers/oauth_server.py).

The "browser" is headless: it follows the authorization server's redirect to the library's own loopback
callback server, so the whole default path runs (discovery, registration, PKCE, the callback, the token
exchange, the store). Nothing is faked.
"""

from __future__ import annotations

import json
import logging
import os
import stat
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest

from mcp_connections import (
    AuthError,
    FileTokenStore,
    ManagedSession,
    OAuth,
    RestartPolicy,
    SseConnectionManager,
    StreamableHttpConnectionManager,
)

from .helpers import SERVERS
from .helpers.remote import _read_port, free_port

ROOT = Path(__file__).parent.parent


@dataclass
class OAuthServer:
    port: int
    transport: str
    state: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}" + ("/sse" if self.transport == "sse" else "/mcp")

    def start(self, expires_in: int = 3600) -> None:
        command = [sys.executable, str(SERVERS / "oauth_server.py"), "--transport", self.transport]
        command += ["--port", str(self.port), "--state", str(self.state), "--expires-in", str(expires_in)]
        process = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE)
        self.processes.append(process)
        assert _read_port(process) == self.port

    def kill(self) -> None:
        process = self.processes[-1]
        process.kill()
        process.wait(timeout=10)

    def stats(self) -> dict[str, int]:
        return dict(httpx2.get(f"http://127.0.0.1:{self.port}/test/stats").json())

    def secrets(self) -> list[str]:
        return list(httpx2.get(f"http://127.0.0.1:{self.port}/test/secrets").json())

    def revoke(self) -> None:
        httpx2.post(f"http://127.0.0.1:{self.port}/test/revoke")


@contextmanager
def oauth_server(tmp_path: Path, transport: str = "streamable-http", expires_in: int = 3600) -> Iterator[OAuthServer]:
    server = OAuthServer(free_port(), transport, tmp_path / "server-state.json")
    server.start(expires_in)
    try:
        yield server
    finally:
        for process in server.processes:
            process.kill()
            process.wait(timeout=10)
            assert process.stdout is not None
            process.stdout.close()


class HeadlessBrowser:
    """Follows the sign-in redirects to the loopback callback, as a browser would; counts sign-ins.

    It uses urllib, which logs nothing: a real browser is another process, and what it sees (the code in
    the redirect's Location) never reaches this process's logging, which the leak test captures.
    """

    def __init__(self) -> None:
        self.visits = 0

    async def __call__(self, url: str) -> None:
        self.visits += 1
        await anyio.to_thread.run_sync(visit, url)


def visit(url: str) -> None:
    with urllib.request.urlopen(url, timeout=10) as page:
        page.read()


def oauth(store_dir: Path, browser: HeadlessBrowser, **options: Any) -> OAuth:
    return OAuth(store=FileTokenStore(store_dir), redirect_handler=browser, callback_timeout=20, **options)


@pytest.mark.anyio
@pytest.mark.parametrize("transport", ["streamable-http", "sse"])
async def test_a_session_signs_in_through_the_loopback_callback_and_stores_the_tokens_0600(
    tmp_path: Path, transport: str
) -> None:
    browser = HeadlessBrowser()
    with oauth_server(tmp_path, transport) as server:
        manager_class = SseConnectionManager if transport == "sse" else StreamableHttpConnectionManager
        manager = manager_class(server.url, auth=oauth(tmp_path / "tokens", browser))
        async with ManagedSession(manager, init_timeout=30) as session:
            result = await session.call_tool("echo", {"text": "hi"})
            assert result.content[0].text == "hi"  # type: ignore[union-attr]
        assert browser.visits == 1
        assert server.stats()["authorize"] == 1
    path = FileTokenStore(tmp_path / "tokens").path(server.url)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    entry = json.loads(path.read_text())
    assert entry["server_url"] == server.url and entry["tokens"]["access_token"]


@pytest.mark.anyio
async def test_a_managed_session_restarts_over_oauth_without_asking_again(tmp_path: Path) -> None:
    browser = HeadlessBrowser()
    with oauth_server(tmp_path) as server:
        manager = StreamableHttpConnectionManager(server.url, auth=oauth(tmp_path / "tokens", browser))
        policy = RestartPolicy(backoff_initial=0.1, backoff_max=0.5, max_restarts=20)
        async with ManagedSession(manager, init_timeout=30, restart=policy) as session:
            await session.call_tool("echo", {"text": "before"})
            server.kill()
            server.start()  # same port, same issued tokens
            with anyio.fail_after(30):
                while True:
                    try:
                        result = await session.call_tool("echo", {"text": "after"}, timeout=5)
                        break
                    except Exception:
                        await anyio.sleep(0.2)
            assert result.content[0].text == "after"  # type: ignore[union-attr]
            assert session.restarts >= 1
        assert browser.visits == 1
        assert server.stats()["authorize"] == 1


@pytest.mark.anyio
async def test_a_new_process_reuses_stored_tokens_and_refreshes_an_expired_one_before_asking(tmp_path: Path) -> None:
    browser = HeadlessBrowser()
    with oauth_server(tmp_path, expires_in=2) as server:
        first = StreamableHttpConnectionManager(server.url, auth=oauth(tmp_path / "tokens", browser))
        async with ManagedSession(first, init_timeout=30) as session:
            await session.list_tools()
        await anyio.sleep(2.5)  # the access token has expired; the refresh token has not
        second = StreamableHttpConnectionManager(server.url, auth=oauth(tmp_path / "tokens", browser))
        async with ManagedSession(second, init_timeout=30) as session:
            await session.list_tools()
        stats = server.stats()
    assert browser.visits == 1
    assert stats["authorize"] == 1 and stats["refresh"] == 1
    assert stats["rejected"] == 1  # only the very first, unauthenticated request


@pytest.mark.anyio
async def test_a_401_mid_session_refreshes_the_token_once_and_the_call_goes_through(tmp_path: Path) -> None:
    browser = HeadlessBrowser()
    with oauth_server(tmp_path) as server:
        manager = StreamableHttpConnectionManager(server.url, auth=oauth(tmp_path / "tokens", browser))
        async with ManagedSession(manager, init_timeout=30) as session:
            await session.list_tools()
            server.revoke()  # every access token dies; the refresh token still works
            result = await session.call_tool("echo", {"text": "still here"})
            assert result.content[0].text == "still here"  # type: ignore[union-attr]
            assert session.restarts == 0
        stats = server.stats()
    assert browser.visits == 1
    assert stats["refresh"] == 1 and stats["authorize"] == 1


@pytest.mark.anyio
async def test_a_sign_in_nobody_finishes_ends_in_auth_error_within_the_callback_timeout(tmp_path: Path) -> None:
    async def nobody(url: str) -> None:
        pass  # the user never comes back from the browser

    with oauth_server(tmp_path) as server:
        auth = OAuth(store=FileTokenStore(tmp_path / "tokens"), redirect_handler=nobody, callback_timeout=1)
        manager = StreamableHttpConnectionManager(server.url, auth=auth)
        with anyio.fail_after(20), pytest.raises(AuthError) as caught:
            await ManagedSession(manager, init_timeout=30).start()
        await manager.stop()
    assert caught.value.needs_login
    assert "timed out" in str(caught.value) and "127.0.0.1" in str(caught.value)


@pytest.mark.anyio
async def test_no_token_code_verifier_or_client_secret_reaches_logs_reprs_or_errors(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    browser = HeadlessBrowser()
    with oauth_server(tmp_path, expires_in=2) as server:
        auth = oauth(tmp_path / "tokens", browser)
        manager = StreamableHttpConnectionManager(server.url, auth=auth)
        texts = [repr(auth)]
        async with ManagedSession(manager, init_timeout=30) as session:
            await session.list_tools()
            server.revoke()
            await session.list_tools()  # 401, refresh
            texts += [repr(session), repr(manager), repr(manager._auth)]
        await anyio.sleep(2.5)
        async with ManagedSession(
            StreamableHttpConnectionManager(server.url, auth=oauth(tmp_path / "tokens", browser)), init_timeout=30
        ) as session:
            await session.list_tools()  # expired: refreshed from the store
        secrets = server.secrets()
    assert len(secrets) >= 7  # client secret, code, verifier, three token pairs
    logged = caplog.text + "\n".join(texts)
    assert "HTTP Request" in caplog.text  # DEBUG logging of the HTTP stack was captured
    leaked = [secret for secret in secrets if secret in logged]
    assert not leaked


def run_cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "mcp_connections", *args], capture_output=True, text=True, timeout=60, env=env, cwd=ROOT
    )


@pytest.mark.timeout(240)
def test_check_says_needs_login_and_login_then_logout_work_from_the_command_line(tmp_path: Path) -> None:
    env = {**os.environ, "XDG_DATA_HOME": str(tmp_path / "data")}
    with oauth_server(tmp_path) as server:
        config = tmp_path / "mcp.json"
        config.write_text(json.dumps({"mcpServers": {"secure": {"url": server.url, "auth": "oauth"}}}))

        checked = run_cli("check", str(config), env=env)
        assert checked.returncode == 1
        assert "needs login" in checked.stdout
        assert f"mcp-connections login {config} secure" in checked.stdout

        login = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mcp_connections",
                "login",
                str(config),
                "secure",
                "--no-browser",
                "--timeout",
                "30",
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=ROOT,
        )
        try:
            assert login.stderr is not None
            lines = [login.stderr.readline(), login.stderr.readline()]
            url = lines[1].strip()
            assert url.startswith(f"http://127.0.0.1:{server.port}/authorize?"), lines
            visit(url)
            out, err = login.communicate(timeout=60)
        finally:
            login.kill()
            login.wait()
        assert login.returncode == 0, err
        assert "Signed in to secure" in out
        store = FileTokenStore(tmp_path / "data" / "mcp-connections" / "tokens")
        assert store.load_sync(server.url) is not None

        checked = run_cli("check", str(config), env=env)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert "needs login" not in checked.stdout

        logout = run_cli("logout", str(config), "secure", env=env)
        assert logout.returncode == 0 and "Signed out of secure" in logout.stdout
        assert store.load_sync(server.url) is None
        assert "needs login" in run_cli("check", str(config), env=env).stdout

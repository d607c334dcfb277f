"""ServerGroup with real stdio servers: concurrent start, isolation, required servers, restarts."""

from __future__ import annotations

import io
import os
import signal
import sys
import time
from typing import Any

import anyio
import pytest

from mcp_connections import (
    ConnectionState,
    GroupStartError,
    ManagedSession,
    RestartPolicy,
    ServerGroup,
    StdioConnectionManager,
)

from .helpers import MISBEHAVING, Snapshot, assert_no_leaks, misbehaving, pid_alive

pytestmark = pytest.mark.anyio


def server(*flags: str, **extra: Any) -> dict[str, Any]:
    return {"command": sys.executable, "args": [str(MISBEHAVING), *flags], **extra}


def config(**servers: dict[str, Any]) -> dict[str, Any]:
    return {"mcpServers": servers}


async def test_ten_servers_start_concurrently_in_far_less_than_ten_times_one() -> None:
    delay = "0.5"
    single = ManagedSession(StdioConnectionManager(misbehaving("--start-delay", delay), errlog=io.StringIO()))
    started = time.monotonic()
    await single.start()
    one = time.monotonic() - started
    await single.stop()
    group = ServerGroup.from_config(
        config(**{f"s{i}": server("--start-delay", delay) for i in range(10)}), errlog=io.StringIO()
    )
    started = time.monotonic()
    async with group:
        ten = time.monotonic() - started
        assert all(s.state is ConnectionState.CONNECTED for s in group.status().values())
    assert ten < 3 * one, f"ten servers took {ten:.2f}s, one took {one:.2f}s"


async def test_a_group_lists_calls_and_reports_status() -> None:
    before = Snapshot.take()
    group = ServerGroup.from_config(
        config(a=server(), b=server("--paginate"), off=server(disabled=True)), errlog=io.StringIO()
    )
    assert group.names == ["a", "b"]
    async with group:
        tools = await group.list_tools()
        assert set(tools) == {"a", "b"}
        assert len(tools["a"]) == len(tools["b"]) == 11
        result = await group.call_tool("b", "add", {"a": 20, "b": 22})
        assert result.content[0].text == "42"  # type: ignore[union-attr]
        status = group.status()
        assert set(status) == {"a", "b"}
        a = status["a"]
        assert a.name == "a" and a.transport == "stdio" and a.state is ConnectionState.CONNECTED
        assert a.ready_in is not None and 0 < a.ready_in < 10
        assert a.pid is not None and pid_alive(a.pid)
        assert a.tools == 11 and a.restarts == 0 and a.error is None
        assert isinstance(group["a"], ManagedSession)
        with pytest.raises(KeyError, match="off"):
            group["off"]
    assert all(s.state is ConnectionState.STOPPED for s in group.status().values())
    await assert_no_leaks(before)


async def test_one_broken_server_is_isolated_and_the_rest_run() -> None:
    group = ServerGroup.from_config(
        config(good=server(), broken=server("--exit-before-handshake", "3"), missing={"command": "no-such-xyz"}),
        errlog=io.StringIO(),
    )
    async with group:
        status = group.status()
        assert status["good"].state is ConnectionState.CONNECTED
        assert status["broken"].state is ConnectionState.FAILED
        assert "exited with code 3" in (status["broken"].error or "")
        assert "cannot open the database" in (status["broken"].error or "")
        assert "no-such-xyz" in (status["missing"].error or "")
        assert status["broken"].ready_in is None
        assert set(await group.list_tools()) == {"good"}


async def test_a_required_server_that_fails_stops_the_group_and_lists_every_failure() -> None:
    before = Snapshot.take()
    group = ServerGroup.from_config(
        config(
            good=server(),
            vital=server("--exit-before-handshake", "5", required=True),
            other=server("--exit-before-handshake", "6"),
        ),
        errlog=io.StringIO(),
    )
    with pytest.raises(GroupStartError) as caught:
        await group.start()
    assert set(caught.value.failures) == {"vital", "other"}
    assert "vital" in str(caught.value) and "other" in str(caught.value)
    assert group["good"].state is ConnectionState.STOPPED
    await assert_no_leaks(before)


async def test_a_crash_inside_a_group_is_restarted_without_touching_the_others() -> None:
    policy = {"max_restarts": 3, "backoff_initial": 0.05, "jitter": 0}
    group = ServerGroup.from_config(config(a=server(restart=policy), b=server(restart="no")), errlog=io.StringIO())
    async with group:
        pid_a, pid_b = group.status()["a"].pid, group.status()["b"].pid
        assert pid_a is not None and pid_b is not None
        os.kill(pid_a, signal.SIGKILL)
        with anyio.fail_after(5):
            while group.status()["a"].restarts < 1 or group["a"].state is not ConnectionState.CONNECTED:
                await anyio.sleep(0.01)
        assert group.status()["a"].pid != pid_a
        assert group.status()["b"].pid == pid_b and group["b"].restarts == 0
        result = await group.call_tool("a", "echo", {"text": "back"})
        assert result.content[0].text == "back"  # type: ignore[union-attr]


async def test_group_defaults_apply_unless_an_entry_says_otherwise() -> None:
    group = ServerGroup.from_config(
        config(a=server(), b=server(request_timeout=7, restart="no")),
        restart=RestartPolicy(max_restarts=1),
        request_timeout=3,
        errlog=io.StringIO(),
    )
    assert group["a"].request_timeout == 3 and group["a"].restart_policy == RestartPolicy(max_restarts=1)
    assert group["b"].request_timeout == 7 and group["b"].restart_policy is None


async def test_stop_stops_every_server_concurrently_within_the_timeout() -> None:
    group = ServerGroup.from_config(
        config(**{f"s{i}": server("--ignore-eof-and-sigterm") for i in range(4)}), errlog=io.StringIO()
    )
    await group.start()
    pids = [s.pid for s in group.status().values()]
    started = time.monotonic()
    await group.stop(timeout=1)
    assert time.monotonic() - started < 1.6
    assert not any(pid_alive(p) for p in pids if p is not None)


async def test_stderr_of_group_servers_goes_to_errlog_prefixed_by_name() -> None:
    errlog = io.StringIO()
    async with ServerGroup.from_config(config(loud=server()), errlog=errlog) as group:
        await group.call_tool("loud", "stderr", {"text": "hello from loud"})
        with anyio.fail_after(5):
            while "hello from loud" not in errlog.getvalue():
                await anyio.sleep(0.01)
    assert "[loud] hello from loud\n" in errlog.getvalue()


async def test_a_url_without_a_transport_falls_back_to_sse_and_says_so() -> None:
    import subprocess

    from .helpers.remote import _read_port

    process = subprocess.Popen(
        [sys.executable, str(MISBEHAVING.parent / "http_server.py"), "--transport", "sse", "--sse-path", "/events"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
    )
    try:
        port = _read_port(process)
        group = ServerGroup.from_config(config(old={"url": f"http://127.0.0.1:{port}/events"}), errlog=io.StringIO())
        async with group:
            status = group.status()["old"]
            assert status.state is ConnectionState.CONNECTED, status.error
            assert status.transport == "sse"
            result = await group.call_tool("old", "echo", {"text": "via sse"})
            assert result.content[0].text == "via sse"  # type: ignore[union-attr]
    finally:
        process.kill()
        process.wait()
        assert process.stdout is not None
        process.stdout.close()

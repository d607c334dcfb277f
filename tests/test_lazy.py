"""Lazy servers and idle stop, with real servers: started on first use (once), stopped when idle, restarted on use."""

from __future__ import annotations

import io
import logging
import sys
import textwrap
from pathlib import Path
from typing import Any

import anyio
import psutil
import pytest

from mcp_connections import (
    BlockingGroup,
    ConfigError,
    ConnectError,
    ConnectionState,
    ServerGroup,
)
from mcp_connections.config import parse_config

from .helpers import MISBEHAVING, Snapshot, assert_no_leaks, live_children, pid_alive

pytestmark = pytest.mark.anyio

# How long a state change the library makes on its own (an idle stop, a start) may take here (3x for CI).
DEADLINE = 10.0


def server(*flags: str, **extra: Any) -> dict[str, Any]:
    return {"command": sys.executable, "args": [str(MISBEHAVING), *flags], **extra}


def group_of(servers: dict[str, dict[str, Any]], **options: Any) -> ServerGroup:
    return ServerGroup.from_config({"mcpServers": servers}, errlog=io.StringIO(), **options)


def text(result: Any) -> str:
    return result.content[0].text  # type: ignore[no-any-return]


def running_servers() -> list[psutil.Process]:
    """Our child processes that are servers (not zombies waiting to be reaped)."""
    return [p for p in live_children() if pid_alive(p.pid)]


async def eventually(condition: Any, timeout: float = DEADLINE) -> None:
    with anyio.fail_after(timeout):
        while not condition():
            await anyio.sleep(0.02)


def fails_first_time(tmp_path: Path) -> dict[str, Any]:
    """A server whose first start exits before the handshake; every later start is the misbehaving server."""
    script = tmp_path / "fails_first.py"
    script.write_text(
        textwrap.dedent(
            f"""
            import os, sys
            marker = {str(tmp_path / "ran")!r}
            if not os.path.exists(marker):
                open(marker, "w").close()
                sys.stderr.write("first run: cannot open the database\\n")
                sys.exit(3)
            os.execv(sys.executable, [sys.executable, {str(MISBEHAVING)!r}])
            """
        )
    )
    return {"command": sys.executable, "args": [str(script)]}


# -- config --------------------------------------------------------------------------------------------------


def test_start_and_idle_timeout_are_config_keys_checked_with_the_server_and_field_named() -> None:
    configs = parse_config(
        {"mcpServers": {"a": {"command": "x", "start": "lazy", "idle_timeout": 30}, "b": {"command": "x"}}}
    )
    assert configs["a"].start == "lazy" and configs["a"].idle_timeout == 30.0
    assert configs["b"].start is None and configs["b"].idle_timeout is None
    with pytest.raises(ConfigError, match=r"server 'a'.*'start'.*\"eager\" or \"lazy\"|'a'.*start"):
        parse_config({"mcpServers": {"a": {"command": "x", "start": "later"}}})
    with pytest.raises(ConfigError, match="idle_timeout") as caught:
        parse_config({"mcpServers": {"a": {"command": "x", "idle_timeout": 0}}})
    assert caught.value.server == "a"
    with pytest.raises(ConfigError, match="lazy server cannot be required") as caught:
        parse_config({"mcpServers": {"a": {"command": "x", "start": "lazy", "required": True}}})
    assert "start" in str(caught.value)
    with pytest.raises(ConfigError, match="idle_timeout"):
        ServerGroup({}, idle_timeout=-1)


def test_group_lazy_makes_every_server_lazy_but_required_and_explicitly_eager_ones() -> None:
    group = group_of(
        {"plain": server(), "needed": server(required=True), "eager": server(start="eager")},
        lazy=True,
    )
    assert {name: status.lazy for name, status in group.status().items()} == {
        "plain": True,
        "needed": False,
        "eager": False,
    }


# -- lazy start ----------------------------------------------------------------------------------------------


async def test_start_leaves_a_lazy_server_down_and_its_first_call_starts_it() -> None:
    before = Snapshot.take()
    group = group_of({"eager": server(), "lazy": server(start="lazy")}, cache=False)
    async with group:
        status = group.status()["lazy"]
        assert status.state is ConnectionState.IDLE and status.lazy and status.pid is None
        assert len(running_servers()) == 1  # the eager one only
        result = await group.call("lazy__add", {"a": 2, "b": 3})  # not listed yet: the call's lookup starts it
        assert text(result) == "5"
        status = group.status()["lazy"]
        assert status.state is ConnectionState.CONNECTED and status.ready_in is not None and status.tools == 11
        assert len(running_servers()) == 2
    assert group.status()["lazy"].state is ConnectionState.STOPPED
    await assert_no_leaks(before)


async def test_a_request_straight_to_a_lazy_servers_session_starts_it_too() -> None:
    async with group_of({"lazy": server(start="lazy")}, cache=False) as group:
        assert text(await group.call_tool("lazy", "echo", {"text": "hi"})) == "hi"
        assert text(await group["lazy"].call_tool("echo", {"text": "again"})) == "again"
        assert group["lazy"].state is ConnectionState.CONNECTED


async def test_the_first_tools_call_starts_lazy_servers_that_have_no_cached_list() -> None:
    async with group_of({"one": server(start="lazy"), "two": server(start="lazy")}, cache=False) as group:
        assert not running_servers()
        tools = await group.tools()
        assert len(tools) == 22 and {t.server for t in tools} == {"one", "two"}
        assert all(s.state is ConnectionState.CONNECTED for s in group.status().values())


async def test_concurrent_first_uses_start_a_lazy_server_once() -> None:
    async with group_of({"lazy": server("--start-delay", "0.5", start="lazy")}, cache=False) as group:
        pids: list[str] = []

        async def use() -> None:
            pids.append(text(await group.call_tool("lazy", "pid")))

        async with anyio.create_task_group() as tg:
            for _ in range(10):
                tg.start_soon(use)
            tg.start_soon(group.tools)
        assert len(pids) == 10 and len(set(pids)) == 1
        assert len(running_servers()) == 1
        assert group["lazy"].restarts == 0


async def test_a_lazy_server_that_fails_on_first_use_raises_connect_error_and_the_next_use_tries_again(
    tmp_path: Path,
) -> None:
    before = Snapshot.take()
    async with group_of({"flaky": {**fails_first_time(tmp_path), "start": "lazy"}}, cache=False) as group:
        with pytest.raises(ConnectError, match="flaky") as caught:
            await group.call_tool("flaky", "echo", {"text": "x"})
        assert caught.value.server == "flaky" and caught.value.__cause__ is not None
        status = group.status()["flaky"]
        assert status.state is ConnectionState.FAILED and "exited with code 3" in (status.error or "")
        assert "cannot open the database" in (status.error or "")
        assert text(await group.call_tool("flaky", "echo", {"text": "second"})) == "second"
        status = group.status()["flaky"]
        assert status.state is ConnectionState.CONNECTED and status.error is None
    await assert_no_leaks(before)


async def test_concurrent_first_uses_of_a_failing_lazy_server_share_one_failed_start(tmp_path: Path) -> None:
    async with group_of({"flaky": {**fails_first_time(tmp_path), "start": "lazy"}}, cache=False) as group:
        errors: list[BaseException] = []

        async def use() -> None:
            try:
                await group.call_tool("flaky", "echo", {"text": "x"})
            except ConnectError as exc:
                errors.append(exc)

        async with anyio.create_task_group() as tg:
            for _ in range(5):
                tg.start_soon(use)
        assert len(errors) == 5  # one start that failed, not a second start that would have succeeded
        assert text(await group.call_tool("flaky", "echo", {"text": "then"})) == "then"


async def test_a_lazy_server_that_keeps_failing_is_tried_within_its_restart_policy() -> None:
    policy = {"max_restarts": 1, "window": 60, "backoff_initial": 0.05, "jitter": 0}
    broken = server("--exit-before-handshake", "3", start="lazy", restart=policy)
    async with group_of({"broken": broken}, cache=False) as group:
        with pytest.raises(ConnectError, match="exited with code 3"):
            await group.call_tool("broken", "echo")
        with pytest.raises(ConnectError, match="exited with code 3"):  # tried again, after the backoff
            await group.call_tool("broken", "echo")
        started = anyio.current_time()
        with pytest.raises(ConnectError, match="allows no more tries") as caught:
            await group.call_tool("broken", "echo")
        assert anyio.current_time() - started < 1.0  # at once, without starting the server
        assert "exited with code 3" in str(caught.value.__cause__)
        assert group.status()["broken"].state is ConnectionState.FAILED


async def test_a_stopped_group_starts_no_lazy_server_and_lists_nothing() -> None:
    group = group_of({"lazy": server(start="lazy")}, cache=False)
    async with group:
        pass
    assert await group.tools() == []
    with pytest.raises(RuntimeError, match="not running"):
        await group.call_tool("lazy", "echo")
    assert not running_servers()


# -- idle stop -----------------------------------------------------------------------------------------------


async def test_an_idle_server_is_stopped_keeps_its_tools_and_starts_again_on_the_next_call(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "mcp_connections")
    before = Snapshot.take()
    changes: list[object] = []
    async with group_of({"idler": server(idle_timeout=0.5)}, cache=False) as group:
        tools = await group.tools()
        group.on_tools_changed(changes.append)
        first_pid = int(text(await group.call("idler__pid")))
        await eventually(lambda: group.status()["idler"].idle)
        status = group.status()["idler"]
        assert status.state is ConnectionState.STOPPED and status.error is None and not status.lazy
        assert not pid_alive(first_pid) and not running_servers()
        assert await group.tools() == tools  # still in the catalogue, and nothing was started for it
        assert not running_servers()
        assert any("no request for 0.5s" in r.getMessage() for r in caplog.records)
        second_pid = int(text(await group.call("idler__pid")))
        assert second_pid != first_pid
        status = group.status()["idler"]
        assert status.state is ConnectionState.CONNECTED and not status.idle
        await anyio.sleep(0.2)
        assert changes == []  # the same tools came back: nothing changed
    await assert_no_leaks(before)


async def test_a_request_in_flight_keeps_an_idle_timeout_from_stopping_the_server() -> None:
    async with group_of({"busy": server(idle_timeout=0.3)}, cache=False) as group:
        assert text(await group.call("busy__sleep", {"seconds": 1.0})) == "slept"
        assert group.status()["busy"].state is ConnectionState.CONNECTED
        await eventually(lambda: group.status()["busy"].idle)


async def test_a_call_racing_an_idle_stop_waits_for_the_restart_and_succeeds() -> None:
    # A server that ignores stdin EOF and SIGTERM takes its stop budget to go: a wide window for the race.
    async with group_of({"slow": server("--ignore-eof-and-sigterm", idle_timeout=0.3)}, cache=False) as group:
        first = text(await group.call("slow__pid"))
        await eventually(lambda: group["slow"].state is ConnectionState.STOPPING)
        second = text(await group.call("slow__pid"))
        assert second != first
        assert group.status()["slow"].state is ConnectionState.CONNECTED


async def test_calls_spaced_around_the_idle_timeout_never_fail() -> None:
    async with group_of({"edge": server(idle_timeout=0.2)}, cache=False) as group:
        for index in range(12):
            await anyio.sleep(0.15 + 0.01 * index)  # from well inside the timeout to just past it
            assert text(await group.call("edge__echo", {"text": str(index)})) == str(index)


async def test_a_group_idle_timeout_applies_to_every_server_an_entry_wins() -> None:
    async with group_of({"short": server(), "long": server(idle_timeout=60)}, idle_timeout=0.3, cache=False) as group:
        await group.tools()
        await eventually(lambda: group.status()["short"].idle)
        assert group.status()["long"].state is ConnectionState.CONNECTED


async def test_a_lazy_server_with_an_idle_timeout_goes_back_to_sleep_after_use() -> None:
    async with group_of({"nap": server(start="lazy", idle_timeout=0.3)}, cache=False) as group:
        assert text(await group.call_tool("nap", "echo", {"text": "a"})) == "a"
        await eventually(lambda: group.status()["nap"].idle)
        assert len(await group.tools()) == 11  # kept while it sleeps
        assert not running_servers()
        assert text(await group.call("nap__echo", {"text": "b"})) == "b"


# -- the blocking API ----------------------------------------------------------------------------------------


def test_a_blocking_group_starts_lazy_servers_on_first_use() -> None:
    config = {"mcpServers": {"eager": server(), "lazy": server()}}
    with BlockingGroup.from_config(config, lazy=True, errlog=None, cache=False) as group:
        # "eager" is lazy as well here: the group's lazy=True covers every server
        assert all(s.state is ConnectionState.IDLE for s in group.status().values())
        assert text(group.call_tool("lazy", "add", {"a": 1, "b": 2})) == "3"
        assert group.status()["lazy"].state is ConnectionState.CONNECTED
        assert group.status()["eager"].state is ConnectionState.IDLE
        assert len(group.tools()) == 22


def test_the_readme_lazy_example_runs_and_prints_what_it_says() -> None:
    import re
    import subprocess

    readme = (Path(__file__).parent.parent / "README.md").read_text()
    section = readme.split("### Lazy servers, idle stop and the catalogue cache", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None
    result = subprocess.run([sys.executable, "-c", code.group(1)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() in (["idle", "5", "connected"], ["idle", "5.0", "connected"])


async def test_a_call_by_a_prefixed_name_starts_only_the_lazy_server_it_names() -> None:
    async with group_of({"a": server(start="lazy"), "b": server(start="lazy")}, cache=False) as group:
        assert text(await group.call("b__echo", {"text": "only b"})) == "only b"
        assert group.status()["a"].state is ConnectionState.IDLE
        assert group.status()["b"].state is ConnectionState.CONNECTED
        assert len(running_servers()) == 1

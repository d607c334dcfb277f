"""The blocking API from plain synchronous code: real servers, many threads, running loops, Ctrl-C, exit."""

from __future__ import annotations

import asyncio
import gc
import io
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from mcp.shared.exceptions import MCPError

from mcp_connections import (
    ConnectionLostError,
    ConnectionState,
    GroupStartError,
    HandshakeTimeoutError,
    ManagedSession,
    RequestTimeoutError,
    ServerExitedError,
    StdioConnectionManager,
)
from mcp_connections.blocking import BlockingGroup, BlockingSession

from .helpers import MISBEHAVING, misbehaving, open_fds, pid_alive

ROOT = Path(__file__).parent.parent
SCRIPTS = Path(__file__).parent / "scripts"


def stdio(*flags: str) -> StdioConnectionManager:
    return StdioConnectionManager(misbehaving(*flags), errlog=io.StringIO())


def text(result: object) -> str:
    return result.content[0].text  # type: ignore[attr-defined, no-any-return]


def server(*flags: str, **extra: Any) -> dict[str, Any]:
    return {"command": sys.executable, "args": [str(MISBEHAVING), *flags], **extra}


def wait_until(condition: Any, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.fixture(autouse=True)
def threads_and_fds_come_back() -> Iterator[None]:
    """Every test: once closed, the loop thread (and asyncio's waitpid threads) and descriptors are gone."""
    threads, fds = threading.active_count(), open_fds()
    yield
    gc.collect()
    assert wait_until(lambda: threading.active_count() <= threads), f"threads left: {threading.enumerate()}"
    assert open_fds() <= fds, f"descriptors grew: {fds} -> {open_fds()}"


def test_a_blocking_session_calls_a_stdio_server_from_plain_synchronous_code() -> None:
    with BlockingSession(stdio("--paginate")) as session:
        assert session.state is ConnectionState.CONNECTED
        assert session.initialize_result is not None
        assert session.initialize_result.server_info.name == "misbehaving"
        assert isinstance(session.managed_session, ManagedSession)
        assert session.session is not None and session.restarts == 0 and session.error is None
        assert "misbehaving.py" in session.name and session.manager.state is ConnectionState.CONNECTED
        tools = session.list_tools()
        assert len(tools) == 11 and tools[0].name == "echo"
        assert text(session.call_tool("add", {"a": 1, "b": 2})) == "3"
        assert text(session.call_tool("sleep", {"seconds": 0.1}, timeout=5)) == "slept"
        assert session.list_resources() == []
        assert session.list_prompts() == []
        session.send_ping()
    assert session.state is ConnectionState.STOPPED


def test_start_stop_and_close_without_with() -> None:
    session = BlockingSession(stdio())
    changes: list[tuple[ConnectionState, ConnectionState]] = []
    session.on_state_change(lambda old, new: changes.append((old, new)))
    with pytest.raises(RuntimeError, match="call start"):
        session.call_tool("echo", {"text": "too early"})
    assert not any(t.name.startswith("mcp-connections loop") for t in threading.enumerate()), "no thread before start"
    result = session.start()
    assert result.server_info.name == "misbehaving"
    with pytest.raises(RuntimeError, match="call stop"):
        session.start()
    first = session.manager.pid
    session.stop(timeout=5)
    assert session.state is ConnectionState.STOPPED and first is not None and not pid_alive(first)
    session.start()  # the same loop thread serves a second run
    assert text(session.call_tool("echo", {"text": "again"})) == "again"
    session.close()
    session.close()  # idempotent
    session.stop()  # a no-op once closed
    assert session.state is ConnectionState.STOPPED
    assert (ConnectionState.CONNECTING, ConnectionState.CONNECTED) in changes
    with pytest.raises(RuntimeError, match="closed"):
        session.call_tool("echo", {"text": "too late"})
    with pytest.raises(RuntimeError, match="closed"):
        session.start()


def test_errors_are_the_types_the_async_api_raises_never_exception_groups() -> None:
    with BlockingSession(stdio(), request_timeout=0.3) as session:
        with pytest.raises(RequestTimeoutError):
            session.call_tool("sleep", {"seconds": 10})
        with pytest.raises(MCPError):
            session.call_tool("no-such-tool")
        with pytest.raises(ConnectionLostError) as caught:
            session.call_tool("crash", {"code": 3})
        assert isinstance(caught.value.__cause__, ServerExitedError)
        assert wait_until(lambda: session.state is ConnectionState.FAILED)
        with pytest.raises(ConnectionLostError):
            session.list_tools()
    started = time.monotonic()
    with pytest.raises(HandshakeTimeoutError) as handshake:
        with BlockingSession(stdio("--hang-on-initialize"), init_timeout=0.5):
            pytest.fail("the handshake cannot succeed")
    assert not isinstance(handshake.value, BaseExceptionGroup)
    assert time.monotonic() - started < 5


def test_eight_threads_call_at_once_and_each_gets_its_own_answers() -> None:
    with BlockingSession(stdio()) as session:
        barrier = threading.Barrier(8)
        failures: list[BaseException] = []

        def worker(index: int) -> None:
            try:
                barrier.wait(timeout=10)
                for round_ in range(10):
                    assert text(session.call_tool("echo", {"text": f"{index}/{round_}"})) == f"{index}/{round_}"
                    assert text(session.call_tool("add", {"a": index, "b": round_})) == str(index + round_)
                assert text(session.call_tool("sleep", {"seconds": 0.5})) == "slept"
            except BaseException as exc:
                failures.append(exc)

        started = time.monotonic()
        threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert not failures, failures
        assert time.monotonic() - started < 4, "the eight sleeps ran one after another"


def test_a_call_from_inside_a_running_event_loop_works() -> None:
    async def notebook_cell() -> str:
        # Like a notebook: this thread runs an event loop, and the blocking API is called from a coroutine.
        with BlockingSession(stdio()) as session:
            return text(session.call_tool("echo", {"text": "from a loop"}))

    assert asyncio.run(notebook_cell()) == "from a loop"


def test_a_state_callback_that_calls_a_blocking_method_gets_an_error_not_a_deadlock() -> None:
    seen: list[BaseException] = []
    with BlockingSession(stdio()) as session:

        def callback(old: ConnectionState, new: ConnectionState) -> None:
            try:
                session.send_ping()
            except RuntimeError as exc:
                seen.append(exc)

        session.on_state_change(callback)
        session.stop()
    assert seen and "loop that serves it" in str(seen[0])


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="needs the main thread")
def test_ctrl_c_during_a_call_cancels_that_call_only() -> None:
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.skip("SIGINT does not raise KeyboardInterrupt here")
    manager = stdio()
    with BlockingSession(manager) as session:
        main = threading.main_thread().ident
        assert main is not None
        timer = threading.Timer(0.5, signal.pthread_kill, (main, signal.SIGINT))
        started = time.monotonic()
        timer.start()
        try:
            with pytest.raises(KeyboardInterrupt):
                session.call_tool("sleep", {"seconds": 30})
        finally:
            timer.join()
        assert time.monotonic() - started < 2
        assert wait_until(lambda: "cancelled" in manager.stderr_tail), "the server was not told"
        assert session.state is ConnectionState.CONNECTED
        assert text(session.call_tool("echo", {"text": "still usable"})) == "still usable"


@pytest.mark.skipif(threading.current_thread() is not threading.main_thread(), reason="needs the main thread")
def test_ctrl_c_during_start_stops_the_half_started_server() -> None:
    if signal.getsignal(signal.SIGINT) is not signal.default_int_handler:
        pytest.skip("SIGINT does not raise KeyboardInterrupt here")
    manager = stdio("--hang-on-initialize")
    session = BlockingSession(manager, init_timeout=30)
    main = threading.main_thread().ident
    assert main is not None
    timer = threading.Timer(0.5, signal.pthread_kill, (main, signal.SIGINT))
    started = time.monotonic()
    timer.start()
    try:
        with pytest.raises(KeyboardInterrupt):
            session.start()
    finally:
        timer.join()
    assert time.monotonic() - started < 2
    assert wait_until(lambda: session.state is ConnectionState.STOPPED)
    assert manager.pid is not None and not pid_alive(manager.pid)
    session.close()


def test_a_dropped_session_is_closed_by_the_garbage_collector() -> None:
    session = BlockingSession(stdio())
    session.start()
    pid = int(text(session.call_tool("pid")))
    del session
    gc.collect()
    assert wait_until(lambda: not pid_alive(pid))


def run_script(*args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, str(SCRIPTS / "forget_close.py"), *args], capture_output=True, text=True, timeout=60
    )
    assert result.stdout, result.stderr
    return result


# A server that exits when its stdin closes would die with the interpreter anyway: this one must be stopped.
STUBBORN = "--ignore-eof-and-sigterm"


@pytest.mark.parametrize(("mode", "flags"), [("keep", (STUBBORN,)), ("raise", (STUBBORN,)), ("drop", ())])
def test_an_interpreter_that_exits_without_close_leaves_no_server(mode: str, flags: tuple[str, ...]) -> None:
    result = run_script(mode, *flags)
    lines = result.stdout.split()
    pid = int(lines[0])
    assert result.returncode == (1 if mode == "raise" else 0), result.stderr
    assert wait_until(lambda: not pid_alive(pid), timeout=3), f"server {pid} outlived the interpreter"
    if mode == "drop":
        assert lines[1] == "gone"
    # Nothing but the script's own exception: the clean-up at exit complains about nothing.
    assert result.stderr.count("Traceback") == (1 if mode == "raise" else 0), result.stderr
    assert "Exception ignored" not in result.stderr, result.stderr


def test_a_group_left_open_at_exit_leaves_no_server() -> None:
    result = run_script("group", STUBBORN)
    pids = [int(p) for p in result.stdout.split()]
    assert len(pids) == 2 and result.returncode == 0, result.stderr
    assert wait_until(lambda: not any(pid_alive(p) for p in pids), timeout=3)


def test_a_blocking_group_calls_tools_from_plain_synchronous_code() -> None:
    config = {"mcpServers": {"a": server(), "b": server("--paginate"), "off": server(disabled=True)}}
    with BlockingGroup.from_config(config, errlog=io.StringIO()) as group:
        assert group.names == ["a", "b"] and list(group) == ["a", "b"] and len(group) == 2
        tools = group.list_tools()
        assert set(tools) == {"a", "b"} and len(tools["a"]) == len(tools["b"]) == 11
        assert text(group.call_tool("b", "add", {"a": 20, "b": 22})) == "42"
        status = group.status()
        assert all(s.state is ConnectionState.CONNECTED for s in status.values())
        a = group["a"]
        assert isinstance(a, BlockingSession)
        assert text(a.call_tool("echo", {"text": "member"})) == "member"
        assert a.list_tools()[0].name == "echo"
        a.stop()  # a member's stop (or close) stops that server only
        assert group.status()["a"].state is ConnectionState.STOPPED
        assert group.status()["b"].state is ConnectionState.CONNECTED
        a.start()
        assert text(group.call_tool("a", "echo", {"text": "back"})) == "back"
        with pytest.raises(KeyError, match="off"):
            group["off"]
    assert all(s.state is ConnectionState.STOPPED for s in group.status().values())
    with pytest.raises(RuntimeError, match="closed"):
        group.list_tools()


def test_a_blocking_group_whose_required_server_fails_raises_and_leaves_nothing() -> None:
    config = {"mcpServers": {"good": server(), "vital": server("--exit-before-handshake", "5", required=True)}}
    with pytest.raises(GroupStartError) as caught:
        with BlockingGroup.from_config(config, errlog=io.StringIO()):
            pytest.fail("a required server failed")
    assert set(caught.value.failures) == {"vital"}


def test_many_threads_call_a_blocking_group_at_once() -> None:
    config = {"mcpServers": {"a": server(), "b": server()}}
    with BlockingGroup.from_config(config, errlog=io.StringIO()) as group:
        failures: list[BaseException] = []

        def worker(index: int) -> None:
            try:
                name = "ab"[index % 2]
                for round_ in range(5):
                    assert text(group.call_tool(name, "add", {"a": index, "b": round_})) == str(index + round_)
            except BaseException as exc:
                failures.append(exc)

        threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=30)
        assert not failures, failures


def test_the_readme_sync_example_runs() -> None:
    readme = (ROOT / "README.md").read_text()
    if "\n## Synchronous code" not in readme:
        pytest.skip('README.md has no "## Synchronous code" section yet')
    section = re.split(r"\n## ", readme.split("\n## Synchronous code", 1)[1])[0]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code is not None, 'no ```python block under "## Synchronous code"'
    result = subprocess.run([sys.executable, "-c", code.group(1)], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "5.0"

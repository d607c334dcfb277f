"""The POSIX process-tree backends against real processes: exit seen fast with and without a pidfd, liveness
with and without ``/proc``, a member we may not signal, and stop() meeting a server that exits on its own.

Tests that need Linux (procfs, pidfds, namespaces, capabilities) are marked ``linux``.
"""

from __future__ import annotations

import io
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import anyio
import pytest
from mcp import ClientSession
from mcp.client.stdio import StdioServerParameters
from mcp.shared.exceptions import MCPError

from mcp_connections import ConnectionState, ServerExitedError, StdioConnectionManager, _process

from .helpers import Snapshot, assert_no_leaks, misbehaving, pid_alive

pytestmark = [pytest.mark.anyio, pytest.mark.skipif(sys.platform == "win32", reason="POSIX process groups")]
linux = [pytest.mark.linux, pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux only")]

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = Path(__file__).parent / "scripts"

# The promise for a server's death reaching wait_closed() and pending requests; asserted with room to
# spare on a shared machine (2-3x).
EXIT_SEEN_WITHIN = 0.1
EXIT_SEEN_BOUND = 3 * EXIT_SEEN_WITHIN


def take_pidfds_away(monkeypatch: pytest.MonkeyPatch) -> None:
    """The library finds no ``os.pidfd_open``, as on old kernels and in some sandboxes.

    Only the library's view: asyncio 3.12+ picks a pidfd child watcher once per process, and removing
    ``os.pidfd_open`` under it breaks asyncio itself. A run that removes it for real, asyncio's view included,
    is ``MCP_CONNECTIONS_SIMULATE=no-pidfd`` (see tests/conftest.py and the fault matrix test below).
    """
    if sys.platform.startswith("linux"):
        from mcp_connections._process import _linux

        monkeypatch.setattr(_linux, "open_pidfd", lambda pid: None)


@pytest.fixture(params=["pidfd", "no-pidfd"])
def exit_watcher(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """The exit watcher in use: the platform's own (a pidfd on Linux, a kqueue on macOS), or none of that."""
    if request.param == "no-pidfd":
        take_pidfds_away(monkeypatch)
    elif not hasattr(os, "pidfd_open") and sys.platform.startswith("linux"):
        pytest.skip("this kernel or Python has no pidfd_open")
    return str(request.param)


async def test_a_killed_server_fails_the_pending_request_and_wait_closed_within_100_ms(exit_watcher: str) -> None:
    manager = StdioConnectionManager(misbehaving(), errlog=io.StringIO())
    read, write = await manager.start()
    failed_after: list[float] = []
    try:
        async with ClientSession(read, write) as session:
            await session.initialize()

            async def pending() -> None:
                with pytest.raises(MCPError):
                    await session.call_tool("sleep", {"seconds": 30})
                failed_after.append(time.monotonic() - killed)

            async with anyio.create_task_group() as tg:
                tg.start_soon(pending)
                await anyio.sleep(0.3)
                assert manager.pid is not None
                killed = time.monotonic()
                os.kill(manager.pid, signal.SIGKILL)
                with anyio.fail_after(5):
                    await manager.wait_closed()
                closed_after = time.monotonic() - killed
    finally:
        await manager.stop()
    assert isinstance(manager.error, ServerExitedError) and manager.error.returncode == -signal.SIGKILL
    assert closed_after < EXIT_SEEN_BOUND, f"wait_closed() returned {closed_after * 1000:.0f} ms after the kill"
    assert failed_after[0] < EXIT_SEEN_BOUND, f"the request failed {failed_after[0] * 1000:.0f} ms after the kill"


async def test_without_pidfd_the_exit_watcher_is_a_thread_that_ends_with_the_server(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if sys.platform != "linux":
        pytest.skip("elsewhere the kqueue watcher serves")
    take_pidfds_away(monkeypatch)
    before = Snapshot.take()
    tree = await _process.spawn([sys.executable, "-c", "import sys; sys.exit(7)"], cwd=None, env=dict(os.environ))
    try:
        assert any(t.name.startswith("waitpid-mcp-connections") for t in threading.enumerate())
        with anyio.fail_after(5):
            await tree.wait_exit()
    finally:
        await tree.release()
    assert tree.returncode == 7
    await assert_no_leaks(before)


@pytest.mark.parametrize("proc", ["missing", "empty"])
@pytest.mark.parametrize("mark", [pytest.param(None, marks=linux)])
async def test_with_proc_missing_or_empty_liveness_falls_back_to_killpg(
    proc: str, mark: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from mcp_connections._process import _linux

    hidden = tmp_path / "proc"
    if proc == "empty":
        hidden.mkdir()
    monkeypatch.setattr(_linux, "PROC", hidden)
    tree = await _process.spawn([sys.executable, "-c", "import time; time.sleep(30)"], cwd=None, env=dict(os.environ))
    try:
        assert _linux.scan_group(tree.pid) is None
        assert tree.alive()
        tree.kill()
        with anyio.fail_after(5):
            await tree.wait_exit()
        assert not tree.alive()
    finally:
        tree.kill()
        await tree.release()


@pytest.mark.parametrize("mark", [pytest.param(None, marks=linux)])
async def test_with_proc_hidden_stop_still_kills_the_grandchild(
    mark: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The issue's bug: the /proc scan raised, the kill steps never ran, the grandchild lived on."""
    from mcp_connections._process import _linux

    monkeypatch.setattr(_linux, "PROC", tmp_path / "no-proc")
    pidfile = tmp_path / "pids"
    manager = StdioConnectionManager(misbehaving("--grandchild", "--pidfile", str(pidfile)), errlog=io.StringIO())
    await manager.start()
    with anyio.fail_after(10):
        while not pidfile.exists():
            await anyio.sleep(0.01)
    pid, grandchild = map(int, pidfile.read_text().split())
    started = time.monotonic()
    await manager.stop(timeout=1)
    elapsed = time.monotonic() - started
    # The grandchild's zombie is nobody's to reap here, and killpg() cannot tell it from the living: the stop
    # may spend its whole budget (1 s plus the margin), never more.
    assert elapsed < 1 + 0.5 + 0.5
    assert not pid_alive(pid) and not pid_alive(grandchild)
    assert manager.state is ConnectionState.STOPPED


@pytest.mark.parametrize("exits_after", [0.3, 0.4, 0.5])
async def test_a_server_that_exits_on_its_own_between_two_steps_of_stop_is_left_to_exit(
    exits_after: float, caplog: pytest.LogCaptureFixture
) -> None:
    """stop(timeout=1) closes stdin, waits 0.4 s, sends SIGTERM: the server exits around that moment."""
    code = (
        "import signal, sys, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "sys.stdin.read()\n"
        f"time.sleep({exits_after})\n"
        "sys.exit(5)\n"
    )
    manager = StdioConnectionManager(
        StdioServerParameters(command=sys.executable, args=["-c", code]), errlog=io.StringIO()
    )
    before = Snapshot.take()
    await manager.start()
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="mcp_connections"):
        await manager.stop(timeout=1)
    assert time.monotonic() - started < 1 + 0.5 + 0.5
    assert manager.returncode in (5, -signal.SIGKILL)
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
    await assert_no_leaks(before)


async def test_stop_racing_the_servers_own_crash_returns_in_time_and_leaves_nothing(
    caplog: pytest.LogCaptureFixture,
) -> None:
    for delay in (0.0, 0.005, 0.02):
        manager = StdioConnectionManager(misbehaving(), errlog=io.StringIO())
        read, write = await manager.start()
        before = Snapshot.take()
        async with ClientSession(read, write) as session:
            await session.initialize()

            async def crash(session: ClientSession = session) -> None:
                with pytest.raises(MCPError):
                    await session.call_tool("crash", {"code": 3})

            with caplog.at_level(logging.WARNING, logger="mcp_connections"):
                async with anyio.create_task_group() as tg:
                    tg.start_soon(crash)
                    await anyio.sleep(delay)
                    started = time.monotonic()
                    await manager.stop(timeout=1)
                    assert time.monotonic() - started < 1 + 0.5 + 0.5
        assert manager.state in (ConnectionState.STOPPED, ConnectionState.FAILED)
        assert not [r for r in caplog.records if r.levelno >= logging.WARNING]
        await assert_no_leaks(before, fd_slack=2)


@pytest.mark.parametrize("mark", [pytest.param(None, marks=linux)])
async def test_a_group_member_we_may_not_signal_costs_stop_its_budget_and_is_reported(mark: None) -> None:
    """A real EPERM: the library runs as root without CAP_KILL, and the server's child runs as another user."""
    if os.geteuid() != 0 or subprocess.run(["setpriv", "--version"], capture_output=True).returncode != 0:
        pytest.skip("needs root and setpriv, to run a group member as another user and drop CAP_KILL")
    drop_kill = ["setpriv", "--inh-caps=-kill", "--bounding-set=-kill"]
    result = subprocess.run(
        [*drop_kill, sys.executable, str(SCRIPTS / "eperm_stop.py")], capture_output=True, text=True, timeout=30
    )
    report = json.loads(result.stdout.strip().splitlines()[-1]) if result.stdout.strip() else {}
    try:
        assert result.returncode == 0, result.stderr
        assert report["elapsed"] < 1 + 0.5 + 0.5, report
        assert "may not signal" in report["warning"] and "survived the kill" in report["warning"], report
        assert report["state"] == "stopped"
    finally:
        if report.get("other_user_pid"):
            os.kill(report["other_user_pid"], signal.SIGKILL)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("mode", [pytest.param(mode, marks=linux) for mode in ("no-proc", "no-pidfd")])
def test_the_stdio_fault_matrix_passes_without(mode: str) -> None:
    """tests/faults, unchanged, for stdio, with /proc hidden (a private mount namespace) or os.pidfd_open gone."""
    command = [sys.executable, str(SCRIPTS / "simulate.py"), mode, "tests/faults", "-k", "stdio", "-q", "-x"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=540)
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else result.stderr[-2000:]
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert " passed" in summary and "failed" not in summary, summary

"""``mcp-connections watch``: its pure numbers, its piped form, and the live view in a real terminal (tmux)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import psutil
import pytest

from mcp_connections import ServerGroup
from mcp_connections.cli._output import Output
from mcp_connections.cli._stats import Rolling, ServerView, format_duration, format_latency, one_line, percentile
from mcp_connections.cli.watch import Watch, _split_keys

from .helpers import MISBEHAVING, pid_alive

CLI = [sys.executable, "-m", "mcp_connections.cli"]

# -- the numbers, without an event loop --------------------------------------------------------------------


def test_percentiles_are_by_nearest_rank() -> None:
    values = sorted(float(v) for v in range(1, 101))
    assert percentile(values, 0.5) == 50 and percentile(values, 0.95) == 95 and percentile(values, 1.0) == 100
    assert percentile([7.0], 0.5) == 7.0 and percentile([], 0.5) is None


def test_the_rolling_window_forgets_requests_older_than_a_minute() -> None:
    rolling = Rolling(window=60)
    for second in range(100):
        rolling.add(float(second), duration=second / 1000)
    assert rolling.count(99.0) == 60  # seconds 40..99
    p50, p95 = rolling.percentiles(99.0, 0.5, 0.95)
    assert p50 == pytest.approx(0.069) and p95 == pytest.approx(0.096)
    assert rolling.count(200.0) == 0 and rolling.percentiles(200.0, 0.5) == [None]


def test_a_server_view_keeps_uptime_restarts_and_the_last_error_on_one_line() -> None:
    view = ServerView("alpha")
    assert view.uptime(5.0) is None
    view.connected(10.0)
    assert view.uptime(12.5) == 2.5
    view.disconnected("alpha: the server (/usr/bin/python /srv/x.py) exited with code -9\nTraceback...")
    assert view.last_error == "the server exited with code -9" and view.uptime(13.0) is None
    view.restarted("lost")
    assert view.restarts == 1 and view.last_error == "lost"
    view.request_ended(14.0, 0.01, None)
    assert view.requests.count(14.0) == 1 and view.last_error == "lost"


def test_cells_are_short() -> None:
    assert [format_duration(s) for s in (None, 5, 65, 7384)] == ["-", "5s", "1m05s", "2h03m"]
    assert [format_latency(s) for s in (None, 0.0012, 0.25)] == ["-", "1.2ms", "250ms"]
    assert one_line("x" * 100, 10) == "x" * 9 + "\u2026"


def test_keys_select_restart_and_quit() -> None:
    config = {"mcpServers": {n: {"command": "unused"} for n in ("a", "b", "c")}}
    watch = Watch(ServerGroup.from_config(config, errlog=None), Output(rich=False))
    restarted: list[str] = []
    assert _split_keys("j\x1b[Bk\x1b[Ar") == ["j", "\x1b[B", "k", "\x1b[A", "r"]
    for key in ("j", "\x1b[B"):
        assert watch.key(key, restarted.append)
    assert watch.selected == 2
    assert watch.key("j", restarted.append) and watch.selected == 0  # wraps
    assert watch.key("\x1b[A", restarted.append) and watch.selected == 2
    assert watch.key("r", restarted.append) and restarted == ["c"]
    assert not watch.key("q", restarted.append)


# -- a real config ------------------------------------------------------------------------------------------


def write_config(tmp_path: Path) -> Path:
    servers = {
        name: {
            "command": sys.executable,
            "args": [str(MISBEHAVING), "--pidfile", str(tmp_path / f"{name}.pid")],
            "restart": {"max_restarts": 5, "backoff_initial": 0.05, "jitter": 0},
        }
        for name in ("alpha", "beta")
    }
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps({"mcpServers": servers}))
    return path


def server_pid(tmp_path: Path, name: str, other_than: int | None = None, timeout: float = 20) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            pid = int((tmp_path / f"{name}.pid").read_text().split()[0])
        except (OSError, ValueError, IndexError):
            pid = None
        if pid is not None and pid != other_than and pid_alive(pid):
            return pid
        time.sleep(0.05)
    raise AssertionError(f"{name} wrote no (new) pid within {timeout}s")


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {what}")


def test_piped_it_prints_a_status_line_per_change_and_stops_on_sigint(tmp_path: Path) -> None:
    config = write_config(tmp_path)
    process = subprocess.Popen([*CLI, "watch", str(config)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = server_pid(tmp_path, "alpha")
        server_pid(tmp_path, "beta")
        time.sleep(0.5)
        os.kill(first, signal.SIGKILL)
        second = server_pid(tmp_path, "alpha", other_than=first)
        time.sleep(0.5)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    lines = out.splitlines()
    assert lines[0] == "starting 2 servers..." and lines[-1] == "stopped all servers"
    alpha = [line for line in lines if " alpha: " in line]
    assert any("connected" in line and "restarts=0" in line for line in alpha), out
    assert any("restarts=1" in line and "SIGKILL" in line for line in alpha), out
    assert len(alpha) < 12, "one line per change, not one per refresh"
    assert not pid_alive(second) and not pid_alive(first)


# -- the live view in a real terminal ------------------------------------------------------------------------


@pytest.fixture
def tmux() -> Iterator[Callable[..., str]]:
    """A tmux server of this test's own (its own socket), killed afterwards."""
    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed (make test installs it with apt-get; it could not here)")
    socket = f"mcp-watch-{uuid.uuid4().hex[:8]}"

    def run(*args: str) -> str:
        done = subprocess.run(["tmux", "-L", socket, *args], capture_output=True, text=True, timeout=10)
        return done.stdout

    try:
        yield run
    finally:
        subprocess.run(["tmux", "-L", socket, "kill-server"], capture_output=True, timeout=10)


def test_in_a_terminal_it_shows_a_live_table_that_sees_a_restart_and_quits_on_q(
    tmp_path: Path, tmux: Callable[..., str]
) -> None:
    config = write_config(tmp_path)
    command = " ".join(["env", "-u", "COLUMNS", "-u", "LINES", *CLI, "watch", str(config)])  # the pane says its size
    tmux("new-session", "-d", "-s", "w", "-x", "180", "-y", "20", f"{command}; echo EXIT=$?; sleep 60")

    def screen() -> str:
        return tmux("capture-pane", "-p", "-t", "w")

    def row(name: str) -> str:
        return next((line for line in screen().splitlines() if f" {name} " in line), "")

    wait_for(lambda: "connected" in row("alpha") and "connected" in row("beta"), 30, "both servers connected")
    assert "restarts" in screen() and "p95" in screen() and "last error" in screen()
    first = server_pid(tmp_path, "alpha")
    beta = server_pid(tmp_path, "beta")
    # Refreshed at least twice a second: the uptime moves on while nothing else happens.
    seen = {row("alpha").split("│")[5].strip() for _ in range(12) if time.sleep(0.25) is None}
    assert len(seen) >= 2, seen

    os.kill(first, signal.SIGKILL)
    second = server_pid(tmp_path, "alpha", other_than=first)
    wait_for(lambda: "SIGKILL" in row("alpha") and "connected" in row("alpha"), 20, "the restart on screen")
    assert row("alpha").split("│")[6].strip() == "1", row("alpha")

    tmux("send-keys", "-t", "w", "j")  # select beta, then restart it with r
    wait_for(lambda: row("beta").lstrip("│ ").startswith(">"), 5, "beta selected")
    tmux("send-keys", "-t", "w", "r")
    new_beta = server_pid(tmp_path, "beta", other_than=beta)
    wait_for(lambda: "connected" in row("beta") and "restarted beta" in screen(), 20, "beta restarted by r")

    tmux("send-keys", "-t", "w", "q")
    wait_for(lambda: "EXIT=0" in screen(), 20, "watch to exit 0 on q")
    for pid in (first, second, beta, new_beta):
        assert not pid_alive(pid), f"server {pid} outlived watch"
    pane = int(tmux("display-message", "-p", "-t", "w", "#{pane_pid}").strip())
    shell = psutil.Process(pane)
    left = [p for p in [shell, *shell.children(recursive=True)] if p.status() != psutil.STATUS_ZOMBIE]
    assert [p.name() for p in left if p.name() != "sleep" and "sh" not in p.name()] == [], left

"""The ``mcp-connections`` console script, run as a real subprocess."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(sys.executable).parent / "mcp-connections"


def run_cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout)


def test_demo_runs_the_bundled_server_and_exits_zero_with_nothing_left_running() -> None:
    result = run_cli("demo")
    assert result.returncode == 0, result.stderr
    assert "ready in" in result.stdout
    assert "add(2, 3) = 5" in result.stdout
    assert "stopped in" in result.stdout

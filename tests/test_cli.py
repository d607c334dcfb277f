"""The ``mcp-connections`` console script, run as a real subprocess against temporary configs."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import psutil
import pytest

from .helpers import MISBEHAVING

SCRIPT = Path(sys.executable).parent / "mcp-connections"


def run_cli(*args: str, cwd: Path | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout, cwd=cwd)


def server(*flags: str, **extra: Any) -> dict[str, Any]:
    return {"command": sys.executable, "args": [str(MISBEHAVING), *flags], **extra}


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps({"mcpServers": {"first": server(), "second": server("--paginate")}}))
    return path


def demo_servers() -> list[psutil.Process]:
    """Running processes of the bundled demo server, wherever they were reparented to."""
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        cmdline = process.info["cmdline"] or []
        if "mcp_connections._demo_server" in cmdline and process.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(process)
    return found


def test_demo_starts_calls_restarts_and_stops_everything_with_exit_zero() -> None:
    before = {p.pid for p in demo_servers()}
    result = run_cli("demo", timeout=120)
    assert result.returncode == 0, result.stderr
    assert [p for p in demo_servers() if p.pid not in before] == [], "the demo left servers running"
    out = result.stdout
    for name in ("alpha", "beta", "gamma"):
        assert f"{name}: add(2, 3) = 5" in out
    assert "streamable-http" in out and "stdio" in out
    assert "noticed and restarted" in out
    assert "stopped all servers" in out


def test_check_prints_a_status_table_and_exits_zero_when_all_servers_work(config_file: Path) -> None:
    result = run_cli("check", str(config_file))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.startswith("server") and "ready in ms" in line for line in lines)
    first = next(line for line in lines if line.startswith("first "))
    assert "stdio" in first and "connected" in first and " 11 " in first


def test_check_json_is_machine_readable(config_file: Path) -> None:
    result = run_cli("check", str(config_file), "--json")
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout)
    assert set(status) == {"first", "second"}
    assert status["second"]["state"] == "connected"
    assert status["second"]["tools"] == 11
    assert status["first"]["ready_in"] > 0 and status["first"]["pid"] > 0 and status["first"]["error"] is None


def test_check_exits_one_and_says_why_when_a_server_fails(tmp_path: Path) -> None:
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps({"mcpServers": {"ok": server(), "bad": server("--exit-before-handshake", "3")}}))
    result = run_cli("check", str(path), "--json")
    assert result.returncode == 1
    status = json.loads(result.stdout)
    assert status["ok"]["state"] == "connected"
    assert status["bad"]["state"] == "failed" and "exited with code 3" in status["bad"]["error"]


def test_check_timeout_bounds_the_whole_check(tmp_path: Path) -> None:
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps({"mcpServers": {"slow": server("--start-delay", "30")}}))
    started = time.monotonic()
    result = run_cli("check", str(path), "--timeout", "1")
    assert time.monotonic() - started < 10
    assert result.returncode == 1
    assert "timed out" in result.stdout


def test_secrets_in_env_and_headers_are_never_printed(tmp_path: Path) -> None:
    path = tmp_path / "mcp.json"
    config = {
        "mcpServers": {
            "local": server("--exit-before-handshake", "1", env={"API_TOKEN": "sk-local-secret-123"}),
            "remote": {
                "url": "http://user:pw-in-url@127.0.0.1:9/mcp",
                "headers": {"Authorization": "Bearer sk-header-secret-456"},
            },
        }
    }
    path.write_text(json.dumps(config))
    for extra in ((), ("--json",)):
        result = run_cli("check", str(path), "--timeout", "20", *extra)
        text = result.stdout + result.stderr
        assert result.returncode == 1
        for secret in ("sk-local-secret-123", "sk-header-secret-456", "pw-in-url"):
            assert secret not in text


def test_a_missing_default_config_says_where_it_looked_and_exits_two(tmp_path: Path) -> None:
    result = run_cli("check", cwd=tmp_path)
    assert result.returncode == 2
    assert str(tmp_path / "mcp.json") in result.stderr
    assert "Traceback" not in result.stderr


def test_a_bad_config_prints_the_config_error_without_a_traceback_and_exits_two(tmp_path: Path) -> None:
    path = tmp_path / "mcp.json"
    path.write_text('{"mcpServers": {"x": {"command": "a", "transport": "pigeon"}}}')
    result = run_cli("check", str(path))
    assert result.returncode == 2
    assert "unknown transport" in result.stderr and "'x'" in result.stderr and str(path) in result.stderr
    assert "Traceback" not in result.stderr
    path.write_text("{not json")
    result = run_cli("tools", str(path))
    assert result.returncode == 2 and "line 1" in result.stderr and "Traceback" not in result.stderr


def test_tools_prints_the_catalogue_names_of_every_server_or_one(config_file: Path) -> None:
    result = run_cli("tools", str(config_file))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["name", "server", "tool", "description"]
    assert lines[1].split()[:4] == ["first__echo", "first", "echo", "Echo"]
    assert any(line.startswith("second__accent ") for line in lines)
    result = run_cli("tools", str(config_file), "--server", "second", "--json")
    assert result.returncode == 0, result.stderr
    tools = json.loads(result.stdout)
    assert len(tools) == 11 and {t["server"] for t in tools} == {"second"}
    assert tools[0]["name"] == "second__echo" and tools[0]["tool"]["name"] == "echo"
    assert "inputSchema" in tools[0]["tool"]


def test_tools_auto_names_and_filters_from_the_config(tmp_path: Path) -> None:
    path = tmp_path / "mcp.json"
    config = {"mcpServers": {"a": server(include_tools=["e*"]), "b": server(exclude_tools=["e*"])}}
    path.write_text(json.dumps(config))
    result = run_cli("tools", str(path), "--json", "--tool-names", "auto")
    assert result.returncode == 0, result.stderr
    tools = json.loads(result.stdout)
    assert [t["name"] for t in tools][:3] == ["echo", "env", "add"]  # no clash left once filtered
    assert {t["server"] for t in tools if t["name"].startswith("e")} == {"a"}


def test_tools_says_which_server_failed_and_exits_one(tmp_path: Path) -> None:
    path = tmp_path / "mcp.json"
    path.write_text(json.dumps({"mcpServers": {"ok": server(), "bad": server("--exit-before-handshake", "3")}}))
    result = run_cli("tools", str(path), "--json")
    assert result.returncode == 1
    assert {t["server"] for t in json.loads(result.stdout)} == {"ok"}
    assert "bad" in result.stderr and "exited with code 3" in result.stderr


def test_call_takes_a_catalogue_name(config_file: Path) -> None:
    result = run_cli("call", str(config_file), "second__add", "--args", '{"a": 40, "b": 2}')
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "42"
    result = run_cli("call", "first__echo", "--args", '{"text": "hi"}', "--json", cwd=config_file.parent)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["content"][0]["text"] == "hi"


def test_call_of_an_unknown_name_suggests_close_ones_and_exits_two(config_file: Path) -> None:
    result = run_cli("call", str(config_file), "echo", "--args", '{"text": "x"}')
    assert result.returncode == 2
    assert "first__echo" in result.stderr and "second__echo" in result.stderr
    assert "Traceback" not in result.stderr


def test_call_calls_one_tool_with_json_arguments(config_file: Path) -> None:
    result = run_cli("call", str(config_file), "first", "add", "--args", '{"a": 40, "b": 2}')
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "42"
    result = run_cli("call", "second", "echo", "--args", '{"text": "hi"}', "--json", cwd=config_file.parent)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["content"][0]["text"] == "hi"


def test_call_with_bad_arguments_or_an_unknown_server_fails_clearly(config_file: Path) -> None:
    result = run_cli("call", str(config_file), "first", "add", "--args", "{oops")
    assert result.returncode == 2 and "--args" in result.stderr
    result = run_cli("call", str(config_file), "nobody", "add")
    assert result.returncode == 2 and "nobody" in result.stderr and "Traceback" not in result.stderr

"""Finding the host configs a user already has: pure path logic per platform, and the CLI on a fake home."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path, PurePosixPath, PureWindowsPath

import pytest

from mcp_connections.cli._configs import discover_configs, host_config_paths, read_config_data
from mcp_connections.config import parse_config

SCRIPT = Path(sys.executable).parent / "mcp-connections"
ENTRY = {"command": sys.executable, "args": ["-c", "pass"]}


def paths(platform: str, home: str, environ: dict[str, str], cwd: str) -> dict[str, str]:
    if platform == "win32":
        found = host_config_paths(PureWindowsPath(home), platform, environ, PureWindowsPath(cwd))
    else:
        found = host_config_paths(PurePosixPath(home), platform, environ, PurePosixPath(cwd))
    return {config.host: str(config.path) for config in found}


def test_linux_paths_include_claude_desktop_under_dot_config_and_cursor_under_home() -> None:
    found = paths("linux", "/home/u", {}, "/work")
    assert found["mcp.json (this directory)"] == "/work/mcp.json"
    assert found["Claude Desktop"] == "/home/u/.config/Claude/claude_desktop_config.json"
    assert found["Cursor"] == "/home/u/.cursor/mcp.json"
    assert found["Claude Code"] == "/home/u/.claude.json"
    assert found["Claude Code (project)"] == "/work/.mcp.json"
    assert found["VS Code"] == "/home/u/.config/Code/User/mcp.json"
    assert found["VS Code (workspace)"] == "/work/.vscode/mcp.json"
    assert found["Windsurf"] == "/home/u/.codeium/windsurf/mcp_config.json"
    assert found["Gemini CLI"] == "/home/u/.gemini/settings.json"
    assert found["Goose"] == "/home/u/.config/goose/config.yaml"
    assert paths("linux", "/home/u", {"XDG_CONFIG_HOME": "/x"}, "/w")["Claude Desktop"] == (
        "/x/Claude/claude_desktop_config.json"
    )


def test_macos_paths_use_application_support() -> None:
    found = paths("darwin", "/Users/u", {}, "/w")
    assert found["Claude Desktop"] == "/Users/u/Library/Application Support/Claude/claude_desktop_config.json"
    assert found["VS Code"] == "/Users/u/Library/Application Support/Code/User/mcp.json"
    assert found["Goose"] == "/Users/u/.config/goose/config.yaml"
    assert found["Cursor"] == "/Users/u/.cursor/mcp.json"


def test_windows_paths_use_appdata() -> None:
    # A fake platform (this runs on any machine): the paths are pure logic over PureWindowsPath.
    found = paths("win32", "C:\\Users\\u", {"APPDATA": "C:\\Users\\u\\AppData\\Roaming"}, "D:\\proj")
    assert found["Claude Desktop"] == "C:\\Users\\u\\AppData\\Roaming\\Claude\\claude_desktop_config.json"
    assert found["VS Code"] == "C:\\Users\\u\\AppData\\Roaming\\Code\\User\\mcp.json"
    assert found["Goose"] == "C:\\Users\\u\\AppData\\Roaming\\Block\\goose\\config\\config.yaml"
    assert found["Cursor"] == "C:\\Users\\u\\.cursor\\mcp.json"
    assert found["mcp.json (this directory)"] == "D:\\proj\\mcp.json"


def write(path: Path, data: object) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def test_discovery_keeps_files_that_declare_servers_in_order(tmp_path: Path) -> None:
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    cwd.mkdir()
    write(home / ".claude.json", {"numStartups": 3})  # Claude Code's file without servers: not a config
    write(home / ".cursor" / "mcp.json", {"mcpServers": {"c": ENTRY}})
    write(home / ".config" / "Claude" / "claude_desktop_config.json", {"mcpServers": {"d": ENTRY}})
    found = discover_configs(home=home, platform="linux", environ={}, cwd=cwd)
    assert [c.host for c in found] == ["Claude Desktop", "Cursor"]
    write(cwd / "mcp.json", {"mcpServers": {"here": ENTRY}})
    assert discover_configs(home=home, platform="linux", environ={}, cwd=cwd)[0].host == "mcp.json (this directory)"


def test_host_spellings_become_the_mcp_servers_shape(tmp_path: Path) -> None:
    gemini = write(
        tmp_path / "settings.json",
        {"mcpServers": {"remote": {"httpUrl": "http://127.0.0.1:1/mcp"}, "local": ENTRY}, "theme": "dark"},
    )
    servers = parse_config(read_config_data(gemini))
    assert servers["remote"].url == "http://127.0.0.1:1/mcp" and servers["remote"].transport == "streamable-http"
    windsurf = write(tmp_path / "mcp_config.json", {"mcpServers": {"w": {"serverUrl": "http://127.0.0.1:1/sse"}}})
    assert parse_config(read_config_data(windsurf))["w"].transport == "sse"
    vscode = write(tmp_path / "vscode.json", {"servers": {"v": {"type": "stdio", **ENTRY}}})
    assert parse_config(read_config_data(vscode))["v"].command == sys.executable


def test_goose_yaml_extensions_are_read_when_pyyaml_is_there(tmp_path: Path) -> None:
    pytest.importorskip("yaml")
    goose = tmp_path / "config.yaml"
    goose.write_text(
        "extensions:\n"
        "  developer:\n    type: builtin\n    enabled: true\n"
        f"  files:\n    type: stdio\n    cmd: {sys.executable}\n    args: ['-c', 'pass']\n    envs: {{K: v}}\n"
        "    enabled: true\n"
        "  web:\n    type: streamable_http\n    uri: http://127.0.0.1:1/mcp\n    enabled: false\n"
    )
    servers = parse_config(read_config_data(goose))
    assert set(servers) == {"files", "web"}, "builtins run inside Goose"
    assert servers["files"].command == sys.executable and dict(servers["files"].env) == {"K": "v"}
    assert servers["web"].disabled and servers["web"].transport == "streamable-http"


def run_cli(*args: str, home: Path, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "HOME": str(home)}
    env.pop("XDG_CONFIG_HOME", None)
    return subprocess.run([str(SCRIPT), *args], capture_output=True, text=True, timeout=60, cwd=cwd, env=env)


def test_configs_prints_one_absolute_path_per_line_with_the_host_and_json(tmp_path: Path) -> None:
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    cwd.mkdir()
    cursor = write(home / ".cursor" / "mcp.json", {"mcpServers": {"c": ENTRY}})
    desktop = write(home / ".config" / "Claude" / "claude_desktop_config.json", {"mcpServers": {"d": ENTRY}})
    result = run_cli("configs", home=home, cwd=cwd)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [f"{desktop}\tClaude Desktop", f"{cursor}\tCursor"]
    listed = json.loads(run_cli("configs", "--json", home=home, cwd=cwd).stdout)
    assert [(c["host"], c["path"], c["default"]) for c in listed] == [
        ("Claude Desktop", str(desktop), True),
        ("Cursor", str(cursor), False),
    ]


def test_a_command_without_config_uses_a_host_config_and_says_which_on_stderr(tmp_path: Path) -> None:
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    cwd.mkdir()
    servers = {"from_cursor": {"command": sys.executable, "args": ["-V"]}}  # exits at once: named in the failure
    cursor = write(home / ".cursor" / "mcp.json", {"mcpServers": servers})
    result = run_cli("tools", "--json", home=home, cwd=cwd)
    assert f"using {cursor} (Cursor)" in result.stderr
    assert "from_cursor" in result.stderr + result.stdout, "the servers of that file were read"


def test_no_config_anywhere_is_an_error_that_says_where_it_looked(tmp_path: Path) -> None:
    home, cwd = tmp_path / "home", tmp_path / "cwd"
    home.mkdir()
    cwd.mkdir()
    result = run_cli("check", home=home, cwd=cwd)
    assert result.returncode == 2
    assert "no MCP host config found" in result.stderr and "Claude Desktop" in result.stderr
    assert run_cli("configs", home=home, cwd=cwd).returncode == 1

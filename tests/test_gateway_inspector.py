"""``serve`` driven by a client nobody here wrote: the MCP Inspector's CLI mode, over stdio and over HTTP.

The Inspector (npm ``@modelcontextprotocol/inspector`` 2.x, with Node 22) is installed by ``make inspector``
(a dependency of ``make test``) under ``.tools/inspector``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from .test_gateway import SCRIPT, demo, misbehaving, write_config
from .test_gateway_http import serve_http

ROOT = Path(__file__).parent.parent
BIN = ROOT / ".tools" / "inspector" / "node_modules" / ".bin"
INSPECTOR = BIN / "mcp-inspector"

if not INSPECTOR.exists():
    reason = "npm is not available" if shutil.which("npm") is None else "not installed: run `make inspector`"
    pytest.skip(f"MCP Inspector CLI: {reason}", allow_module_level=True)


def inspector(*args: str, cwd: Path) -> dict[str, object]:
    env = {
        **os.environ,
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "MCP_CATALOG_PATH": str(cwd / "c.json"),
    }
    result = subprocess.run(
        [str(INSPECTOR), "--cli", *args], capture_output=True, text=True, timeout=90, cwd=cwd, env=env
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)  # type: ignore[no-any-return]


def test_the_inspector_lists_and_calls_tools_through_serve_over_stdio(tmp_path: Path) -> None:
    config = write_config(tmp_path / "mcp.json", {"misb": misbehaving(), "demo": demo("demo")})
    listed = inspector(str(SCRIPT), "serve", str(config), "--method", "tools/list", cwd=tmp_path)
    names = [tool["name"] for tool in listed["tools"]]  # type: ignore[index, union-attr]
    assert "misb__echo" in names and "demo__add" in names
    called = inspector(
        str(SCRIPT), "serve", str(config), "--method", "tools/call", "--tool-name", "misb__echo",
        "--tool-arg", "text=inspected", cwd=tmp_path,
    )  # fmt: skip
    assert called["content"] == [{"type": "text", "text": "inspected"}]
    assert called.get("isError") is False


def test_the_inspector_lists_and_calls_tools_through_serve_over_http_with_a_token(tmp_path: Path) -> None:
    config = write_config(tmp_path / "mcp.json", {"demo": demo("demo")})
    with serve_http(config, "--token-env", "GW_TOKEN", env={"GW_TOKEN": "inspector-token"}) as served:
        auth = ["--header", "Authorization: Bearer inspector-token"]
        listed = inspector(served.url, "--transport", "http", *auth, "--method", "tools/list", cwd=tmp_path)
        assert "demo__whoami" in [tool["name"] for tool in listed["tools"]]  # type: ignore[index, union-attr]
        called = inspector(
            served.url, "--transport", "http", *auth, "--method", "tools/call", "--tool-name", "demo__add",
            "--tool-arg", "a=2", "b=3", cwd=tmp_path,
        )  # fmt: skip
        assert called["structuredContent"] == {"result": 5}

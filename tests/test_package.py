"""The package's public face: exports, typing marker, logging discipline, and the README's quickstart."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import mcp_connections
from mcp_connections import errors

ROOT = Path(__file__).parent.parent
SRC = ROOT / "src" / "mcp_connections"


def test_all_is_sorted_and_names_exactly_what_the_package_exports() -> None:
    names = mcp_connections.__all__
    assert names == sorted(names)
    public = {name for name in vars(mcp_connections) if not name.startswith("_")}
    modules = {name for name in public if type(getattr(mcp_connections, name)).__name__ == "module"}
    assert set(names) == public - modules


def test_every_error_is_reexported_and_documented_in_the_hierarchy_tree() -> None:
    for name in errors.__all__:
        assert getattr(mcp_connections, name) is getattr(errors, name)
        assert name in (errors.__doc__ or "")
        assert getattr(errors, name).__doc__


def test_the_package_ships_a_typing_marker() -> None:
    assert (SRC / "py.typed").exists()


def test_the_library_never_prints() -> None:
    for path in SRC.rglob("*.py"):
        if path.name.startswith("_demo") or path.parent.name == "cli":
            continue  # the command line's job is to print
        tree = ast.parse(path.read_text())
        calls = [
            node
            for node in ast.walk(tree)
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print"
        ]
        assert not calls, f"{path.name} calls print()"


def test_the_readme_quickstart_runs_and_prints_what_it_promises() -> None:
    readme = (ROOT / "README.md").read_text()
    quickstart = readme.split("## Quickstart", 1)[1]
    code = re.search(r"```python\n(.*?)```", quickstart, re.S)
    assert code is not None
    assert len([line for line in code.group(1).splitlines() if line.strip()]) <= 10
    result = subprocess.run([sys.executable, "-c", code.group(1)], capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] in {"5", "5.0"}

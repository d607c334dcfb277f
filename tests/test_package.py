"""The package's public face: exports, typing marker, logging discipline, and the README's quickstart."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

import mcp_connections
from mcp_connections import errors

ROOT = Path(__file__).parent.parent
SRC = ROOT / "src" / "mcp_connections"


def test_all_is_sorted_and_names_exactly_what_the_package_exports() -> None:
    names = mcp_connections.__all__
    assert names == sorted(names)
    for name in names:  # each resolves, lazily or not
        assert getattr(mcp_connections, name) is not None
    # Resolved, the lazy names are attributes like the others: nothing public is missing from __all__.
    public = {name for name in vars(mcp_connections) if not name.startswith("_")}
    modules = {name for name in public if type(getattr(mcp_connections, name)).__name__ == "module"}
    assert set(names) == public - modules
    assert set(names) <= set(dir(mcp_connections))


def test_every_lazy_export_is_in_all_and_imported_for_type_checkers_from_the_same_module() -> None:
    lazy: dict[str, str] = mcp_connections._LAZY
    assert set(lazy) <= set(mcp_connections.__all__)
    tree = ast.parse((SRC / "__init__.py").read_text())
    seen: dict[str, str] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test) in {"TYPE_CHECKING", "_typing.TYPE_CHECKING"}:
            for stmt in node.body:
                assert isinstance(stmt, ast.ImportFrom), ast.unparse(stmt)
                seen.update({alias.name: "." * stmt.level + (stmt.module or "") for alias in stmt.names})
    assert seen == lazy, "the TYPE_CHECKING imports and the lazy table must name the same things"


def test_a_name_the_package_does_not_export_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="NoSuchThing"):
        mcp_connections.NoSuchThing  # type: ignore[attr-defined]  # noqa: B018


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

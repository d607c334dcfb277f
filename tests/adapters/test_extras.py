"""Each adapter is an optional extra of its own name; importing one without its framework says what to install."""

from __future__ import annotations

import importlib
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent.parent

# module of mcp_connections.adapters -> (the framework's top-level package, the extra to install)
ADAPTERS = {
    "openai": ("openai", "openai"),
    "anthropic": ("anthropic", "anthropic"),
    "langchain": ("langchain_core", "langchain"),
    "openai_agents": ("agents", "openai-agents"),
    "pydantic_ai": ("pydantic_ai", "pydantic-ai"),
    "fastmcp": ("fastmcp", "fastmcp"),
}


def normalized(name: str) -> str:
    return name.lower().replace("_", "-")


def test_every_adapter_has_an_extra_of_its_name_and_the_dev_extra_installs_them_all() -> None:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    names = {normalized(e) for e in extras}
    dev = " ".join(extras["dev"])
    for module, (_, extra) in ADAPTERS.items():
        assert normalized(module) in names and normalized(extra) == normalized(module)
        for requirement in extras[extra]:
            assert requirement.split("[")[0].split(">")[0].split("=")[0] in dev


def test_importing_an_adapter_without_its_framework_names_the_extra() -> None:
    # Each framework hidden as if not installed (None in sys.modules makes its import fail), in one fresh
    # interpreter: importing an adapter imports nothing else of the others.
    code = "import importlib, sys\n"
    for module, (framework, _) in sorted(ADAPTERS.items()):
        code += (
            f"sys.modules[{framework!r}] = None\n"
            f"try:\n    importlib.import_module('mcp_connections.adapters.{module}')\n"
            "except ImportError as e:\n    print(e)\nelse:\n    print('imported')\n"
            f"del sys.modules[{framework!r}]\n"
        )
    lines = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout.splitlines()
    assert len(lines) == len(ADAPTERS)
    for line, (module, (_, extra)) in zip(lines, sorted(ADAPTERS.items()), strict=True):
        assert f'pip install "mcp-connections[{extra}]"' in line and f"adapters.{module}" in line


@pytest.mark.parametrize("module", sorted(ADAPTERS))
def test_each_adapter_imports_with_its_framework_and_its_all_is_sorted(module: str) -> None:
    adapter = importlib.import_module(f"mcp_connections.adapters.{module}")
    assert adapter.__all__ == sorted(adapter.__all__)
    assert all(hasattr(adapter, name) for name in adapter.__all__)


def test_the_adapters_package_imports_no_framework() -> None:
    frameworks = sorted(framework for framework, _ in ADAPTERS.values())
    code = f"import sys, mcp_connections.adapters; print(sorted(set({frameworks!r}) & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout
    assert out.strip() == "[]"


def test_the_readme_has_one_example_per_adapter_and_each_names_what_exists() -> None:
    import ast
    import re

    readme = (ROOT / "README.md").read_text()
    section = re.split(r"\n## ", readme.split("\n## Agent frameworks", 1)[1])[0]
    blocks = re.findall(r"```python\n(.*?)```", section, re.S)
    assert len(blocks) == len(ADAPTERS)
    for module in ADAPTERS:
        adapter = importlib.import_module(f"mcp_connections.adapters.{module}")
        found = [
            b for b in blocks if f"mcp_connections.adapters.{module} import" in b or f"adapters import {module}" in b
        ]
        assert found, f"no README example imports adapters.{module}"
        for node in ast.walk(ast.parse(found[0].replace("await ", ""))):
            if isinstance(node, ast.ImportFrom) and node.module == f"mcp_connections.adapters.{module}":
                assert all(hasattr(adapter, alias.name) for alias in node.names)

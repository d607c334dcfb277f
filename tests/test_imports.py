"""Start nothing you do not need: what ``import mcp_connections`` and ``mcp-connections --help`` import.

Each check runs in a fresh interpreter, since this one has imported everything long ago. How long the
imports take is a benchmark figure (``make bench``, section ``imports``), not a test.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

# Top-level packages that the help text and argument errors have no use for.
HEAVY = ("mcp", "mcp_types", "anyio", "httpx2", "httpcore2", "pydantic", "pydantic_core", "websockets", "rich")
# Modules of ours that import them.
LAZY_MODULES = ("base", "blocking", "group", "session", "sse", "stdio", "streamable_http", "websocket", "_remote")
SCRIPT = Path(sys.executable).parent / "mcp-connections"
SUBPROCESS_TIMEOUT = 60  # a fresh interpreter that imports the SDK takes 1-2 s; a loaded machine, more


def modules_after(code: str) -> list[str]:
    """The names in ``sys.modules`` after running ``code`` in a fresh interpreter."""
    probe = code + "\nimport json, sys\nprint(json.dumps(sorted(sys.modules)))"
    result = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT, check=True
    )
    loaded: list[str] = json.loads(result.stdout.strip().splitlines()[-1])
    return loaded


def heavy(modules: list[str]) -> list[str]:
    return [name for name in modules if name.split(".")[0] in HEAVY]


def imported_by(command: list[str]) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    """Run ``command`` (a Python script and its arguments) under ``-X importtime``: its result and every module
    the interpreter imported on the way, from the real entry point to the exit."""
    result = subprocess.run(
        [sys.executable, "-X", "importtime", *command], capture_output=True, text=True, timeout=SUBPROCESS_TIMEOUT
    )
    names = [line.rsplit("|", 1)[1].strip() for line in result.stderr.splitlines() if line.startswith("import time:")]
    return result, names[1:]  # the first line is the header


def entry_point() -> list[str]:
    """The installed ``mcp-connections`` script, or the module when the script is not beside this interpreter."""
    return [str(SCRIPT)] if SCRIPT.exists() else ["-m", "mcp_connections"]


def test_importing_the_package_imports_no_mcp_anyio_httpx_or_pydantic() -> None:
    loaded = modules_after("import mcp_connections")
    assert heavy(loaded) == []
    assert not [name for name in loaded if name.removeprefix("mcp_connections.") in LAZY_MODULES]


def test_a_lazy_name_imports_its_module_on_first_use_and_is_the_same_object() -> None:
    loaded = modules_after(
        "import sys\n"
        "import mcp_connections\n"
        "assert 'mcp_connections.group' not in sys.modules\n"
        "from mcp_connections import ServerGroup\n"
        "import mcp_connections.group\n"
        "assert ServerGroup is mcp_connections.group.ServerGroup is mcp_connections.ServerGroup\n"
        "assert mcp_connections.ManagedSession.__module__ == 'mcp_connections.session'\n"
    )
    assert {"mcp_connections.group", "mcp", "anyio"} <= set(loaded)
    assert "mcp_connections.websocket" not in loaded  # only what the names used needed


def test_a_submodule_is_an_attribute_of_the_package_without_importing_it_first_as_before() -> None:
    modules_after(
        "import mcp_connections\n"
        "assert mcp_connections.config.load_config\n"
        "assert mcp_connections.stdio.StdioConnectionManager is mcp_connections.StdioConnectionManager\n"
        "assert not hasattr(mcp_connections, 'no_such_module')\n"
    )


def test_the_url_redacting_log_filter_is_in_place_from_import_on_before_any_transport_loads() -> None:
    loaded = modules_after(
        "import logging\n"
        "import mcp_connections\n"
        "from mcp_connections._redact import UrlRedactingFilter\n"
        "for name in ('httpx2', 'mcp.client.streamable_http', 'mcp.client.sse'):\n"
        "    filters = logging.getLogger(name).filters\n"
        "    assert [f for f in filters if isinstance(f, UrlRedactingFilter)], name\n"
        "import mcp_connections.streamable_http\n"
        "ours = [f for f in logging.getLogger('httpx2').filters if isinstance(f, UrlRedactingFilter)]\n"
        "assert len(ours) == 1, 'installed twice'\n"
    )
    assert "mcp_connections._bridge" in loaded


def test_building_the_cli_parser_and_printing_help_imports_no_mcp_code() -> None:
    loaded = modules_after(
        "from mcp_connections.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit as exc:\n"
        "    assert exc.code == 0, exc.code\n"
        "for command in ('demo', 'check', 'tools', 'call'):\n"
        "    try:\n"
        "        main([command, '--help'])\n"
        "    except SystemExit as exc:\n"
        "        assert exc.code == 0, exc.code\n"
    )
    assert heavy(loaded) == []


@pytest.mark.parametrize(
    "argv",
    [
        ["--help"],
        ["call", "--help"],
        [],  # no command
        ["no-such-command"],
        ["call"],  # missing arguments
        ["check", "--timeout", "soon"],  # not a number
    ],
    ids=["help", "command-help", "no-command", "unknown-command", "missing-argument", "bad-value"],
)
def test_the_real_command_imports_no_mcp_code_for_help_and_argument_errors(argv: list[str]) -> None:
    result, names = imported_by([*entry_point(), *argv])
    assert result.returncode == (0 if "--help" in argv else 2), result.stderr[-2000:]
    assert "usage: mcp-connections" in result.stdout + result.stderr
    assert "mcp_connections.cli" in names, "the probe saw no import of the command line: it proves nothing"
    assert heavy(names) == []

"""Shared fixtures: the anyio backend, and no child process outliving a test.

``MCP_CONNECTIONS_SIMULATE`` takes away what some systems lack, for a whole run (comma-separated;
tests/scripts/simulate.py sets it up):
  no-pidfd  ``os.pidfd_open`` is removed, as on macOS, old kernels and some sandboxes
  no-proc   ``/proc`` is hidden: simulate.py mounts an empty tmpfs over it in a private mount namespace and
            points psutil (the tests' leak checks) at the real procfs, bind-mounted in
            ``MCP_CONNECTIONS_REAL_PROC``; where no namespace can be had, the library's ``/proc`` path is
            pointed at an empty directory instead (a seam, said in the run's header)
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from .helpers import wait_for_no_children

# Every anyio test runs on both backends the library supports; a module that is asyncio-only by nature
# (the WebSocket transport, the blocking API's loop) overrides this fixture with ASYNCIO_ONLY.
BACKENDS = ["asyncio", "trio"]

SIMULATE = {name for name in os.environ.get("MCP_CONNECTIONS_SIMULATE", "").split(",") if name}
_simulation_notes: list[str] = []


def pytest_configure(config: pytest.Config) -> None:
    unknown = SIMULATE - {"no-pidfd", "no-proc"}
    if unknown:
        raise pytest.UsageError(f"MCP_CONNECTIONS_SIMULATE: unknown {sorted(unknown)}; use no-pidfd, no-proc")
    if "no-pidfd" in SIMULATE and hasattr(os, "pidfd_open"):
        del os.pidfd_open
        _simulation_notes.append("os.pidfd_open removed")
    if "no-proc" in SIMULATE:
        real = os.environ.get("MCP_CONNECTIONS_REAL_PROC")
        if real:
            psutil.PROCFS_PATH = real
            _simulation_notes.append(f"/proc hidden (empty tmpfs); psutil reads the real procfs at {real}")
        else:
            from mcp_connections._process import _linux

            _linux.PROC = Path(tempfile.mkdtemp(prefix="no-proc-"))
            _simulation_notes.append(f"/proc simulated missing: the library looks in the empty {_linux.PROC}")


def pytest_report_header(config: pytest.Config) -> list[str]:
    return [f"simulating: {note}" for note in _simulation_notes]


@pytest.fixture(params=BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> str:
    backend: str = request.param
    return backend


@pytest.fixture(autouse=True)
def catalogue_cache_in_tmp(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test: the catalogue's disk cache in a fresh temporary directory, never the user's real cache (also
    for the command lines the tests run, which inherit the variable)."""
    directory = tmp_path_factory.mktemp("catalogue-cache")
    monkeypatch.setenv("MCP_CONNECTIONS_CACHE_DIR", str(directory))
    return directory


@pytest.fixture(autouse=True)
def no_child_left_behind() -> Iterator[None]:
    """Every test: no child process (running or zombie) may outlive it."""
    yield
    leftovers = wait_for_no_children()
    for child in leftovers:
        try:
            child.kill()
        except psutil.Error:
            pass
    assert not leftovers, f"test left child processes behind: {leftovers}"

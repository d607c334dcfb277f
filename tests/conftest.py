"""Shared fixtures: the anyio backend, and no child process outliving a test."""

from __future__ import annotations

from collections.abc import Iterator

import psutil
import pytest

from .helpers import wait_for_no_children


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


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

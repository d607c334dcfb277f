"""Shared fixtures: the anyio backend, and no child process outliving a test."""

from __future__ import annotations

from collections.abc import Iterator

import psutil
import pytest

from .helpers import wait_for_no_children

# Every anyio test runs on both backends the library supports; a module that is asyncio-only by nature
# (the WebSocket transport, the blocking API's loop) overrides this fixture with ASYNCIO_ONLY.
BACKENDS = ["asyncio", "trio"]


@pytest.fixture(params=BACKENDS)
def anyio_backend(request: pytest.FixtureRequest) -> str:
    backend: str = request.param
    return backend


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

"""The stop sequence of ``_process.shut_down`` against a scripted tree (pure logic: no process runs here).

The tree's clock is the test's: members die when the script says, and any step can be made to raise, to
check the fail-safe. Real processes go through the same sequence in tests/test_process_posix.py.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import anyio
import pytest

from mcp_connections._process import ProcessTree, shut_down

pytestmark = pytest.mark.anyio


class _Stdin:
    def __init__(self, tree: ScriptedTree) -> None:
        self.tree = tree

    async def aclose(self) -> None:
        self.tree.calls.append("close stdin")
        if self.tree.exits_on_eof:
            self.tree.die()


class _Process:
    def __init__(self, tree: ScriptedTree) -> None:
        self.stdin = _Stdin(tree)
        self.stdout = self.stderr = None
        self.pid = 4242
        self.returncode: int | None = None


class ScriptedTree(ProcessTree):
    """A tree that dies on the step the test names, and raises where it is told to."""

    def __init__(self, *, exits_on_eof: bool = False, dies_on: str | None = "kill", raises_in: str | None = None):
        super().__init__(_Process(self))  # type: ignore[arg-type]
        self.calls: list[str] = []
        self.exits_on_eof = exits_on_eof
        self.dies_on = dies_on
        self.raises_in = raises_in
        self.exited = anyio.Event()
        self._alive = True

    @classmethod
    async def spawn(cls, argv: list[str], *, cwd: Path | None, env: dict[str, str]) -> ProcessTree:
        raise NotImplementedError

    def die(self) -> None:
        self._alive = False
        self.exited.set()

    def _step(self, name: str) -> None:
        self.calls.append(name)
        if self.raises_in == name:
            raise RuntimeError(f"{name} broke on purpose")
        if self.dies_on == name:
            self.die()

    async def wait_exit(self) -> None:
        await self.exited.wait()

    def alive(self) -> bool:
        if self.raises_in == "alive":
            raise RuntimeError("alive broke on purpose")
        return self._alive

    def terminate(self) -> None:
        self._step("terminate")

    def kill(self) -> None:
        self._step("kill")


async def stop(tree: ScriptedTree, budget: float | None = 1.0) -> float:
    deadline = None if budget is None else time.monotonic() + budget

    def left() -> float | None:
        return None if deadline is None else deadline - time.monotonic()

    started = time.monotonic()
    with anyio.fail_after(10):
        await shut_down(tree, tree.exited, left, "scripted")
    return time.monotonic() - started


async def test_a_server_that_exits_on_eof_is_not_signalled() -> None:
    tree = ScriptedTree(exits_on_eof=True)
    await stop(tree)
    assert tree.calls == ["close stdin"]


async def test_a_server_that_ignores_eof_is_terminated_then_killed_within_the_budget() -> None:
    tree = ScriptedTree(dies_on="kill")
    elapsed = await stop(tree, budget=1.0)
    assert tree.calls == ["close stdin", "terminate", "kill"]
    assert elapsed < 1.0 + 0.5


async def test_a_tree_that_cannot_terminate_goes_from_stdin_straight_to_kill() -> None:
    tree = ScriptedTree(dies_on="kill")
    tree.can_terminate = False  # type: ignore[misc]  # as on Windows
    await stop(tree)
    assert tree.calls == ["close stdin", "kill"]


@pytest.mark.parametrize("step", ["terminate", "alive"])
async def test_a_step_that_raises_ends_in_a_kill_of_the_whole_tree_logged_at_warning(
    step: str, caplog: pytest.LogCaptureFixture
) -> None:
    tree = ScriptedTree(dies_on=None, raises_in=step)
    tree.exited.set()  # the server itself is gone (a grandchild is not): the liveness check runs
    with caplog.at_level(logging.WARNING, logger="mcp_connections"):
        elapsed = await stop(tree)
    assert tree.calls[-1] == "kill"
    assert elapsed < 1.5
    warning = next(r for r in caplog.records if r.levelno == logging.WARNING)
    assert "killing the whole tree" in warning.getMessage() and "broke on purpose" in warning.getMessage()
    assert "scripted" in warning.getMessage()


async def test_a_kill_that_raises_too_is_logged_and_stop_still_returns(caplog: pytest.LogCaptureFixture) -> None:
    tree = ScriptedTree(dies_on=None, raises_in="kill")
    with caplog.at_level(logging.WARNING, logger="mcp_connections"):
        await stop(tree, budget=0.5)
    messages = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert any("kill broke on purpose" in m and "killing the whole tree" in m for m in messages)
    assert any("could not kill" in m for m in messages)


async def test_a_tree_that_outlives_the_kill_spends_the_budget_and_says_so(caplog: pytest.LogCaptureFixture) -> None:
    tree = ScriptedTree(dies_on=None)
    with caplog.at_level(logging.WARNING, logger="mcp_connections"):
        elapsed = await stop(tree, budget=0.6)
    assert 0.5 < elapsed < 0.6 + 0.5
    assert any("survived the kill" in r.getMessage() for r in caplog.records)


async def test_a_server_that_exits_between_two_steps_ends_the_sequence_there() -> None:
    tree = ScriptedTree(dies_on="terminate")
    await stop(tree)
    assert tree.calls == ["close stdin", "terminate"]


async def test_without_a_budget_the_graceful_steps_take_their_full_caps_and_no_more() -> None:
    tree = ScriptedTree(exits_on_eof=False, dies_on="terminate")
    elapsed = await stop(tree, budget=None)
    assert tree.calls == ["close stdin", "terminate"]
    assert elapsed < 2.0 + 1.0  # STDIN_CLOSE_GRACE, then the SIGTERM answered at once

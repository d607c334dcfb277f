"""The stop sequence for a process tree, the same on every platform, and its fail-safe."""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import suppress

import anyio
import anyio.abc

from ._tree import ProcessTree

logger = logging.getLogger(__name__)

# Grace for the server to exit on its own once its stdin closes (the spec's first shutdown step).
STDIN_CLOSE_GRACE = 2.0

# Grace between SIGTERM and SIGKILL to the process group.
SIGTERM_GRACE = 2.0

# Time for the kill to land and the process to be reaped; only an unkillable (D-state) process uses it up.
KILL_REAP_TIMEOUT = 2.0

# Share of stop()'s budget that each of the two graceful steps may take; the rest is for the kill.
GRACE_SHARE = 0.4

# Floor on the wait after the kill when stop()'s budget is spent: enough for a SIGKILL to land.
KILL_WAIT_FLOOR = 0.1

# How often to look at the tree while waiting for it to die: its members are not our children, so no
# event tells us.
GROUP_POLL_INTERVAL = 0.01


async def shut_down(tree: ProcessTree, exited: anyio.Event, budget: Callable[[], float | None], name: str) -> None:
    """Close stdin, wait, terminate the tree, wait, kill it: all within ``budget()`` (seconds left, None for no
    limit). Never raises an ``Exception``: whatever goes wrong, a ``finally`` kills the whole tree and says why
    at WARNING."""
    settled = False
    try:
        await _stop_in_steps(tree, exited, budget, name)
        settled = True
    except Exception as exc:
        logger.warning(
            "%s: stopping %s failed (%s: %s); killing the whole tree", name, tree.describe(), type(exc).__name__, exc
        )
    finally:
        if not settled:
            try:
                tree.kill()
            except Exception as exc:
                logger.warning("%s: could not kill %s either (%s: %s)", name, tree.describe(), type(exc).__name__, exc)


async def _stop_in_steps(tree: ProcessTree, exited: anyio.Event, budget: Callable[[], float | None], name: str) -> None:
    start_budget = budget()

    def share(cap: float) -> float:
        return cap if start_budget is None else min(cap, start_budget * GRACE_SHARE)

    stdin = tree.process.stdin
    if stdin is not None:
        with anyio.move_on_after(share(STDIN_CLOSE_GRACE)):
            with suppress(OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
                await stdin.aclose()
    if await wait_tree_dead(tree, exited, share(STDIN_CLOSE_GRACE)):
        return
    if tree.can_terminate:
        logger.debug("%s: still running after stdin closed; terminating %s", name, tree.describe())
        tree.terminate()
        if await wait_tree_dead(tree, exited, share(SIGTERM_GRACE)):
            return
    steps = "stdin closed and SIGTERM" if tree.can_terminate else "stdin closed"
    logger.info("%s: still running after %s; killing %s", name, steps, tree.describe())
    tree.kill()
    remaining = budget()
    last_wait = KILL_REAP_TIMEOUT if remaining is None else max(remaining, KILL_WAIT_FLOOR)
    if not await wait_tree_dead(tree, exited, last_wait):
        logger.warning("%s: %s survived the kill; abandoning it", name, tree.describe())


async def wait_tree_dead(tree: ProcessTree, exited: anyio.Event, timeout: float) -> bool:
    """Wait up to ``timeout`` for the server and every other member of its tree to be gone."""
    with anyio.move_on_after(timeout):
        await exited.wait()
        while tree.alive():
            await anyio.sleep(GROUP_POLL_INTERVAL)
        return True
    return exited.is_set() and not tree.alive()

"""When to restart a lost connection, and after how long: pure logic, no I/O, no event loop.

``RestartPolicy`` is the user's configuration; ``RestartTracker`` applies it to a stream of events
(connected at time t, lost at time t) and answers "restart after this delay" or "give up". Times are
plain floats from any monotonic clock, so tests drive it with made-up numbers.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["RestartPolicy", "RestartTracker"]


@dataclass(frozen=True)
class RestartPolicy:
    """Reconnect after a loss with exponential backoff; give up after ``max_restarts`` losses in ``window`` s.

    The n-th consecutive restart waits ``backoff_initial * backoff_factor ** (n - 1)`` seconds, capped at
    ``backoff_max``, then spread by ``jitter`` (a fraction: 0.1 means +/- 10 %). The count of losses
    starts again after ``window`` seconds of stable connection.
    """

    max_restarts: int = 5
    window: float = 60.0
    backoff_initial: float = 0.1
    backoff_max: float = 10.0
    backoff_factor: float = 2.0
    jitter: float = 0.1

    def __post_init__(self) -> None:
        if self.max_restarts < 0:
            raise ValueError(f"max_restarts must be >= 0, not {self.max_restarts}")
        if self.window <= 0:
            raise ValueError(f"window must be > 0 seconds, not {self.window}")
        if self.backoff_initial < 0 or self.backoff_max < 0:
            raise ValueError("backoff_initial and backoff_max must be >= 0 seconds")
        if self.backoff_factor < 1:
            raise ValueError(f"backoff_factor must be >= 1, not {self.backoff_factor}")
        if not 0 <= self.jitter <= 1:
            raise ValueError(f"jitter must be between 0 and 1, not {self.jitter}")

    def backoff(self, attempt: int, spread: float = 0.0) -> float:
        """The wait before restart number ``attempt`` (1-based); ``spread`` in [-1, 1] picks the jitter."""
        base = min(self.backoff_max, self.backoff_initial * self.backoff_factor ** max(0, attempt - 1))
        return max(0.0, base * (1 + self.jitter * max(-1.0, min(1.0, spread))))


@dataclass
class RestartTracker:
    """Applies a ``RestartPolicy`` to connection events."""

    policy: RestartPolicy
    spread: Callable[[], float] = field(default=lambda: random.uniform(-1.0, 1.0))
    _losses: deque[float] = field(default_factory=deque)
    _connected_at: float | None = None

    @property
    def recent_losses(self) -> int:
        """Losses that still count against the policy."""
        return len(self._losses)

    def connected(self, now: float) -> None:
        """The connection is up (again) at ``now``."""
        self._connected_at = now

    def lost(self, now: float) -> float | None:
        """The connection was lost at ``now``: the delay before restarting, or None to give up."""
        if self._connected_at is not None and now - self._connected_at >= self.policy.window:
            self._losses.clear()  # it had been stable for a whole window: a fresh start
        self._connected_at = None
        while self._losses and now - self._losses[0] >= self.policy.window:
            self._losses.popleft()
        self._losses.append(now)
        if len(self._losses) > self.policy.max_restarts:
            return None
        return self.policy.backoff(len(self._losses), self.spread())

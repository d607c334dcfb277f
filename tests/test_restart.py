"""RestartPolicy and RestartTracker: pure logic, no event loop, made-up clocks."""

from __future__ import annotations

import pytest

from mcp_connections import RestartPolicy
from mcp_connections.restart import RestartTracker


def tracker(policy: RestartPolicy) -> RestartTracker:
    return RestartTracker(policy, spread=lambda: 0.0)


def test_backoff_grows_by_the_factor_and_stops_at_the_cap() -> None:
    policy = RestartPolicy(backoff_initial=0.1, backoff_factor=2.0, backoff_max=1.0, jitter=0)
    assert [policy.backoff(n) for n in range(1, 7)] == pytest.approx([0.1, 0.2, 0.4, 0.8, 1.0, 1.0])


def test_jitter_spreads_the_backoff_both_ways_within_its_fraction() -> None:
    policy = RestartPolicy(backoff_initial=1.0, jitter=0.1)
    assert policy.backoff(1, -1.0) == pytest.approx(0.9)
    assert policy.backoff(1, 1.0) == pytest.approx(1.1)
    assert policy.backoff(1, 5.0) == pytest.approx(1.1)


def test_more_than_max_restarts_losses_within_the_window_gives_up() -> None:
    t = tracker(RestartPolicy(max_restarts=3, window=60, jitter=0))
    delays = [t.lost(now) for now in (0.0, 1.0, 2.0)]
    assert delays == pytest.approx([0.1, 0.2, 0.4])
    assert t.lost(3.0) is None


def test_losses_older_than_the_window_stop_counting() -> None:
    t = tracker(RestartPolicy(max_restarts=2, window=10, jitter=0))
    assert t.lost(0.0) is not None
    assert t.lost(5.0) is not None
    assert t.lost(11.0) is not None  # the loss at 0 has left the window
    assert t.lost(12.0) is None


def test_the_count_resets_after_a_window_of_stable_connection() -> None:
    t = tracker(RestartPolicy(max_restarts=2, window=10, jitter=0))
    t.lost(0.0)
    t.connected(0.5)
    t.lost(1.0)
    t.connected(1.5)
    assert t.recent_losses == 2
    t.lost(11.6)  # stable from 1.5 to 11.6: more than a window
    assert t.recent_losses == 1
    assert t.lost(11.7) == pytest.approx(0.2)


def test_zero_max_restarts_never_restarts() -> None:
    assert tracker(RestartPolicy(max_restarts=0)).lost(0.0) is None


@pytest.mark.parametrize(
    "kwargs",
    [{"max_restarts": -1}, {"window": 0}, {"backoff_factor": 0.5}, {"jitter": 2}, {"backoff_initial": -1}],
)
def test_nonsense_policies_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RestartPolicy(**kwargs)  # type: ignore[arg-type]

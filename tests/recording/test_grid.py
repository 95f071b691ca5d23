"""Recordings started close together share one grid of cycle times."""

from __future__ import annotations

import math

import pytest

from bifrost.recording.recorder import GRID_S, grid_start


@pytest.mark.parametrize("interval", [0.001, 0.05, 0.1, 1.0, 3600.0])
@pytest.mark.parametrize("now", [0.0, 0.0999, 12.34567, 98765.4321])
def test_the_first_cycle_is_the_next_point_of_the_grid(now: float, interval: float) -> None:
    step = min(interval, GRID_S)
    start = grid_start(now, interval)
    assert now <= start < now + step + 1e-9  # never earlier, at most one step of waiting
    assert math.isclose(start / step, round(start / step), abs_tol=1e-6)


def test_recordings_started_within_one_step_get_the_same_cycle_times() -> None:
    # 110 recordings started over 0.05 s: one phase, so their cycles fall together.
    starts = {grid_start(1000.01 + i * 0.0005, 1.0) for i in range(110)}
    assert len(starts) == 1
    # Different intervals on the same grid: a 1 Hz cycle is also a 10 Hz one.
    slow, fast = grid_start(7.02, 1.0), grid_start(7.03, 0.1)
    assert slow == fast

"""System clock steps: stamps never go back, steps are noted, recordings keep them."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from waiting import wait_for

import bifrost as bf
from bifrost.clock import Clock, default_clock, use_clock, wall_ns
from bifrost.sim import Plant

S = 1_000_000_000
STEPS = [-30, 30, 3600]


class FakeTime:
    """Wall and monotonic sources that advance together; ``step`` moves the wall only."""

    def __init__(self) -> None:
        self.mono = 5_000 * S
        self.offset = 1_700_000_000 * S - self.mono

    def monotonic(self) -> int:
        return self.mono

    def wall(self) -> int:
        return self.mono + self.offset

    def advance(self, seconds: float) -> None:
        self.mono += round(seconds * S)

    def step(self, seconds: float) -> None:
        self.offset += round(seconds * S)


def fake_clock() -> tuple[FakeTime, Clock]:
    fake = FakeTime()
    return fake, Clock(fake.wall, fake.monotonic)


def test_without_steps_stamps_are_the_wall_clock():
    fake, clock = fake_clock()
    for _ in range(5):
        fake.advance(0.01)
        assert clock.wall_ns() == fake.wall()
    assert clock.steps == ()
    assert clock.ahead_ns == 0


@pytest.mark.parametrize("step_s", STEPS)
def test_a_step_never_makes_stamps_go_back_and_is_noted(step_s: int):
    fake, clock = fake_clock()
    stamps = []
    for k in range(20):
        fake.advance(0.01)
        if k == 10:
            fake.step(step_s)
        stamps.append(clock.wall_ns())
    assert np.all(np.diff(stamps) > 0)
    (step,) = clock.steps
    assert step.step_ns == step_s * S
    assert step.at_ns == stamps[10]
    if step_s > 0:
        # Forwards: re-anchored on the system clock, the stamps jumped with it.
        assert step.shift_ns == step_s * S
        assert step.ahead_ns == 0
        assert stamps[-1] == fake.wall()
        assert stamps[10] - stamps[9] == step_s * S + S // 100
    else:
        # Backwards: the stamps carried on; they are now ahead of the system clock.
        assert step.shift_ns == 0
        assert step.ahead_ns == -step_s * S
        assert stamps[10] - stamps[9] == S // 100
        assert stamps[-1] - fake.wall() == pytest.approx(-step_s * S, rel=1e-3)


def test_a_backward_step_is_slewed_away_at_500_ppm():
    fake, clock = fake_clock()
    fake.advance(1)
    clock.wall_ns()
    fake.step(-30)
    previous = clock.wall_ns()
    assert clock.ahead_ns == 30 * S
    # 30 s at 500 ppm take 60000 s; the stamps run 0.05 % slow until then.
    for _ in range(70):
        fake.advance(1000)
        stamp = clock.wall_ns()
        assert stamp - previous >= 1000 * S * (1 - 500e-6) - 1
        assert stamp - previous <= 1000 * S
        previous = stamp
    assert clock.ahead_ns == 0
    assert clock.wall_ns() == fake.wall()
    assert len(clock.steps) == 1


def test_a_forward_step_while_catching_up_re_anchors_on_the_system_clock():
    fake, clock = fake_clock()
    fake.step(-30)
    clock.wall_ns()
    fake.advance(1)
    fake.step(3600)
    stamp = clock.wall_ns()
    assert stamp == fake.wall()
    assert [s.step_ns for s in clock.steps] == [-30 * S, 3600 * S]
    assert clock.steps[1].shift_ns == pytest.approx(3570 * S, abs=S // 1000)
    assert clock.ahead_ns == 0


def test_disagreements_below_the_threshold_are_not_steps():
    fake, clock = fake_clock()
    before = clock.wall_ns()
    fake.advance(0.1)
    fake.step(-0.5)
    after = clock.wall_ns()
    assert after - before == S // 10
    assert clock.steps == ()


def test_a_pause_between_the_two_readings_is_not_a_step():
    fake = FakeTime()
    paused = []

    def wall_after_a_pause() -> int:
        # The first reading after the clock is made: 2 s pass between mono and wall.
        if len(paused) == 1:
            fake.advance(2)
        paused.append(True)
        return fake.wall()

    clock = Clock(wall_after_a_pause, fake.monotonic)
    fake.advance(0.01)
    stamp = clock.wall_ns()
    assert clock.steps == ()
    assert stamp == fake.wall()


def test_bad_settings_are_configuration_errors():
    with pytest.raises(bf.ConfigurationError, match="threshold_s"):
        Clock(threshold_s=0)
    with pytest.raises(bf.ConfigurationError, match="slew_ppm"):
        Clock(slew_ppm=1_000_000)


def test_use_clock_swaps_the_process_clock_and_restores_it():
    fake, clock = fake_clock()
    before = default_clock()
    with use_clock(clock):
        assert wall_ns() == fake.wall()
        assert default_clock() is clock
    assert default_clock() is before
    assert abs(wall_ns() - time.time_ns()) < S


# -- recordings through a stepped clock ------------------------------------------------------
class SteppedSystemClock:
    """Real time, but the wall clock can be stepped like an NTP correction would."""

    def __init__(self) -> None:
        self.offset = 0

    def wall(self) -> int:
        return time.time_ns() + self.offset

    def step(self, seconds: float) -> None:
        self.offset += round(seconds * S)


def _steps_on_disk(parts: Path) -> bool:
    try:
        return "clock_steps" in bf.open_recording(parts).metadata
    except bf.ConfigurationError as exc:
        # Before the writer's first frame is on disk (its fsync may wait on a loaded
        # machine) the folder holds no parts yet: not an answer, ask again.
        if "holds no parts" in str(exc):
            return False
        raise


@pytest.fixture(scope="module")
def plant():
    with Plant(seed=4) as plant:
        plant.serve(modbus=0)
        yield plant


@pytest.mark.parametrize("step_s", STEPS)
@pytest.mark.parametrize("mode", ["poll", "subscribe"])
def test_a_clock_step_while_recording_keeps_the_index_monotonic(
    plant, tmp_path: Path, step_s: int, mode: str
):
    system = SteppedSystemClock()
    path = tmp_path / "run.parquet"
    parts = tmp_path / "run.parquet.parts"
    tags = ["tank.level", "plant.heartbeat"]
    with use_clock(Clock(system.wall, time.monotonic_ns)), plant.connect("modbus") as plc:
        rec = plc.record(
            tags, interval="20ms", background=True, path=path, flush_interval="50ms", mode=mode
        )
        try:
            assert wait_for(lambda: len(rec) >= 5)
            before = len(rec)
            system.step(step_s)
            assert wait_for(lambda: len(rec) >= before + 5)
            # The parts written from then on carry the step: a crash would keep it.
            assert wait_for(lambda: _steps_on_disk(parts), timeout=10)
        finally:
            rec.stop()
            rec.wait(10)
    frame = rec.to_pandas()
    index = frame.index
    assert index.is_monotonic_increasing
    assert index.is_unique
    frame["tank.level"].rolling("1s").mean()  # refuses a backwards index
    (event,) = rec.metadata["clock_steps"]
    assert event["event"] == "clock_step"
    assert abs(event["step_ns"] - step_s * S) < S // 2
    gaps = np.diff(index.asi8)
    if step_s > 0:
        assert gaps.max() >= step_s * S
    else:
        assert gaps.max() < S  # carried on: no jump back, no jump forward
    quality = rec.quality_frame()
    flagged = quality.index[(quality == "uncertain_clock").all(axis=1)]
    assert list(flagged) == [pd.Timestamp(event["row_time"])]
    assert (quality == "uncertain_clock").sum().sum() == len(tags)
    back = bf.open_recording(path)
    assert back.metadata["clock_steps"] == rec.metadata["clock_steps"]
    pd.testing.assert_frame_equal(back.quality_frame(), quality, check_freq=False)
    assert back.to_pandas().index.is_monotonic_increasing

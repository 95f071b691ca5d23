"""The simulated plant's process models: determinism and physical plausibility."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest

from bifrost.exceptions import ConfigurationError, WriteNotAllowed
from bifrost.sim import Plant
from bifrost.sim.process import (
    LINE_FAULT,
    LINE_RUNNING,
    LINE_STOPPED,
    ProcessConfig,
    ProcessModel,
    aux_registers,
    hysteresis,
)

# A line that changes state every few seconds, so short runs visit every state.
BUSY_LINE = ProcessConfig(
    mean_time_to_stop=8.0,
    mean_time_to_fault=12.0,
    mean_time_to_start=3.0,
    mean_time_to_repair=3.0,
)


def same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    if a.keys() != b.keys():
        return False
    for key, value in a.items():
        if isinstance(value, np.ndarray):
            if not np.array_equal(value, b[key]):
                return False
        elif value != b[key]:
            return False
    return True


def trace(model: ProcessModel, steps: int, *names: str) -> dict[str, np.ndarray]:
    rows: dict[str, list[Any]] = {n: [] for n in names}
    for _ in range(steps):
        model.step()
        snap = model.snapshot()
        for n in names:
            rows[n].append(snap[n])
    return {n: np.asarray(v) for n, v in rows.items()}


# -- determinism ----------------------------------------------------------------------
def test_same_seed_gives_identical_state() -> None:
    a, b = ProcessModel(seed=7), ProcessModel(seed=7)
    a.step(2500)
    for _ in range(25):
        b.step(100)  # the batching of steps must not matter
    assert a.steps == b.steps == 2500
    assert same(a.snapshot(), b.snapshot())


def test_different_seed_gives_different_state() -> None:
    a, b = ProcessModel(seed=1), ProcessModel(seed=2)
    a.step(500)
    b.step(500)
    sa, sb = a.snapshot(), b.snapshot()
    assert sa["tank.inflow"] != sb["tank.inflow"]
    assert not np.array_equal(sa["pump.vibration"], sb["pump.vibration"])


def test_plants_with_same_seed_and_writes_agree() -> None:
    with Plant(seed=3, realtime=False) as p1, Plant(seed=3, realtime=False) as p2:
        p1.step(300)
        p2.step(300)
        assert same(p1.snapshot(), p2.snapshot())
        assert p1.time == pytest.approx(3.0)
        assert np.array_equal(p1.aux_values(), p2.aux_values())


def test_snapshot_is_a_copy() -> None:
    model = ProcessModel(seed=1)
    model.step(3)
    snap = model.snapshot()
    snap["pump.vibration"][:] = 1e9
    assert model.snapshot()["pump.vibration"].max() < 1e3


# -- tank -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("config", "end"),
    [
        # a strong feed overflows: the level stops at the top
        (ProcessConfig(inflow_nominal=60.0, inflow_amplitude=0.0), "full"),
        # no feed: the tank drains towards empty but never below
        (ProcessConfig(inflow_nominal=0.0, inflow_amplitude=0.0, inflow_noise=0.0), "empty"),
    ],
)
def test_level_stays_within_the_tank(config: ProcessConfig, end: str) -> None:
    model = ProcessModel(seed=4, config=config)
    t = trace(model, 20000, "tank.level", "tank.outflow", "tank.inflow")
    level = t["tank.level"]
    assert level.min() >= 0.0
    assert level.max() <= config.tank_height
    assert np.all(t["tank.inflow"] >= 0.0)
    np.testing.assert_allclose(t["tank.outflow"][1:], config.outflow_k * np.sqrt(level[:-1]))
    if end == "full":
        assert level[-1] == config.tank_height
    else:
        assert level[-1] < 0.05
        assert np.all(np.diff(level) <= 0)


def test_level_integrates_inflow_minus_outflow() -> None:
    model = ProcessModel(seed=5)
    c = model.config
    before = model.snapshot()["tank.level"]
    model.step()
    after = model.snapshot()
    expected = before + (after["tank.inflow"] - after["tank.outflow"]) / 3600 / c.tank_area * 0.01
    assert after["tank.level"] == pytest.approx(expected, rel=1e-12)


def test_hysteresis_function() -> None:
    assert hysteresis(3.6, False, on=3.5, off=3.3) is True
    assert hysteresis(3.4, True, on=3.5, off=3.3) is True
    assert hysteresis(3.4, False, on=3.5, off=3.3) is False
    assert hysteresis(3.3, True, on=3.5, off=3.3) is False


def test_high_alarm_has_hysteresis() -> None:
    model = ProcessModel(seed=1)
    c = model.config
    t = trace(model, 40000, "tank.level", "tank.high_alarm")
    level, alarm = t["tank.level"], t["tank.high_alarm"].astype(bool)
    assert np.all(alarm[level >= c.alarm_on])
    assert not np.any(alarm[level <= c.alarm_off])
    band = (level > c.alarm_off) & (level < c.alarm_on)
    # inside the band the alarm keeps its previous state
    assert np.array_equal(alarm[1:][band[1:]], alarm[:-1][band[1:]])
    sets = np.flatnonzero(~alarm[:-1] & alarm[1:])
    clears = np.flatnonzero(alarm[:-1] & ~alarm[1:])
    assert len(sets) >= 1
    assert len(clears) >= 1
    # the level was in the band for a while between set and clear: it chattered not
    assert np.all(level[sets + 1] >= c.alarm_on)
    assert np.all(level[clears + 1] <= c.alarm_off)


# -- reactor --------------------------------------------------------------------------
def test_temperature_follows_a_new_setpoint() -> None:
    model = ProcessModel(seed=2)
    model.step(500)
    start = model.snapshot()
    assert start["reactor.temperature"] == pytest.approx(60.0, abs=0.5)
    model.set_input("reactor.setpoint", 80.0)
    t = trace(model, 6000, "reactor.temperature", "reactor.heater", "reactor.setpoint")
    assert np.all(t["reactor.setpoint"] == 80.0)
    temp = t["reactor.temperature"]
    assert abs(temp[:100].mean() - 80.0) > 10  # it did not jump
    last = temp[-500:]
    assert abs(last.mean() - 80.0) < 0.1
    assert np.abs(last - 80.0).max() < 0.5
    assert 0.01 < last.std() < 0.2  # a little sensor noise is left
    heater = t["reactor.heater"]
    assert heater.min() >= 0.0
    assert heater.max() <= 100.0
    c = model.config
    steady = (80.0 - c.ambient) / c.reactor_gain
    assert heater[-500:].mean() == pytest.approx(steady, abs=1.0)


def test_setpoint_is_clipped_and_nan_ignored() -> None:
    model = ProcessModel(seed=0)
    model.set_input("reactor.setpoint", 1000)
    assert model.snapshot()["reactor.setpoint"] == 150.0
    model.set_input("reactor.setpoint", math.nan)
    assert model.snapshot()["reactor.setpoint"] == 150.0
    with pytest.raises(WriteNotAllowed):
        model.set_input("tank.level", 1.0)


# -- line -----------------------------------------------------------------------------
def test_counter_counts_cycles_only_while_running() -> None:
    model = ProcessModel(seed=11, config=BUSY_LINE)
    t = trace(model, 30000, "line.state", "line.counter", "line.cycle")
    state, counter, cycle = t["line.state"], t["line.counter"], t["line.cycle"].astype(bool)
    assert set(np.unique(state)) == {LINE_STOPPED, LINE_RUNNING, LINE_FAULT}
    steps = np.diff(counter)
    assert set(np.unique(steps)) <= {0, 1}
    increments = np.flatnonzero(steps) + 1
    assert len(increments) > 50
    assert np.all(state[increments] == LINE_RUNNING)
    # one part per 2 s cycle of running (a stop pauses the cycle, it does not reset it)
    running = np.count_nonzero(state == LINE_RUNNING)
    assert counter[-1] - counter[0] == pytest.approx(running / 200, abs=1)
    # the trigger rises exactly when a cycle completes (and a new one starts)
    assert np.all(cycle[increments])
    assert np.all(~cycle[increments - 1])
    assert not np.any(cycle[state != LINE_RUNNING])


def test_cycle_trigger_pulses_a_fixed_fraction() -> None:
    model = ProcessModel(seed=0)  # the default line runs for minutes on end
    t = trace(model, 2000, "line.state", "line.cycle")
    assert np.all(t["line.state"] == LINE_RUNNING)
    cycle = t["line.cycle"].astype(np.int8)
    edges = np.diff(cycle)
    rises, falls = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    assert len(rises) == 10  # 20 s at 2 s per cycle (the first pulse is already on at t=0)
    assert np.all(np.diff(rises) == 200)  # exactly one pulse per cycle
    widths = falls[falls > rises[0]][: len(rises) - 1] - rises[: len(rises) - 1]
    assert np.all(widths == 50)  # 25 % of 200 steps
    assert cycle.mean() == pytest.approx(0.25, abs=0.02)


def test_disabling_the_line_stops_it() -> None:
    model = ProcessModel(seed=0)
    model.step(10)
    model.set_input("line.enable", False)
    t = trace(model, 3000, "line.state", "line.counter", "pump.speed", "line.cycle")
    assert np.all(t["line.state"] == LINE_STOPPED)
    assert np.all(t["line.counter"] == t["line.counter"][0])
    assert not t["line.cycle"].any()
    assert t["pump.speed"][-1] < 1.0  # the pump ran down
    assert np.all(np.diff(t["pump.speed"]) <= 0)


# -- pump -----------------------------------------------------------------------------
def test_vibration_rms_is_computed_from_the_waveform() -> None:
    model = ProcessModel(seed=6)
    c = model.config
    rms0 = model.snapshot()["pump.vibration_rms"]
    t = trace(model, 1500, "pump.vibration", "pump.vibration_rms", "pump.speed")
    wave, rms = t["pump.vibration"], t["pump.vibration_rms"]
    assert wave.shape == (1500, c.vibration_samples)
    alpha = 1 - math.exp(-0.01 / c.rms_tau)
    ms = rms0**2
    expected = []
    for block in wave:
        ms += (np.mean(block**2) - ms) * alpha
        expected.append(math.sqrt(ms))
    np.testing.assert_allclose(rms, expected, rtol=1e-12)
    # the level matches the harmonics' amplitudes plus noise at nominal speed
    theory = math.sqrt(sum(a * a for a in c.harmonics) / 2 + c.vibration_noise**2)
    assert np.all(t["pump.speed"] == pytest.approx(c.pump_nominal_rpm))
    assert rms[-1] == pytest.approx(theory, rel=0.15)
    assert np.sqrt(np.mean(wave**2)) == pytest.approx(theory, rel=0.05)


def test_vibration_is_harmonics_of_the_rotation() -> None:
    model = ProcessModel(seed=8)
    t = trace(model, 100, "pump.vibration", "pump.speed")
    signal = t["pump.vibration"].reshape(-1)  # 1 s, continuous across steps
    fs = len(signal)  # samples per second
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(len(signal))))
    freqs = np.fft.rfftfreq(len(signal), 1 / fs)
    rotation = t["pump.speed"].mean() / 60
    assert abs(freqs[np.argmax(spectrum)] - rotation) <= 1  # strongest line: 1x
    floor = np.median(spectrum)
    for order in (1, 2, 3):
        near = np.abs(freqs - order * rotation) <= 1
        assert spectrum[near].max() > 20 * floor  # a line at every harmonic
    between = np.abs(freqs - 1.5 * rotation) <= 1
    assert spectrum[between].max() < 5 * floor  # and not in between


def test_vibration_falls_to_the_noise_floor_when_stopped() -> None:
    model = ProcessModel(seed=9)
    model.set_input("line.enable", False)
    model.step(2000)
    snap = model.snapshot()
    assert snap["pump.speed"] < 1.0
    assert snap["pump.vibration_rms"] == pytest.approx(model.config.vibration_noise, rel=0.25)


# -- aux and config -------------------------------------------------------------------
def test_aux_registers_are_slow_and_deterministic() -> None:
    a = aux_registers(1000, 0.01, 4000)
    assert a.dtype == np.uint16
    assert a.shape == (4000,)
    assert np.array_equal(a, aux_registers(1000, 0.01, 4000))
    b = aux_registers(1001, 0.01, 4000)
    step = np.abs(a.astype(np.int32) - b.astype(np.int32))
    assert step.max() <= 100
    assert np.count_nonzero(step) > 3000
    assert len(np.unique(a)) > 3000  # channels differ from each other


@pytest.mark.parametrize(
    "kwargs",
    [{"tank_area": 0.0}, {"cycle_duty": 1.0}, {"alarm_off": 4.0}, {"vibration_samples": 0}],
)
def test_bad_config_is_refused(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigurationError):
        ProcessConfig(**kwargs)


@pytest.mark.parametrize("dt", [0.0, -1.0, math.nan, 5.0])
def test_bad_dt_is_refused(dt: float) -> None:
    with pytest.raises(ConfigurationError):
        ProcessModel(dt=dt)


def test_bad_step_count_is_refused() -> None:
    with pytest.raises(ConfigurationError):
        ProcessModel().step(-1)

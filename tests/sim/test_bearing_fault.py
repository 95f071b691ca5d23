"""The pump's bearing defect: off by default, deterministic, regular impacts that grow."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.signal
import scipy.stats

import bifrost as bf
from bifrost.exceptions import ConfigurationError
from bifrost.sim.process import ProcessConfig, ProcessModel


def waveform(model: ProcessModel, seconds: float) -> tuple[np.ndarray, dict[str, object]]:
    blocks = []
    for _ in range(round(seconds / model.dt)):
        model.step()
        blocks.append(model.snapshot()["pump.vibration"])
    return np.concatenate(blocks), model.snapshot()


def test_no_defect_by_default_and_none_before_the_start() -> None:
    healthy = ProcessModel(seed=4)
    later = ProcessModel(seed=4, config=ProcessConfig(bearing_fault_start=5.0))
    a, _ = waveform(healthy, 4.9)
    b, _ = waveform(later, 4.9)
    np.testing.assert_array_equal(a, b)
    assert ProcessConfig().bearing_fault_start is None


def test_the_defect_changes_the_vibration_only() -> None:
    healthy = ProcessModel(seed=5)
    faulty = ProcessModel(seed=5, config=ProcessConfig(bearing_fault_start=0.5))
    a, snap_a = waveform(healthy, 3.0)
    b, snap_b = waveform(faulty, 3.0)
    assert not np.array_equal(a, b)
    # It draws no random numbers: everything but the vibration stays the same.
    for name in snap_a:
        if not name.startswith("pump.vibration"):
            assert snap_a[name] == snap_b[name], name
    again, _ = waveform(ProcessModel(seed=5, config=faulty.config), 3.0)
    np.testing.assert_array_equal(b, again)


def test_impacts_grow_and_repeat_at_the_defect_frequency() -> None:
    config = ProcessConfig(bearing_fault_start=1.0, bearing_fault_growth=1.0)
    model = ProcessModel(seed=6, config=config)
    fs = config.vibration_samples / model.dt
    early, _ = waveform(model, 2.0)
    _, _ = waveform(model, 8.0)
    late, snap = waveform(model, 2.0)
    assert scipy.stats.kurtosis(late) > scipy.stats.kurtosis(early) + 1.0
    crest = [np.abs(w).max() / np.sqrt(np.mean(w**2)) for w in (early, late)]
    assert crest[1] > 1.5 * crest[0]
    # The ringing sits at the resonance; its envelope repeats at BPFO = order x shaft.
    sos = scipy.signal.butter(4, [2000, 3000], btype="bandpass", fs=fs, output="sos")
    ringing = scipy.signal.sosfiltfilt(sos, late)
    envelope = np.abs(scipy.signal.hilbert(ringing))
    freqs, power = scipy.signal.welch(envelope - envelope.mean(), fs=fs, nperseg=len(late))
    shaft = float(snap["pump.speed"]) / 60.0  # type: ignore[arg-type]
    bpfo = config.bearing_defect_order * shaft
    low = freqs > 20
    assert abs(freqs[low][np.argmax(power[low])] - bpfo) < 1.0
    _, healthy_power = scipy.signal.welch(early, fs=fs, nperseg=256)
    _, faulty_power = scipy.signal.welch(late, fs=fs, nperseg=256)
    f256 = np.fft.rfftfreq(256, 1 / fs)
    band = (f256 >= 2000) & (f256 < 3000)
    assert faulty_power[band].sum() > 20 * healthy_power[band].sum()


def test_a_stopped_pump_makes_no_impacts() -> None:
    model = ProcessModel(seed=7, config=ProcessConfig(bearing_fault_start=0.0))
    model.set_input("line.enable", False)
    model.step(3000)
    wave, snap = waveform(model, 1.0)
    assert float(snap["pump.speed"]) < 0.01  # type: ignore[arg-type]
    assert np.abs(wave).max() < 6 * model.config.vibration_noise


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"bearing_fault_start": -1.0}, "bearing_fault_start"),
        ({"bearing_fault_growth": -0.1}, "bearing_fault_growth"),
        ({"bearing_resonance": 0.0}, "bearing_resonance"),
        ({"bearing_defect_order": float("nan")}, "bearing_defect_order"),
    ],
)
def test_bad_defect_parameters(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        ProcessConfig(**kwargs)


def test_a_resonance_above_nyquist_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="Nyquist frequency, 3200 Hz"):
        ProcessModel(config=ProcessConfig(bearing_fault_start=1.0, bearing_resonance=3500.0))
    ProcessModel(dt=0.02)  # without a defect the resonance does not matter


def test_the_plant_names_its_vibration_rate() -> None:
    with bf.sim.Plant(realtime=False, dt=0.02) as plant:
        assert plant.vibration_rate == pytest.approx(3200.0)

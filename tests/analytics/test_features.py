"""ML-ready features: the segment kernel (compiled vs twin vs scipy/numpy) and bfa.features.

References are written from the definitions here: numpy moments, ``scipy.stats.skew``
and ``scipy.stats.kurtosis`` (defaults: biased, Fisher), ``numpy.polyfit`` slopes and
pandas groupby over the same windows. The twins are never their own reference.
"""

from __future__ import annotations

import itertools
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.stats
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import bifrost as bf
import bifrost.analytics as bfa
from bifrost.analytics import _backend, _numpy
from bifrost.analytics._checks import MOMENT_FEATURES
from bifrost.exceptions import ConfigurationError

try:
    from bifrost import _core
except ImportError:  # not built: the Rust parametrisations skip
    _core = None

needs_rust = pytest.mark.skipif(_core is None, reason="bifrost._core is not built")
IMPLS = [pytest.param(_numpy, id="numpy"), pytest.param(_core, id="rust", marks=needs_rust)]
NO_BANDS = np.zeros((0, 2))
COL = {name: k for k, name in enumerate(MOMENT_FEATURES)}


@pytest.fixture(params=["numpy", pytest.param("rust", marks=needs_rust)])
def public_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setattr(_backend, "_compiled", None if request.param == "numpy" else _core)
    return str(request.param)


def reference_row(x: np.ndarray, t: np.ndarray) -> list[float]:
    keep = ~np.isnan(x)
    v, tv = x[keep], t[keep]
    if not v.size:
        return [0.0] + [np.nan] * 10
    rms = float(np.sqrt(np.mean(v**2)))
    constant = np.ptp(v) == 0
    skew = np.nan if constant else scipy.stats.skew(v)
    kurt = np.nan if constant else scipy.stats.kurtosis(v)
    slope = np.polyfit(tv, v, 1)[0] if np.unique(tv).size > 1 else np.nan
    peak = float(np.max(np.abs(v)))
    return [v.size, v.mean(), v.std(), v.min(), v.max(), rms, peak, peak / rms, skew, kurt, slope]


@pytest.mark.parametrize("impl", IMPLS)
def test_moments_match_numpy_and_scipy(impl: ModuleType) -> None:
    rng = np.random.default_rng(4)
    x = rng.gamma(2.0, size=3000) + 100.0
    x[rng.random(x.size) < 0.05] = np.nan
    x[1000:1010] = 7.0  # a constant segment
    x[2000:2005] = np.nan  # an all-missing one
    t = np.sort(rng.uniform(0, 60, x.size))
    offsets = np.array([0, 1, 400, 400, 1000, 1010, 2000, 2005, 2999, 3000], dtype=np.int64)
    got = impl.segment_features(x, t, offsets, 0.0, 0, NO_BANDS)
    expected = np.array([reference_row(x[a:b], t[a:b]) for a, b in itertools.pairwise(offsets)])
    assert got.shape == (9, len(MOMENT_FEATURES))
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-12)


@needs_rust
def test_compiled_kernel_and_twin_agree_with_bands() -> None:
    rng = np.random.default_rng(5)
    x = rng.standard_t(4, size=64 * 300) * 2 + np.sin(np.arange(64 * 300) / 3.0)
    x[rng.random(x.size) < 0.002] = np.nan
    t = np.arange(x.size) / 6400.0
    offsets = np.array([0, 64, 64 * 10, 64 * 10 + 30, 64 * 200, x.size], dtype=np.int64)
    bands = np.array([[0, 200], [200, 1000], [1000, 3200], [150, 160.5]])
    args = (x, t, offsets, 6400.0, 64, bands[:3])
    np.testing.assert_allclose(
        _core.segment_features(*args), _numpy.segment_features(*args), rtol=1e-10, atol=1e-12
    )
    for impl in (_core, _numpy):
        with pytest.raises(ValueError, match="no frequency bin"):
            impl.segment_features(x, t, offsets, 6400.0, 64, bands)
        with pytest.raises(ValueError, match="decrease"):
            impl.segment_features(x, t, offsets[::-1].copy(), 0.0, 0, NO_BANDS)
        with pytest.raises(ValueError, match="block"):
            impl.segment_features(x, t, offsets, 6400.0, 0, bands[:1])


@pytest.mark.parametrize("impl", IMPLS)
def test_skewness_and_kurtosis_are_nan_when_the_spread_underflows(impl: ModuleType) -> None:
    # [0, a, a]: skewness -1/sqrt(2), excess kurtosis -1.5 at any scale, but at a ~ 2e-107
    # the cubes and fourth powers are subnormal or zero: garbage, so no value.
    offsets = np.array([0, 3, 6], dtype=np.int64)
    x = np.array([0.0, 2e-107, 2e-107, 0.0, 2e-70, 2e-70])
    t = np.arange(6.0)
    got = impl.segment_features(x, t, offsets, 0.0, 0, NO_BANDS)
    skew, kurt = COL["skewness"], COL["kurtosis"]
    assert np.isnan(got[0, skew])
    assert np.isnan(got[0, kurt])
    assert got[0, COL["std"]] > 0  # the spread itself is still given
    np.testing.assert_allclose(got[1, [skew, kurt]], [-(0.5**0.5), -1.5], rtol=1e-9)


@needs_rust
@settings(max_examples=60, deadline=None)
@example(x=np.array([0.0, 2.06788191e-107, 2.06788191e-107]), cuts=[], block=0)
@given(
    x=arrays(
        np.float64,
        st.integers(0, 300),
        elements=st.one_of(st.floats(-1e3, 1e3), st.just(np.nan), st.just(0.1)),
    ),
    cuts=st.lists(st.integers(0, 300), max_size=6),
    block=st.sampled_from([0, 4, 16]),
)
def test_compiled_kernel_and_twin_agree_on_any_segments(
    x: np.ndarray, cuts: list[int], block: int
) -> None:
    offsets = np.array(sorted({0, x.size, *(c for c in cuts if c <= x.size)}), dtype=np.int64)
    t = np.arange(x.size) * 0.1
    bands = np.array([[0.0, 1.0], [1.0, 5.0]]) if block else NO_BANDS
    args = (x, t, offsets, 10.0, block, bands)
    np.testing.assert_allclose(
        _core.segment_features(*args), _numpy.segment_features(*args), rtol=1e-7, atol=1e-6
    )


@pytest.mark.parametrize("impl", IMPLS)
def test_known_signals(impl: ModuleType) -> None:
    fs, amplitude = 6400.0, 3.0
    n = np.arange(64 * 100)
    sine = amplitude * np.sin(2 * np.pi * 1000.0 * n / fs)  # 1000 Hz: bin 10 of 100 Hz
    t = n / fs
    row = impl.segment_features(
        sine, t, np.array([0, sine.size]), fs, 64, np.array([[900.0, 1200.0], [0.0, 500.0]])
    )[0]
    assert row[COL["rms"]] == pytest.approx(amplitude / np.sqrt(2), rel=1e-12)
    assert row[COL["crest"]] == pytest.approx(np.sqrt(2), rel=1e-6)
    # Fisher (excess) kurtosis, scipy's default: a sine is -1.5, Gaussian noise 0.
    assert row[COL["kurtosis"]] == pytest.approx(-1.5, abs=1e-9)
    assert row[len(MOMENT_FEATURES)] == pytest.approx(amplitude**2 / 2, rel=1e-12)
    assert row[len(MOMENT_FEATURES) + 1] < 1e-20
    noise = np.random.default_rng(6).normal(size=400_000)
    row = impl.segment_features(
        noise, np.arange(noise.size, dtype=float), np.array([0, noise.size]), 0.0, 0, NO_BANDS
    )[0]
    assert row[COL["kurtosis"]] == pytest.approx(0.0, abs=0.03)
    assert row[COL["skewness"]] == pytest.approx(0.0, abs=0.02)
    assert row[COL["slope"]] == pytest.approx(0.0, abs=1e-6)


# --- bfa.features ------------------------------------------------------------------------


def frame(n: int = 1000, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    index = pd.date_range("2026-01-01 00:00:00.25", periods=n, freq="10ms", tz="UTC")
    level = np.cumsum(rng.normal(size=n))
    level[rng.random(n) < 0.03] = np.nan
    return pd.DataFrame(
        {
            "tank.level": level,
            "line.counter": pd.array(np.arange(n) // 37, dtype="Int64"),
            "line.cycle": pd.array(np.arange(n) % 40 < 10, dtype="boolean"),
            "line.recipe": ["PART"] * n,
            "pump.vibration": [rng.normal(size=64) for _ in range(n)],
        },
        index=index,
    )


def test_windows_match_a_pandas_groupby(public_backend: str) -> None:
    df = frame()
    out = bfa.features(df, "1s", tags=["tank.level", "line.counter"])
    level = df["tank.level"]
    groups = level.groupby(level.index.floor("1s"))
    assert list(out.index) == list(groups.mean().index)
    assert out.index.name == "start"
    assert str(out.index.tz) == "UTC"
    np.testing.assert_allclose(out["tank.level.mean"], groups.mean())
    np.testing.assert_allclose(out["tank.level.std"], groups.std(ddof=0))
    np.testing.assert_allclose(out["tank.level.min"], groups.min())
    np.testing.assert_allclose(out["tank.level.max"], groups.max())
    skewness = groups.apply(lambda g: scipy.stats.skew(g.dropna()))
    np.testing.assert_allclose(out["tank.level.skewness"], skewness)
    first = df.loc[: out.index[1] - pd.Timedelta(1), "tank.level"].dropna()
    seconds = (first.index - df.index[0]).total_seconds()
    assert out["tank.level.slope"].iloc[0] == pytest.approx(np.polyfit(seconds, first, 1)[0])
    assert out["line.counter.mean"].iloc[0] == pytest.approx(df["line.counter"].iloc[:75].mean())
    assert "count" not in {c.rsplit(".", 1)[-1] for c in out.columns}
    assert out.attrs["window"] == "0 days 00:00:01"


def test_default_tags_skip_text_and_booleans(public_backend: str) -> None:
    out = bfa.features(frame(200), "500ms", fs=6400)
    tags = {c.rsplit(".", 1)[0] for c in out.columns if ".band_" not in c}
    assert tags == {"tank.level", "line.counter", "pump.vibration"}
    assert "pump.vibration.band_1600_3200Hz" in out.columns
    assert not any(c.startswith("tank.level.band") for c in out.columns)


def test_waveform_columns_use_every_sample_once(public_backend: str) -> None:
    df = frame(300)
    df.iloc[11, df.columns.get_loc("pump.vibration")] = df["pump.vibration"].iloc[10].copy()
    df.iloc[12, df.columns.get_loc("pump.vibration")] = None  # a bad-quality row
    out = bfa.features(
        df, "1s", tags=["pump.vibration"], fs=6400, features=["count", "rms", "kurtosis", "bands"]
    )
    first = out.index[1] - pd.Timedelta(1)
    rows = [c for c in df.loc[:first, "pump.vibration"]]
    unique = np.concatenate([r for i, r in enumerate(rows) if i not in (11, 12)])
    assert out["pump.vibration.count"].iloc[0] == unique.size
    assert out["pump.vibration.rms"].iloc[0] == pytest.approx(np.sqrt(np.mean(unique**2)))
    assert out["pump.vibration.kurtosis"].iloc[0] == pytest.approx(scipy.stats.kurtosis(unique))
    bands = [c for c in out.columns if ".band_" in c]
    assert len(bands) == 5
    # White noise: the bands hold the variance (less what the mean of each block takes).
    total = out[bands].sum(axis=1)
    assert np.all((total > 0.9) & (total < 1.05))


def test_cycles_from_a_counter_and_a_trigger(public_backend: str) -> None:
    df = frame()
    by_counter = bfa.features(df, per="line.counter", tags=["tank.level"])
    # Counter changes every 37 rows; the first and the last run are incomplete.
    assert len(by_counter) == 1000 // 37 - 1
    assert by_counter.index[0] == df.index[37]
    np.testing.assert_allclose(by_counter["duration"], 0.37)
    expected = df["tank.level"].iloc[37:74].mean()
    assert by_counter["tank.level.mean"].iloc[0] == pytest.approx(expected)
    by_trigger = bfa.features(df, per="cycle", tags=["tank.level"])  # finds line.cycle
    assert by_trigger.attrs["per"] == "line.cycle"
    assert list(by_trigger.index) == list(df.index[40:1000:40][:-1])
    assert by_trigger["tank.level.max"].iloc[0] == df["tank.level"].iloc[40:80].max()


def test_a_recording_is_described_through_its_frame(public_backend: str) -> None:
    with bf.sim.Plant(seed=3) as plant, plant.connect("modbus") as plc:
        rec = plc.record(
            ["pump.speed", "tank.level"], interval="20ms", duration="0.6s", progress=False
        )
    out = bfa.features(rec, "200ms")
    assert {"pump.speed.mean", "tank.level.slope"} <= set(out.columns)
    df = rec.to_pandas()
    np.testing.assert_allclose(
        out["tank.level.mean"], df["tank.level"].groupby(df.index.floor("200ms")).mean()
    )
    assert df.bifrost.features("200ms").equals(out)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "either window"),
        ({"window": "1s", "per": "line.counter"}, "either window"),
        ({"window": "-1s"}, "positive duration"),
        ({"window": "often"}, "duration"),
        ({"window": "1s", "tags": ["nope"]}, "no column 'nope'"),
        ({"window": "1s", "tags": ["line.recipe"]}, "not numbers"),
        ({"window": "1s", "features": ["rms", "energy"]}, "unknown feature"),
        ({"per": "line.recipe"}, "boolean trigger or a counter"),
        ({"per": "missing"}, "no column matches"),
        ({"window": "1s", "fs": {"tank.level": 6400}}, "0.01 s apart"),
        ({"window": "1s", "fs": {"nope": 6400}}, "not among the tags"),
        ({"window": "1s", "fs": 0}, "positive rate"),
        ({"window": "1s", "fs": 6400, "bands": [(5000, 6000)]}, "Nyquist"),
        ({"window": "1s", "fs": 6400, "bands": [(10, 20)]}, "no frequency bin"),
        ({"window": "1s", "fs": 6400, "bands": [(10,)]}, "pair"),
        ({"window": "1s", "features": ["bands"]}, "sampling rate"),
    ],
)
def test_bad_arguments_name_the_problem(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        bfa.features(frame(100), **kwargs)


def test_inputs_that_are_not_recordings() -> None:
    with pytest.raises(ConfigurationError, match="Recording or a pandas DataFrame"):
        bfa.features(np.zeros(10), "1s")
    with pytest.raises(ConfigurationError, match="DatetimeIndex"):
        bfa.features(pd.DataFrame({"a": [1.0, 2.0]}), "1s")
    series = frame(100)["tank.level"]
    assert next(iter(bfa.features(series, "1s").columns)) == "tank.level.mean"


def test_sparse_rows_with_more_windows_than_rows(public_backend: str) -> None:
    index = pd.DatetimeIndex(
        ["2026-01-01 00:00:00.0004", "2026-01-01 00:00:00.0009", "2026-01-01 01:00:00"],
        tz="UTC",
    )
    df = pd.DataFrame({"v": [1.0, 3.0, 5.0]}, index=index)
    out = bfa.features(df, "1ms", features=["count", "mean"])
    assert list(out["v.count"]) == [2.0, 1.0]
    assert list(out.index) == [index[0].floor("1ms"), index[2]]
    assert list(out["v.mean"]) == [2.0, 5.0]


def test_the_plants_bearing_defect_shows_in_an_opcua_recording() -> None:
    config = bf.sim.ProcessConfig(
        bearing_fault_start=0.0,
        bearing_fault_growth=5.0,  # impacts of 7 mm/s and more by the time it records
        mean_time_to_stop=1e9,
        mean_time_to_fault=1e9,
    )
    with bf.sim.Plant(seed=2, config=config) as plant, plant.connect("opcua") as plc:
        rec = plc.record(["pump.vibration"], interval="20ms", duration="2s", progress=False)
        fs = plant.vibration_rate
    out = bfa.features(rec, "500ms", fs=fs, features=["count", "kurtosis", "bands"])
    assert (out["pump.vibration.count"] % 64 == 0).all()
    full = out[out["pump.vibration.count"] >= 0.8 * out["pump.vibration.count"].max()]
    assert len(full) >= 2
    noise = config.vibration_noise**2 / 2  # healthy: sensor noise only, above 1600 Hz
    high = full["pump.vibration.band_1600_3200Hz"]
    assert (high > 10 * noise).all()
    assert high.iloc[-1] > high.iloc[0]  # the defect keeps growing
    # Healthy, the harmonics make it -1.2 (a sine is -1.5); impacts make it peaky.
    assert (full["pump.vibration.kurtosis"] > -0.9).all()

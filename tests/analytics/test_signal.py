"""Signal kernels: compiled vs NumPy twin vs an independent reference.

References: pandas (resample, binning), tsdownsample (downsampling), scipy.signal
(Butterworth, sosfilt, sosfiltfilt, welch), scipy.stats (kurtosis), and plain loops
written here from the definitions (LTTB with missing samples, control charts, CUSUM,
cycles). The NumPy twins are never their own reference.
"""

from __future__ import annotations

import math
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import pytest
import scipy.signal as sg
import scipy.stats
import xarray as xr
from tsdownsample import (
    LTTBDownsampler,
    M4Downsampler,
    MinMaxDownsampler,
    MinMaxLTTBDownsampler,
)

import bifrost.analytics as bfa
from bifrost.analytics import _backend, _numpy
from bifrost.analytics.accessors import BifrostAccessor

try:
    from bifrost import _core
except ImportError:  # not built: the Rust parametrisations skip
    _core = None

needs_rust = pytest.mark.skipif(_core is None, reason="bifrost._core is not built")
IMPLS = [
    pytest.param(_numpy, id="numpy"),
    pytest.param(_core, id="rust", marks=needs_rust),
]


@pytest.fixture(params=["numpy", pytest.param("rust", marks=needs_rust)])
def public_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a public-API test once per backend."""
    monkeypatch.setattr(_backend, "_compiled", None if request.param == "numpy" else _core)
    return str(request.param)


def rng(seed: int) -> np.random.Generator:
    return np.random.default_rng(seed)


# --- resample ---------------------------------------------------------------------------

STATS = ["count", "sum", "mean", "min", "max", "first", "last"]


def irregular_series(n: int, seed: int, nan_fraction: float = 0.05) -> pd.Series:
    g = rng(seed)
    steps = g.integers(1, 2_000_000, size=n)  # up to 2 ms apart, irregular
    times = pd.Timestamp("2024-03-01 13:00:00.123", tz="UTC") + pd.to_timedelta(
        np.cumsum(steps), unit="ns"
    )
    values = g.normal(size=n)
    values[g.random(n) < nan_fraction] = np.nan
    return pd.Series(values, index=pd.DatetimeIndex(times, name="t"), name="flow")


def pandas_bins(
    t: np.ndarray, v: np.ndarray, start: int, step: int, n_bins: int
) -> list[np.ndarray]:
    """The statistics of each bin by a pandas groupby on the bin number."""
    k = (t - start) // step
    inside = (k >= 0) & (k < n_bins)
    table = pd.Series(v[inside]).groupby(k[inside]).agg(STATS).reindex(range(n_bins))
    # An empty bin: no row in the groupby, so fill count and sum as pandas' resample does.
    table["count"] = table["count"].fillna(0)
    table["sum"] = table["sum"].fillna(0.0)
    return [table[name].to_numpy(dtype=np.float64) for name in STATS]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("n", [0, 1, 2, 500, 5000])
@pytest.mark.parametrize(("start", "n_bins"), [(-30, 150), (2_000, 100)])
def test_bin_regular_matches_pandas(impl: ModuleType, n: int, start: int, n_bins: int) -> None:
    g = rng(n)
    t = np.sort(g.integers(0, 10_000, size=n)).astype(np.int64)
    v = g.normal(size=n)
    v[g.random(n) < 0.1] = np.nan
    # The second grid leaves samples out at both ends.
    got = impl.bin_regular(t, v, start, 70, n_bins)
    expected = pandas_bins(t, v, start, 70, n_bins)
    for name, a, b in zip(STATS, got, expected, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-12, err_msg=name)
    assert got[0].dtype == np.int64


@pytest.mark.parametrize("impl", IMPLS)
def test_bin_regular_unsorted_first_last_in_input_order(impl: ModuleType) -> None:
    t = np.array([25, 3, 12, 7, 18], dtype=np.int64)
    v = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    count, _, mean, _lo, _hi, first, last = impl.bin_regular(t, v, 0, 10, 3)
    np.testing.assert_array_equal(count, [2, 2, 1])
    np.testing.assert_array_equal(first, [2.0, 3.0, 1.0])
    np.testing.assert_array_equal(last, [4.0, 5.0, 1.0])
    np.testing.assert_array_equal(mean, [3.0, 4.0, 1.0])
    with pytest.raises(ValueError, match="step must be a positive"):
        impl.bin_regular(t, v, 0, 0, 3)


@pytest.mark.usefixtures("public_backend")
@pytest.mark.parametrize("n", [1, 7, 20_000])
def test_resample_series_matches_pandas(n: int) -> None:
    series = irregular_series(n, seed=n)
    series.attrs = {"unit": "l/min"}
    got = bfa.resample(series, "100ms", how=STATS)
    expected = series.resample("100ms").agg(STATS)
    pd.testing.assert_frame_equal(got, expected, check_freq=False, rtol=1e-10)
    assert got.attrs == {"unit": "l/min"}
    one = bfa.resample(series, "1s")
    pd.testing.assert_series_equal(one, series.resample("1s").mean(), check_freq=False, rtol=1e-10)


@pytest.mark.usefixtures("public_backend")
def test_resample_edges_all_nan_constant_and_empty() -> None:
    idx = pd.date_range("2024-01-01", periods=50, freq="37ms")
    nan = pd.Series(np.nan, index=idx)
    got = bfa.resample(nan, "1s", how=["mean", "count", "sum"])
    pd.testing.assert_frame_equal(
        got, nan.resample("1s").agg(["mean", "count", "sum"]), check_freq=False
    )
    const = pd.Series(0.1, index=idx)
    np.testing.assert_allclose(bfa.resample(const, "250ms").to_numpy(), 0.1, rtol=1e-15)
    empty = pd.Series([], index=pd.DatetimeIndex([]), dtype=float)
    assert bfa.resample(empty, "1s").empty


@pytest.mark.usefixtures("public_backend")
def test_resample_frame_dataarray_numpy_and_quality() -> None:
    series = irregular_series(3000, seed=4)
    frame = pd.DataFrame({"a": series, "b": series * 2 + 1})
    got = bfa.resample(frame, "1s", how=("mean", "max"))
    expected = frame.resample("1s").agg(["mean", "max"])
    pd.testing.assert_frame_equal(got, expected, check_freq=False, rtol=1e-10)
    pd.testing.assert_frame_equal(
        bfa.resample(frame, "1s", how="min"), frame.resample("1s").min(), check_freq=False
    )
    naive = series.tz_localize(None)
    array = xr.DataArray(
        naive.to_numpy(), dims="time", coords={"time": naive.index.to_numpy()}, attrs={"u": 1}
    )
    out = bfa.resample(array, "1s", how=("mean", "count"))
    assert out.dims == ("time", "stat")
    assert out.attrs == {"u": 1}
    np.testing.assert_allclose(
        out.sel(stat="mean").values, naive.resample("1s").mean().to_numpy(), rtol=1e-10
    )
    ds = bfa.resample(array.to_dataset(name="flow"), "1s", how=("mean", "count"))
    assert set(ds.data_vars) == {"flow_mean", "flow_count"}
    result = bfa.resample(naive.to_numpy(), "1s", how="max", time=naive.index.to_numpy())
    np.testing.assert_allclose(result["max"], naive.resample("1s").max().to_numpy())
    assert result["time"][0] == naive.resample("1s").max().index[0].to_datetime64()
    # Bad-quality samples are left out like NaN.
    good = np.ones(len(series), dtype=bool)
    good[::3] = False
    pd.testing.assert_series_equal(
        bfa.resample(series, "1s", how="count", valid=good),
        series.where(good).resample("1s").count(),
        check_freq=False,
    )


def test_resample_rejects_bad_arguments() -> None:
    series = irregular_series(10, seed=1)
    with pytest.raises(ValueError, match="fixed duration"):
        bfa.resample(series, pd.offsets.MonthBegin())
    with pytest.raises(ValueError, match="how must name"):
        bfa.resample(series, "1s", how="median")
    with pytest.raises(ValueError, match="DatetimeIndex"):
        bfa.resample(pd.Series([1.0, 2.0]), "1s")
    with pytest.raises(ValueError, match="needs `time`"):
        bfa.resample(np.arange(3.0), "1s")


# --- downsampling ------------------------------------------------------------------------

DOWNSAMPLERS = {
    "minmax": MinMaxDownsampler,
    "m4": M4Downsampler,
    "lttb": LTTBDownsampler,
    "minmaxlttb": MinMaxLTTBDownsampler,
}


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("method", list(DOWNSAMPLERS))
@pytest.mark.parametrize(("n", "n_out"), [(1000, 100), (10_007, 200), (50_000, 400)])
@pytest.mark.parametrize("with_x", [False, True])
def test_downsample_matches_tsdownsample(
    impl: ModuleType, method: str, n: int, n_out: int, with_x: bool
) -> None:
    g = rng(n + n_out)
    y = np.cumsum(g.normal(size=n))
    x = np.cumsum(g.uniform(0.5, 1.5, size=n)) if with_x else None
    reference = DOWNSAMPLERS[method]()
    args = (x, y) if with_x else (y,)
    expected = reference.downsample(*args, n_out=n_out)
    got = impl.downsample(y, n_out, method, x)
    assert got.dtype == np.int64
    if method == "m4" and with_x:
        # tsdownsample's M4 closes its last x-bin inconsistently when the last edge
        # rounds below x[-1] (sometimes the last sample is in, sometimes not); ours
        # always takes it. Every other bin must agree.
        np.testing.assert_array_equal(got[:-4], expected[:-4])
        assert got[-1] == n - 1
        return
    np.testing.assert_array_equal(got, expected)


def long_signal_with_ties_and_nan(n: int, nan_runs: bool) -> np.ndarray:
    """Few distinct values (equal extremes in many bins and across the kernel's chunks
    of 64 bins), sparse NaN, and optionally NaN runs that cover whole bins."""
    g = rng(11)
    y = np.round(np.cumsum(g.normal(size=n)) / 40.0)
    y[g.random(n) < 0.05] = np.nan
    if nan_runs:
        for start in range(1_000, n, 97_000):
            y[start : start + 300] = np.nan
    return y


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("method", ["minmax", "minmaxlttb"])
@pytest.mark.parametrize("with_x", [False, True])
def test_long_downsample_with_ties_and_nan_matches_tsdownsample(
    impl: ModuleType, method: str, with_x: bool
) -> None:
    # Long enough for the kernel's bin scan to be shared between threads.
    n, n_out = 700_001, 2_000
    y = long_signal_with_ties_and_nan(n, nan_runs=False)
    x = np.cumsum(rng(12).uniform(0.5, 1.5, size=n)) if with_x else None
    args = (x, y) if with_x else (y,)
    expected = DOWNSAMPLERS[method]().downsample(*args, n_out=n_out)
    np.testing.assert_array_equal(impl.downsample(y, n_out, method, x), expected)
    # tsdownsample's default is one thread; its parallel path agrees.
    np.testing.assert_array_equal(
        DOWNSAMPLERS[method]().downsample(*args, n_out=n_out, parallel=True), expected
    )


@needs_rust
def test_long_downsample_with_nan_bins_matches_twin_and_tsdownsample_minmax() -> None:
    n, n_out = 700_001, 2_000
    y = long_signal_with_ties_and_nan(n, nan_runs=True)
    np.testing.assert_array_equal(
        _core.downsample(y, n_out, "minmax"), MinMaxDownsampler().downsample(y, n_out=n_out)
    )
    # An all-NaN bin hands NaN to the LTTB stage, where tsdownsample lets it into its
    # averages and ours leaves it out (see test_downsample_with_nan_and_edges): the
    # kernel is checked against its NumPy twin there.
    got = _core.downsample(y, n_out, "minmaxlttb")
    np.testing.assert_array_equal(got, _numpy.downsample(y, n_out, "minmaxlttb"))
    assert not np.isnan(y[got[1:-1]]).all()


def reference_lttb(y: np.ndarray, n_out: int) -> np.ndarray:
    """LTTB from its definition, bucket by bucket, leaving missing samples out.

    Buckets as tsdownsample's. A NaN sample's triangle has no area, so it is picked only
    when its whole bucket is NaN (then the bucket's first sample); the average of the
    next bucket is over its non-NaN samples.
    """
    n = len(y)
    every = (n - 2) / (n_out - 2)
    picked = [0]
    for i in range(n_out - 2):
        lo, hi = int(every * i) + 1, int(every * (i + 1)) + 1
        following = range(hi, min(int(every * (i + 2)) + 1, n))
        present = [y[j] for j in following if not math.isnan(y[j])]
        avg_x = sum(following) / len(following)
        avg_y = sum(present) / len(present) if present else math.nan
        a = picked[-1]
        best, best_area = lo, -1.0
        for j in range(lo, hi):
            area = abs((a - avg_x) * (y[j] - y[a]) - (a - j) * (avg_y - y[a])) / 2
            if area > best_area:  # never true for a NaN area
                best, best_area = j, area
        picked.append(best)
    picked.append(n - 1)
    return np.array(picked, dtype=np.int64)


def test_reference_lttb_is_tsdownsample_without_nan() -> None:
    y = rng(3).normal(size=3000)
    np.testing.assert_array_equal(
        reference_lttb(y, 100), LTTBDownsampler().downsample(y, n_out=100)
    )


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("method", list(DOWNSAMPLERS))
def test_downsample_with_nan_and_edges(impl: ModuleType, method: str) -> None:
    y = rng(3).normal(size=3000)
    y[::11] = np.nan
    got = impl.downsample(y, 100, method)
    # tsdownsample's LTTB lets NaN into its averages and areas; its other methods skip
    # NaN as ours do.
    if method == "lttb":
        expected = reference_lttb(y, 100)
    else:
        expected = DOWNSAMPLERS[method]().downsample(y, n_out=100)
    np.testing.assert_array_equal(got, expected)
    # Samples picked for their value are never NaN: M4's first and last of each bin are
    # picked for their position, (MinMax)LTTB's first and last samples always.
    if method == "m4":
        bins = got.reshape(-1, 4)
        by_value = bins[:, 1:3]
        assert bins[0, 0] == 0
        assert bins[-1, 3] == y.size - 1
        np.testing.assert_array_equal(bins[1:, 0], bins[:-1, 3] + 1)
    elif method in ("lttb", "minmaxlttb"):
        by_value = got[1:-1]
    else:
        by_value = got
    assert not np.isnan(y[by_value]).any()
    for size in (0, 1, 5):
        np.testing.assert_array_equal(impl.downsample(np.ones(size), 8, method), np.arange(size))
    for flat in (np.full(1000, 2.5), np.full(1000, np.nan)):
        np.testing.assert_array_equal(
            impl.downsample(flat, 100, method), DOWNSAMPLERS[method]().downsample(flat, n_out=100)
        )


@pytest.mark.parametrize("impl", IMPLS)
def test_downsample_errors(impl: ModuleType) -> None:
    y = np.arange(100.0)
    with pytest.raises(ValueError, match="method must be one of"):
        impl.downsample(y, 10, "nope")
    with pytest.raises(ValueError, match="even number"):
        impl.downsample(y, 9, "minmax")
    with pytest.raises(ValueError, match="multiple of 4"):
        impl.downsample(y, 10, "m4")
    with pytest.raises(ValueError, match="at least 3"):
        impl.downsample(y, 2, "lttb")
    with pytest.raises(ValueError, match="sorted"):
        impl.downsample(y, 10, "lttb", y[::-1].copy())
    with pytest.raises(ValueError, match="NaN or infinite"):
        impl.downsample(y, 10, "lttb", np.where(y == 5, np.nan, y))


@pytest.mark.usefixtures("public_backend")
def test_downsample_public_kinds() -> None:
    n = 20_000
    index = pd.date_range("2024-01-01", periods=n, freq="10ms")
    series = pd.Series(np.cumsum(rng(5).normal(size=n)), index=index, name="level")
    series.attrs = {"unit": "m"}
    out = bfa.downsample(series, n_out=500)
    expected = MinMaxLTTBDownsampler().downsample(
        (index.asi8 - index.asi8[0]).astype(np.float64), series.to_numpy(), n_out=500
    )
    pd.testing.assert_series_equal(out, series.iloc[expected])
    assert out.attrs == {"unit": "m"}
    x_kept, y_kept = bfa.downsample(index.to_numpy(), series.to_numpy(), n_out=500)
    np.testing.assert_array_equal(y_kept, series.to_numpy()[expected])
    assert x_kept.dtype.kind == "M"
    plain = bfa.downsample(series.to_numpy(), n_out=500, method="lttb")
    np.testing.assert_array_equal(
        plain, series.to_numpy()[LTTBDownsampler().downsample(series.to_numpy(), n_out=500)]
    )
    array = xr.DataArray(series.to_numpy(), dims="time", coords={"time": index})
    assert bfa.downsample(array, n_out=500, method="m4").sizes["time"] <= 500
    assert series.bifrost.downsample(n_out=500).equals(out)


# --- filters ----------------------------------------------------------------------------

BANDS = [
    ("lowpass", 50.0),
    ("highpass", 20.0),
    ("bandpass", (10.0, 120.0)),
    ("bandstop", (40.0, 60.0)),
]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(("btype", "cutoff"), BANDS)
@pytest.mark.parametrize("order", [1, 2, 3, 4, 8])
def test_butter_matches_scipy_response(
    impl: ModuleType, btype: str, cutoff: Any, order: int
) -> None:
    fs = 1000.0
    sos = impl.butter(order, list(np.atleast_1d(cutoff)), fs, btype)
    reference = sg.butter(order, cutoff, btype=btype, fs=fs, output="sos")
    assert sos.shape == reference.shape
    freqs = np.linspace(0, fs / 2, 257)
    _, h = sg.sosfreqz(sos, worN=freqs, fs=fs)
    _, h_ref = sg.sosfreqz(reference, worN=freqs, fs=fs)
    np.testing.assert_allclose(np.abs(h), np.abs(h_ref), rtol=1e-9, atol=1e-12)
    # Phase where it is defined (not at the zeros of the response).
    defined = np.abs(h_ref) > 1e-6
    np.testing.assert_allclose(
        np.exp(1j * np.angle(h[defined])), np.exp(1j * np.angle(h_ref[defined])), atol=1e-7
    )


@pytest.mark.parametrize("impl", IMPLS)
def test_butter_errors(impl: ModuleType) -> None:
    with pytest.raises(ValueError, match="order must be"):
        impl.butter(0, [1.0], 10.0, "lowpass")
    with pytest.raises(ValueError, match="strictly between"):
        impl.butter(2, [5.0], 10.0, "lowpass")
    with pytest.raises(ValueError, match="btype must be"):
        impl.butter(2, [1.0], 10.0, "notch")
    with pytest.raises(ValueError, match="take two"):
        impl.butter(2, [1.0], 10.0, "bandpass")


def filtered(impl: ModuleType, sos: np.ndarray, x: np.ndarray, zero_phase: bool) -> np.ndarray:
    if zero_phase:
        return impl.sosfiltfilt(sos, x)  # type: ignore[no-any-return]
    return impl.sosfilt(sos, x)  # type: ignore[no-any-return]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("zero_phase", [False, True])
@pytest.mark.parametrize(("btype", "cutoff"), BANDS)
@pytest.mark.parametrize("rows", [1, 3, 4, 9])
def test_sos_filtering_matches_scipy(
    impl: ModuleType, zero_phase: bool, btype: str, cutoff: Any, rows: int
) -> None:
    sos = sg.butter(4, cutoff, btype=btype, fs=1000.0, output="sos")
    x = rng(rows).normal(size=(rows, 700)) + 5.0
    got = filtered(impl, sos, x, zero_phase)
    expected = sg.sosfiltfilt(sos, x, axis=1) if zero_phase else sg.sosfilt(sos, x, axis=1)
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("zero_phase", [False, True])
def test_numpy_loop_twin_without_scipy(zero_phase: bool) -> None:
    sos = sg.butter(3, 30.0, fs=200.0, output="sos")
    x = rng(8).normal(size=(2, 120))
    if zero_phase:
        got = _numpy.sosfiltfilt(sos, x, use_scipy=False)
        expected = sg.sosfiltfilt(sos, x, axis=1)
    else:
        got = _numpy.sosfilt(sos, x, use_scipy=False)
        expected = sg.sosfilt(sos, x, axis=1)
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("impl", IMPLS)
def test_filter_edges(impl: ModuleType) -> None:
    sos = sg.butter(4, 10.0, fs=100.0, output="sos")
    const = impl.sosfiltfilt(sos, np.full((1, 40), 3.25))
    np.testing.assert_allclose(const, 3.25, rtol=1e-12)
    assert impl.sosfiltfilt(sos, np.zeros((1, 0))).shape == (1, 0)
    assert impl.sosfilt(sos, np.zeros((2, 0))).shape == (2, 0)
    np.testing.assert_allclose(impl.sosfilt(sos, np.ones((1, 1))), sg.sosfilt(sos, np.ones((1, 1))))
    with pytest.raises(ValueError, match="needs more than 15 samples, got 15"):
        impl.sosfiltfilt(sos, np.ones((1, 15)))
    nan = np.ones((1, 50))
    nan[0, 20] = np.nan
    with pytest.raises(ValueError, match="NaN or infinite"):
        impl.sosfiltfilt(sos, nan)
    with pytest.raises(ValueError, match="NaN or infinite"):
        impl.sosfilt(sos, np.full((1, 5), np.nan))
    with pytest.raises(ValueError, match="shape"):
        impl.sosfilt(np.ones((2, 5)), np.ones((1, 5)))
    np.testing.assert_allclose(
        impl.sosfiltfilt(sos, np.sin(np.arange(30.0))[None, :], 0),
        sg.sosfiltfilt(sos, np.sin(np.arange(30.0)), padlen=0)[None, :],
        rtol=1e-9,
        atol=1e-12,
    )


@pytest.mark.usefixtures("public_backend")
def test_butter_filter_public_kinds() -> None:
    fs = 500.0
    index = pd.date_range("2024-01-01", periods=2000, freq="2ms")
    g = rng(11)
    frame = pd.DataFrame(g.normal(size=(2000, 5)), index=index, columns=list("abcde"))
    frame.attrs = {"plant": "line 1"}
    sos = sg.butter(4, 40.0, fs=fs, output="sos")
    out = bfa.butter_filter(frame, fs, 40.0)
    expected = sg.sosfiltfilt(sos, frame.to_numpy(), axis=0)
    np.testing.assert_allclose(out.to_numpy(), expected, rtol=1e-9, atol=1e-12)
    assert out.attrs == {"plant": "line 1"}
    assert out.index.equals(index)
    forward = bfa.butter_filter(frame["a"], fs, 40.0, zero_phase=False)
    np.testing.assert_allclose(
        forward.to_numpy(), sg.sosfilt(sos, frame["a"].to_numpy()), atol=1e-12
    )
    array = xr.DataArray(frame.to_numpy(), dims=("time", "ch"), coords={"time": index})
    filtered_array = array.bifrost.butter_filter(fs, 40.0)
    assert filtered_array.dims == ("time", "ch")
    np.testing.assert_allclose(filtered_array.values, expected, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(bfa.sos_filter(frame.to_numpy().T, sos), expected.T, atol=1e-12)
    with pytest.raises(ValueError, match="order must be an integer"):
        bfa.butter(2.5, 10.0, fs)  # type: ignore[arg-type]


# --- welch and vibration -------------------------------------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize(
    ("n", "nperseg", "noverlap"),
    [(10_000, 256, 128), (5000, 255, 100), (4096, 4096, 2048), (3, 3, 1)],
)
def test_welch_matches_scipy(impl: ModuleType, n: int, nperseg: int, noverlap: int) -> None:
    x = rng(n).normal(size=n) * 3 + 7
    _, expected = sg.welch(x, fs=250.0, nperseg=nperseg, noverlap=noverlap)
    got = impl.welch(x, 250.0, nperseg, noverlap)
    np.testing.assert_allclose(got, expected, rtol=1e-9, atol=1e-14)


@pytest.mark.parametrize("impl", IMPLS)
def test_welch_skips_nan_segments_and_edges(impl: ModuleType) -> None:
    x = rng(2).normal(size=4096)
    x[3000] = np.nan
    # scipy's Welch estimate is the mean of these per-segment densities; ours is their
    # mean over the segments without NaN.
    _, _, segments = sg.spectrogram(
        x, fs=1.0, window="hann", nperseg=256, noverlap=128, detrend="constant", mode="psd"
    )
    complete = ~np.isnan(segments).any(axis=0)
    assert 0 < complete.sum() < complete.size
    np.testing.assert_allclose(
        impl.welch(x, 1.0, 256, 128), segments[:, complete].mean(axis=1), rtol=1e-10
    )
    # Only the segments before the NaN: the same as welch of the clean prefix that
    # holds exactly those segments.
    clean = sg.welch(x[: 128 * 22 + 128], nperseg=256)[1]
    np.testing.assert_allclose(impl.welch(x[:3100], 1.0, 256, 128), clean, rtol=1e-10)
    assert np.isnan(impl.welch(np.full(64, np.nan), 1.0, 16, 8)).all()
    np.testing.assert_array_equal(impl.welch(np.full(64, 2.0), 1.0, 16, 8), 0.0)
    with pytest.raises(ValueError, match="nperseg"):
        impl.welch(np.ones(4), 1.0, 5, 0)
    with pytest.raises(ValueError, match="noverlap"):
        impl.welch(np.ones(4), 1.0, 4, 4)


@pytest.mark.usefixtures("public_backend")
def test_welch_public_kinds() -> None:
    x = rng(3).normal(size=(2, 9000))
    freqs, psd = bfa.welch(x, 100.0, nperseg=512)
    f_ref, p_ref = sg.welch(x, fs=100.0, nperseg=512)
    np.testing.assert_allclose(freqs, f_ref)
    np.testing.assert_allclose(psd, p_ref, rtol=1e-9)
    series = pd.Series(x[0], name="vib")
    out = bfa.welch(series, 100.0, nperseg=512)
    assert out.index.name == "frequency"
    assert out.name == "vib"
    np.testing.assert_allclose(out.to_numpy(), p_ref[0], rtol=1e-9)
    # nperseg longer than the data shrinks to it, as scipy does (scipy warns).
    with pytest.warns(UserWarning, match="nperseg"):
        _, short_ref = sg.welch(x[0, :100], fs=100.0, nperseg=4096)
    np.testing.assert_allclose(bfa.welch(x[0, :100], 100.0)[1], short_ref, rtol=1e-9)
    array = xr.DataArray(x, dims=("ch", "time"), attrs={"unit": "g"})
    spectrum = array.bifrost.welch(100.0, nperseg=512)
    assert spectrum.dims == ("ch", "frequency")
    assert spectrum.attrs == {"unit": "g"}
    with pytest.raises(ValueError, match="at least one sample"):
        bfa.welch(np.array([]), 1.0)


@pytest.mark.parametrize("impl", IMPLS)
def test_window_features_match_scipy(impl: ModuleType) -> None:
    x = rng(4).standard_t(5, size=10_050)
    rms, peak, crest, kurt = impl.window_features(x, 1000)
    blocks = x[:10_000].reshape(10, 1000)
    np.testing.assert_allclose(rms, np.sqrt((blocks**2).mean(axis=1)), rtol=1e-12)
    np.testing.assert_array_equal(peak, np.abs(blocks).max(axis=1))
    np.testing.assert_allclose(crest, peak / rms, rtol=1e-12)
    np.testing.assert_allclose(kurt, scipy.stats.kurtosis(blocks, axis=1), rtol=1e-9)
    x[5] = np.nan
    got = impl.window_features(x, 1000)
    np.testing.assert_allclose(
        got[3][0], scipy.stats.kurtosis(blocks[0], nan_policy="omit"), rtol=1e-9
    )
    edge = impl.window_features(np.array([np.nan, np.nan, 2.0, 2.0, 1.0]), 2)
    assert np.isnan(edge[0][0])
    assert edge[0][1] == 2.0
    assert np.isnan(edge[3][1])
    assert impl.window_features(np.ones(3), 4)[0].size == 0
    with pytest.raises(ValueError, match="window"):
        impl.window_features(np.ones(3), 0)


@pytest.mark.usefixtures("public_backend")
def test_window_features_public() -> None:
    index = pd.date_range("2024", periods=3000, freq="ms")
    series = pd.Series(rng(5).normal(size=3000), index=index)
    out = series.bifrost.window_features(1000)
    assert list(out.columns) == ["rms", "peak", "crest", "kurtosis"]
    assert out.index.equals(index[::1000])
    assert set(bfa.window_features(series.to_numpy(), 1000)) == {"rms", "peak", "crest", "kurtosis"}
    ds = bfa.window_features(
        xr.DataArray(series.to_numpy(), dims="time", coords={"time": index}), 1000
    )
    assert ds.sizes["window"] == 3


# --- process control ---------------------------------------------------------------------


def naive_rules(x: np.ndarray, c: float, s: float) -> np.ndarray:
    """The rules straight from their definitions, window by window."""
    z = (x - c) / s
    n = len(z)
    out = np.zeros((n, 9), dtype=bool)

    def window(i: int, k: int) -> np.ndarray | None:
        if i + 1 < k:
            return None
        w = z[i + 1 - k : i + 1]
        return None if np.isnan(w).any() else w

    for i in range(n):
        if np.isnan(z[i]):
            continue
        out[i, 0] = abs(z[i]) > 3
        for k, col in ((9, 1), (8, 8)):
            w = window(i, k)
            out[i, col] = w is not None and ((w > 0).all() or (w < 0).all())
        w = window(i, 6)
        if w is not None:
            d = np.diff(w)
            out[i, 2] = (d > 0).all() or (d < 0).all()
        w = window(i, 14)
        if w is not None:
            d = np.sign(np.diff(w))
            out[i, 3] = (d != 0).all() and (d[1:] == -d[:-1]).all()
        w = window(i, 3)
        out[i, 4] = w is not None and ((w > 2).sum() >= 2 or (w < -2).sum() >= 2)
        w = window(i, 5)
        out[i, 5] = w is not None and ((w > 1).sum() >= 4 or (w < -1).sum() >= 4)
        w = window(i, 15)
        out[i, 6] = w is not None and (np.abs(w) < 1).all()
        w = window(i, 8)
        out[i, 7] = w is not None and (np.abs(w) > 1).all()
    return out


def bits(masks: np.ndarray) -> np.ndarray:
    return np.column_stack([(masks >> b) & 1 for b in range(9)]).astype(bool)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_nelson_rules_match_definitions(impl: ModuleType, seed: int) -> None:
    g = rng(seed)
    # A drifting, sometimes alternating, sometimes stuck signal hits every rule.
    x = np.concatenate(
        [
            g.normal(size=300),
            np.linspace(-1, 2, 20),
            np.tile([0.4, -0.4], 10),
            np.full(12, 1.5),
            g.normal(size=100) * 0.2,
            [4.0, np.nan, 2.5, 2.5],
            g.normal(size=200) + 1.2,
        ]
    )
    x[g.random(x.size) < 0.02] = np.nan
    got = bits(impl.nelson_rules(x, 0.1, 0.9))
    expected = naive_rules(x, 0.1, 0.9)
    np.testing.assert_array_equal(got, expected)
    assert expected.any(axis=0).all(), "every rule fires somewhere"
    with pytest.raises(ValueError, match="sigma positive"):
        impl.nelson_rules(x, 0.0, 0.0)


@pytest.mark.parametrize("impl", IMPLS)
def test_limits_capability_cusum_edges(impl: ModuleType) -> None:
    x = rng(6).normal(loc=10, scale=2, size=500)
    x[[3, 4, 90]] = np.nan
    c, s = impl.individuals_limits(x)
    mr = np.abs(np.diff(x))
    assert c == pytest.approx(np.nanmean(x), rel=1e-12)
    assert s == pytest.approx(np.nanmean(mr) / 1.128, rel=1e-12)
    cap = impl.capability(x, 2.0, 17.0)
    sd = np.nanstd(x, ddof=1)
    assert cap[2] == pytest.approx(sd, rel=1e-12)
    assert cap[3] == pytest.approx(15.0 / (6 * s), rel=1e-12)
    assert cap[4] == pytest.approx(min(17.0 - c, c - 2.0) / (3 * s), rel=1e-12)
    assert cap[6] == pytest.approx(min(17.0 - c, c - 2.0) / (3 * sd), rel=1e-12)
    assert np.isnan(impl.capability(x, np.nan, 17.0)[3])
    with pytest.raises(ValueError, match="specification limit"):
        impl.capability(x, np.nan, np.nan)
    assert all(np.isnan(v) for v in impl.individuals_limits(np.array([np.nan])))
    upper, lower = impl.cusum(x, 10.0, 1.0)
    hi = lo = 0.0
    for i, v in enumerate(x):
        if not np.isnan(v):
            hi = max(0.0, hi + v - 11.0)
            lo = max(0.0, lo + 9.0 - v)
        assert upper[i] == pytest.approx(hi, abs=1e-9)
        assert lower[i] == pytest.approx(lo, abs=1e-9)
    assert impl.cusum(np.array([]), 0.0, 0.5)[0].size == 0
    with pytest.raises(ValueError, match="non-negative"):
        impl.cusum(x, 0.0, -1.0)


@pytest.mark.parametrize("impl", IMPLS)
def test_cycles_kernels(impl: ModuleType) -> None:
    trigger = np.array([0, 1, 1, 0, np.nan, 1, 0, 0, 1, 1], dtype=float)
    np.testing.assert_array_equal(impl.rising_edges(trigger, 0.5), [1, 5, 8])
    assert impl.rising_edges(np.array([]), 0.5).size == 0
    assert impl.rising_edges(np.ones(4), 0.5).size == 0
    x = np.arange(10.0)
    table = impl.stack_cycles(x, np.array([1, 5], dtype=np.int64), 8, 4)
    np.testing.assert_array_equal(table, [[1, 2, 3, 4], [5, 6, 7, np.nan]])
    with pytest.raises(ValueError, match="increasing"):
        impl.stack_cycles(x, np.array([5, 1], dtype=np.int64), 8, 4)


@pytest.mark.usefixtures("public_backend")
def test_process_control_public() -> None:
    index = pd.date_range("2024", periods=400, freq="s")
    values = rng(7).normal(size=400)
    values[300:] += 2.0  # a shift
    series = pd.Series(values, index=index, name="diameter")
    chart = series.bifrost.control_chart()
    assert list(chart.flags.columns) == [f"rule{k}" for k in range(1, 9)]
    assert chart.flags.index.equals(index)
    assert chart.ucl == pytest.approx(chart.center + 3 * chart.sigma)
    assert chart.violations.iloc[300:].sum() > chart.violations.iloc[:300].sum()
    we = bfa.control_chart(values, center=0.0, sigma=1.0, rules="western_electric")
    assert we.flags.shape == (400, 4)
    assert we.rules == ("we1", "we2", "we3", "we4")
    np.testing.assert_array_equal(we.flags, naive_rules(values, 0.0, 1.0)[:, [0, 4, 5, 8]])
    with pytest.raises(ValueError, match="rules must be"):
        bfa.control_chart(values, rules="iso")
    cap = bfa.capability(series, lsl=-5, usl=5)
    assert isinstance(cap, bfa.Capability)
    assert cap.cp > cap.cpk > 0
    shifts = bfa.cusum(series, target=0.0, sigma=1.0)
    assert list(shifts.columns) == ["upper", "lower", "shift_up", "shift_down"]
    first = shifts.index[shifts["shift_up"]][0]
    assert index[300] <= first <= index[320]
    with pytest.raises(ValueError, match="sigma must be positive"):
        bfa.cusum(np.ones(10))
    ds = bfa.cusum(xr.DataArray(values, dims="time", coords={"time": index}))
    assert set(ds.data_vars) == {"upper", "lower", "shift_up", "shift_down"}


@pytest.mark.usefixtures("public_backend")
def test_cycles_public() -> None:
    n = 1000
    index = pd.date_range("2024", periods=n, freq="100ms")
    phase = np.arange(n) % 97
    trigger = pd.Series((phase < 10).astype(float), index=index)
    series = pd.Series(np.sin(phase / 97 * 2 * np.pi), index=index, name="pressure")
    table = series.bifrost.cycles(trigger)
    edges = np.flatnonzero(np.diff((phase < 10).astype(int)) == 1) + 1
    assert table.shape == (len(edges) - 1, 97)
    assert table.index.equals(index[edges[:-1]])
    # Aligned cycles of a periodic signal are identical.
    np.testing.assert_allclose(table.to_numpy(), np.tile(table.to_numpy()[0], (len(table), 1)))
    np.testing.assert_array_equal(bfa.cycle_starts(trigger), edges)
    array = bfa.cycles(
        xr.DataArray(series.to_numpy(), dims="time", coords={"time": index}), trigger
    )
    assert array.dims == ("cycle", "offset")
    assert "cycle_start" in array.coords
    assert bfa.cycles(series.to_numpy(), trigger.to_numpy(), length=10).shape == (
        len(edges) - 1,
        10,
    )
    with pytest.raises(ValueError, match="same length"):
        bfa.cycles(series, trigger.iloc[:-1])


# --- accessors ---------------------------------------------------------------------------------


def test_accessors_are_registered_and_cached() -> None:
    series = pd.Series(np.arange(10.0))
    frame = series.to_frame("a")
    array = xr.DataArray(np.arange(10.0), dims="time")
    ds = array.to_dataset(name="v")
    for obj in (series, frame, array, ds):
        accessor = obj.bifrost
        assert accessor is obj.bifrost, "cached per object"
        assert accessor._obj is obj
    pd.testing.assert_frame_equal(frame.bifrost.rolling_mean(window=3), frame.rolling(3).mean())
    pd.testing.assert_series_equal(series.bifrost.rolling_max(window=2), series.rolling(2).max())
    np.testing.assert_allclose(
        ds.bifrost.rolling_std(window=4)["v"].values, series.rolling(4).std().to_numpy()
    )
    np.testing.assert_allclose(
        array.bifrost.ewma(alpha=0.3).values, series.ewm(alpha=0.3, adjust=False).mean()
    )


def test_public_names_are_exported() -> None:
    # The public interface, whichever modules implement it.
    assert bfa.__all__ == [
        "Capability",
        "ControlChart",
        "backend",
        "butter",
        "butter_filter",
        "capability",
        "control_chart",
        "cusum",
        "cycle_starts",
        "cycles",
        "downsample",
        "ewma",
        "features",
        "resample",
        "rolling_max",
        "rolling_mean",
        "rolling_min",
        "rolling_std",
        "sos_filter",
        "welch",
        "window_features",
    ]
    for name in bfa.__all__:
        assert hasattr(bfa, name)
    methods = {name for name in vars(BifrostAccessor) if not name.startswith("_")}
    assert methods == set(bfa.__all__) - {
        "Capability",
        "ControlChart",
        "backend",
        "butter",
        "cycle_starts",
    }

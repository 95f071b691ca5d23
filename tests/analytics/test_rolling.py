"""Rolling statistics and EWMA: compiled kernels vs NumPy twins vs pandas."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from numpy.lib.stride_tricks import sliding_window_view

from bifrost import analytics
from bifrost.analytics import _backend, _numpy

try:
    from bifrost import _core
except ImportError:  # not built: the Rust parametrisations skip
    _core = None

REPO = Path(__file__).resolve().parents[2]
ROLLING = ["rolling_mean", "rolling_std", "rolling_min", "rolling_max"]
needs_rust = pytest.mark.skipif(_core is None, reason="bifrost._core is not built")
IMPLS = [
    pytest.param(_numpy, id="numpy"),
    pytest.param(_core, id="rust", marks=needs_rust),
]


def pandas_rolling(name: str, x: np.ndarray, window: int) -> np.ndarray:
    rolling = pd.Series(x, dtype=np.float64).rolling(window)
    return getattr(rolling, name.removeprefix("rolling_"))().to_numpy()


def pandas_ewma(x: np.ndarray, alpha: float) -> np.ndarray:
    return pd.Series(x, dtype=np.float64).ewm(alpha=alpha, adjust=False).mean().to_numpy()


def exact_rolling(name: str, x: np.ndarray, window: int) -> np.ndarray:
    """Window-by-window reference, NaN where pandas would give NaN.

    The std is a two-pass one on shifted samples, accurate even for 1e9 + 1e-3 noise.
    """
    out = np.full(x.size, np.nan)
    if window > x.size:
        return out
    x = np.where(np.isinf(x), np.nan, x)  # pandas treats infinities as missing
    views = sliding_window_view(x, window)
    with np.errstate(invalid="ignore"):
        if name == "rolling_mean":
            values = views.mean(axis=1)
        elif name == "rolling_std":
            # Deviations from the window's first sample are exact for large offsets.
            shifted = views - views[:, :1]
            m2 = ((shifted - shifted.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)
            values = np.sqrt(m2 / (window - 1)) if window > 1 else np.full(len(views), np.nan)
        elif name == "rolling_min":
            values = views.min(axis=1)
        else:
            values = views.max(axis=1)
    out[window - 1 :] = values
    return out


def assert_same(actual: np.ndarray, expected: np.ndarray, *, rtol: float, atol: float) -> None:
    assert actual.dtype == np.float64
    assert actual.shape == expected.shape
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected))
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=atol)


@pytest.fixture(params=["numpy", pytest.param("rust", marks=needs_rust)])
def public_backend(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run a public-API test once with each available backend."""
    monkeypatch.setattr(_backend, "_compiled", _core if request.param == "rust" else None)
    assert analytics.backend() == request.param
    return str(request.param)


# --- parity on random data ----------------------------------------------------------

finite_values = st.floats(-1e6, 1e6, allow_nan=False, allow_infinity=False)
samples = arrays(
    np.float64,
    st.integers(0, 80),
    elements=st.one_of(
        finite_values,
        finite_values,
        finite_values,
        finite_values,
        st.sampled_from([np.nan, np.nan, np.inf, -np.inf]),
    ),
)


@pytest.mark.parametrize("name", ROLLING)
@given(x=samples, window=st.integers(1, 90))
@settings(max_examples=60, deadline=None)
def test_rolling_parity_hypothesis(name: str, x: np.ndarray, window: int) -> None:
    scale = 1.0 + float(np.max(np.abs(x[np.isfinite(x)]), initial=0.0))
    twin = getattr(_numpy, name)(x, window)
    exact = exact_rolling(name, x, window)
    # Against an exact window-by-window computation (both kernels are accurate).
    assert_same(twin, exact, rtol=1e-9, atol=1e-9 * scale)
    if _core is not None:
        assert_same(getattr(_core, name)(x, window), twin, rtol=1e-9, atol=1e-9 * scale)
    # pandas' add/remove sums are less accurate near cancellation: looser tolerance.
    assert_same(twin, pandas_rolling(name, x, window), rtol=1e-6, atol=1e-6 * scale)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("name", ROLLING)
@pytest.mark.parametrize("window", [1, 2, 3, 10, 64, 500, 4999, 5000, 5001])
def test_rolling_parity_seeded(impl: ModuleType, name: str, window: int) -> None:
    rng = np.random.default_rng(window)
    x = rng.normal(3.0, 10.0, size=5000)
    x[rng.random(x.size) < 0.01] = np.nan
    expected = pandas_rolling(name, x, window)
    assert_same(getattr(impl, name)(x, window), expected, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("alpha", [0.01, 0.1, 0.3, 0.7, 0.95, 1.0])
def test_ewma_parity_with_nans(impl: ModuleType, alpha: float) -> None:
    rng = np.random.default_rng(1)
    x = rng.normal(size=3000)
    x[rng.random(x.size) < 0.05] = np.nan
    x[:3] = np.nan  # leading NaN stay NaN
    x[100:110] = np.nan  # a gap ages the average
    assert_same(impl.ewma(x, alpha), pandas_ewma(x, alpha), rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("impl", IMPLS)
def test_ewma_half_alpha_without_nans(impl: ModuleType) -> None:
    # pandas special-cases com == 1 (alpha == 0.5) after NaN gaps (its irregular-times
    # code path); without NaN all agree. Our gap rule is the documented one.
    x = np.random.default_rng(2).normal(size=1000)
    assert_same(impl.ewma(x, 0.5), pandas_ewma(x, 0.5), rtol=1e-12, atol=1e-14)


@given(
    x=samples,
    alpha=st.floats(0.01, 1.0).filter(lambda a: abs(a - 0.5) > 1e-9),
)
@settings(max_examples=80, deadline=None)
def test_ewma_parity_hypothesis(x: np.ndarray, alpha: float) -> None:
    scale = 1.0 + float(np.max(np.abs(x[np.isfinite(x)]), initial=0.0))
    twin = _numpy.ewma(x, alpha)
    assert_same(twin, pandas_ewma(x, alpha), rtol=1e-9, atol=1e-9 * scale)
    if _core is not None:
        assert_same(_core.ewma(x, alpha), twin, rtol=1e-9, atol=1e-9 * scale)


# --- edge cases -----------------------------------------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("name", ROLLING)
def test_empty_input(impl: ModuleType, name: str) -> None:
    for window in (1, 3):
        out = getattr(impl, name)(np.array([], dtype=np.float64), window)
        assert out.dtype == np.float64
        assert out.shape == (0,)
    assert impl.ewma(np.array([], dtype=np.float64), 0.5).shape == (0,)


@pytest.mark.parametrize("impl", IMPLS)
def test_length_one(impl: ModuleType) -> None:
    x = np.array([4.5])
    for name in ("rolling_mean", "rolling_min", "rolling_max"):
        np.testing.assert_array_equal(getattr(impl, name)(x, 1), x)
        assert np.isnan(getattr(impl, name)(x, 2)).all()
    assert np.isnan(impl.rolling_std(x, 1)).all()
    np.testing.assert_array_equal(impl.ewma(x, 0.3), x)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("name", ROLLING)
def test_all_nan_and_window_longer_than_input(impl: ModuleType, name: str) -> None:
    assert np.isnan(getattr(impl, name)(np.full(10, np.nan), 3)).all()
    assert np.isnan(getattr(impl, name)(np.arange(5.0), 6)).all()
    assert np.isnan(impl.ewma(np.full(10, np.nan), 0.2)).all()


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("name", ROLLING)
def test_nan_inside(impl: ModuleType, name: str) -> None:
    x = np.arange(20.0)
    x[[5, 6, 13]] = np.nan
    for window in (1, 2, 3, 7):
        out = getattr(impl, name)(x, window)
        assert_same(out, pandas_rolling(name, x, window), rtol=1e-12, atol=1e-12)
        # Exactly the windows that hold a NaN (or are not full) are NaN.
        holds_nan = np.array([np.isnan(x[max(0, i - window + 1) : i + 1]).any() for i in range(20)])
        holds_nan[: window - 1] = True
        if name == "rolling_std" and window == 1:
            holds_nan[:] = True
        np.testing.assert_array_equal(np.isnan(out), holds_nan)


@pytest.mark.parametrize("impl", IMPLS)
def test_window_one(impl: ModuleType) -> None:
    x = np.random.default_rng(3).normal(size=100)
    np.testing.assert_array_equal(impl.rolling_mean(x, 1), x)
    np.testing.assert_array_equal(impl.rolling_min(x, 1), x)
    np.testing.assert_array_equal(impl.rolling_max(x, 1), x)
    assert np.isnan(impl.rolling_std(x, 1)).all()


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("value", [0.1, 1e9 + 0.1, -3.7, 0.0])
def test_constant_input_is_exact(impl: ModuleType, value: float) -> None:
    x = np.full(1000, value)
    for window in (2, 3, 7, 100, 1000):
        std = impl.rolling_std(x, window)[window - 1 :]
        assert (std == 0.0).all(), "std of a constant window must be exactly 0"
        assert (impl.rolling_mean(x, window)[window - 1 :] == value).all()
    assert (impl.ewma(x, 0.3) == value).all()


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("noise", [1.0, 1e-3])
def test_large_offset_std_is_accurate(impl: ModuleType, noise: float) -> None:
    rng = np.random.default_rng(4)
    x = 1e9 + rng.normal(scale=noise, size=6000)
    for window in (5, 100, 1500):
        expected = exact_rolling("rolling_std", x, window)
        assert_same(impl.rolling_std(x, window), expected, rtol=1e-9, atol=0.0)
        means = impl.rolling_mean(x, window)
        assert_same(means, exact_rolling("rolling_mean", x, window), rtol=1e-14, atol=0.0)


@pytest.mark.parametrize("impl", IMPLS)
def test_spike_leaves_no_trace(impl: ModuleType) -> None:
    x = np.random.default_rng(5).normal(scale=1e-6, size=400)
    x[100] = 1e12
    for name in ("rolling_mean", "rolling_std"):
        out = getattr(impl, name)(x, 20)[130:]
        expected = exact_rolling(name, x, 20)[130:]
        assert_same(out, expected, rtol=1e-9, atol=1e-18)


@pytest.mark.parametrize("impl", IMPLS)
def test_infinities_are_missing_like_in_pandas(impl: ModuleType) -> None:
    inf = np.inf
    x = np.array([1.0, inf, 2.0, 3.0, -inf, 4.0, 5.0, 6.0, inf, inf, 7.0, 8.0])
    for name in ROLLING:
        for window in (1, 2, 3):
            out = getattr(impl, name)(x, window)
            expected = pandas_rolling(name, x, window)
            np.testing.assert_array_equal(out, expected, err_msg=f"{name} window={window}")
    y = np.r_[inf, x]
    np.testing.assert_allclose(impl.ewma(y, 0.3), pandas_ewma(y, 0.3), rtol=1e-14)


# --- errors ---------------------------------------------------------------------------


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("name", ROLLING)
@pytest.mark.parametrize("window", [0, -5])
def test_bad_window_kernels(impl: ModuleType, name: str, window: int) -> None:
    with pytest.raises(ValueError, match=f"window must be a positive integer, got {window}"):
        getattr(impl, name)(np.arange(4.0), window)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("alpha", [0.0, -0.5, 1.5, float("nan")])
def test_bad_alpha_kernels(impl: ModuleType, alpha: float) -> None:
    with pytest.raises(ValueError, match="alpha must be in the interval"):
        impl.ewma(np.arange(4.0), alpha)


@pytest.mark.usefixtures("public_backend")
@pytest.mark.parametrize("name", ROLLING)
@pytest.mark.parametrize("window", [0, -1, 2.5, True, "3", None])
def test_bad_window_public(name: str, window: Any) -> None:
    with pytest.raises(ValueError, match=f"got {window!r}"):
        getattr(analytics, name)(np.arange(4.0), window)


@pytest.mark.usefixtures("public_backend")
@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "exactly one of alpha or span"),
        ({"alpha": 0.5, "span": 3}, "exactly one of alpha or span"),
        ({"alpha": 0}, "got 0"),
        ({"alpha": 1.5}, "got 1.5"),
        ({"span": 0.5}, "span must be at least 1, got 0.5"),
    ],
)
def test_bad_ewma_arguments_public(kwargs: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        analytics.ewma(np.arange(4.0), **kwargs)


def test_scalar_input_is_rejected() -> None:
    with pytest.raises(ValueError, match="at least one dimension"):
        analytics.rolling_mean(np.float64(3.0), 2)  # type: ignore[type-var]


# --- the public API: kinds, index, attrs ----------------------------------------------


@pytest.mark.usefixtures("public_backend")
def test_numpy_input_and_dtypes() -> None:
    out = analytics.rolling_max(np.array([1, 5, 2, 4], dtype=np.int32), 2)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, [np.nan, 5.0, 5.0, 4.0])
    # N-dimensional arrays: along the last axis.
    x = np.random.default_rng(6).normal(size=(3, 50))
    out2 = analytics.rolling_std(x, 7)
    for row in range(3):
        assert_same(out2[row], pandas_rolling("rolling_std", x[row], 7), rtol=1e-9, atol=1e-12)
    # Strided views are made contiguous at the boundary.
    assert_same(
        analytics.rolling_mean(x[:, ::2], 3)[1],
        pandas_rolling("rolling_mean", x[1, ::2], 3),
        rtol=1e-12,
        atol=1e-12,
    )


@pytest.mark.usefixtures("public_backend")
def test_series_keeps_index_name_attrs() -> None:
    index = pd.date_range("2024-01-01", periods=100, freq="s", name="t")
    values = np.random.default_rng(7).normal(size=100)
    series = pd.Series(values, index=index, name="pressure")
    series.attrs = {"unit": "bar", "nested": {"tag": "hr:0"}}
    for name in ROLLING:
        out = getattr(analytics, name)(series, 5)
        expected = getattr(series.rolling(5), name.removeprefix("rolling_"))()
        pd.testing.assert_series_equal(out, expected, rtol=1e-9)
        assert out.attrs == series.attrs
        assert out.attrs["nested"] is not series.attrs["nested"]  # copied, not shared
    out = analytics.ewma(series, span=9)
    pd.testing.assert_series_equal(out, series.ewm(span=9, adjust=False).mean(), rtol=1e-12)
    assert out.attrs == series.attrs


@pytest.mark.usefixtures("public_backend")
def test_series_nullable_and_integer_dtypes() -> None:
    series = pd.Series([1.0, None, 3.0, 4.0, 5.0], dtype="Float64")
    out = analytics.rolling_mean(series, 2)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out.to_numpy(), [np.nan, np.nan, np.nan, 3.5, 4.5])
    ints = pd.Series([3, 1, 2], dtype="int64")
    np.testing.assert_array_equal(analytics.rolling_min(ints, 2).to_numpy(), [np.nan, 1.0, 1.0])


@pytest.mark.usefixtures("public_backend")
def test_dataframe_column_by_column() -> None:
    rng = np.random.default_rng(8)
    frame = pd.DataFrame(
        {"a": rng.normal(size=60), "b": rng.normal(size=60) + 1e6},
        index=pd.RangeIndex(100, 160, name="sample"),
    )
    frame.iloc[10, 0] = np.nan
    frame.attrs = {"source": "plc-1"}
    for name in ROLLING:
        out = getattr(analytics, name)(frame, 4)
        expected = getattr(frame.rolling(4), name.removeprefix("rolling_"))()
        pd.testing.assert_frame_equal(out, expected, rtol=1e-8)
        assert out.attrs == {"source": "plc-1"}
    out = analytics.ewma(frame, alpha=0.2)
    pd.testing.assert_frame_equal(out, frame.ewm(alpha=0.2, adjust=False).mean(), rtol=1e-12)


@pytest.mark.usefixtures("public_backend")
def test_dataarray_along_time_keeps_coords_attrs() -> None:
    rng = np.random.default_rng(9)
    data = rng.normal(size=(40, 3))  # time first: not the last dimension
    array = xr.DataArray(
        data,
        dims=("time", "channel"),
        coords={"time": pd.date_range("2024", periods=40, freq="min"), "channel": ["x", "y", "z"]},
        name="vibration",
        attrs={"unit": "mm/s"},
    )
    out = analytics.rolling_std(array, 5)
    assert isinstance(out, xr.DataArray)
    assert out.dims == array.dims
    assert out.name == "vibration"
    assert out.attrs == {"unit": "mm/s"}
    xr.testing.assert_identical(out.coords.to_dataset(), array.coords.to_dataset())
    for column in range(3):
        expected = pandas_rolling("rolling_std", data[:, column], 5)
        assert_same(out.values[:, column], expected, rtol=1e-9, atol=1e-12)
    # Without a "time" dimension: along the last one.
    plain = xr.DataArray(data.T.copy(), dims=("channel", "sample"))
    out2 = analytics.rolling_mean(plain, 5)
    assert_same(
        out2.values[1], pandas_rolling("rolling_mean", data[:, 1], 5), rtol=1e-12, atol=1e-12
    )


# --- backend selection ----------------------------------------------------------------


def _backend_in_subprocess(
    code: str = "from bifrost import analytics; print(analytics.backend())", **env: str
) -> str:
    environ = {k: v for k, v in os.environ.items() if k != "BIFROST_NO_RUST"}
    environ.update(env)
    environ["PYTHONPATH"] = os.pathsep.join([str(REPO), *filter(None, [environ.get("PYTHONPATH")])])
    result = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=environ,
        cwd=REPO,
        check=True,
        timeout=60,
    )
    return result.stdout.strip()


def test_bifrost_no_rust_forces_numpy() -> None:
    assert _backend_in_subprocess(BIFROST_NO_RUST="1") == "numpy"


@needs_rust
def test_twins_are_loaded_only_when_used() -> None:
    # With the compiled kernels `import bifrost` needs no twin; without, the first call
    # loads them.
    code = (
        "import sys, numpy as np, bifrost\n"
        "before = 'bifrost.analytics._numpy' in sys.modules\n"
        "bifrost.analytics.rolling_mean(np.arange(3.0), 2)\n"
        "print(before, 'bifrost.analytics._numpy' in sys.modules)"
    )
    assert _backend_in_subprocess(code) == "False False"
    assert _backend_in_subprocess(code, BIFROST_NO_RUST="1") == "False True"


def test_backend_default() -> None:
    assert _backend_in_subprocess() == ("rust" if _core is not None else "numpy")
    assert analytics.backend() in {"rust", "numpy"}


@needs_rust
def test_rust_kernels_accept_strided_arrays_and_report_version() -> None:
    assert _core is not None
    x = np.arange(20.0)[::3]
    np.testing.assert_array_equal(_core.rolling_max(x, 2)[1:], x[1:])
    assert isinstance(_core.kernel_version(), str)


def test_kernels_module_matches_backend(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_backend, "_compiled", None)
    assert _backend.kernels() is _numpy
    assert analytics.backend() == "numpy"

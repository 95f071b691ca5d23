"""Rolling statistics and smoothing for sensor data, compiled in Rust with a NumPy fallback.

The functions accept a NumPy array, a pandas ``Series`` or ``DataFrame`` (each column on
its own) or an xarray ``DataArray`` or ``Dataset`` (along the dimension ``"time"`` if it
has one, else along its last dimension; dask-backed objects stay lazy), and return the
same kind of object with the same index, columns, coordinates, name and ``attrs``.
N-dimensional NumPy arrays are processed along their last axis. Values are converted
once to contiguous float64. The same functions are methods of the ``.bifrost`` accessor
of pandas and xarray objects: ``df.bifrost.rolling_mean(window=100)``.

Beyond rolling windows: :func:`resample` (regular bins, several statistics in one
pass), :func:`downsample` (MinMaxLTTB, LTTB, MinMax, M4 for plots), :func:`butter`,
:func:`butter_filter` and :func:`sos_filter` (Butterworth filters, zero-phase by
default, many channels in parallel), :func:`welch` (power spectral density),
:func:`window_features` (RMS, peak, crest factor, kurtosis), and process analysis with
:func:`control_chart` (Shewhart limits, Nelson / Western Electric rules),
:func:`capability` (Cp/Cpk), :func:`cusum` and :func:`cycles` (split on a trigger and
stack aligned).

Rolling windows follow pandas' ``rolling(window, min_periods=window)``: the output has
the input's length, output ``i`` covers the ``window`` samples ending at ``i``, the first
``window - 1`` outputs are NaN, and **a window that holds a missing sample gives NaN**;
like pandas, +inf and -inf count as missing, exactly like NaN. A window of equal samples
has exactly that mean and exactly zero standard deviation.

The kernels come from the compiled module ``bifrost._core`` when it is available, else
from NumPy twins with the same results; :func:`backend` tells which one is in use, and
setting ``BIFROST_NO_RUST=1`` before import forces NumPy.

>>> import numpy as np
>>> from bifrost import analytics
>>> analytics.rolling_mean(np.array([1.0, 2.0, 3.0, 4.0]), 2)
array([nan, 1.5, 2.5, 3.5])
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar, cast

from numpy.typing import NDArray

from bifrost.analytics import _numpy
from bifrost.analytics._backend import backend, kernels
from bifrost.analytics._frames import apply as _apply
from bifrost.analytics._signal import (
    Capability,
    ControlChart,
    butter,
    butter_filter,
    capability,
    control_chart,
    cusum,
    cycle_starts,
    cycles,
    downsample,
    resample,
    sos_filter,
    welch,
    window_features,
)

if TYPE_CHECKING:
    import pandas as pd
    import xarray as xr

__all__ = [
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
    "resample",
    "rolling_max",
    "rolling_mean",
    "rolling_min",
    "rolling_std",
    "sos_filter",
    "welch",
    "window_features",
]

Data = TypeVar(
    "Data", "NDArray[Any]", "pd.Series[Any]", "pd.DataFrame", "xr.DataArray", "xr.Dataset"
)
"""The kinds of input the functions accept (and return)."""


def rolling_mean(x: Data, window: int) -> Data:
    """Rolling mean over a trailing window of `window` samples.

    Same as pandas' ``rolling(window, min_periods=window).mean()``.

    Parameters
    ----------
    x : numpy.ndarray, pandas.Series, pandas.DataFrame or xarray.DataArray
        The samples, in time order (see the module documentation for the axis used).
    window : int
        Number of samples per window, at least 1.

    Returns
    -------
    same kind as `x`
        float64 values; NaN for the first ``window - 1`` samples and for windows that
        hold a NaN or an infinity (missing samples).

    Raises
    ------
    ValueError
        If `window` is not a positive integer.
    """
    window = _numpy.check_window(window)
    impl = kernels()
    return cast("Data", _apply(x, lambda values: impl.rolling_mean(values, window), window=window))


def rolling_std(x: Data, window: int) -> Data:
    """Rolling sample standard deviation (``ddof=1``) over a trailing window.

    Same as pandas' ``rolling(window, min_periods=window).std()``. The computation is
    numerically stable (large offsets such as ``1e9 + noise`` keep their precision) and a
    window of equal samples gives exactly 0.

    Parameters
    ----------
    x : numpy.ndarray, pandas.Series, pandas.DataFrame or xarray.DataArray
        The samples, in time order (see the module documentation for the axis used).
    window : int
        Number of samples per window, at least 1 (a window of 1 gives all NaN).

    Returns
    -------
    same kind as `x`
        float64 values; NaN for the first ``window - 1`` samples and for windows that
        hold a NaN or an infinity (missing samples).

    Raises
    ------
    ValueError
        If `window` is not a positive integer.
    """
    window = _numpy.check_window(window)
    impl = kernels()
    return cast("Data", _apply(x, lambda values: impl.rolling_std(values, window), window=window))


def rolling_min(x: Data, window: int) -> Data:
    """Rolling minimum over a trailing window of `window` samples.

    Same as pandas' ``rolling(window, min_periods=window).min()``.

    Parameters
    ----------
    x : numpy.ndarray, pandas.Series, pandas.DataFrame or xarray.DataArray
        The samples, in time order (see the module documentation for the axis used).
    window : int
        Number of samples per window, at least 1.

    Returns
    -------
    same kind as `x`
        float64 values; NaN for the first ``window - 1`` samples and for windows that
        hold a NaN or an infinity (missing samples).

    Raises
    ------
    ValueError
        If `window` is not a positive integer.
    """
    window = _numpy.check_window(window)
    impl = kernels()
    return cast("Data", _apply(x, lambda values: impl.rolling_min(values, window), window=window))


def rolling_max(x: Data, window: int) -> Data:
    """Rolling maximum over a trailing window of `window` samples.

    Same as pandas' ``rolling(window, min_periods=window).max()``.

    Parameters
    ----------
    x : numpy.ndarray, pandas.Series, pandas.DataFrame or xarray.DataArray
        The samples, in time order (see the module documentation for the axis used).
    window : int
        Number of samples per window, at least 1.

    Returns
    -------
    same kind as `x`
        float64 values; NaN for the first ``window - 1`` samples and for windows that
        hold a NaN or an infinity (missing samples).

    Raises
    ------
    ValueError
        If `window` is not a positive integer.
    """
    window = _numpy.check_window(window)
    impl = kernels()
    return cast("Data", _apply(x, lambda values: impl.rolling_max(values, window), window=window))


def _resolve_alpha(alpha: float | None, span: float | None) -> float:
    """Turn the `alpha` or `span` argument of :func:`ewma` into a smoothing factor."""
    if (alpha is None) == (span is None):
        raise ValueError(f"pass exactly one of alpha or span, got alpha={alpha!r}, span={span!r}")
    if alpha is not None:
        return _numpy.check_alpha(alpha)
    value = float(cast("float", span))
    if not value >= 1.0:
        raise ValueError(f"span must be at least 1, got {span!r}")
    return 2.0 / (value + 1.0)


def ewma(x: Data, alpha: float | None = None, span: float | None = None) -> Data:
    """Exponentially weighted moving average.

    Same as pandas' ``ewm(alpha=alpha, adjust=False).mean()`` (or ``ewm(span=span,
    adjust=False)``): ``y[0] = x[0]`` and ``y[t] = (1 - alpha) * y[t-1] + alpha * x[t]``.
    A missing sample (NaN or infinity) repeats the previous average, and the gap ages it
    (pandas' ``ignore_na=False``); outputs before the first finite sample are NaN. (pandas
    weighs the sample after a gap differently for ``alpha == 0.5`` exactly.)

    Parameters
    ----------
    x : numpy.ndarray, pandas.Series, pandas.DataFrame or xarray.DataArray
        The samples, in time order (see the module documentation for the axis used).
    alpha : float, optional
        Smoothing factor, ``0 < alpha <= 1``. Give exactly one of `alpha` and `span`.
    span : float, optional
        Span, at least 1; the same as ``alpha = 2 / (span + 1)``.

    Returns
    -------
    same kind as `x`
        float64 values.

    Raises
    ------
    ValueError
        If both or neither of `alpha` and `span` are given, or either is out of range.
    """
    smoothing = _resolve_alpha(alpha, span)
    impl = kernels()
    return cast("Data", _apply(x, lambda values: impl.ewma(values, smoothing)))


# Registers the ``.bifrost`` accessors on pandas and xarray objects.
import bifrost.analytics.accessors  # noqa: E402, F401

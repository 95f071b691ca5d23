"""Rolling statistics over trailing windows, and exponential smoothing.

Rolling windows follow pandas' ``rolling(window, min_periods=window)``; see
:mod:`bifrost.analytics` for the conventions on missing samples.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, TypeVar, cast

from numpy.typing import NDArray

from bifrost.analytics._backend import kernels
from bifrost.analytics._checks import check_alpha, check_window
from bifrost.analytics._frames import apply
from bifrost.exceptions import ConfigurationError

if TYPE_CHECKING:
    import pandas as pd
    import xarray as xr

__all__ = ["Data", "ewma", "rolling_max", "rolling_mean", "rolling_min", "rolling_std"]

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
        The samples, in time order (see :mod:`bifrost.analytics` for the axis).
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
    window = check_window(window)
    impl = kernels()
    return cast("Data", apply(x, lambda values: impl.rolling_mean(values, window), window=window))


def rolling_std(x: Data, window: int) -> Data:
    """Rolling sample standard deviation (``ddof=1``) over a trailing window.

    Same as pandas' ``rolling(window, min_periods=window).std()``. The computation is
    numerically stable (large offsets such as ``1e9 + noise`` keep their precision) and a
    window of equal samples gives exactly 0.

    Parameters
    ----------
    x : numpy.ndarray, pandas.Series, pandas.DataFrame or xarray.DataArray
        The samples, in time order (see :mod:`bifrost.analytics` for the axis).
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
    window = check_window(window)
    impl = kernels()
    return cast("Data", apply(x, lambda values: impl.rolling_std(values, window), window=window))


def rolling_min(x: Data, window: int) -> Data:
    """Rolling minimum over a trailing window of `window` samples.

    Same as pandas' ``rolling(window, min_periods=window).min()``.

    Parameters
    ----------
    x : numpy.ndarray, pandas.Series, pandas.DataFrame or xarray.DataArray
        The samples, in time order (see :mod:`bifrost.analytics` for the axis).
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
    window = check_window(window)
    impl = kernels()
    return cast("Data", apply(x, lambda values: impl.rolling_min(values, window), window=window))


def rolling_max(x: Data, window: int) -> Data:
    """Rolling maximum over a trailing window of `window` samples.

    Same as pandas' ``rolling(window, min_periods=window).max()``.

    Parameters
    ----------
    x : numpy.ndarray, pandas.Series, pandas.DataFrame or xarray.DataArray
        The samples, in time order (see :mod:`bifrost.analytics` for the axis).
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
    window = check_window(window)
    impl = kernels()
    return cast("Data", apply(x, lambda values: impl.rolling_max(values, window), window=window))


def _resolve_alpha(alpha: float | None, span: float | None) -> float:
    """Turn the `alpha` or `span` argument of :func:`ewma` into a smoothing factor."""
    if alpha is not None and span is None:
        return check_alpha(alpha)
    if alpha is None and span is not None:
        value = float(span)
        if not value >= 1.0:
            raise ConfigurationError(f"span must be at least 1, got {span!r}")
        return 2.0 / (value + 1.0)
    raise ConfigurationError(
        f"pass exactly one of alpha or span, got alpha={alpha!r}, span={span!r}"
    )


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
        The samples, in time order (see :mod:`bifrost.analytics` for the axis).
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
    return cast("Data", apply(x, lambda values: impl.ewma(values, smoothing)))

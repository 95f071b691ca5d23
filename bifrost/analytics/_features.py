"""Vibration features of consecutive windows: RMS, peak, crest factor, kurtosis."""

from __future__ import annotations

import copy
from typing import Any

from bifrost.analytics._backend import kernels
from bifrost.analytics._checks import check_window
from bifrost.analytics._frames import time_dim
from bifrost.analytics._inputs import is_dataarray, is_series, one_d, pandas

__all__ = ["FEATURES", "window_features"]

FEATURES = ("rms", "peak", "crest", "kurtosis")


def window_features(x: Any, window: int) -> Any:
    """RMS, peak, crest factor and kurtosis of consecutive windows (vibration).

    Windows do not overlap; a trailing partial window is left out. NaN samples are
    skipped; kurtosis is the excess (Fisher) kurtosis, biased, as
    ``scipy.stats.kurtosis`` by default (NaN for a constant window, and for a variance
    below ~1.5e-154, whose squares underflow).

    Parameters
    ----------
    x : numpy.ndarray, pandas.Series or xarray.DataArray
        One-dimensional samples.
    window : int
        Samples per window.

    Returns
    -------
    object
        pandas: a DataFrame with columns rms, peak, crest, kurtosis indexed by each
        window's first index label; xarray: a Dataset along ``window`` (coordinate: the
        window's first time); NumPy: a dict of arrays.

    Raises
    ------
    ValueError
        If `window` is not a positive integer or the data is not 1-D.
    """
    window = check_window(window)
    values = one_d(x, "window_features")
    stats = dict(zip(FEATURES, kernels().window_features(values, window), strict=True))
    count = stats["rms"].size
    if is_series(x):
        pd = pandas()
        out = pd.DataFrame(stats, index=x.index[: count * window : window])
        out.attrs = copy.deepcopy(x.attrs)
        return out
    if is_dataarray(x):
        import xarray as xr

        dim = time_dim(x)
        coords = {"window": x[dim].values[: count * window : window]} if dim in x.coords else {}
        return xr.Dataset(
            {k: ("window", v) for k, v in stats.items()},
            coords=coords,
            attrs=copy.deepcopy(x.attrs),
        )
    return stats

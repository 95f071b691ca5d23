"""Downsampling for plots: the samples that keep a plot's shape."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bifrost.analytics._backend import kernels
from bifrost.analytics._frames import as_float, time_dim
from bifrost.analytics._inputs import is_dataarray, is_series, one_d, pandas
from bifrost.exceptions import ConfigurationError

__all__ = ["downsample"]

F64 = NDArray[np.float64]


def _positions(x: Any) -> F64 | None:
    """Positions for x-aware downsampling, or None for evenly spaced samples."""
    pd = pandas()
    if x is None or (pd is not None and isinstance(x, pd.RangeIndex) and x.step == 1):
        return None
    array = np.asarray(x)
    if np.issubdtype(array.dtype, np.datetime64) or np.issubdtype(array.dtype, np.timedelta64):
        ticks = array.astype("datetime64[ns]" if array.dtype.kind == "M" else "m8[ns]")
        ints = ticks.view(np.int64)
        # Relative to the first sample: exact in float64 for spans below ~104 days.
        return np.ascontiguousarray((ints - ints[0]).astype(np.float64)) if ints.size else None
    return as_float(array)


def downsample(
    x: Any,
    y: Any = None,
    n_out: int = 2000,
    method: str = "minmaxlttb",
    *,
    minmax_ratio: int = 4,
) -> Any:
    """Pick the samples that keep a plot's shape: MinMaxLTTB, LTTB, MinMax or M4.

    Same selection as tsdownsample: bins over the sample index when the samples are
    evenly spaced, bins of equal width in `x` otherwise. NaN samples are not chosen
    (unless a whole bin is NaN).

    Parameters
    ----------
    x : array-like, pandas.Series or xarray.DataArray
        The positions (sorted ascending; datetimes allowed) when `y` is given; else
        the data itself, positioned by its index or ``time`` coordinate.
    y : array-like, optional
        The values, when `x` holds positions.
    n_out : int
        Number of samples to keep (even for ``"minmax"``, a multiple of 4 for
        ``"m4"``). Shorter data is returned whole.
    method : {"minmaxlttb", "lttb", "minmax", "m4"}
        The algorithm.
    minmax_ratio : int
        MinMaxLTTB preselects ``n_out * minmax_ratio`` points with MinMax.

    Returns
    -------
    object
        ``(x_kept, y_kept)`` when `y` is given; else the data's kept samples, of its
        kind (with their index or coordinates).

    Raises
    ------
    ValueError
        For an unknown method, invalid `n_out`, or unsorted / non-finite positions.
    """
    impl = kernels()
    if y is not None:
        values = one_d(y, "downsample")
        index = impl.downsample(values, n_out, method, _positions(x), minmax_ratio)
        return np.asarray(x)[index], np.asarray(y)[index]
    if is_series(x):
        values = as_float(x)
        index = impl.downsample(values, n_out, method, _positions(x.index), minmax_ratio)
        out = x.iloc[index]
        out.attrs = copy.deepcopy(x.attrs)
        return out
    if is_dataarray(x):
        dim = time_dim(x)
        if x.ndim != 1:
            raise ConfigurationError(f"downsample takes one-dimensional data, got dims {x.dims}")
        positions = _positions(x[dim].values) if dim in x.coords else None
        index = impl.downsample(as_float(x.values), n_out, method, positions, minmax_ratio)
        return x.isel({dim: index})
    values = one_d(x, "downsample")
    return values[impl.downsample(values, n_out, method, None, minmax_ratio)]

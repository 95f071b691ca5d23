"""Machine cycles: split a recording on a trigger and stack the cycles aligned."""

from __future__ import annotations

import copy
from collections.abc import Hashable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bifrost.analytics._backend import kernels
from bifrost.analytics._inputs import is_dataarray, is_series, one_d, pandas
from bifrost.exceptions import ConfigurationError

__all__ = ["cycle_starts", "cycles"]


def cycle_starts(trigger: Any, threshold: float = 0.5) -> NDArray[np.int64]:
    """Indices where `trigger` rises above `threshold` (machine cycle starts).

    Parameters
    ----------
    trigger : array-like
        Trigger samples (bool or numeric); NaN counts as below.
    threshold : float
        The level the trigger crosses.

    Returns
    -------
    numpy.ndarray
        int64 indices ``i`` with ``trigger[i - 1] <= threshold < trigger[i]``.
    """
    return kernels().rising_edges(one_d(trigger, "cycle_starts"), float(threshold))


def cycles(x: Any, trigger: Any, threshold: float = 0.5, length: int | None = None) -> Any:
    """Split a recording into machine cycles on a trigger and stack them aligned.

    A cycle runs from one rising edge of `trigger` to the next; samples before the first
    edge and after the last are left out. Cycles are aligned at their start and
    NaN-padded (or truncated) to `length`.

    Parameters
    ----------
    x : numpy.ndarray, pandas.Series or xarray.DataArray
        One-dimensional samples.
    trigger : array-like, pandas.Series, xarray.DataArray or str
        The trigger (same length as `x`).
    threshold : float
        The level the trigger crosses.
    length : int, optional
        Samples per row; the longest cycle by default.

    Returns
    -------
    object
        NumPy: an array ``(cycles, length)``. pandas: a DataFrame indexed by each
        cycle's start label, columns ``0 .. length - 1`` (sample offset). xarray: a
        DataArray with dims ``("cycle", "offset")`` and the start times as a
        ``cycle_start`` coordinate.

    Raises
    ------
    ValueError
        If `x` and `trigger` differ in length.
    """
    values = one_d(x, "cycles")
    edges = cycle_starts(trigger, threshold)
    if one_d(trigger, "cycles").size != values.size:
        raise ConfigurationError("trigger and x must have the same length")
    starts = edges[:-1]
    end = int(edges[-1]) if edges.size else 0
    longest = int(np.diff(edges).max()) if edges.size > 1 else 0
    size = longest if length is None else int(length)
    table = kernels().stack_cycles(values, np.ascontiguousarray(starts), end, size)
    if is_series(x):
        pd = pandas()
        out = pd.DataFrame(table, index=x.index[starts], columns=pd.RangeIndex(size, name="offset"))
        out.attrs = copy.deepcopy(x.attrs)
        return out
    if is_dataarray(x):
        import xarray as xr

        dim = x.dims[0]
        labels: Hashable = dim
        coords: dict[Hashable, Any] = {"offset": np.arange(size)}
        if labels in x.coords:
            coords["cycle_start"] = ("cycle", x[dim].values[starts])
        return xr.DataArray(
            table,
            dims=("cycle", "offset"),
            coords=coords,
            name=x.name,
            attrs=copy.deepcopy(x.attrs),
        )
    return table

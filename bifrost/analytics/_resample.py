"""Resampling onto a regular time grid, several statistics in one pass."""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bifrost.analytics._backend import kernels
from bifrost.analytics._frames import as_float, time_dim
from bifrost.analytics._inputs import is_dataarray, is_dataset, is_frame, is_series
from bifrost.exceptions import ConfigurationError

__all__ = ["STATISTICS", "resample"]

F64 = NDArray[np.float64]

STATISTICS = ("count", "sum", "mean", "min", "max", "first", "last")
"""What :func:`resample` computes (all in one pass)."""


def _step_ns(rule: object) -> int:
    import pandas as pd

    if isinstance(rule, int | np.integer) and not isinstance(rule, bool):
        step = int(rule)
    else:
        try:
            step = int(pd.Timedelta(rule).as_unit("ns").value)  # type: ignore[arg-type]
        except (ValueError, TypeError) as exc:
            raise ConfigurationError(
                f"rule must be a fixed duration such as '1s' or '100ms', got {rule!r}"
            ) from exc
    if step <= 0:
        raise ConfigurationError(f"rule must be a positive duration, got {rule!r}")
    return step


def _statistics(how: str | Sequence[str]) -> tuple[list[str], bool]:
    single = isinstance(how, str)
    names = [how] if isinstance(how, str) else list(how)
    unknown = [h for h in names if h not in STATISTICS]
    if unknown or not names:
        raise ConfigurationError(f"how must name statistics among {STATISTICS}, got {how!r}")
    return names, single


def _grid(lo: int, hi: int, origin: int, step: int) -> tuple[int, int]:
    """Start and number of bins covering ``lo ..= hi`` on the grid ``origin + k * step``."""
    start = origin + (lo - origin) // step * step
    return start, (hi - start) // step + 1


def _bin(
    times: NDArray[np.int64], values: F64, start: int, step: int, n_bins: int
) -> dict[str, NDArray[Any]]:
    result = kernels().bin_regular(times, values, start, step, n_bins)
    return dict(zip(STATISTICS, result, strict=True))


def resample(
    data: Any,
    rule: Any,
    how: str | Sequence[str] = "mean",
    *,
    time: Any = None,
    valid: Any = None,
) -> Any:
    """Bin samples onto a regular time grid, computing several statistics in one pass.

    Like pandas' ``data.resample(rule).agg(how)`` for fixed frequencies: bins are
    closed and labelled on the left and aligned to midnight of the first sample's day
    (pandas' ``origin="start_day"``); the grid runs from the first to the last sample's
    bin. Times may be irregular (and unsorted; first/last then follow input order).
    NaN samples are missing: not counted, and an empty bin has NaN statistics (count
    0, sum 0).

    Parameters
    ----------
    data : pandas.Series, pandas.DataFrame, xarray.DataArray, xarray.Dataset or numpy.ndarray
        Values indexed by time (pandas: a DatetimeIndex; xarray: a datetime ``time``
        coordinate); NumPy arrays need `time`.
    rule : str, pandas.Timedelta, numpy.timedelta64 or int
        Bin width, e.g. ``"1s"`` (an int is nanoseconds).
    how : str or sequence of str
        Among ``count``, ``sum``, ``mean``, ``min``, ``max``, ``first``, ``last``.
    time : array-like, optional
        The times of NumPy `data` (datetime64 or int64 nanoseconds).
    valid : array-like of bool, optional
        False marks samples of bad quality, treated as missing.

    Returns
    -------
    object
        With one statistic: a Series / DataFrame / DataArray / Dataset like `data` on
        the new time index. With several: a DataFrame with one column per statistic
        (a Series input; DataFrame inputs get ``(column, statistic)`` columns), a
        DataArray with a trailing ``stat`` dimension, or variables ``name_stat`` in a
        Dataset. NumPy input gives a dict of arrays with the key ``"time"``.

    Raises
    ------
    ValueError
        For a rule that is not a fixed duration, unknown statistics, or data without
        times.
    """
    step = _step_ns(rule)
    names, single = _statistics(how)
    import pandas as pd

    if is_series(data) or is_frame(data):
        index = data.index
        if not isinstance(index, pd.DatetimeIndex):
            raise ConfigurationError("resample needs a DatetimeIndex on pandas data")
        # Work in the index's own tick (pandas 3 defaults to microseconds) so the times
        # are used without a conversion copy; fall back to ns for a step finer than it.
        tick = int(pd.Timedelta(1, unit=index.unit).as_unit("ns").value)
        if step % tick:
            index, tick = index.as_unit("ns"), 1
        times = index.asi8
        sources = [data] if is_series(data) else [data[c] for c in data.columns]
        rows = [c.to_numpy(dtype=np.float64, na_value=np.nan) for c in sources]
        if valid is not None:
            bad = ~np.asarray(valid, dtype=bool)
            rows = [np.where(bad, np.nan, v) for v in rows]
        if index.hasnans:
            present = np.asarray(index.notna(), dtype=np.bool_)
            times = times[present]
            rows = [v[present] for v in rows]
        rows = [np.ascontiguousarray(v) for v in rows]
        tz = index.tz
        if times.size == 0:
            start = 0
            n_bins = 0
        else:
            # O(1) on a sorted index (pandas caches monotonicity), unlike times.min().
            first, last = pd.Timestamp(index.min()), pd.Timestamp(index.max())
            # Timestamp.value is in ns whatever the unit.
            origin = first.normalize().value // tick
            lo, hi = first.value // tick, last.value // tick
            start, n_bins = _grid(lo, hi, origin, step // tick)
        grid = pd.date_range(
            pd.Timestamp(start * tick, tz="UTC").tz_convert(tz)
            if tz
            else pd.Timestamp(start * tick),
            periods=n_bins,
            freq=pd.Timedelta(step, unit="ns"),
            name=data.index.name,
        ).as_unit(data.index.unit)
        stats = [_bin(times, row, start, step // tick, n_bins) for row in rows]
        out: Any
        if is_series(data):
            if single:
                out = pd.Series(stats[0][names[0]], index=grid, name=data.name)
            else:
                out = pd.DataFrame({h: stats[0][h] for h in names}, index=grid)
        elif single:
            out = pd.DataFrame(
                {c: s[names[0]] for c, s in zip(data.columns, stats, strict=True)},
                index=grid,
                columns=data.columns,
            )
        else:
            columns = pd.MultiIndex.from_tuples([(c, h) for c in data.columns for h in names])
            out = pd.DataFrame(
                np.column_stack([s[h] for s in stats for h in names]) if stats else None,
                index=grid,
                columns=columns,
            )
            for c, h in columns:
                if h == "count":
                    out[(c, h)] = out[(c, h)].astype(np.int64)
        out.attrs = copy.deepcopy(data.attrs)
        return out
    if is_dataset(data):
        out_vars = {}
        for name, var in data.data_vars.items():
            if time_dim(data) not in var.dims:
                continue
            result = resample(var, rule, how, valid=valid)
            if single:
                out_vars[name] = result
            else:
                for h in names:
                    out_vars[f"{name}_{h}"] = result.sel(stat=h, drop=True)
        import xarray as xr

        return xr.Dataset(out_vars, attrs=copy.deepcopy(data.attrs))
    if is_dataarray(data):
        import xarray as xr

        dim = time_dim(data)
        coord = pd.DatetimeIndex(data[dim].values)
        moved = data.transpose(..., dim)
        flat = moved.values.reshape(-1, moved.shape[-1]).astype(np.float64)
        if valid is not None:
            flat[:, ~np.asarray(valid, dtype=bool)] = np.nan
        times = coord.as_unit("ns").asi8
        if times.size == 0:
            raise ConfigurationError("resample needs at least one sample")
        origin = pd.Timestamp(coord.min()).normalize().as_unit("ns").value
        start, n_bins = _grid(int(times.min()), int(times.max()), origin, step)
        stats = [_bin(times, np.ascontiguousarray(r), start, step, n_bins) for r in flat]
        grid = pd.date_range(pd.Timestamp(start), periods=n_bins, freq=pd.Timedelta(step))
        shape = (*moved.shape[:-1], n_bins)
        other = {k: v for k, v in moved.coords.items() if dim not in v.dims}
        arrays = [
            np.stack([s[h] for s in stats]).reshape(shape) if stats else np.zeros(shape)
            for h in names
        ]
        if single:
            out_da = xr.DataArray(arrays[0], dims=moved.dims, coords={**other, dim: grid})
        else:
            out_da = xr.DataArray(
                np.stack(arrays, axis=-1),
                dims=(*moved.dims, "stat"),
                coords={**other, dim: grid, "stat": names},
            )
        out_da.name = data.name
        out_da.attrs = copy.deepcopy(data.attrs)
        return out_da.transpose(*[d for d in data.dims], ...)
    if time is None:
        raise ConfigurationError("resample needs `time` for NumPy data")
    time_array = np.asarray(time)
    is_datetime = np.issubdtype(time_array.dtype, np.datetime64)
    times = (
        time_array.astype("datetime64[ns]").view(np.int64)
        if is_datetime
        else time_array.astype(np.int64)
    )
    values = as_float(data)
    if values.shape != times.shape:
        raise ConfigurationError(f"time has shape {times.shape} but data has shape {values.shape}")
    if valid is not None:
        values = np.where(np.asarray(valid, dtype=bool), values, np.nan)
    if times.size == 0:
        start, n_bins = 0, 0
    else:
        day = 86_400_000_000_000
        lo = int(times.min())
        start, n_bins = _grid(lo, int(times.max()), lo // day * day, step)
    grid_ns = start + step * np.arange(n_bins, dtype=np.int64)
    binned = _bin(times, values, start, step, n_bins)
    found: dict[str, Any] = {"time": grid_ns.view("datetime64[ns]") if is_datetime else grid_ns}
    found.update({h: binned[h] for h in names})
    return found

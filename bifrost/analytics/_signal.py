"""Public signal and process analytics.

Resampling, downsampling, filters, spectra, vibration features, control charts,
capability, CUSUM and cycles. Re-exported by :mod:`bifrost.analytics`; see its
documentation for the kinds of input.
"""

from __future__ import annotations

import copy
import math
import sys
from collections.abc import Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bifrost.analytics._backend import kernels
from bifrost.analytics._frames import apply, as_float, time_dim

__all__ = [
    "Capability",
    "ControlChart",
    "butter",
    "butter_filter",
    "capability",
    "control_chart",
    "cusum",
    "cycle_starts",
    "cycles",
    "downsample",
    "resample",
    "sos_filter",
    "welch",
    "window_features",
]

F64 = NDArray[np.float64]

STATISTICS = ("count", "sum", "mean", "min", "max", "first", "last")
"""What :func:`resample` computes (all in one pass)."""

NELSON = tuple(f"rule{k}" for k in range(1, 9))
WESTERN_ELECTRIC = ("we1", "we2", "we3", "we4")
# Bits of the kernel masks behind each Western Electric rule (WE1-3 are Nelson 1, 5, 6).
_WE_BITS = (0, 4, 5, 8)


def _pandas() -> Any:
    return sys.modules.get("pandas")


def _xarray() -> Any:
    return sys.modules.get("xarray")


def _is_series(x: object) -> bool:
    pd = _pandas()
    return pd is not None and isinstance(x, pd.Series)


def _is_frame(x: object) -> bool:
    pd = _pandas()
    return pd is not None and isinstance(x, pd.DataFrame)


def _is_dataarray(x: object) -> bool:
    xr = _xarray()
    return xr is not None and isinstance(x, xr.DataArray)


def _is_dataset(x: object) -> bool:
    xr = _xarray()
    return xr is not None and isinstance(x, xr.Dataset)


def _one_d(x: object, what: str) -> F64:
    """The float64 samples of a 1-D input (NumPy, Series or 1-D DataArray)."""
    if _is_dataarray(x):
        x = x.values  # type: ignore[attr-defined]
    array = as_float(x)
    if array.ndim != 1:
        raise ValueError(f"{what} takes one-dimensional data, got shape {array.shape}")
    return array


# --- resample -------------------------------------------------------------------------


def _step_ns(rule: object) -> int:
    import pandas as pd

    if isinstance(rule, int | np.integer) and not isinstance(rule, bool):
        step = int(rule)
    else:
        try:
            step = int(pd.Timedelta(rule).as_unit("ns").value)  # type: ignore[arg-type]
        except (ValueError, TypeError) as exc:
            raise ValueError(
                f"rule must be a fixed duration such as '1s' or '100ms', got {rule!r}"
            ) from exc
    if step <= 0:
        raise ValueError(f"rule must be a positive duration, got {rule!r}")
    return step


def _statistics(how: str | Sequence[str]) -> tuple[list[str], bool]:
    single = isinstance(how, str)
    names = [how] if isinstance(how, str) else list(how)
    unknown = [h for h in names if h not in STATISTICS]
    if unknown or not names:
        raise ValueError(f"how must name statistics among {STATISTICS}, got {how!r}")
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

    if _is_series(data) or _is_frame(data):
        index = data.index
        if not isinstance(index, pd.DatetimeIndex):
            raise ValueError("resample needs a DatetimeIndex on pandas data")
        # Work in the index's own tick (pandas 3 defaults to microseconds) so the times
        # are used without a conversion copy; fall back to ns for a step finer than it.
        tick = int(pd.Timedelta(1, unit=index.unit).as_unit("ns").value)
        if step % tick:
            index, tick = index.as_unit("ns"), 1
        times = index.asi8
        sources = [data] if _is_series(data) else [data[c] for c in data.columns]
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
        if _is_series(data):
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
    if _is_dataset(data):
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
    if _is_dataarray(data):
        import xarray as xr

        dim = time_dim(data)
        coord = pd.DatetimeIndex(data[dim].values)
        moved = data.transpose(..., dim)
        flat = moved.values.reshape(-1, moved.shape[-1]).astype(np.float64)
        if valid is not None:
            flat[:, ~np.asarray(valid, dtype=bool)] = np.nan
        times = coord.as_unit("ns").asi8
        if times.size == 0:
            raise ValueError("resample needs at least one sample")
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
        raise ValueError("resample needs `time` for NumPy data")
    time_array = np.asarray(time)
    is_datetime = np.issubdtype(time_array.dtype, np.datetime64)
    times = (
        time_array.astype("datetime64[ns]").view(np.int64)
        if is_datetime
        else time_array.astype(np.int64)
    )
    values = as_float(data)
    if values.shape != times.shape:
        raise ValueError(f"time has shape {times.shape} but data has shape {values.shape}")
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


# --- downsample -----------------------------------------------------------------------


def _positions(x: Any) -> F64 | None:
    """Positions for x-aware downsampling, or None for evenly spaced samples."""
    pd = _pandas()
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
        values = _one_d(y, "downsample")
        index = impl.downsample(values, n_out, method, _positions(x), minmax_ratio)
        return np.asarray(x)[index], np.asarray(y)[index]
    if _is_series(x):
        values = as_float(x)
        index = impl.downsample(values, n_out, method, _positions(x.index), minmax_ratio)
        out = x.iloc[index]
        out.attrs = copy.deepcopy(x.attrs)
        return out
    if _is_dataarray(x):
        dim = time_dim(x)
        if x.ndim != 1:
            raise ValueError(f"downsample takes one-dimensional data, got dims {x.dims}")
        positions = _positions(x[dim].values) if dim in x.coords else None
        index = impl.downsample(as_float(x.values), n_out, method, positions, minmax_ratio)
        return x.isel({dim: index})
    values = _one_d(x, "downsample")
    return values[impl.downsample(values, n_out, method, None, minmax_ratio)]


# --- filters --------------------------------------------------------------------------


def butter(order: int, cutoff: float | Sequence[float], fs: float, btype: str = "lowpass") -> F64:
    """Design a digital Butterworth filter as second-order sections.

    Parameters
    ----------
    order : int
        Filter order (1 to 32).
    cutoff : float or pair of float
        Cutoff frequency, or ``(low, high)`` for ``bandpass`` / ``bandstop``, in the
        unit of `fs`, strictly between 0 and ``fs / 2``.
    fs : float
        Sampling frequency.
    btype : {"lowpass", "highpass", "bandpass", "bandstop"}
        The kind of filter.

    Returns
    -------
    numpy.ndarray
        ``sos`` of shape ``(n_sections, 6)``, as ``scipy.signal.butter(...,
        output="sos")`` (sections may be paired and ordered differently).

    Raises
    ------
    ValueError
        For an invalid order, cutoff, `fs` or `btype`.
    """
    cutoffs = [float(c) for c in np.atleast_1d(np.asarray(cutoff, dtype=np.float64))]
    if isinstance(order, bool) or not isinstance(order, int | np.integer):
        raise ValueError(f"order must be an integer, got {order!r}")
    return kernels().butter(int(order), cutoffs, float(fs), btype)


def sos_filter(x: Any, sos: Any, *, zero_phase: bool = True, padlen: int | None = None) -> Any:
    """Filter with second-order sections, zero-phase by default.

    Zero-phase filtering is ``scipy.signal.sosfiltfilt`` (odd padding of `padlen`
    samples, scipy's default length when None, steady-state initial conditions); the
    forward filter is ``scipy.signal.sosfilt`` from rest. Columns / channels are
    filtered in parallel. IIR filters spread a NaN over everything after it (both ways
    when zero-phase), so NaN or infinite samples raise instead: fill gaps first.

    Parameters
    ----------
    x : numpy.ndarray, pandas.Series, pandas.DataFrame, xarray.DataArray or xarray.Dataset
        The samples, along time.
    sos : array-like
        Sections, shape ``(n_sections, 6)`` (e.g. from :func:`butter`).
    zero_phase : bool
        Forward-backward filtering (no phase shift) instead of forward only.
    padlen : int, optional
        Padding of the zero-phase filter.

    Returns
    -------
    same kind as `x`
        The filtered samples.

    Raises
    ------
    ValueError
        For invalid sections, a signal not longer than the padding, or NaN samples.
    """
    sections = np.ascontiguousarray(sos, dtype=np.float64)
    impl = kernels()

    def rows(data: F64) -> F64:
        if zero_phase:
            return impl.sosfiltfilt(sections, data, padlen)
        return impl.sosfilt(sections, data)

    def one(values: F64) -> F64:
        result: F64 = rows(values[None, :])[0]
        return result

    return apply(x, one, rows=rows)


def butter_filter(
    x: Any,
    fs: float,
    cutoff: float | Sequence[float],
    order: int = 4,
    btype: str = "lowpass",
    zero_phase: bool = True,
) -> Any:
    """Butterworth filtering in one call: :func:`butter` then :func:`sos_filter`.

    Parameters
    ----------
    x : numpy.ndarray, pandas.Series, pandas.DataFrame, xarray.DataArray or xarray.Dataset
        The samples, along time (all channels at once, in parallel).
    fs : float
        Sampling frequency.
    cutoff : float or pair of float
        Cutoff(s) in the unit of `fs`.
    order : int
        Filter order.
    btype : {"lowpass", "highpass", "bandpass", "bandstop"}
        The kind of filter.
    zero_phase : bool
        Forward-backward (``sosfiltfilt``) rather than forward (``sosfilt``).

    Returns
    -------
    same kind as `x`
        The filtered samples.

    Raises
    ------
    ValueError
        As :func:`butter` and :func:`sos_filter`.
    """
    return sos_filter(x, butter(order, cutoff, fs, btype), zero_phase=zero_phase)


# --- spectra and vibration --------------------------------------------------------------


def welch(x: Any, fs: float, nperseg: int = 4096, noverlap: int | None = None) -> Any:
    """Power spectral density by Welch's method, as ``scipy.signal.welch``'s defaults.

    Periodic Hann window, ``noverlap = nperseg // 2``, constant detrending, one-sided
    density. `nperseg` longer than the signal is shortened to it (as scipy does).
    Segments holding NaN are left out of the average (all NaN if every one does).

    Parameters
    ----------
    x : numpy.ndarray, pandas.Series, pandas.DataFrame or xarray.DataArray
        The samples, along time.
    fs : float
        Sampling frequency.
    nperseg : int
        Segment length.
    noverlap : int, optional
        Overlap of segments; ``nperseg // 2`` by default.

    Returns
    -------
    object
        NumPy: ``(frequencies, psd)`` (psd along the last axis). pandas: a Series /
        DataFrame indexed by ``frequency``. xarray: a DataArray whose time dimension is
        replaced by ``frequency``.

    Raises
    ------
    ValueError
        For an empty signal or invalid segment parameters.
    """
    impl = kernels()

    def sizes(n: int) -> tuple[int, int]:
        if n == 0:
            raise ValueError("welch needs at least one sample")
        seg = min(int(nperseg), n)
        overlap = seg // 2 if noverlap is None else int(noverlap)
        return seg, overlap

    def spectrum(values: F64) -> F64:
        seg, overlap = sizes(values.size)
        return impl.welch(values, float(fs), seg, overlap)

    def frequencies(n: int) -> F64:
        seg, _ = sizes(n)
        return np.arange(seg // 2 + 1, dtype=np.float64) * np.float64(float(fs) / seg)

    pd = _pandas()
    if _is_series(x) or _is_frame(x):
        frame = x.to_frame() if _is_series(x) else x
        values = frame.to_numpy(dtype=np.float64, na_value=np.nan)
        index = pd.Index(frequencies(values.shape[0]), name="frequency")
        columns = [spectrum(np.ascontiguousarray(values[:, j])) for j in range(values.shape[1])]
        if _is_series(x):
            out = pd.Series(columns[0], index=index, name=x.name)
        else:
            out = pd.DataFrame(dict(enumerate(columns)), index=index)
            out.columns = x.columns
        out.attrs = copy.deepcopy(x.attrs)
        return out
    if _is_dataarray(x):
        import xarray as xr

        dim = time_dim(x)
        moved = x.transpose(..., dim)
        flat = moved.values.reshape(-1, moved.shape[-1]).astype(np.float64)
        psd = np.stack([spectrum(np.ascontiguousarray(r)) for r in flat])
        freqs = frequencies(moved.shape[-1])
        other = {k: v for k, v in moved.coords.items() if dim not in v.dims}
        dims = (*moved.dims[:-1], "frequency")
        return xr.DataArray(
            psd.reshape(*moved.shape[:-1], freqs.size),
            dims=dims,
            coords={**other, "frequency": freqs},
            name=x.name,
            attrs=copy.deepcopy(x.attrs),
        )
    array = np.asarray(x, dtype=np.float64)
    if array.ndim == 0:
        raise ValueError("expected an array with at least one dimension, got a scalar")
    sizes(array.shape[-1])
    flat = array.reshape(-1, array.shape[-1])
    psd = np.stack([spectrum(np.ascontiguousarray(r)) for r in flat])
    freqs = frequencies(array.shape[-1])
    return freqs, psd.reshape(*array.shape[:-1], freqs.size)


FEATURES = ("rms", "peak", "crest", "kurtosis")


def window_features(x: Any, window: int) -> Any:
    """RMS, peak, crest factor and kurtosis of consecutive windows (vibration).

    Windows do not overlap; a trailing partial window is left out. NaN samples are
    skipped; kurtosis is the excess (Fisher) kurtosis, biased, as
    ``scipy.stats.kurtosis`` by default (NaN for a constant window).

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
    if isinstance(window, bool) or not isinstance(window, int | np.integer) or window < 1:
        raise ValueError(f"window must be a positive integer, got {window!r}")
    values = _one_d(x, "window_features")
    stats = dict(zip(FEATURES, kernels().window_features(values, int(window)), strict=True))
    count = stats["rms"].size
    if _is_series(x):
        pd = _pandas()
        out = pd.DataFrame(stats, index=x.index[: count * window : window])
        out.attrs = copy.deepcopy(x.attrs)
        return out
    if _is_dataarray(x):
        import xarray as xr

        dim = time_dim(x)
        coords = {"window": x[dim].values[: count * window : window]} if dim in x.coords else {}
        return xr.Dataset(
            {k: ("window", v) for k, v in stats.items()},
            coords=coords,
            attrs=copy.deepcopy(x.attrs),
        )
    return stats


# --- process control --------------------------------------------------------------------


@dataclass(frozen=True)
class ControlChart:
    """An individuals (Shewhart) chart and the rules each sample violates.

    Attributes
    ----------
    center, sigma : float
        Centre line and sigma (mean moving range / 1.128 unless given).
    lcl, ucl : float
        Control limits, ``center -/+ 3 sigma``.
    flags : object
        One boolean column per rule (``rule1`` ... ``rule8`` for Nelson, ``we1`` ...
        ``we4`` for Western Electric): a DataFrame for pandas input, a DataArray with a
        ``rule`` dimension for xarray, a ``(n, rules)`` array for NumPy.
    rules : tuple of str
        The rule names, in column order.
    """

    center: float
    sigma: float
    lcl: float
    ucl: float
    flags: Any
    rules: tuple[str, ...]

    @property
    def violations(self) -> Any:
        """Whether each sample violates any rule (same kind as `flags`, one column less)."""
        if _is_frame(self.flags):
            return self.flags.any(axis=1)
        if _is_dataarray(self.flags):
            return self.flags.any("rule")
        return np.asarray(self.flags).any(axis=1)


def control_chart(
    x: Any,
    center: float | None = None,
    sigma: float | None = None,
    rules: str = "nelson",
) -> ControlChart:
    """Shewhart individuals chart with the Nelson or Western Electric rules per sample.

    A sample is flagged by a rule when it completes the rule's pattern (e.g. the ninth
    sample in a row above the centre). NaN samples are never flagged and break runs.

    Parameters
    ----------
    x : numpy.ndarray, pandas.Series or xarray.DataArray
        One-dimensional samples.
    center, sigma : float, optional
        Known centre and sigma (e.g. from a reference period); estimated from `x`
        otherwise (mean, and mean moving range / 1.128).
    rules : {"nelson", "western_electric"}
        Nelson's eight rules or the four Western Electric rules.

    Returns
    -------
    ControlChart
        Limits and per-sample flags.

    Raises
    ------
    ValueError
        For an unknown rule set, or a sigma that is not positive (e.g. constant data).
    """
    if rules not in ("nelson", "western_electric"):
        raise ValueError(f"rules must be 'nelson' or 'western_electric', got {rules!r}")
    values = _one_d(x, "control_chart")
    impl = kernels()
    est_center, est_sigma = impl.individuals_limits(values)
    c = est_center if center is None else float(center)
    s = est_sigma if sigma is None else float(sigma)
    masks = impl.nelson_rules(values, c, s)
    bits = range(8) if rules == "nelson" else _WE_BITS
    names = NELSON if rules == "nelson" else WESTERN_ELECTRIC
    table = np.column_stack([(masks >> np.uint16(b)) & 1 for b in bits]).astype(bool)
    flags: Any = table
    if _is_series(x):
        pd = _pandas()
        flags = pd.DataFrame(table, index=x.index, columns=list(names))
    elif _is_dataarray(x):
        import xarray as xr

        dim = x.dims[0]
        flags = xr.DataArray(
            table, dims=(dim, "rule"), coords={**dict(x.coords), "rule": list(names)}
        )
    return ControlChart(c, s, c - 3 * s, c + 3 * s, flags, tuple(names))


@dataclass(frozen=True)
class Capability:
    """Process capability indices.

    Attributes
    ----------
    mean : float
        Mean of the samples.
    sigma_within : float
        Short-term sigma, mean moving range / 1.128.
    sigma_overall : float
        Sample standard deviation.
    cp, cpk : float
        Capability with the short-term sigma (``cp`` NaN without both limits).
    pp, ppk : float
        Performance with the overall sigma.
    """

    mean: float
    sigma_within: float
    sigma_overall: float
    cp: float
    cpk: float
    pp: float
    ppk: float


def capability(x: Any, lsl: float | None = None, usl: float | None = None) -> Capability:
    """Cp, Cpk, Pp and Ppk against specification limits (one may be omitted).

    Parameters
    ----------
    x : numpy.ndarray, pandas.Series or xarray.DataArray
        One-dimensional samples; NaN is skipped.
    lsl, usl : float, optional
        Lower and upper specification limits.

    Returns
    -------
    Capability
        The indices.

    Raises
    ------
    ValueError
        Without any limit, or with ``lsl >= usl``.
    """
    values = _one_d(x, "capability")
    low = math.nan if lsl is None else float(lsl)
    high = math.nan if usl is None else float(usl)
    return Capability(*kernels().capability(values, low, high))


def cusum(
    x: Any,
    target: float | None = None,
    sigma: float | None = None,
    k: float = 0.5,
    h: float = 5.0,
) -> Any:
    """Tabular CUSUM to detect small persistent shifts of the mean.

    ``upper[i] = max(0, upper[i-1] + x[i] - target - k sigma)`` (and ``lower`` for
    downward shifts); a shift is signalled while a sum exceeds ``h sigma``. NaN samples
    carry the sums over.

    Parameters
    ----------
    x : numpy.ndarray, pandas.Series or xarray.DataArray
        One-dimensional samples.
    target : float, optional
        In-control mean; the mean of `x` by default.
    sigma : float, optional
        In-control sigma; mean moving range / 1.128 by default.
    k, h : float
        Allowance and decision interval, in units of sigma.

    Returns
    -------
    object
        ``upper``, ``lower``, ``shift_up`` and ``shift_down`` (bool): a DataFrame for
        pandas, a Dataset for xarray, a dict for NumPy.

    Raises
    ------
    ValueError
        For negative `k` or `h`, or a sigma that is not positive.
    """
    values = _one_d(x, "cusum")
    impl = kernels()
    est_center, est_sigma = impl.individuals_limits(values)
    t = est_center if target is None else float(target)
    s = est_sigma if sigma is None else float(sigma)
    if not (math.isfinite(s) and s > 0):
        raise ValueError(f"sigma must be positive and finite, got {s}")
    if not (h >= 0 and k >= 0):
        raise ValueError(f"k and h must be non-negative, got k={k}, h={h}")
    upper, lower = impl.cusum(values, t, k * s)
    result = {
        "upper": upper,
        "lower": lower,
        "shift_up": upper > h * s,
        "shift_down": lower > h * s,
    }
    if _is_series(x):
        out = _pandas().DataFrame(result, index=x.index)
        out.attrs = copy.deepcopy(x.attrs)
        return out
    if _is_dataarray(x):
        import xarray as xr

        dim = x.dims[0]
        return xr.Dataset(
            {name: (dim, v) for name, v in result.items()},
            coords=x.coords,
            attrs=copy.deepcopy(x.attrs),
        )
    return result


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
    return kernels().rising_edges(_one_d(trigger, "cycle_starts"), float(threshold))


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
    values = _one_d(x, "cycles")
    edges = cycle_starts(trigger, threshold)
    if _one_d(trigger, "cycles").size != values.size:
        raise ValueError("trigger and x must have the same length")
    starts = edges[:-1]
    end = int(edges[-1]) if edges.size else 0
    longest = int(np.diff(edges).max()) if edges.size > 1 else 0
    size = longest if length is None else int(length)
    table = kernels().stack_cycles(values, np.ascontiguousarray(starts), end, size)
    if _is_series(x):
        pd = _pandas()
        out = pd.DataFrame(table, index=x.index[starts], columns=pd.RangeIndex(size, name="offset"))
        out.attrs = copy.deepcopy(x.attrs)
        return out
    if _is_dataarray(x):
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

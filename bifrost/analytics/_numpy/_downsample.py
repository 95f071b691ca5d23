"""NumPy twin of the plot downsamplers: MinMaxLTTB, LTTB, MinMax and M4.

Bins and tie-breaks follow tsdownsample's, so that on data without NaN the indices are its own.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

from bifrost.analytics._checks import check_count

__all__ = ["downsample"]

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]

_METHODS = ("minmaxlttb", "lttb", "minmax", "m4")


def _index_bins(n: int, n_bins: int) -> list[tuple[int, int]]:
    block = (n - 1) / n_bins
    bins, start = [], 0
    for i in range(n_bins):
        end = min(int(block * float(i + 1)) + 1, n)
        if end > start:
            bins.append((start, end))
        start = end
    return bins


def _x_bins(x: F64, n_bins: int, close_last: bool = False) -> list[tuple[int, int]]:
    n = x.size
    x0 = float(x[0])
    step = float(x[-1]) / n_bins - x0 / n_bins
    bins, idx = [], 0
    for i in range(n_bins):
        start = idx
        edge = x0 + step * float(i + 1)
        if start >= n or x[start] >= edge:
            continue
        if close_last and i + 1 == n_bins:
            idx = n
        else:
            idx = start + int(np.searchsorted(x[start:], edge, "right"))
        bins.append((start, idx))
    return bins


def _argminmax(y: F64) -> tuple[int, int]:
    if np.isnan(y).all():
        return 0, 0
    return int(np.nanargmin(y)), int(np.nanargmax(y))


def _check_x(x: F64, n: int) -> None:
    if x.size != n:
        raise ValueError(f"output length {x.size} does not match input length {n}")
    if not np.isfinite(x).all():
        raise ValueError(
            "x of a downsampling: the input holds NaN or infinite samples; "
            "fill or drop the gaps first"
        )
    if (np.diff(x) < 0).any():
        raise ValueError("x must be sorted in ascending order")


def _minmax(x: F64 | None, y: F64, n_out: int) -> list[int]:
    n = y.size
    if n_out >= n:
        return list(range(n))
    bins = _x_bins(x, n_out // 2) if x is not None else _index_bins(n, n_out // 2)
    out: list[int] = []
    for start, end in bins:
        if x is not None and end - start <= 2:
            out.extend(range(start, end))
            continue
        lo, hi = _argminmax(y[start:end])
        out += [start + min(lo, hi), start + max(lo, hi)]
    return out


def _m4(x: F64 | None, y: F64, n_out: int) -> list[int]:
    n = y.size
    if n_out >= n:
        return list(range(n))
    bins = _x_bins(x, n_out // 4, close_last=True) if x is not None else _index_bins(n, n_out // 4)
    out: list[int] = []
    for start, end in bins:
        lo, hi = _argminmax(y[start:end])
        out += [start, start + min(lo, hi), start + max(lo, hi), end - 1]
    return out


def _nan_mean(y: F64) -> float:
    valid = y[~np.isnan(y)]
    if valid.size == 0:
        return math.nan
    return float(valid.sum() / valid.size)


def _lttb(x: F64 | None, y: F64, n_out: int) -> list[int]:
    n = y.size
    if n_out >= n:
        return list(range(n))
    every = (n - 2) / (n_out - 2)
    out = [0] * n_out
    a = 0
    for i in range(n_out - 2):
        next_start = int(every * float(i + 1)) + 1
        next_end = min(int(every * float(i + 2)) + 1, n)
        avg_y = _nan_mean(y[next_start:next_end])
        lo, hi = int(every * float(i)) + 1, next_start
        ay = y[a]
        with np.errstate(invalid="ignore"):
            if x is None:
                avg_x = (next_start + next_end - 1) / 2.0
                d1 = float(a) - avg_x
                d2 = avg_y - ay
                offset = d1 * ay
                dx = float(a) - np.arange(lo, hi, dtype=np.float64)
                area = np.abs(d1 * y[lo:hi] - dx * d2 - offset)
            else:
                avg_x = (x[next_end - 1] + x[next_start]) / 2.0
                ax = x[a]
                d1 = ax - avg_x
                d2 = avg_y - ay
                offset = d1 * ay + d2 * ax
                area = np.abs(d1 * y[lo:hi] + d2 * x[lo:hi] - offset)
        # NaN areas never win; all-NaN picks the bucket's first sample.
        a = lo + int(np.argmax(np.where(np.isnan(area), -1.0, area)))
        out[i + 1] = a
    out[-1] = n - 1
    return out


def downsample(y: F64, n_out: int, method: str, x: F64 | None = None, minmax_ratio: int = 4) -> I64:
    """Indices of the samples kept by a plot downsampler (tsdownsample's conventions).

    Parameters
    ----------
    y : numpy.ndarray
        float64 values.
    n_out : int
        Number of samples to keep (even for minmax, a multiple of 4 for m4).
    method : {"minmaxlttb", "lttb", "minmax", "m4"}
        The algorithm.
    x : numpy.ndarray, optional
        float64 positions, sorted ascending; bins of equal width in `x`.
    minmax_ratio : int
        Preselection factor of minmaxlttb (at least 2).

    Returns
    -------
    numpy.ndarray
        int64 indices, ascending.

    Raises
    ------
    ValueError
        For an unknown method, an invalid `n_out` or `minmax_ratio`, or an invalid `x`.
    """
    n_out = check_count(n_out, "n_out")
    ratio = check_count(minmax_ratio, "minmax_ratio")
    if method not in _METHODS:
        raise ValueError(
            f"method must be one of 'minmaxlttb', 'lttb', 'minmax', 'm4', got {method!r}"
        )
    if method == "minmax" and (n_out < 2 or n_out % 2):
        raise ValueError("n_out must be an even number of at least 2 for minmax")
    if method == "m4" and (n_out < 4 or n_out % 4):
        raise ValueError("n_out must be a positive multiple of 4 for m4")
    if method in ("lttb", "minmaxlttb") and n_out < 3:
        raise ValueError(f"n_out must be at least 3 for {method}")
    if method == "minmaxlttb" and ratio < 2:
        raise ValueError("minmax_ratio must be at least 2")
    if x is not None:
        _check_x(x, y.size)
    n = y.size
    if method == "minmax":
        idx = _minmax(x, y, n_out)
    elif method == "m4":
        idx = _m4(x, y, n_out)
    elif method == "lttb" or n // n_out <= ratio:
        idx = _lttb(x, y, n_out)
    else:
        inner = _minmax(None if x is None else x[1:-1], y[1:-1], n_out * ratio)
        index = np.array([0, *(i + 1 for i in inner), n - 1], dtype=np.int64)
        xs = index.astype(np.float64) if x is None else x[index]
        idx = list(index[_lttb(xs, y[index], n_out)])
    return np.asarray(idx, dtype=np.int64)

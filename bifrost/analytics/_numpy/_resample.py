"""NumPy twin of the resampling kernel: regular bins, several statistics in one pass."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from bifrost.analytics._checks import check_count

__all__ = ["bin_regular"]

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]


def bin_regular(
    t: I64, v: F64, start: int, step: int, n_bins: int
) -> tuple[I64, F64, F64, F64, F64, F64, F64]:
    """Bin ``(t, v)`` onto ``start + k * step``: count, sum, mean, min, max, first, last.

    Parameters
    ----------
    t : numpy.ndarray
        int64 times (any tick, e.g. ns).
    v : numpy.ndarray
        float64 values; NaN is missing (not counted).
    start, step : int
        The grid: bin ``k`` holds ``start + k * step <= t < start + (k + 1) * step``.
    n_bins : int
        Number of bins; samples outside the grid are ignored.

    Returns
    -------
    tuple of numpy.ndarray
        count (int64), sum, mean, min, max, first, last (float64; NaN for empty bins
        except sum, which is 0). First and last follow input order.

    Raises
    ------
    ValueError
        If the lengths differ or ``step <= 0``.
    """
    n_bins = check_count(n_bins, "n_bins")
    if t.shape != v.shape:
        raise ValueError(f"output length {v.size} does not match input length {t.size}")
    if step <= 0:
        raise ValueError("step must be a positive number of ticks")
    end = start + n_bins * step  # Python ints: no overflow
    lo, hi = max(start, -(2**63)), min(end, 2**63 - 1)
    keep = ~np.isnan(v) & (t >= lo) & ((t < hi) if end <= 2**63 - 1 else True)
    tk, vk = t[keep], v[keep]
    k = ((tk - start) // step).astype(np.intp) if tk.size else np.zeros(0, np.intp)
    count = np.bincount(k, minlength=n_bins).astype(np.int64)
    total = np.bincount(k, weights=vk, minlength=n_bins).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(count > 0, total / np.maximum(count, 1), np.nan)
    low = np.full(n_bins, np.inf)
    high = np.full(n_bins, -np.inf)
    np.minimum.at(low, k, vk)
    np.maximum.at(high, k, vk)
    empty = count == 0
    low[empty] = np.nan
    high[empty] = np.nan
    first = np.full(n_bins, np.nan)
    last = np.full(n_bins, np.nan)
    bins, at = np.unique(k, return_index=True)
    first[bins] = vk[at]
    bins, at = np.unique(k[::-1], return_index=True)
    last[bins] = vk[::-1][at]
    return count, total, mean, low, high, first, last

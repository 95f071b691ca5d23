"""NumPy twins of the cycle kernels: trigger edges and cycles stacked as rows."""

from __future__ import annotations

import itertools

import numpy as np
from numpy.typing import NDArray

from bifrost.analytics._checks import check_count

__all__ = ["rising_edges", "stack_cycles"]

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]


def rising_edges(trigger: F64, threshold: float) -> I64:
    """Indices where `trigger` rises above `threshold` (NaN is not above).

    Parameters
    ----------
    trigger : numpy.ndarray
        float64 trigger samples.
    threshold : float
        Level to cross.

    Returns
    -------
    numpy.ndarray
        int64 indices ``i`` with ``trigger[i] > threshold >= trigger[i - 1]``.
    """
    above = trigger > threshold
    return (np.flatnonzero(above[1:] & ~above[:-1]) + 1).astype(np.int64)


def stack_cycles(x: F64, starts: I64, end: int, length: int) -> F64:
    """Cycles ``x[starts[j]:starts[j + 1]]`` (the last ends at `end`) as padded rows.

    Parameters
    ----------
    x : numpy.ndarray
        float64 samples.
    starts : numpy.ndarray
        Increasing int64 start indices.
    end : int
        End of the last cycle.
    length : int
        Row length: cycles are truncated or NaN-padded to it.

    Returns
    -------
    numpy.ndarray
        Shape ``(len(starts), length)``.

    Raises
    ------
    ValueError
        If the starts are not increasing or run past `end` or the data.
    """
    if (starts < 0).any():
        raise ValueError("cycle start must be a non-negative integer")
    length = check_count(length, "length")
    end = check_count(end, "end")
    if end > x.size:
        raise ValueError("the end of the last cycle is past the data")
    bounds = np.append(starts, end)
    if (np.diff(bounds) <= 0).any():
        raise ValueError("cycle starts must be increasing and before the end")
    out = np.full((starts.size, length), np.nan)
    for row, (lo, hi) in enumerate(itertools.pairwise(bounds)):
        take = min(int(hi - lo), length)
        out[row, :take] = x[lo : lo + take]
    return out

"""NumPy twins of the process-control kernels: control limits, Nelson rules, capability, CUSUM."""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import NDArray

__all__ = ["D2", "capability", "cusum", "individuals_limits", "nelson_rules"]

F64 = NDArray[np.float64]

D2 = 1.128
"""``d2`` for moving ranges of two samples (sigma = mean moving range / d2)."""


def individuals_limits(x: F64) -> tuple[float, float]:
    """Centre (mean) and sigma (mean moving range / d2) of an individuals chart.

    Parameters
    ----------
    x : numpy.ndarray
        float64 samples; NaN is skipped.

    Returns
    -------
    tuple of float
        ``(center, sigma)``; NaN when there are too few samples.
    """
    with np.errstate(invalid="ignore", divide="ignore"):
        valid = x[~np.isnan(x)]
        center = float(valid.sum() / valid.size) if valid.size else math.nan
        ranges = np.abs(np.diff(x))
        ranges = ranges[~np.isnan(ranges)]
        sigma = float(ranges.sum() / ranges.size / D2) if ranges.size else math.nan
    return center, sigma


def _run_length(condition: NDArray[np.bool_]) -> NDArray[np.intp]:
    """Length of the run of True ending at each position (0 where False)."""
    positions = np.arange(condition.size)
    last_false = np.maximum.accumulate(np.where(condition, -1, positions))
    result: NDArray[np.intp] = positions - last_false
    return result


def _window_count(condition: NDArray[np.bool_], k: int) -> NDArray[np.intp]:
    """Number of True among the `k` samples ending at each position."""
    total = np.concatenate([[0], np.cumsum(condition)])
    ends = np.arange(1, condition.size + 1)
    result: NDArray[np.intp] = total[ends] - total[np.maximum(ends - k, 0)]
    return result


def nelson_rules(x: F64, center: float, sigma: float) -> NDArray[np.uint16]:
    """Per-sample bit masks of the Nelson rules (bit 8: Western Electric rule 4).

    Parameters
    ----------
    x : numpy.ndarray
        float64 samples; NaN is never flagged and breaks every run.
    center, sigma : float
        Centre line and sigma of the chart.

    Returns
    -------
    numpy.ndarray
        uint16 masks: bit ``k - 1`` for Nelson rule ``k``, bit 8 for WE rule 4.

    Raises
    ------
    ValueError
        Unless `center` is finite and `sigma` positive and finite.
    """
    if not (math.isfinite(center) and math.isfinite(sigma) and sigma > 0):
        raise ValueError("center must be finite and sigma positive and finite")
    z = (x - center) / sigma
    flags = np.zeros(x.size, dtype=np.uint16)
    if x.size == 0:
        return flags
    with np.errstate(invalid="ignore"):
        above, below = z > 0, z < 0
        step = np.zeros(x.size)
        step[1:] = np.sign(z[1:] - z[:-1])  # NaN where a neighbour is NaN
        up, down = step > 0, step < 0
        alternating = np.zeros(x.size, dtype=bool)
        alternating[1:] = step[1:] * step[:-1] == -1
        valid_run = _run_length(~np.isnan(z))
        rules = [
            np.abs(z) > 3,
            (_run_length(above) >= 9) | (_run_length(below) >= 9),
            (_run_length(up) >= 5) | (_run_length(down) >= 5),
            _run_length(alternating) >= 12,
            (valid_run >= 3) & ((_window_count(z > 2, 3) >= 2) | (_window_count(z < -2, 3) >= 2)),
            (valid_run >= 5) & ((_window_count(z > 1, 5) >= 4) | (_window_count(z < -1, 5) >= 4)),
            _run_length(np.abs(z) < 1) >= 15,
            _run_length(np.abs(z) > 1) >= 8,
            (_run_length(above) >= 8) | (_run_length(below) >= 8),
        ]
    for bit, rule in enumerate(rules):
        flags |= rule.astype(np.uint16) << bit
    return flags


def capability(
    x: F64, lsl: float, usl: float
) -> tuple[float, float, float, float, float, float, float]:
    """Cp, Cpk, Pp and Ppk of the non-NaN samples; NaN marks a missing limit.

    Parameters
    ----------
    x : numpy.ndarray
        float64 samples.
    lsl, usl : float
        Specification limits (NaN when absent; at least one is needed).

    Returns
    -------
    tuple of float
        mean, sigma_within, sigma_overall, cp, cpk, pp, ppk.

    Raises
    ------
    ValueError
        If both limits are NaN or ``lsl >= usl``.
    """
    if math.isnan(lsl) and math.isnan(usl):
        raise ValueError("give at least one specification limit")
    if lsl >= usl:
        raise ValueError("lsl must be below usl")
    mean, within = individuals_limits(x)
    valid = x[~np.isnan(x)]
    with np.errstate(invalid="ignore", divide="ignore"):
        overall = float(np.sqrt(((valid - mean) ** 2).sum() / (valid.size - 1)))

    def indices(sigma: float) -> tuple[float, float]:
        with np.errstate(invalid="ignore", divide="ignore"):
            cp = float(np.float64(usl - lsl) / (6.0 * sigma))
            upper = float(np.float64(usl - mean) / (3.0 * sigma))
            lower = float(np.float64(mean - lsl) / (3.0 * sigma))
        if math.isnan(upper):
            return cp, lower
        if math.isnan(lower):
            return cp, upper
        return cp, min(upper, lower)

    cp, cpk = indices(within)
    pp, ppk = indices(overall)
    return mean, within, overall, cp, cpk, pp, ppk


def _page(d: F64) -> F64:
    """``s[i] = max(0, s[i-1] + d[i])`` from 0, as a cumulative sum minus its running min."""
    total = np.cumsum(d)
    floor = np.minimum.accumulate(np.minimum(total, 0.0))
    result: F64 = np.maximum(total - floor, 0.0)
    return result


def cusum(x: F64, target: float, k: float) -> tuple[F64, F64]:
    """Tabular CUSUM sums (upper, lower); NaN samples carry the sums over.

    Parameters
    ----------
    x : numpy.ndarray
        float64 samples.
    target : float
        The in-control mean.
    k : float
        Allowance (slack), in the unit of `x`.

    Returns
    -------
    tuple of numpy.ndarray
        ``upper`` and ``lower`` sums, both non-negative.

    Raises
    ------
    ValueError
        Unless `target` is finite and `k` finite and non-negative.
    """
    if not (math.isfinite(target) and math.isfinite(k) and k >= 0):
        raise ValueError("target must be finite and k finite and non-negative")
    valid = ~np.isnan(x)
    upper = _page(np.where(valid, x - target - k, 0.0))
    lower = _page(np.where(valid, target - k - x, 0.0))
    return upper, lower

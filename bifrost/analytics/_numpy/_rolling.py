"""NumPy twins of the rolling kernels: mean, standard deviation, minimum, maximum, EWMA.

Rolling windows follow pandas' ``Series.rolling(window, min_periods=window)``: output
``i`` covers ``x[i - window + 1 : i + 1]``, the first ``window - 1`` outputs are NaN, and
a window that holds a missing sample gives NaN; like pandas, +inf and -inf count as
missing, exactly like NaN. The mean, minimum and maximum use blocks of
``window`` samples (each window is a suffix of one block followed by a prefix of the
next), so they are vectorised and O(n) whatever the window. The standard deviation uses
the same blocks, centred on a sample of each block, and recomputes the few windows where
that could lose precision with a two-pass formula.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from bifrost.analytics._checks import check_alpha, check_window

__all__ = ["ewma", "rolling_max", "rolling_mean", "rolling_min", "rolling_std"]

Float64Array = NDArray[np.float64]

# Recompute a window's variance exactly when its centred sums exceed its sum of squared
# deviations by this factor (their rounding error could then exceed ~1e-12 relative).
_ILL_CONDITIONED = 1e4
# Upper bound on the elements gathered at once for the exact recomputation.
_GATHER_LIMIT = 1 << 22


def _missing_to_nan(x: Float64Array) -> Float64Array:
    """Treat +inf and -inf as missing, like NaN (as pandas does); copies only if needed."""
    infinite = np.isinf(x)
    if infinite.any():
        return np.where(infinite, np.nan, x)
    return x


def _blocks(x: Float64Array, window: int) -> NDArray[np.float64]:
    """Reshape `x` into rows of `window` samples, padding the last row with zeros."""
    n_blocks = -(-x.size // window)
    padded = np.zeros(n_blocks * window)
    padded[: x.size] = x
    return padded.reshape(n_blocks, window)


def _prefix(blocks: Float64Array, ufunc: np.ufunc = np.add) -> Float64Array:
    """Accumulate `ufunc` within each block from its start, flattened to sample order."""
    # Accumulating along axis 0 of the transpose is much faster for short blocks.
    result: Float64Array = ufunc.accumulate(blocks.T, axis=0).T.ravel()
    return result


def _suffix(blocks: Float64Array, ufunc: np.ufunc = np.add) -> Float64Array:
    """Accumulate `ufunc` within each block from its end, flattened to sample order."""
    result: Float64Array = ufunc.accumulate(blocks.T[::-1], axis=0)[::-1].T.ravel()
    return result


def _window_ends(
    n: int, window: int
) -> tuple[NDArray[np.intp], NDArray[np.intp], NDArray[np.bool_]]:
    """Indices of the full windows' last and first samples, and whether a window is a block."""
    ends = np.arange(window - 1, n)
    starts = ends - (window - 1)
    return ends, starts, starts % window == 0


def _equal_windows(x: Float64Array, window: int) -> NDArray[np.bool_]:
    """Whether the window ending at each sample holds `window` equal, non-NaN samples."""
    n = x.size
    changed = np.ones(n, dtype=bool)
    changed[1:] = x[1:] != x[:-1]  # NaN != NaN: a NaN always starts a new run
    positions = np.arange(n)
    run_start = np.maximum.accumulate(np.where(changed, positions, 0))
    return (positions - run_start + 1 >= window) & ~np.isnan(x)


def _output(x: Float64Array, window: int) -> Float64Array | None:
    """Return the all-NaN result when no window is full, else None."""
    if window > x.size:
        return np.full(x.size, np.nan)
    return None


def rolling_mean(x: Float64Array, window: int) -> Float64Array:
    """Rolling mean over a trailing window.

    Parameters
    ----------
    x : numpy.ndarray
        1-D float64 samples.
    window : int
        Number of samples per window (>= 1).

    Returns
    -------
    numpy.ndarray
        The mean of each full window; NaN before the first full window and for
        windows that hold a missing sample (NaN or infinity). A window of equal samples
        gives exactly that value.

    Raises
    ------
    ValueError
        If `window` is not a positive integer.
    """
    window = check_window(window)
    empty = _output(x, window)
    if empty is not None:
        return empty
    x = _missing_to_nan(x)
    blocks = _blocks(x, window)
    with np.errstate(invalid="ignore", over="ignore"):
        prefix = _prefix(blocks)
        suffix = _suffix(blocks)
        ends, starts, whole = _window_ends(x.size, window)
        sums = prefix[ends] + np.where(whole, 0.0, suffix[starts])
    out = np.full(x.size, np.nan)
    out[window - 1 :] = sums / window
    equal = _equal_windows(x, window)
    out[equal] = x[equal]
    return out


def rolling_std(x: Float64Array, window: int) -> Float64Array:
    """Rolling sample standard deviation (``ddof=1``) over a trailing window.

    Parameters
    ----------
    x : numpy.ndarray
        1-D float64 samples.
    window : int
        Number of samples per window (>= 1); a window of 1 gives NaN everywhere.

    Returns
    -------
    numpy.ndarray
        The standard deviation of each full window; NaN before the first full window
        and for windows that hold a NaN or an infinity. A window of equal samples gives
        exactly 0.

    Raises
    ------
    ValueError
        If `window` is not a positive integer.
    """
    window = check_window(window)
    empty = _output(x, window)
    if empty is not None or window == 1:
        return np.full(x.size, np.nan) if empty is None else empty
    with np.errstate(invalid="ignore", over="ignore"):
        return _rolling_std(_missing_to_nan(x), window)


def _rolling_std(x: Float64Array, window: int) -> Float64Array:
    """Compute :func:`rolling_std` for ``2 <= window <= x.size``."""
    n = x.size
    blocks = _blocks(x, window)
    finite = np.isfinite(blocks)
    # Centre each block on its first finite sample (exact subtraction for large offsets).
    first_finite = np.argmax(finite, axis=1)
    shift = np.where(finite.any(axis=1), blocks[np.arange(blocks.shape[0]), first_finite], 0.0)
    centred = np.where(finite, blocks - shift[:, None], 0.0)
    squares = centred * centred
    prefix_s1, prefix_s2 = _prefix(centred), _prefix(squares)
    suffix_s1, suffix_s2 = _suffix(centred), _suffix(squares)
    shift_of = np.repeat(shift, window)

    ends, starts, whole = _window_ends(n, window)
    # Window = earlier part a (suffix of the previous block, empty for a whole block)
    # followed by later part b (prefix of the block of `ends`).
    n_b = (ends % window + 1).astype(np.float64)
    n_a = window - n_b
    s1_b, s2_b = prefix_s1[ends], prefix_s2[ends]
    s1_a = np.where(whole, 0.0, suffix_s1[starts])
    s2_a = np.where(whole, 0.0, suffix_s2[starts])
    safe_n_a = np.where(whole, 1.0, n_a)
    mean_b = s1_b / n_b
    mean_a = s1_a / safe_n_a
    m2_b = s2_b - s1_b * mean_b
    m2_a = s2_a - s1_a * mean_a
    delta = (shift_of[ends] - shift_of[starts]) + (mean_b - mean_a)
    m2 = m2_a + m2_b + np.where(whole, 0.0, delta * delta * (n_a * n_b / window))

    not_finite = np.concatenate(([0], np.cumsum(~np.isfinite(x))))
    has_non_finite = not_finite[ends + 1] - not_finite[starts] > 0
    unsure = ~has_non_finite & ~(m2 * _ILL_CONDITIONED > s2_a + s2_b)
    m2 = np.maximum(m2, 0.0)
    result = np.sqrt(m2 / (window - 1))
    result[has_non_finite] = np.nan
    unsure_ends = ends[unsure]
    if unsure_ends.size:
        result[unsure] = _exact_std(x, window, unsure_ends)

    out = np.full(n, np.nan)
    out[window - 1 :] = result
    out[_equal_windows(x, window) & np.isfinite(x)] = 0.0
    return out


def _exact_std(x: Float64Array, window: int, ends: NDArray[np.intp]) -> Float64Array:
    """Two-pass sample standard deviation of the (finite) windows ending at `ends`."""
    result = np.empty(ends.size)
    offsets = np.arange(1 - window, 1)
    step = max(1, _GATHER_LIMIT // window)
    for first in range(0, ends.size, step):
        rows = x[ends[first : first + step, None] + offsets]
        # Deviations from the window's first sample are exact for large offsets.
        rows -= rows[:, :1].copy()
        rows -= rows.mean(axis=1, keepdims=True)
        result[first : first + step] = np.sqrt((rows * rows).sum(axis=1) / (window - 1))
    return result


def _rolling_extreme(x: Float64Array, window: int, *, is_min: bool) -> Float64Array:
    """Rolling min or max with the van Herk / Gil-Werman block scheme."""
    window = check_window(window)
    empty = _output(x, window)
    if empty is not None:
        return empty
    ufunc = np.minimum if is_min else np.maximum
    x = _missing_to_nan(x)
    blocks = _blocks(x, window)
    prefix = _prefix(blocks, ufunc)
    suffix = _suffix(blocks, ufunc)
    ends, starts, whole = _window_ends(x.size, window)
    out = np.full(x.size, np.nan)
    out[window - 1 :] = np.where(whole, prefix[ends], ufunc(suffix[starts], prefix[ends]))
    return out


def rolling_min(x: Float64Array, window: int) -> Float64Array:
    """Rolling minimum over a trailing window.

    Parameters
    ----------
    x : numpy.ndarray
        1-D float64 samples.
    window : int
        Number of samples per window (>= 1).

    Returns
    -------
    numpy.ndarray
        The minimum of each full window; NaN before the first full window and for
        windows that hold a missing sample (NaN or infinity).

    Raises
    ------
    ValueError
        If `window` is not a positive integer.
    """
    return _rolling_extreme(x, window, is_min=True)


def rolling_max(x: Float64Array, window: int) -> Float64Array:
    """Rolling maximum over a trailing window.

    Parameters
    ----------
    x : numpy.ndarray
        1-D float64 samples.
    window : int
        Number of samples per window (>= 1).

    Returns
    -------
    numpy.ndarray
        The maximum of each full window; NaN before the first full window and for
        windows that hold a missing sample (NaN or infinity).

    Raises
    ------
    ValueError
        If `window` is not a positive integer.
    """
    return _rolling_extreme(x, window, is_min=False)


def ewma(x: Float64Array, alpha: float) -> Float64Array:
    """Exponentially weighted moving average, like pandas ``ewm(alpha, adjust=False)``.

    ``y[0] = x[0]`` and ``y[t] = (1 - alpha) * y[t-1] + alpha * x[t]``. A missing sample
    (NaN, +inf or -inf) repeats the previous average, and the gap ages it: the next sample
    after ``g`` steps gets the weight ``alpha / ((1 - alpha)**g + alpha)`` (pandas'
    ``ignore_na=False``; pandas itself deviates from this for ``alpha == 0.5`` exactly).
    The recurrence is evaluated as a parallel prefix scan of affine maps, so it is
    vectorised (O(n log n)).

    Parameters
    ----------
    x : numpy.ndarray
        1-D float64 samples.
    alpha : float
        Smoothing factor, ``0 < alpha <= 1``.

    Returns
    -------
    numpy.ndarray
        The average after each sample; NaN before the first finite sample.

    Raises
    ------
    ValueError
        If `alpha` is not in ``(0, 1]``.
    """
    alpha = check_alpha(alpha)
    n = x.size
    observed = np.isfinite(x)
    positions = np.flatnonzero(observed)
    out = np.full(n, np.nan)
    if positions.size == 0:
        return out
    values = x[positions]
    reference = values[0]
    gaps = np.diff(positions).astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        old_weight = (1.0 - alpha) ** gaps
        keep = np.concatenate(([0.0], old_weight / (old_weight + alpha)))
        take = np.concatenate(([1.0], alpha / (old_weight + alpha)))
        # z[k] = keep[k] * z[k-1] + offset[k], with z = average - reference.
        offset = take * (values - reference)
        shift = 1
        while shift < positions.size:
            offset[shift:] = keep[shift:] * offset[:-shift] + offset[shift:]
            keep[shift:] = keep[shift:] * keep[:-shift]
            shift *= 2
        out[positions] = offset + reference
    last_observed = np.maximum.accumulate(np.where(observed, np.arange(n), -1))
    started = last_observed >= 0
    out[started] = out[last_observed[started]]
    return out

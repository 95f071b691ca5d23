"""NumPy twins of the signal kernels of ``bifrost._core``.

Resampling, downsampling, filters, spectra and process control. Same signatures and
semantics as the compiled kernels; see ``rust/bifrost-dsp`` for the definitions. They
are the fallback without the compiled module and the oracle of the tests. The IIR
recursion is the one piece NumPy cannot vectorise over time: the twin hands it to
``scipy.signal.sosfilt`` when SciPy is installed (the padding and initial conditions of
zero-phase filtering stay ours) and otherwise runs a loop over samples, vectorised over
channels.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray

__all__ = [
    "D2",
    "bin_regular",
    "butter",
    "capability",
    "cusum",
    "downsample",
    "individuals_limits",
    "nelson_rules",
    "rising_edges",
    "sosfilt",
    "sosfiltfilt",
    "stack_cycles",
    "welch",
    "window_features",
]

F64 = NDArray[np.float64]
I64 = NDArray[np.int64]

D2 = 1.128
"""``d2`` for moving ranges of two samples (sigma = mean moving range / d2)."""

_METHODS = ("minmaxlttb", "lttb", "minmax", "m4")
_BTYPES = ("lowpass", "highpass", "bandpass", "bandstop")
_MAX_ORDER = 32
# Segments of the Welch estimate transformed at once (bounds the temporary memory).
_WELCH_BLOCK = 256


def _count(value: int, what: str) -> int:
    if value < 0:
        raise ValueError(f"{what} must be a non-negative integer, got {value}")
    return int(value)


# --- resampling -----------------------------------------------------------------------


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
    n_bins = _count(n_bins, "n_bins")
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


# --- downsampling ---------------------------------------------------------------------


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
    n_out = _count(n_out, "n_out")
    ratio = _count(minmax_ratio, "minmax_ratio")
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


# --- filters --------------------------------------------------------------------------


def butter(order: int, cutoff: list[float], fs: float, btype: str) -> F64:
    """Digital Butterworth filter as second-order sections, shape ``(n_sections, 6)``.

    Parameters
    ----------
    order : int
        Filter order, 1 to 32.
    cutoff : list of float
        One cutoff (lowpass, highpass) or two (bandpass, bandstop), in the unit of `fs`.
    fs : float
        Sampling frequency.
    btype : {"lowpass", "highpass", "bandpass", "bandstop"}
        The kind of filter.

    Returns
    -------
    numpy.ndarray
        Sections ``[b0, b1, b2, a0, a1, a2]``.

    Raises
    ------
    ValueError
        For an invalid order, frequency or band type.
    """
    if btype not in _BTYPES:
        raise ValueError(
            f"btype must be one of 'lowpass', 'highpass', 'bandpass', 'bandstop', got {btype!r}"
        )
    if not 1 <= order <= _MAX_ORDER:
        raise ValueError("order must be between 1 and 32")
    if not (math.isfinite(fs) and fs > 0):
        raise ValueError("fs must be a positive, finite sampling frequency")
    two = btype in ("bandpass", "bandstop")
    if len(cutoff) != (2 if two else 1):
        raise ValueError("lowpass and highpass take one cutoff; bandpass and bandstop take two")
    nyquist = fs / 2.0
    if not all(0.0 < c < nyquist for c in cutoff):
        raise ValueError("cutoff frequencies must be strictly between 0 and fs / 2")
    if two and cutoff[0] >= cutoff[1]:
        raise ValueError("the low cutoff must be below the high cutoff")
    fs2 = 4.0
    warped = [fs2 * math.tan(math.pi * (c / nyquist) / 2.0) for c in cutoff]
    m = 2.0 * np.arange(order) - order + 1.0
    proto = -np.exp(1j * np.pi * m / (2.0 * order))
    zeros: NDArray[np.complex128]
    if btype == "lowpass":
        poles = proto * warped[0]
        zeros = np.zeros(0, complex)
        gain = warped[0] ** order
    elif btype == "highpass":
        poles = warped[0] / proto
        zeros = np.zeros(order, complex)
        gain = float(np.real(1.0 / np.prod(-proto)))
    else:
        bw, wo = warped[1] - warped[0], math.sqrt(warped[0] * warped[1])
        scaled = proto * (bw / 2.0) if btype == "bandpass" else (bw / 2.0) / proto
        root = np.sqrt(scaled * scaled - wo * wo)
        poles = np.column_stack([scaled + root, scaled - root]).ravel()
        if btype == "bandpass":
            zeros = np.zeros(order, complex)
            gain = bw**order
        else:
            zeros = np.tile([1j * wo, -1j * wo], order)
            gain = float(np.real(1.0 / np.prod(-proto)))
    z_d = np.concatenate([(fs2 + zeros) / (fs2 - zeros), -np.ones(poles.size - zeros.size)])
    p_d = (fs2 + poles) / (fs2 - poles)
    k = gain * float(np.real(np.prod(fs2 - zeros) / np.prod(fs2 - poles)))
    return _to_sections(z_d, p_d, k)


def _pairs(roots: NDArray[np.complex128]) -> list[tuple[complex, complex | None]]:
    tol = 1e-12
    upper = sorted((complex(r) for r in roots if r.imag > tol), key=abs)
    real = sorted(float(r.real) for r in roots if abs(r.imag) <= tol)
    out: list[tuple[complex, complex | None]] = [(r, r.conjugate()) for r in upper]
    lo, hi = 0, len(real)
    while hi > lo:
        if hi - lo >= 2:
            out.append((complex(real[lo]), complex(real[hi - 1])))
            lo, hi = lo + 1, hi - 1
        else:
            out.append((complex(real[lo]), None))
            lo += 1
    return out


def _poly(pair: tuple[complex, complex | None]) -> list[float]:
    first, second = pair
    if second is None:
        return [1.0, -first.real, 0.0]
    return [1.0, -(first + second).real, (first * second).real]


def _to_sections(zeros: NDArray[np.complex128], poles: NDArray[np.complex128], k: float) -> F64:
    pole_pairs = sorted(_pairs(poles), key=lambda p: abs(p[0]))
    zero_pairs = _pairs(zeros)
    rows = []
    for i, pp in enumerate(pole_pairs):
        b = _poly(zero_pairs[i]) if i < len(zero_pairs) else [1.0, 0.0, 0.0]
        rows.append(b + _poly(pp))
    sos = np.array(rows, dtype=np.float64)
    sos[0, :3] *= k
    return sos


def _normalise(sos: F64) -> F64:
    if sos.ndim != 2 or sos.shape[1] != 6:
        raise ValueError(f"sos must have shape (n_sections, 6), got {sos.shape}")
    if sos.shape[0] == 0:
        raise ValueError("sos must hold at least one section")
    if not np.isfinite(sos).all() or (sos[:, 3] == 0).any():
        raise ValueError("sos coefficients must be finite with a0 != 0")
    result: F64 = sos / sos[:, 3:4]
    return result


def _filter_loop(sos: F64, x: F64, hist: list[list[F64]]) -> F64:
    """Direct form I over samples, vectorised over rows; `hist` is updated in place."""
    out = np.empty_like(x)
    for i in range(x.shape[1]):
        signal = x[:, i]
        for k, (b0, b1, b2, _a0, a1, a2) in enumerate(sos):
            x1, x2 = hist[k]
            y1, y2 = hist[k + 1]
            output = (b0 * signal + b1 * x1 + b2 * x2 - a2 * y2) - a1 * y1
            hist[k] = [signal, x1]
            signal = output
        hist[-1] = [signal, hist[-1][0]]
        out[:, i] = signal
    return out


def _scipy_sosfilt() -> Any:
    try:
        from scipy.signal import sosfilt as scipy_sosfilt
    except ImportError:
        return None
    return scipy_sosfilt


def _run(sos: F64, x: F64, hist: list[list[F64]], *, use_scipy: bool = True) -> F64:
    """Filter rows of `x` from the state `hist` (direct form I histories)."""
    scipy_sosfilt = _scipy_sosfilt() if use_scipy else None
    if scipy_sosfilt is None or x.shape[1] == 0:
        return _filter_loop(sos, x, hist)
    # Direct-form-I histories to scipy's transposed-form states: z1 = b1 x1 + b2 x2 -
    # a1 y1 - a2 y2 and z2 = b2 x1 - a2 y1.
    zi = np.empty((sos.shape[0], x.shape[0], 2))
    for k, (_b0, b1, b2, _a0, a1, a2) in enumerate(sos):
        (x1, x2), (y1, y2) = hist[k], hist[k + 1]
        zi[k, :, 0] = b1 * x1 + b2 * x2 - a1 * y1 - a2 * y2
        zi[k, :, 1] = b2 * x1 - a2 * y1
    out, _ = scipy_sosfilt(sos, x, axis=1, zi=zi)
    result: F64 = np.asarray(out, dtype=np.float64)
    return result


def _zeros_hist(sections: int, rows: int) -> list[list[F64]]:
    return [[np.zeros(rows), np.zeros(rows)] for _ in range(sections + 1)]


def _steady_hist(sos: F64, level: F64) -> list[list[F64]]:
    hist = [[level, level]]
    value = level
    for b0, b1, b2, _a0, a1, a2 in sos:
        denominator = 1.0 + a1 + a2
        if denominator == 0.0:
            raise ValueError("a section has a pole at z = 1; it has no steady state")
        value = value * ((b0 + b1 + b2) / denominator)
        hist.append([value, value])
    return hist


def _not_finite(what: str) -> ValueError:
    return ValueError(
        f"{what}: the input holds NaN or infinite samples; fill or drop the gaps first"
    )


def sosfilt(sos: F64, x: F64, *, use_scipy: bool = True) -> F64:
    """Filter each row of `x` forward from rest (``scipy.signal.sosfilt``).

    Parameters
    ----------
    sos : numpy.ndarray
        Sections, shape ``(n_sections, 6)``.
    x : numpy.ndarray
        float64 rows, shape ``(rows, n)``.
    use_scipy : bool
        Let SciPy run the recursion when installed (else a loop over samples).

    Returns
    -------
    numpy.ndarray
        Filtered rows.

    Raises
    ------
    ValueError
        For invalid sections, or rows holding NaN or infinities.
    """
    coef = _normalise(sos)
    out = _run(coef, x, _zeros_hist(coef.shape[0], x.shape[0]), use_scipy=use_scipy)
    if not np.isfinite(out).all():
        raise _not_finite("sosfilt")
    return out


def default_padlen(sos: F64) -> int:
    """Default padding of ``scipy.signal.sosfiltfilt`` for `sos`.

    Parameters
    ----------
    sos : numpy.ndarray
        Sections, shape ``(n_sections, 6)``.

    Returns
    -------
    int
        ``3 * (2 * n_sections + 1 - min(#(b2 == 0), #(a2 == 0)))``.
    """
    zeros = min(int((sos[:, 2] == 0).sum()), int((sos[:, 5] == 0).sum()))
    return 3 * (2 * int(sos.shape[0]) + 1 - zeros)


def sosfiltfilt(sos: F64, x: F64, padlen: int | None = None, *, use_scipy: bool = True) -> F64:
    """Zero-phase filtering of each row of `x` (``scipy.signal.sosfiltfilt`` defaults).

    Parameters
    ----------
    sos : numpy.ndarray
        Sections, shape ``(n_sections, 6)``.
    x : numpy.ndarray
        float64 rows, shape ``(rows, n)``.
    padlen : int, optional
        Odd-extension length; scipy's default when None.
    use_scipy : bool
        Let SciPy run the recursion when installed (else a loop over samples).

    Returns
    -------
    numpy.ndarray
        Filtered rows.

    Raises
    ------
    ValueError
        For invalid sections, rows not longer than `padlen`, or NaN/inf samples.
    """
    coef = _normalise(sos)
    pad = default_padlen(sos) if padlen is None else _count(padlen, "padlen")
    _rows, n = x.shape
    if x.size == 0:
        return x.copy()
    if n <= pad:
        raise ValueError(f"sosfiltfilt (the padding) needs more than {pad} samples, got {n}")
    if pad:
        left = 2.0 * x[:, :1] - x[:, pad:0:-1]
        right = 2.0 * x[:, -1:] - x[:, -2 : -pad - 2 : -1]
        ext = np.concatenate([left, x, right], axis=1)
    else:
        ext = x
    forward = _run(coef, ext, _steady_hist(coef, ext[:, 0].copy()), use_scipy=use_scipy)
    backward = forward[:, ::-1]
    result = _run(
        coef,
        np.ascontiguousarray(backward),
        _steady_hist(coef, backward[:, 0].copy()),
        use_scipy=use_scipy,
    )[:, ::-1]
    out: F64 = np.ascontiguousarray(result[:, pad : pad + n])
    if not np.isfinite(out[:, 0]).all():
        raise _not_finite("sosfiltfilt")
    return out


# --- spectra and vibration --------------------------------------------------------------


def welch(x: F64, fs: float, nperseg: int, noverlap: int) -> F64:
    """Welch PSD as ``scipy.signal.welch`` defaults; segments holding NaN are left out.

    Parameters
    ----------
    x : numpy.ndarray
        float64 samples.
    fs : float
        Sampling frequency.
    nperseg, noverlap : int
        Segment length and overlap.

    Returns
    -------
    numpy.ndarray
        One-sided density at ``k * fs / nperseg``, ``k = 0 .. nperseg // 2``.

    Raises
    ------
    ValueError
        For invalid segment parameters or `fs`.
    """
    nperseg = _count(nperseg, "nperseg")
    noverlap = _count(noverlap, "noverlap")
    if nperseg == 0 or nperseg > x.size:
        raise ValueError("nperseg must be between 1 and the length of the signal")
    if noverlap >= nperseg:
        raise ValueError("noverlap must be less than nperseg")
    if not (math.isfinite(fs) and fs > 0):
        raise ValueError("fs must be a positive, finite sampling frequency")
    window = 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(nperseg) / nperseg)
    step = nperseg - noverlap
    segments = (x.size - noverlap) // step
    views = sliding_window_view(x, nperseg)[::step][:segments]
    total = np.zeros(nperseg // 2 + 1)
    used = 0
    for begin in range(0, segments, _WELCH_BLOCK):
        block = views[begin : begin + _WELCH_BLOCK]
        means = block.mean(axis=1, keepdims=True)
        good = ~np.isnan(means[:, 0])
        if not good.any():
            continue
        spectra = np.fft.rfft((block[good] - means[good]) * window, axis=1)
        total += (spectra.real**2 + spectra.imag**2).sum(axis=0)
        used += int(good.sum())
    scale = 1.0 / (fs * float((window * window).sum()))
    total *= scale
    total[1 : None if nperseg % 2 else -1] *= 2.0
    with np.errstate(invalid="ignore", divide="ignore"):
        psd: F64 = total / used
    return psd


def window_features(x: F64, window: int) -> tuple[F64, F64, F64, F64]:
    """RMS, peak, crest factor and (Fisher, biased) kurtosis of whole windows.

    Parameters
    ----------
    x : numpy.ndarray
        float64 samples; NaN is skipped.
    window : int
        Samples per window; a trailing partial window is left out.

    Returns
    -------
    tuple of numpy.ndarray
        rms, peak, crest, kurtosis per window.

    Raises
    ------
    ValueError
        If `window` is not a positive integer.
    """
    if window < 1:
        raise ValueError(f"window must be a positive integer, got {window}")
    blocks = x[: x.size // window * window].reshape(-1, window)
    valid = ~np.isnan(blocks)
    count = valid.sum(axis=1)
    filled = np.where(valid, blocks, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = filled.sum(axis=1) / count
        deviation = np.where(valid, blocks - mean[:, None], 0.0) ** 2
        m2 = deviation.sum(axis=1) / count
        m4 = (deviation * deviation).sum(axis=1) / count
        rms = np.sqrt((filled * filled).sum(axis=1) / count)
        peak = np.where(count > 0, np.abs(filled).max(axis=1, initial=0.0), np.nan)
        crest = peak / rms
        kurtosis = np.where(m2 > 0, m4 / (m2 * m2) - 3.0, np.nan)
    return rms, peak, crest, kurtosis


# --- process control --------------------------------------------------------------------


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
    length = _count(length, "length")
    end = _count(end, "end")
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

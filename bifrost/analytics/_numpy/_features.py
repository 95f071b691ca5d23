"""NumPy twins of the feature kernels: whole-window vibration features, segment moments.

Segments (time windows, machine cycles) also get band energies of an averaged spectrum.
"""

from __future__ import annotations

import itertools

import numpy as np
from numpy.typing import NDArray

from bifrost.analytics._checks import MOMENT_FEATURES

# The kernel's MIN_MOMENT_VARIANCE: below it the deviations' third and fourth powers are
# not normal floats and skewness and kurtosis would be garbage, so they are NaN.
MIN_MOMENT_VARIANCE = float(np.sqrt(np.finfo(np.float64).tiny))

__all__ = ["MOMENT_FEATURES", "segment_features", "window_features"]

F64 = NDArray[np.float64]


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
        kurtosis = np.where(m2 >= MIN_MOMENT_VARIANCE, m4 / (m2 * m2) - 3.0, np.nan)
    return rms, peak, crest, kurtosis


def segment_features(
    x: F64,
    t: F64,
    offsets: NDArray[np.int64],
    fs: float,
    block: int,
    bands: F64,
) -> F64:
    """Moment features and band energies of the segments ``x[offsets[j]:offsets[j + 1]]``.

    The twin of ``bifrost_dsp::segment_features`` (see its documentation for the
    definitions), with two passes per moment where the kernel makes one.

    Parameters
    ----------
    x, t : numpy.ndarray
        float64 samples and their times (for the slope); NaN samples are skipped.
    offsets : numpy.ndarray
        int64 segment boundaries, non-decreasing, at most ``len(x)``.
    fs : float
        Sampling frequency inside a spectrum block, in Hz.
    block : int
        Samples per spectrum block; 0 computes no spectrum (`bands` then has no rows).
    bands : numpy.ndarray
        ``(n_bands, 2)`` low and high edges in Hz.

    Returns
    -------
    numpy.ndarray
        ``(len(offsets) - 1, 11 + n_bands)`` features, columns :data:`MOMENT_FEATURES`
        then one energy per band.

    Raises
    ------
    ValueError
        For inconsistent lengths, bad offsets or invalid bands.
    """
    offsets = np.asarray(offsets, dtype=np.int64)
    bands = np.asarray(bands, dtype=np.float64)
    if bands.ndim != 2 or bands.shape[1] != 2:
        raise ValueError(f"bands must have shape (n_bands, 2), got {bands.shape}")
    if t.shape != x.shape:
        raise ValueError("t must have one time per sample of x")
    if np.any(offsets < 0):
        raise ValueError(f"segment offset must be a non-negative integer, got {offsets.min()}")
    if np.any(np.diff(offsets) < 0) or (offsets.size and offsets[-1] > x.size):
        raise ValueError("segment offsets must not decrease nor pass the end of x")
    if block < 0:
        raise ValueError(f"block must be a non-negative integer, got {block}")
    if block == 0 and len(bands):
        raise ValueError("band energies need a spectrum block of at least 2 samples, got block=0")
    bins = _band_bins(fs, block, bands) if block else []
    rows = [_moments(x[a:b], t[a:b]) for a, b in itertools.pairwise(offsets)]
    out = np.array(rows, dtype=np.float64).reshape(-1, len(MOMENT_FEATURES))
    if not block:
        return out
    energies = np.array(
        [_band_energies(x[a:b], fs, block, bins) for a, b in itertools.pairwise(offsets)],
        dtype=np.float64,
    ).reshape(-1, len(bins))
    return np.hstack([out, energies])


def _moments(x: F64, t: F64) -> list[float]:
    valid = ~np.isnan(x)
    v, tv = x[valid], t[valid]
    n = v.size
    if n == 0:
        return [0.0] + [np.nan] * (len(MOMENT_FEATURES) - 1)
    mean = v.mean()
    # Equal samples have no spread at all (the kernel's one-pass sums are exactly 0),
    # even when their mean rounds to a neighbouring float.
    d = v - mean if v.max() > v.min() else np.zeros_like(v)
    m2, m3, m4 = (d * d).mean(), (d**3).mean(), (d**4).mean()
    rms = np.sqrt((v * v).mean())
    peak = np.abs(v).max()
    with np.errstate(invalid="ignore", divide="ignore"):
        has_moments = m2 >= MIN_MOMENT_VARIANCE
        skewness = m3 / m2**1.5 if has_moments else np.nan
        kurtosis = m4 / (m2 * m2) - 3.0 if has_moments else np.nan
        dt = tv - tv.mean()
        t_m2 = float((dt * dt).sum())
        slope = float((dt * d).sum()) / t_m2 if t_m2 > 0 else np.nan
        crest = peak / rms
    return [
        n,
        float(mean),
        float(np.sqrt(m2)),
        float(v.min()),
        float(v.max()),
        float(rms),
        float(peak),
        float(crest),
        float(skewness),
        float(kurtosis),
        slope,
    ]


def _band_bins(fs: float, block: int, bands: F64) -> list[slice]:
    if not (np.isfinite(fs) and fs > 0):
        raise ValueError("fs must be a positive, finite sampling frequency")
    if block < 2:
        raise ValueError("a spectrum block needs at least 2 samples")
    freqs = np.arange(block // 2 + 1) * (fs / block)
    bins = []
    for low, high in bands:
        if not (np.isfinite(low) and low >= 0 and high > low):
            raise ValueError("band edges must satisfy 0 <= low < high")
        if low >= fs / 2:
            raise ValueError("a band starts at or above the Nyquist frequency fs / 2")
        inside = (freqs >= low) & ((freqs < high) | (high >= fs / 2))
        if not inside.any():
            raise ValueError("a band holds no frequency bin (narrower than fs / block)")
        k = np.flatnonzero(inside)
        bins.append(slice(int(k[0]), int(k[-1]) + 1))
    return bins


def _band_energies(x: F64, fs: float, block: int, bins: list[slice]) -> list[float]:
    blocks = x[: x.size // block * block].reshape(-1, block)
    blocks = blocks[~np.isnan(blocks).any(axis=1)]
    if not blocks.size:
        return [np.nan] * len(bins)
    window = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(block) / block)
    spectrum = np.fft.rfft((blocks - blocks.mean(axis=1, keepdims=True)) * window, axis=1)
    power = (np.abs(spectrum) ** 2).mean(axis=0) / (block * float(window @ window))
    # One-sided: every bin but DC and (for an even block) Nyquist stands for two.
    power[1 : (block + 1) // 2] *= 2.0
    return [float(power[b].sum()) for b in bins]

"""NumPy twin of the spectral kernel: Welch's power spectral density."""

from __future__ import annotations

import math

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import NDArray

from bifrost.analytics._checks import check_count

__all__ = ["welch"]

F64 = NDArray[np.float64]

# Segments of the Welch estimate transformed at once (bounds the temporary memory).
_WELCH_BLOCK = 256


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
    nperseg = check_count(nperseg, "nperseg")
    noverlap = check_count(noverlap, "noverlap")
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

"""NumPy twin of the vibration features kernel: RMS, peak, crest factor, kurtosis."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = ["window_features"]

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
        kurtosis = np.where(m2 > 0, m4 / (m2 * m2) - 3.0, np.nan)
    return rms, peak, crest, kurtosis

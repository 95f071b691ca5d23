"""Compiled signal-processing kernels (``rust/bifrost-py``, built by maturin).

Every function takes contiguous float64 arrays (strided ones are copied once), runs with
the GIL released and returns new arrays. Invalid parameters raise ``ValueError``.

The one place where the kernels' signatures are written: stubtest checks them against
the compiled module, and ``bifrost/analytics/_kernels.pyi`` reads them from here and has
mypy check the NumPy twins against them.
"""

import numpy as np
from numpy.typing import NDArray

def rolling_mean(x: NDArray[np.float64], window: int) -> NDArray[np.float64]:
    """Rolling mean over a trailing window (pandas ``rolling(window).mean()``)."""

def rolling_std(x: NDArray[np.float64], window: int) -> NDArray[np.float64]:
    """Rolling sample standard deviation, ddof=1 (pandas ``rolling(window).std()``)."""

def rolling_min(x: NDArray[np.float64], window: int) -> NDArray[np.float64]:
    """Rolling minimum over a trailing window (pandas ``rolling(window).min()``)."""

def rolling_max(x: NDArray[np.float64], window: int) -> NDArray[np.float64]:
    """Rolling maximum over a trailing window (pandas ``rolling(window).max()``)."""

def ewma(x: NDArray[np.float64], alpha: float) -> NDArray[np.float64]:
    """Exponentially weighted mean (pandas ``ewm(alpha=alpha, adjust=False).mean()``)."""

def kernel_version() -> str:
    """Version of the compiled kernels (the Cargo package version)."""

def bin_regular(
    t: NDArray[np.int64], v: NDArray[np.float64], start: int, step: int, n_bins: int
) -> tuple[
    NDArray[np.int64],
    NDArray[np.float64],
    NDArray[np.float64],
    NDArray[np.float64],
    NDArray[np.float64],
    NDArray[np.float64],
    NDArray[np.float64],
]:
    """Bin (t, v) onto ``start + k * step``: count, sum, mean, min, max, first, last."""

def downsample(
    y: NDArray[np.float64],
    n_out: int,
    method: str,
    x: NDArray[np.float64] | None = None,
    minmax_ratio: int = 4,
) -> NDArray[np.int64]:
    """Indices chosen by a downsampler ("minmax", "m4", "lttb" or "minmaxlttb")."""

def butter(order: int, cutoff: list[float], fs: float, btype: str) -> NDArray[np.float64]:
    """Butterworth second-order sections, shape (n_sections, 6)."""

def sosfilt(sos: NDArray[np.float64], x: NDArray[np.float64]) -> NDArray[np.float64]:
    """Forward SOS filtering from rest of each row of `x` (rows in parallel)."""

def sosfiltfilt(
    sos: NDArray[np.float64], x: NDArray[np.float64], padlen: int | None = None
) -> NDArray[np.float64]:
    """Zero-phase SOS filtering of each row of `x` (scipy's odd padding)."""

def welch(x: NDArray[np.float64], fs: float, nperseg: int, noverlap: int) -> NDArray[np.float64]:
    """Welch PSD (periodic Hann, constant detrend, one-sided density)."""

def window_features(
    x: NDArray[np.float64], window: int
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """RMS, peak, crest factor and kurtosis of whole non-overlapping windows."""

def segment_features(
    x: NDArray[np.float64],
    t: NDArray[np.float64],
    offsets: NDArray[np.int64],
    fs: float,
    block: int,
    bands: NDArray[np.float64],
) -> NDArray[np.float64]:
    """Moments, slope and band energies of each segment ``x[offsets[j]:offsets[j + 1]]``.

    One row per segment: count, mean, std, min, max, rms, peak, crest, skewness,
    kurtosis, slope, then the band energies.
    """

def individuals_limits(x: NDArray[np.float64]) -> tuple[float, float]:
    """Centre line and sigma (mean moving range / d2) of an individuals chart."""

def nelson_rules(x: NDArray[np.float64], center: float, sigma: float) -> NDArray[np.uint16]:
    """Per-sample bit masks of the Nelson rules (bit 8: Western Electric rule 4)."""

def capability(
    x: NDArray[np.float64], lsl: float, usl: float
) -> tuple[float, float, float, float, float, float, float]:
    """(mean, sigma_within, sigma_overall, cp, cpk, pp, ppk); NaN for a missing limit."""

def cusum(
    x: NDArray[np.float64], target: float, k: float
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Tabular CUSUM sums (upper, lower)."""

def rising_edges(trigger: NDArray[np.float64], threshold: float) -> NDArray[np.int64]:
    """Indices where the trigger rises above the threshold."""

def stack_cycles(
    x: NDArray[np.float64], starts: NDArray[np.int64], end: int, length: int
) -> NDArray[np.float64]:
    """Cycles ``x[starts[j]:starts[j+1]]`` (the last ends at `end`) as rows of `length`."""

"""Compiled signal-processing kernels (``rust/bifrost-py``, built by maturin).

Every function takes a 1-D float64 array, runs with the GIL released and returns a new
float64 array of the same length. Invalid parameters raise ``ValueError``.
"""

import numpy as np
from numpy.typing import NDArray

def rolling_mean(x: NDArray[np.float64], window: int, /) -> NDArray[np.float64]:
    """Rolling mean over a trailing window (pandas ``rolling(window).mean()``)."""

def rolling_std(x: NDArray[np.float64], window: int, /) -> NDArray[np.float64]:
    """Rolling sample standard deviation, ddof=1 (pandas ``rolling(window).std()``)."""

def rolling_min(x: NDArray[np.float64], window: int, /) -> NDArray[np.float64]:
    """Rolling minimum over a trailing window (pandas ``rolling(window).min()``)."""

def rolling_max(x: NDArray[np.float64], window: int, /) -> NDArray[np.float64]:
    """Rolling maximum over a trailing window (pandas ``rolling(window).max()``)."""

def ewma(x: NDArray[np.float64], alpha: float, /) -> NDArray[np.float64]:
    """Exponentially weighted mean (pandas ``ewm(alpha=alpha, adjust=False).mean()``)."""

def kernel_version() -> str:
    """Version of the compiled kernels (the Cargo package version)."""

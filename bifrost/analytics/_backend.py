"""Choice of the kernel implementation: the compiled ``bifrost._core`` or NumPy.

The compiled module is used unless the environment variable ``BIFROST_NO_RUST`` is set to
``1`` (or ``true``/``yes``/``on``) when this module is first imported, or the module
cannot be imported (not built, or built for another Python).
"""

from __future__ import annotations

import importlib
import os
from typing import Literal, Protocol, cast

import numpy as np
from numpy.typing import NDArray

from bifrost.analytics import _numpy

__all__ = ["Kernels", "backend", "kernels"]

_DISABLING_VALUES = frozenset({"1", "true", "yes", "on"})


class Kernels(Protocol):
    """The kernel functions that ``bifrost._core`` and its NumPy twins both provide."""

    def rolling_mean(self, x: NDArray[np.float64], window: int, /) -> NDArray[np.float64]:
        """Rolling mean over a trailing window."""

    def rolling_std(self, x: NDArray[np.float64], window: int, /) -> NDArray[np.float64]:
        """Rolling sample standard deviation over a trailing window."""

    def rolling_min(self, x: NDArray[np.float64], window: int, /) -> NDArray[np.float64]:
        """Rolling minimum over a trailing window."""

    def rolling_max(self, x: NDArray[np.float64], window: int, /) -> NDArray[np.float64]:
        """Rolling maximum over a trailing window."""

    def ewma(self, x: NDArray[np.float64], alpha: float, /) -> NDArray[np.float64]:
        """Exponentially weighted moving average (adjust=False)."""

    def bin_regular(
        self, t: NDArray[np.int64], v: NDArray[np.float64], start: int, step: int, n_bins: int, /
    ) -> tuple[
        NDArray[np.int64],
        NDArray[np.float64],
        NDArray[np.float64],
        NDArray[np.float64],
        NDArray[np.float64],
        NDArray[np.float64],
        NDArray[np.float64],
    ]:
        """Bin (t, v) on a regular grid: count, sum, mean, min, max, first, last."""

    def downsample(
        self,
        y: NDArray[np.float64],
        n_out: int,
        method: str,
        x: NDArray[np.float64] | None = None,
        minmax_ratio: int = 4,
    ) -> NDArray[np.int64]:
        """Indices kept by a plot downsampler."""

    def butter(
        self, order: int, cutoff: list[float], fs: float, btype: str, /
    ) -> NDArray[np.float64]:
        """Butterworth second-order sections."""

    def sosfilt(self, sos: NDArray[np.float64], x: NDArray[np.float64], /) -> NDArray[np.float64]:
        """Forward SOS filtering of rows from rest."""

    def sosfiltfilt(
        self, sos: NDArray[np.float64], x: NDArray[np.float64], padlen: int | None = None
    ) -> NDArray[np.float64]:
        """Zero-phase SOS filtering of rows."""

    def welch(
        self, x: NDArray[np.float64], fs: float, nperseg: int, noverlap: int, /
    ) -> NDArray[np.float64]:
        """Welch power spectral density."""

    def window_features(
        self, x: NDArray[np.float64], window: int, /
    ) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
        """RMS, peak, crest factor and kurtosis of whole windows."""

    def individuals_limits(self, x: NDArray[np.float64], /) -> tuple[float, float]:
        """Centre and sigma of an individuals chart."""

    def nelson_rules(
        self, x: NDArray[np.float64], center: float, sigma: float, /
    ) -> NDArray[np.uint16]:
        """Per-sample bit masks of the Nelson rules."""

    def capability(
        self, x: NDArray[np.float64], lsl: float, usl: float, /
    ) -> tuple[float, float, float, float, float, float, float]:
        """Mean, sigma within/overall, Cp, Cpk, Pp, Ppk."""

    def cusum(
        self, x: NDArray[np.float64], target: float, k: float, /
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Tabular CUSUM sums."""

    def rising_edges(self, trigger: NDArray[np.float64], threshold: float, /) -> NDArray[np.int64]:
        """Indices where the trigger rises above the threshold."""

    def stack_cycles(
        self, x: NDArray[np.float64], starts: NDArray[np.int64], end: int, length: int, /
    ) -> NDArray[np.float64]:
        """Cycles as NaN-padded rows."""


def _load_compiled() -> Kernels | None:
    """Import ``bifrost._core`` unless disabled; None if disabled or not importable."""
    if os.environ.get("BIFROST_NO_RUST", "").strip().lower() in _DISABLING_VALUES:
        return None
    try:
        module = importlib.import_module("bifrost._core")
    except ImportError:
        return None
    return cast("Kernels", module)


_compiled: Kernels | None = _load_compiled()


def backend() -> Literal["rust", "numpy"]:
    """Name the implementation that the analytics functions use.

    Returns
    -------
    {"rust", "numpy"}
        ``"rust"`` when the compiled module ``bifrost._core`` is in use, ``"numpy"`` when
        the NumPy twins are (module missing, or ``BIFROST_NO_RUST=1``).
    """
    return "rust" if _compiled is not None else "numpy"


def kernels() -> Kernels:
    """Return the kernels in use: ``bifrost._core`` or the NumPy twins.

    Returns
    -------
    Kernels
        A module providing ``rolling_mean``, ``rolling_std``, ``rolling_min``,
        ``rolling_max`` and ``ewma`` on 1-D contiguous float64 arrays.
    """
    return _compiled if _compiled is not None else _numpy

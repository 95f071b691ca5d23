"""NumPy twins of the compiled kernels of ``bifrost._core``, one module per topic.

They are the fallback when the compiled module is missing (or disabled with
``BIFROST_NO_RUST=1``) and the reference the compiled kernels are tested against, so
they have the same signatures and semantics; see ``rust/bifrost-dsp`` for the
definitions. This package stands in for ``bifrost._core`` as a whole, which is why it
offers every kernel under its compiled name; ``bifrost/analytics/_kernels.pyi`` has
mypy check it against the stub of ``bifrost._core``.
"""

from __future__ import annotations

from bifrost.analytics._numpy._cycles import rising_edges, stack_cycles
from bifrost.analytics._numpy._downsample import downsample
from bifrost.analytics._numpy._features import segment_features, window_features
from bifrost.analytics._numpy._filters import butter, sosfilt, sosfiltfilt
from bifrost.analytics._numpy._resample import bin_regular
from bifrost.analytics._numpy._rolling import (
    ewma,
    rolling_max,
    rolling_mean,
    rolling_min,
    rolling_std,
)
from bifrost.analytics._numpy._spc import capability, cusum, individuals_limits, nelson_rules
from bifrost.analytics._numpy._spectral import welch

__all__ = [
    "bin_regular",
    "butter",
    "capability",
    "cusum",
    "downsample",
    "ewma",
    "individuals_limits",
    "nelson_rules",
    "rising_edges",
    "rolling_max",
    "rolling_mean",
    "rolling_min",
    "rolling_std",
    "segment_features",
    "sosfilt",
    "sosfiltfilt",
    "stack_cycles",
    "welch",
    "window_features",
]

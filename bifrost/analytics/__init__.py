"""Rolling statistics and smoothing for sensor data, compiled in Rust with a NumPy fallback.

The functions accept a NumPy array, a pandas ``Series`` or ``DataFrame`` (each column on
its own) or an xarray ``DataArray`` or ``Dataset`` (along the dimension ``"time"`` if it
has one, else along its last dimension; dask-backed objects stay lazy), and return the
same kind of object with the same index, columns, coordinates, name and ``attrs``.
N-dimensional NumPy arrays are processed along their last axis. Values are converted
once to contiguous float64. The same functions are methods of the ``.bifrost`` accessor
of pandas and xarray objects: ``df.bifrost.rolling_mean(window=100)``.

Beyond rolling windows: :func:`resample` (regular bins, several statistics in one
pass), :func:`downsample` (MinMaxLTTB, LTTB, MinMax, M4 for plots), :func:`butter`,
:func:`butter_filter` and :func:`sos_filter` (Butterworth filters, zero-phase by
default, many channels in parallel), :func:`welch` (power spectral density),
:func:`window_features` (RMS, peak, crest factor, kurtosis), :func:`features` (an
ML-ready table: one row per time window or machine cycle, moments, slopes and band
energies per tag; :mod:`bifrost.analytics.sklearn` has it as a transformer), and process
analysis with
:func:`control_chart` (Shewhart limits, Nelson / Western Electric rules),
:func:`capability` (Cp/Cpk), :func:`cusum` and :func:`cycles` (split on a trigger and
stack aligned).

Rolling windows follow pandas' ``rolling(window, min_periods=window)``: the output has
the input's length, output ``i`` covers the ``window`` samples ending at ``i``, the first
``window - 1`` outputs are NaN, and **a window that holds a missing sample gives NaN**;
like pandas, +inf and -inf count as missing, exactly like NaN. A window of equal samples
has exactly that mean and exactly zero standard deviation.

The kernels come from the compiled module ``bifrost._core`` when it is available, else
from NumPy twins with the same results; :func:`backend` tells which one is in use, and
setting ``BIFROST_NO_RUST=1`` before import forces NumPy.

>>> import numpy as np
>>> from bifrost import analytics
>>> analytics.rolling_mean(np.array([1.0, 2.0, 3.0, 4.0]), 2)
array([nan, 1.5, 2.5, 3.5])
"""

from __future__ import annotations

from bifrost.analytics._backend import backend
from bifrost.analytics._cycles import cycle_starts, cycles
from bifrost.analytics._downsample import downsample
from bifrost.analytics._features import window_features
from bifrost.analytics._filters import butter, butter_filter, sos_filter
from bifrost.analytics._ml import features
from bifrost.analytics._resample import resample
from bifrost.analytics._rolling import Data as Data
from bifrost.analytics._rolling import ewma, rolling_max, rolling_mean, rolling_min, rolling_std
from bifrost.analytics._spc import Capability, ControlChart, capability, control_chart, cusum
from bifrost.analytics._spectral import welch

__all__ = [
    "Capability",
    "ControlChart",
    "backend",
    "butter",
    "butter_filter",
    "capability",
    "control_chart",
    "cusum",
    "cycle_starts",
    "cycles",
    "downsample",
    "ewma",
    "features",
    "resample",
    "rolling_max",
    "rolling_mean",
    "rolling_min",
    "rolling_std",
    "sos_filter",
    "welch",
    "window_features",
]

# Registers the ``.bifrost`` accessors on pandas and xarray objects.
import bifrost.analytics.accessors  # noqa: F401

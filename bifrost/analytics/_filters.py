"""Butterworth design and filtering with second-order sections, zero-phase by default."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bifrost.analytics._backend import kernels
from bifrost.analytics._frames import apply
from bifrost.exceptions import ConfigurationError

__all__ = ["butter", "butter_filter", "sos_filter"]

F64 = NDArray[np.float64]


def butter(order: int, cutoff: float | Sequence[float], fs: float, btype: str = "lowpass") -> F64:
    """Design a digital Butterworth filter as second-order sections.

    Parameters
    ----------
    order : int
        Filter order (1 to 32).
    cutoff : float or pair of float
        Cutoff frequency, or ``(low, high)`` for ``bandpass`` / ``bandstop``, in the
        unit of `fs`, strictly between 0 and ``fs / 2``.
    fs : float
        Sampling frequency.
    btype : {"lowpass", "highpass", "bandpass", "bandstop"}
        The kind of filter.

    Returns
    -------
    numpy.ndarray
        ``sos`` of shape ``(n_sections, 6)``, as ``scipy.signal.butter(...,
        output="sos")`` (sections may be paired and ordered differently).

    Raises
    ------
    ValueError
        For an invalid order, cutoff, `fs` or `btype`.
    """
    cutoffs = [float(c) for c in np.atleast_1d(np.asarray(cutoff, dtype=np.float64))]
    if isinstance(order, bool) or not isinstance(order, int | np.integer):
        raise ConfigurationError(f"order must be an integer, got {order!r}")
    return kernels().butter(int(order), cutoffs, float(fs), btype)


def sos_filter(x: Any, sos: Any, *, zero_phase: bool = True, padlen: int | None = None) -> Any:
    """Filter with second-order sections, zero-phase by default.

    Zero-phase filtering is ``scipy.signal.sosfiltfilt`` (odd padding of `padlen`
    samples, scipy's default length when None, steady-state initial conditions); the
    forward filter is ``scipy.signal.sosfilt`` from rest. Columns / channels are
    filtered in parallel. IIR filters spread a NaN over everything after it (both ways
    when zero-phase), so NaN or infinite samples raise instead: fill gaps first.

    Parameters
    ----------
    x : numpy.ndarray, pandas.Series, pandas.DataFrame, xarray.DataArray or xarray.Dataset
        The samples, along time.
    sos : array-like
        Sections, shape ``(n_sections, 6)`` (e.g. from :func:`butter`).
    zero_phase : bool
        Forward-backward filtering (no phase shift) instead of forward only.
    padlen : int, optional
        Padding of the zero-phase filter.

    Returns
    -------
    same kind as `x`
        The filtered samples.

    Raises
    ------
    ValueError
        For invalid sections, a signal not longer than the padding, or NaN samples.
    """
    sections = np.ascontiguousarray(sos, dtype=np.float64)
    impl = kernels()

    def rows(data: F64) -> F64:
        if zero_phase:
            return impl.sosfiltfilt(sections, data, padlen)
        return impl.sosfilt(sections, data)

    def one(values: F64) -> F64:
        result: F64 = rows(values[None, :])[0]
        return result

    return apply(x, one, rows=rows)


def butter_filter(
    x: Any,
    fs: float,
    cutoff: float | Sequence[float],
    order: int = 4,
    btype: str = "lowpass",
    zero_phase: bool = True,
) -> Any:
    """Butterworth filtering in one call: :func:`butter` then :func:`sos_filter`.

    Parameters
    ----------
    x : numpy.ndarray, pandas.Series, pandas.DataFrame, xarray.DataArray or xarray.Dataset
        The samples, along time (all channels at once, in parallel).
    fs : float
        Sampling frequency.
    cutoff : float or pair of float
        Cutoff(s) in the unit of `fs`.
    order : int
        Filter order.
    btype : {"lowpass", "highpass", "bandpass", "bandstop"}
        The kind of filter.
    zero_phase : bool
        Forward-backward (``sosfiltfilt``) rather than forward (``sosfilt``).

    Returns
    -------
    same kind as `x`
        The filtered samples.

    Raises
    ------
    ValueError
        As :func:`butter` and :func:`sos_filter`.
    """
    return sos_filter(x, butter(order, cutoff, fs, btype), zero_phase=zero_phase)

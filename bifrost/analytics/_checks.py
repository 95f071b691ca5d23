"""Validation and names that the public functions and the NumPy twins share.

Kept in one place so that both layers reject the same values with the same messages as
the compiled kernels, whichever backend is in use.
"""

from __future__ import annotations

import numpy as np

from bifrost.exceptions import ConfigurationError

__all__ = ["MOMENT_FEATURES", "check_alpha", "check_count", "check_window"]

MOMENT_FEATURES = (
    "count",
    "mean",
    "std",
    "min",
    "max",
    "rms",
    "peak",
    "crest",
    "skewness",
    "kurtosis",
    "slope",
)
"""Names of the first columns of the ``segment_features`` kernel; the band energies follow."""


def check_window(window: object) -> int:
    """Validate a window length.

    Parameters
    ----------
    window : object
        The window length as given by the caller.

    Returns
    -------
    int
        The window length as a positive ``int``.

    Raises
    ------
    ValueError
        If `window` is not an integer (``bool`` excluded) or is smaller than 1.
    """
    if isinstance(window, bool) or not isinstance(window, int | np.integer) or window < 1:
        raise ConfigurationError(f"window must be a positive integer, got {window!r}")
    return int(window)


def check_alpha(alpha: float) -> float:
    """Validate an EWMA smoothing factor.

    Parameters
    ----------
    alpha : float
        The smoothing factor as given by the caller.

    Returns
    -------
    float
        `alpha` as a ``float``.

    Raises
    ------
    ValueError
        Unless ``0 < alpha <= 1``.
    """
    value = float(alpha)
    if not 0.0 < value <= 1.0:
        raise ConfigurationError(f"alpha must be in the interval (0, 1], got {alpha!r}")
    return value


def check_count(value: int, what: str) -> int:
    """Validate a size or count that may be zero.

    Parameters
    ----------
    value : int
        The count as given by the caller.
    what : str
        The parameter's name, for the message.

    Returns
    -------
    int
        `value` as an ``int``.

    Raises
    ------
    ValueError
        If `value` is negative.
    """
    if value < 0:
        raise ConfigurationError(f"{what} must be a non-negative integer, got {value}")
    return int(value)

"""Recognise the kinds of input of the public functions.

An object can only be a pandas or xarray object once its library has been imported, so
the checks look the library up in ``sys.modules`` and never import it themselves.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
from numpy.typing import NDArray

from bifrost.analytics._frames import as_float
from bifrost.exceptions import ConfigurationError

__all__ = ["is_dataarray", "is_dataset", "is_frame", "is_series", "one_d", "pandas"]


def pandas() -> Any:
    """The pandas module if it is imported, else None."""
    return sys.modules.get("pandas")


def _xarray() -> Any:
    return sys.modules.get("xarray")


def is_series(x: object) -> bool:
    """Whether `x` is a pandas Series."""
    pd = pandas()
    return pd is not None and isinstance(x, pd.Series)


def is_frame(x: object) -> bool:
    """Whether `x` is a pandas DataFrame."""
    pd = pandas()
    return pd is not None and isinstance(x, pd.DataFrame)


def is_dataarray(x: object) -> bool:
    """Whether `x` is an xarray DataArray."""
    xr = _xarray()
    return xr is not None and isinstance(x, xr.DataArray)


def is_dataset(x: object) -> bool:
    """Whether `x` is an xarray Dataset."""
    xr = _xarray()
    return xr is not None and isinstance(x, xr.Dataset)


def one_d(x: object, what: str) -> NDArray[np.float64]:
    """The float64 samples of a 1-D input (NumPy, Series or 1-D DataArray).

    Parameters
    ----------
    x : numpy.ndarray, pandas.Series or xarray.DataArray
        The input.
    what : str
        The calling function's name, for the message.

    Returns
    -------
    numpy.ndarray
        C-contiguous float64 samples.

    Raises
    ------
    ValueError
        If the input is not one-dimensional.
    """
    if is_dataarray(x):
        x = x.values  # type: ignore[attr-defined]
    array = as_float(x)
    if array.ndim != 1:
        raise ConfigurationError(f"{what} takes one-dimensional data, got shape {array.shape}")
    return array

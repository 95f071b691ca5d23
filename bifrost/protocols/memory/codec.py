"""Stored Python values to typed NumPy columns, and written values to what the device keeps."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from bifrost.model import DataType

__all__ = ["column", "stored"]


def column(values: Sequence[Any], dtype: DataType) -> npt.NDArray[Any]:
    """One column of ``dtype`` from values already checked against it."""
    if dtype is DataType.STRING:
        out = np.empty(len(values), dtype=object)
        out[:] = list(values)
        return out
    return np.asarray(values, dtype=dtype.numpy_dtype)


def stored(value: Any, dtype: DataType) -> Any:
    """The plain Python value a device of ``dtype`` holds after a write of ``value``.

    ``value`` comes from :func:`bifrost.values.check`. A float32 keeps float32 precision,
    as a real register would, so reading back what was written gives the same number.
    """
    if dtype is DataType.FLOAT32:
        return float(np.float32(value))
    return value

"""Values to write: engineering units undone once, then checked against the raw type.

Every protocol's ``compile_write`` receives raw values (``aio`` calls :func:`unscale`
once per write) and checks them with :func:`check`, so the rules for what a tag of a
given type accepts are the same over every protocol.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from bifrost.exceptions import ValueOutOfRange
from bifrost.model import DataType, Tag

__all__ = ["check", "unscale"]

# A scaled write of 7.5 with scale 0.1 gives 74.99999999999999; this is how far a raw
# value may sit from the integer it stands for.
_INTEGER_TOLERANCE = 1e-6


def unscale(tag: Tag, value: Any) -> Any:
    """The raw value a tag's engineering value stands for (lists element by element).

    Unscaled tags get their value back unchanged, for the protocol's own checks.

    Raises
    ------
    ValueOutOfRange
        For a scaled tag given something that is not a number.
    """
    if not tag.is_scaled:
        return value
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, list | tuple):
        return [unscale(tag, item) for item in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ValueOutOfRange(
            f"tag {tag.name!r} is scaled (x{tag.scale:g} {tag.offset:+g}); got {value!r}, "
            "not a number"
        )
    return (value - tag.offset) / tag.scale


def check(tag: Tag, raw: Any, dtype: DataType, length: int = 0) -> Any:
    """Check a raw value against ``dtype`` and convert it to the Python type sent.

    ``length`` is a string's room in characters.

    Raises
    ------
    ValueOutOfRange
        Naming the tag and the value when it does not fit ``dtype``; nothing is sent.
    """
    name = tag.name
    if dtype is DataType.STRING:
        if not isinstance(raw, str):
            raise ValueOutOfRange(f"tag {name!r} is a string; got {raw!r}")
        try:
            encoded = raw.encode("latin-1")
        except UnicodeEncodeError:
            raise ValueOutOfRange(f"tag {name!r}: {raw!r} has non-Latin-1 characters") from None
        if len(encoded) > length:
            raise ValueOutOfRange(
                f"tag {name!r}: {raw!r} has {len(encoded)} characters, room for {length}"
            )
        return raw
    if dtype is DataType.BOOL:
        if isinstance(raw, bool | np.bool_) or raw in (0, 1):
            return bool(raw)
        raise ValueOutOfRange(f"tag {name!r} is a bool; got {raw!r} (use True/False)")
    if isinstance(raw, bool | np.bool_) or not isinstance(raw, int | float | np.number):
        raise ValueOutOfRange(f"tag {name!r} is {dtype.value}; got {raw!r}, not a number")
    shown = _engineering(tag, raw)
    number = float(raw)
    if math.isnan(number) and dtype.is_float:
        return number
    if not math.isfinite(number):
        raise ValueOutOfRange(f"tag {name!r}: {shown!r} is not a finite number")
    low, high = dtype.bounds()
    if dtype.is_integer:
        rounded = round(number)
        if abs(rounded - number) > _INTEGER_TOLERANCE * max(1.0, abs(number)):
            raise ValueOutOfRange(
                f"tag {name!r} is {dtype.value}: {shown!r} is not representable"
                f" (raw value {number!r} is not an integer)"
            )
        # An int given as an int keeps every digit (int64 beyond 2**53 included).
        exact = raw if isinstance(raw, int | np.integer) else int(rounded)
        info = np.iinfo(dtype.numpy_dtype)
        if not int(info.min) <= int(exact) <= int(info.max):
            raise ValueOutOfRange(
                f"tag {name!r} is {dtype.value}: {shown!r} is outside"
                f" {int(low)}..{int(high)}" + (" after scale/offset" if tag.is_scaled else "")
            )
        return int(exact)
    if not low <= number <= high:
        raise ValueOutOfRange(f"tag {name!r} is {dtype.value}: {shown!r} overflows it")
    return number


def _engineering(tag: Tag, raw: Any) -> Any:
    # Messages name the value the user wrote, not the raw one derived from it.
    if not tag.is_scaled:
        return raw
    return float(raw) * tag.scale + tag.offset

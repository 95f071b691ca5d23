"""Values to write: scaling undone, then checked against the node's type and converted."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from bifrost.exceptions import ValueOutOfRange
from bifrost.model import Tag

_INT_BOUNDS = {
    2: (-(2**7), 2**7 - 1),
    3: (0, 2**8 - 1),
    4: (-(2**15), 2**15 - 1),
    5: (0, 2**16 - 1),
    6: (-(2**31), 2**31 - 1),
    7: (0, 2**32 - 1),
    8: (-(2**63), 2**63 - 1),
    9: (0, 2**64 - 1),
}
_FLOAT32_MAX = float(np.finfo(np.float32).max)


@dataclass(frozen=True, slots=True)
class _NodeMeta:
    data_type: int | None  # builtin type id (ns=0) or None for other types
    type_name: str
    value_rank: int
    access: int
    user_access: int


def _unscale(tag: Tag, value: Any) -> Any:
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, bool | str):
        return value
    if not isinstance(value, int | float):
        raise ValueOutOfRange(
            f"tag {tag.name!r}: cannot write a {type(value).__name__} "
            "(numbers, bools, strings or lists of them)"
        )
    if tag.is_scaled:
        return (value - tag.offset) / tag.scale
    return value


def _to_variant(ua: Any, name: str, meta: _NodeMeta, value: Any) -> Any:
    """Convert a Python value to the node's variant type, checking type and range."""
    type_id = meta.data_type
    if type_id is None or not 1 <= type_id <= 15:
        raise ValueOutOfRange(
            f"{name}: bifrost cannot write the OPC UA data type {meta.type_name} "
            "(only builtin scalar types and arrays of them)"
        )
    is_array = isinstance(value, list)
    if is_array and meta.value_rank == -1:
        raise ValueOutOfRange(f"{name} holds a scalar {meta.type_name}; got a list")
    if not is_array and meta.value_rank >= 1:
        raise ValueOutOfRange(f"{name} holds an array of {meta.type_name}; got a scalar")
    items = value if is_array else [value]
    converted = [_convert(name, meta, type_id, v) for v in items]
    vtype = ua.VariantType(type_id)
    return ua.Variant(converted if is_array else converted[0], vtype)


def _convert(name: str, meta: _NodeMeta, type_id: int, value: Any) -> Any:
    if type_id == 1:
        if isinstance(value, bool) or (isinstance(value, int | float) and value in (0, 1)):
            return bool(value)
        raise ValueOutOfRange(f"{name} is Boolean; got {value!r}")
    if type_id == 12:
        if isinstance(value, str):
            return value
        raise ValueOutOfRange(f"{name} is String; got {type(value).__name__}")
    if isinstance(value, str) or not isinstance(value, int | float):
        raise ValueOutOfRange(f"{name} is {meta.type_name}; got {type(value).__name__}")
    if type_id in _INT_BOUNDS:
        low, high = _INT_BOUNDS[type_id]
        if isinstance(value, float) and not value.is_integer():
            raise ValueOutOfRange(f"{name} is {meta.type_name}; {value!r} is not a whole number")
        number = int(value)
        if not low <= number <= high:
            raise ValueOutOfRange(f"{name} is {meta.type_name}; {value!r} is outside {low}..{high}")
        return number
    if type_id in (10, 11):
        real = float(value)
        if type_id == 10 and math.isfinite(real) and abs(real) > _FLOAT32_MAX:
            raise ValueOutOfRange(f"{name} is Float; {value!r} does not fit in 32 bits")
        return real
    raise ValueOutOfRange(f"bifrost cannot write {meta.type_name} values ({name})")

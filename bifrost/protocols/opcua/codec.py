"""OPC UA values both ways, DataValues to columns and Python values to variants.

DataValues become typed columns (StatusCodes quality codes); values to write become the
node's variant type, checked against its type and range.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from bifrost.clock import wall_ns
from bifrost.exceptions import ProtocolError, ValueOutOfRange, value_repr
from bifrost.model import DataType, Quality
from bifrost.protocols.base import ReadResult
from bifrost.protocols.opcua.plan import ReadPlan
from bifrost.protocols.opcua.status import qualities, quality_of, status_name
from bifrost.protocols.opcua.wire import WireValues, from_data_values
from bifrost.values import check_raw

__all__ = [
    "INT_BOUNDS",
    "NodeMeta",
    "OpcUaReadResult",
    "decode",
    "decode_values",
    "plain_value",
    "to_variant",
]

_NAT = np.iinfo(np.int64).min  # no timestamp in WireValues


@dataclass(slots=True)
class OpcUaReadResult(ReadResult):
    """A :class:`ReadResult` that also keeps the servers' timestamps.

    ``timestamp_ns`` holds the source timestamps (or the server's, where the source gave
    none); ``server_timestamp_ns`` the server timestamps (0 where none was sent);
    ``received_ns`` when the reply was decoded (ns since the epoch).
    """

    server_timestamp_ns: npt.NDArray[np.int64] | None = None
    received_ns: int = 0


def decode(
    plan: ReadPlan,
    positions: npt.NDArray[np.intp] | Sequence[int],
    data_values: Sequence[Any],
    endpoint: str,
    *,
    reading: bool,
    indices: npt.NDArray[np.intp] | None = None,
) -> OpcUaReadResult:
    """Turn DataValues (for ``positions`` of the plan) into a columnar result.

    For reads the result covers every tag of the plan; for notifications (``reading``
    False) only the given positions, in that order, with ``indices`` set.
    """
    values = from_data_values(data_values)
    return decode_values(plan, positions, values, endpoint, reading=reading, indices=indices)


def decode_values(
    plan: ReadPlan,
    positions: npt.NDArray[np.intp] | Sequence[int],
    values: WireValues,
    endpoint: str,
    *,
    reading: bool,
    indices: npt.NDArray[np.intp] | None = None,
) -> OpcUaReadResult:
    """:func:`decode` of values already in columns (a ReadResponse decoded by ``wire``)."""
    count = len(values)
    if reading:
        n = len(plan.tags)
        where = np.asarray(positions, dtype=np.intp)
    else:
        n = count
        where = np.arange(count, dtype=np.intp)
    if len(where) != count:
        # The caller checks each reply's count against its request; this is the last
        # line of that check, before any value lands on another tag's row.
        raise ProtocolError(
            f"the OPC UA server at {endpoint} answered {count} values for {len(where)} nodes"
        )
    now = wall_ns()
    quality = np.full(n, Quality.BAD_CONFIG, dtype=np.uint8)
    per_value = qualities(values.status)
    quality[where] = per_value
    served = values.server_ns
    has_server = served != _NAT
    server = np.zeros(n, dtype=np.int64)
    server[where] = np.where(has_server, served, 0)
    source = np.zeros(n, dtype=np.int64)
    # No source timestamp: the server's, else the time of decoding.
    fallback = np.where(has_server, served, now)
    source[where] = np.where(values.source_ns != _NAT, values.source_ns, fallback)
    columns = [(where[k], column) for k, column in values.columns]
    errors = []
    if reading:
        bad: dict[int, list[int]] = {}
        failed = per_value >= Quality.BAD
        if failed.any():
            codes = values.status[failed].tolist()
            for code, row in zip(codes, where[failed].tolist(), strict=True):
                bad.setdefault(code, []).append(row)
        for position, code in plan.unresolved:
            quality[position] = quality_of(code)
            source[position] = now
            bad.setdefault(code, []).append(position)
        for code, rows in bad.items():
            names = [plan.tags[r].name for r in rows]
            shown = ", ".join(repr(x) for x in names[:5]) + (" …" if len(names) > 5 else "")
            errors.append(
                ProtocolError(
                    f"the OPC UA server at {endpoint} answered {status_name(code)} "
                    f"for tag{'s' if len(names) > 1 else ''} {shown}",
                    code=code,
                    tags=names,
                )
            )
        tags = plan.tags
    else:
        tag_of_row = indices if indices is not None else np.asarray(positions)
        tags = tuple(plan.tags[i] for i in tag_of_row)
    return OpcUaReadResult(
        tags,
        columns,
        quality,
        source,
        errors,
        None if reading else np.asarray(tag_of_row, dtype=np.intp),
        server,
        now,
    )


# -- writing: Python values to variants ---------------------------------------------------
INT_BOUNDS = {
    2: (-(2**7), 2**7 - 1),
    3: (0, 2**8 - 1),
    4: (-(2**15), 2**15 - 1),
    5: (0, 2**16 - 1),
    6: (-(2**31), 2**31 - 1),
    7: (0, 2**32 - 1),
    8: (-(2**63), 2**63 - 1),
    9: (0, 2**64 - 1),
}

# Builtin variant types bifrost writes, as the DataType whose rules (bifrost.values) apply.
_WRITE_TYPES = {
    1: DataType.BOOL,
    2: DataType.INT8,
    3: DataType.UINT8,
    4: DataType.INT16,
    5: DataType.UINT16,
    6: DataType.INT32,
    7: DataType.UINT32,
    8: DataType.INT64,
    9: DataType.UINT64,
    10: DataType.FLOAT32,
    11: DataType.FLOAT64,
    12: DataType.STRING,
}


@dataclass(frozen=True, slots=True)
class NodeMeta:
    """What writing a node needs to know: its type, value rank and access levels."""

    data_type: int | None  # builtin type id (ns=0) or None for other types
    type_name: str
    value_rank: int
    access: int
    user_access: int


def plain_value(what: str, value: Any) -> Any:
    """A value to write as a plain Python number, bool or string (NumPy scalars unwrapped).

    What no node type accepts is refused here, before any I/O: other kinds of objects,
    infinities, and strings no OPC UA String holds (NUL characters, lone surrogates).
    ``what`` names the value in errors (``"tag 'tank.level'"``).
    """
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, str):
        return check_raw(value, DataType.STRING, what, encoding="utf-8")
    if isinstance(value, float) and math.isinf(value):
        raise ValueOutOfRange(
            f"{what}: {value!r} is not a finite number (bifrost writes no "
            "infinities; NaN is accepted)"
        )
    if isinstance(value, bool | int | float):
        return value
    raise ValueOutOfRange(
        f"{what}: cannot write {value_repr(value)}, a {type(value).__name__} "
        "(numbers, bools, strings or lists of them)"
    )


def to_variant(ua: Any, name: str, meta: NodeMeta, value: Any) -> Any:
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


def _convert(name: str, meta: NodeMeta, type_id: int, value: Any) -> Any:
    dtype = _WRITE_TYPES.get(type_id)
    if dtype is None:
        raise ValueOutOfRange(f"bifrost cannot write {meta.type_name} values ({name})")
    # The same rules as Modbus and S7 (bifrost.values); OPC UA Strings are UTF-8 of any
    # length.
    return check_raw(value, dtype, name, type_name=meta.type_name, encoding="utf-8")

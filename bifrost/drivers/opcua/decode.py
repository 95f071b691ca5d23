"""DataValues to columns: variant types to NumPy dtypes, StatusCodes to quality codes."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from bifrost.drivers.base import ReadResult
from bifrost.drivers.opcua.plans import _ReadPlan
from bifrost.drivers.opcua.status import _status_name, quality_of
from bifrost.exceptions import ProtocolError
from bifrost.model import Quality

__all__ = ["OpcUaReadResult"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

# Builtin DataType NodeIds (ns=0) that are variant types, with their NumPy dtypes.
_NUMPY = {
    1: np.bool_,
    2: np.int8,
    3: np.uint8,
    4: np.int16,
    5: np.uint16,
    6: np.int32,
    7: np.uint32,
    8: np.int64,
    9: np.uint64,
    10: np.float32,
    11: np.float64,
}


@dataclass(slots=True)
class OpcUaReadResult(ReadResult):
    """A :class:`ReadResult` that also keeps the servers' timestamps.

    ``timestamp_ns`` holds the source timestamps (or the server's, where the source gave
    none); ``server_timestamp_ns`` the server timestamps (0 where none was sent).
    """

    server_timestamp_ns: npt.NDArray[np.int64] | None = None


def _datetime_ns(value: Any) -> int:
    # asyncua decodes DateTime to aware UTC datetimes with microsecond resolution.
    delta = value - _EPOCH
    return int((delta.days * 86_400 + delta.seconds) * 1_000_000_000 + delta.microseconds * 1000)


def _decode(
    plan: _ReadPlan,
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
    n = len(plan.tags) if reading else len(data_values)
    quality = np.full(n, Quality.BAD_CONFIG, dtype=np.uint8)
    source = np.zeros(n, dtype=np.int64)
    server = np.zeros(n, dtype=np.int64)
    groups: dict[int, tuple[list[int], list[Any]]] = {}
    arrays: tuple[list[int], list[Any]] = ([], [])
    bad: dict[int, list[int]] = defaultdict(list)
    now = time.time_ns()
    for k, dv in enumerate(data_values):
        row = int(positions[k]) if reading else k
        status = dv.StatusCode
        code = status.value if status is not None else 0
        if code:
            q = quality_of(code)
            quality[row] = q
            if q >= Quality.BAD:
                bad[code].append(row)
        else:
            quality[row] = Quality.GOOD
        stamp = dv.SourceTimestamp
        served = dv.ServerTimestamp
        if served is not None:
            server[row] = _datetime_ns(served)
        source[row] = _datetime_ns(stamp) if stamp is not None else (server[row] or now)
        variant = dv.Value
        if variant is None or variant.Value is None:
            continue
        value = variant.Value
        if isinstance(value, list):
            arrays[0].append(row)
            arrays[1].append(value)
            continue
        vtype = int(variant.VariantType)
        group = groups.get(vtype)
        if group is None:
            group = groups[vtype] = ([], [])
        group[0].append(row)
        group[1].append(value)
    columns = []
    scale, offset = plan.scale, plan.offset
    tag_of_row = None if reading else (indices if indices is not None else np.asarray(positions))
    for vtype, (rows, items) in groups.items():
        where = np.asarray(rows, dtype=np.intp)
        dtype = _NUMPY.get(vtype)
        if dtype is not None:
            column: npt.NDArray[Any] = np.asarray(items, dtype=dtype)
            if scale is not None and offset is not None and vtype != 1:
                tags_at = where if tag_of_row is None else tag_of_row[where]
                factors, shifts = scale[tags_at], offset[tags_at]
                if (factors != 1.0).any() or (shifts != 0.0).any():
                    column = column * factors + shifts
        else:
            column = np.empty(len(items), dtype=object)
            for j, item in enumerate(items):
                column[j] = item
        columns.append((where, column))
    if arrays[0]:
        column = np.empty(len(arrays[0]), dtype=object)
        for j, item in enumerate(arrays[1]):
            column[j] = np.asarray(item)
        columns.append((np.asarray(arrays[0], dtype=np.intp), column))
    errors = []
    if reading:
        for position, code in plan.unresolved:
            quality[position] = quality_of(code)
            source[position] = now
            bad[code].append(position)
        for code, rows in bad.items():
            names = [plan.tags[r].name for r in rows]
            shown = ", ".join(repr(x) for x in names[:5]) + (" …" if len(names) > 5 else "")
            errors.append(
                ProtocolError(
                    f"the OPC UA server at {endpoint} answered {_status_name(code)} "
                    f"for tag{'s' if len(names) > 1 else ''} {shown}",
                    code=code,
                    tags=names,
                )
            )
        tags = plan.tags
    else:
        assert tag_of_row is not None
        tags = tuple(plan.tags[i] for i in tag_of_row)
    return OpcUaReadResult(
        tags,
        columns,
        quality,
        source,
        errors,
        None if reading else np.asarray(tag_of_row, dtype=np.intp),
        server,
    )

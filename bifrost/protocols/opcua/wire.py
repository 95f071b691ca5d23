"""ReadResponses decoded from their bytes into columns, not into one object per value.

asyncua turns each DataValue into a DataValue, a Variant, a StatusCode and two datetimes
(~13 us per value, most of a 1,000-node read's client time); bifrost needs only columns.
The header and anything unusual still go through asyncua's own decoder: a response whose
DataValues all share one layout (the same encoding mask and scalar numeric variant type,
the common case of a plant's variables) is viewed as a NumPy record array; any other one
is walked value by value, scalar numbers by ``struct``, every other DataValue (strings,
arrays, structures, picoseconds) by asyncua. Either way the framing is checked: the
DataValues must end exactly where the DiagnosticInfos start and those at the body's end.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import numpy.typing as npt

from bifrost.protocols.opcua.nodes import datetime_ns

__all__ = ["WireError", "WireValues", "from_data_values", "read_response"]

_NAT = np.iinfo(np.int64).min  # no timestamp (NaT as datetime64[ns])
# DataValue encoding mask (OPC UA Part 6, 5.2.2.17).
_VALUE, _STATUS, _SOURCE, _SERVER, _PICOSECONDS = 0x01, 0x02, 0x04, 0x08, 0x30
# Scalar variant types read straight from the bytes: (struct format, wire dtype, column
# dtype). Booleans are bytes on the wire (any non-zero byte is true, as asyncua reads it).
_SCALARS: dict[int, tuple[str, str, Any]] = {
    1: ("<B", "u1", np.bool_),
    2: ("<b", "i1", np.int8),
    3: ("<B", "u1", np.uint8),
    4: ("<h", "<i2", np.int16),
    5: ("<H", "<u2", np.uint16),
    6: ("<i", "<i4", np.int32),
    7: ("<I", "<u4", np.uint32),
    8: ("<q", "<i8", np.int64),
    9: ("<Q", "<u8", np.uint64),
    10: ("<f", "<f4", np.float32),
    11: ("<d", "<f8", np.float64),
}
_SIZES = {vtype: struct.calcsize(fmt) for vtype, (fmt, _, _) in _SCALARS.items()}
_UNPACK = {vtype: struct.Struct(fmt).unpack_from for vtype, (fmt, _, _) in _SCALARS.items()}
_U32 = struct.Struct("<I").unpack_from
_I32 = struct.Struct("<i").unpack_from
_I64 = struct.Struct("<q").unpack_from
# DateTime: 100 ns ticks since 1601. asyncua keeps microseconds; so do these columns, so
# that a read and a notification of one value carry the same time. A time outside what
# ns since 1970 in an int64 can hold (0 is how servers send "none", the Int64 maximum
# "after 9999") counts as not sent.
_EPOCH_US = 11_644_473_600_000_000  # 1970-01-01 in microseconds since 1601
_MAX_US = np.iinfo(np.int64).max // 1000
_MAX_NS = _MAX_US * 1000
_NO_STAMP = int(_NAT)


class WireError(ValueError):
    """The response's bytes do not hold what its own lengths and masks say."""


@dataclass(slots=True)
class WireValues:
    """The DataValues of a response as columns, one entry per value in reply order.

    ``source_ns``/``server_ns`` are NaT (int64 minimum) where no usable timestamp came;
    ``columns`` pairs value indices with a typed column, as in :class:`ReadResult`.
    """

    status: npt.NDArray[np.uint32]
    source_ns: npt.NDArray[np.int64]
    server_ns: npt.NDArray[np.int64]
    columns: list[tuple[npt.NDArray[np.intp], npt.NDArray[Any]]]

    def __len__(self) -> int:
        return len(self.status)

    @staticmethod
    def concat(parts: Sequence[WireValues]) -> WireValues:
        """The values of several responses (one per Read call of a plan) in order."""
        if len(parts) == 1:
            return parts[0]
        columns: list[tuple[npt.NDArray[np.intp], npt.NDArray[Any]]] = []
        start = 0
        for part in parts:
            columns.extend((where + start, column) for where, column in part.columns)
            start += len(part)
        return WireValues(
            np.concatenate([p.status for p in parts]) if parts else np.zeros(0, np.uint32),
            np.concatenate([p.source_ns for p in parts]) if parts else np.zeros(0, np.int64),
            np.concatenate([p.server_ns for p in parts]) if parts else np.zeros(0, np.int64),
            columns,
        )


def read_response(ua: Any, data: Any) -> WireValues:
    """Decode a ReadResponse body (asyncua's Buffer, from its TypeId on).

    The ResponseHeader's ServiceResult is checked as asyncua does (raising its
    ``UaStatusCodeError``); bytes that do not add up raise :class:`WireError`.
    """
    from asyncua.ua.ua_binary import nodeid_from_binary, struct_from_binary

    try:
        type_id = nodeid_from_binary(data)
        header = struct_from_binary(ua.ResponseHeader, data)
    except Exception as exc:  # asyncua's decoder: NotEnoughData, struct.error, ...
        raise WireError(f"unreadable header ({type(exc).__name__}: {exc})") from None
    read_response_id = ua.ObjectIds.ReadResponse_Encoding_DefaultBinary
    if type_id.NamespaceIndex != 0 or type_id.Identifier != read_response_id:
        raise WireError(f"a response of type {type_id.to_string()}, not a ReadResponse")
    header.ServiceResult.check()
    body = bytes(data)
    try:
        (count,) = _I32(body, 0)
        count = max(count, 0)  # -1: a null array
        if count > len(body) - 8:  # a DataValue takes at least its mask byte
            raise WireError(f"{count} DataValues announced in {len(body)} bytes")
        decoded = _uniform(body, count) or _walk(ua, body, count)
        _check_end(ua, body, decoded[1])
    except WireError:
        raise
    except Exception as exc:  # lengths pointing past the end, unknown encodings, ...
        raise WireError(f"malformed DataValues ({type(exc).__name__}: {exc})") from None
    return decoded[0]


def _uniform(body: bytes, count: int) -> tuple[WireValues, int] | None:
    """All ``count`` DataValues in one fixed layout as one record array, or None.

    With the offset where the DataValues end.
    """
    if count == 0:
        empty = WireValues(np.zeros(0, np.uint32), np.zeros(0, np.int64), np.zeros(0, np.int64), [])
        return empty, 4
    mask = body[4]
    if mask & _PICOSECONDS or not mask & _VALUE or len(body) < 6:
        return None
    vtype = body[5]
    scalar = _SCALARS.get(vtype)
    if scalar is None:
        return None
    names, formats, offsets = ["mask", "vtype", "value"], ["u1", "u1", scalar[1]], [0, 1, 2]
    size = 2 + _SIZES[vtype]
    for bit, name, fmt, width in (
        (_STATUS, "status", "<u4", 4),
        (_SOURCE, "source", "<i8", 8),
        (_SERVER, "server", "<i8", 8),
    ):
        if mask & bit:
            names.append(name)
            formats.append(fmt)
            offsets.append(size)
            size += width
    if len(body) < 4 + count * size:
        return None
    layout = np.dtype({"names": names, "formats": formats, "offsets": offsets, "itemsize": size})
    records = np.frombuffer(body, dtype=layout, count=count, offset=4)
    # Each record's own mask and type give its size: when every one matches the first,
    # every record starts where this view puts it.
    if not ((records["mask"] == mask).all() and (records["vtype"] == vtype).all()):
        return None
    raw = records["value"]
    column = raw != 0 if vtype == 1 else raw.astype(scalar[2])  # a contiguous copy
    status = records["status"].astype(np.uint32) if mask & _STATUS else np.zeros(count, np.uint32)
    source = _ticks_ns(records["source"]) if mask & _SOURCE else np.full(count, _NAT)
    server = _ticks_ns(records["server"]) if mask & _SERVER else np.full(count, _NAT)
    where = np.arange(count, dtype=np.intp)
    return WireValues(status, source, server, [(where, column)]), 4 + count * size


def _ticks_ns(ticks: npt.NDArray[Any]) -> npt.NDArray[np.int64]:
    us = ticks.astype(np.int64) // 10 - _EPOCH_US
    valid = (ticks > 0) & (np.abs(us) <= _MAX_US)
    out: npt.NDArray[np.int64] = np.where(valid, np.where(valid, us, 0) * 1000, _NAT)
    return out


def _tick_ns(ticks: int) -> int:
    us = ticks // 10 - _EPOCH_US
    return us * 1000 if ticks > 0 and abs(us) <= _MAX_US else int(_NAT)


def _walk(ua: Any, body: bytes, count: int) -> tuple[WireValues, int]:
    """DataValues one by one: scalar numbers by struct, anything else by asyncua."""
    from asyncua.common.utils import Buffer
    from asyncua.ua.ua_binary import struct_from_binary

    status = np.zeros(count, np.uint32)
    source = np.full(count, _NAT)
    server = np.full(count, _NAT)
    groups: dict[int, tuple[list[int], list[Any]]] = {}
    others = _Others()
    offset = 4
    for k in range(count):
        mask = body[offset]
        vtype = body[offset + 1] if mask & _VALUE else 0
        if mask & _PICOSECONDS or (vtype and vtype not in _SCALARS):
            buffer = Buffer(body, offset)
            dv = struct_from_binary(ua.DataValue, buffer)
            offset = buffer.cur_pos
            status[k], source[k], server[k] = _stamps(dv)
            others.add(k, dv.Value)
            continue
        offset += 2 if mask & _VALUE else 1
        if vtype:
            group = groups.get(vtype)
            if group is None:
                group = groups[vtype] = ([], [])
            group[0].append(k)
            group[1].append(_UNPACK[vtype](body, offset)[0])
            offset += _SIZES[vtype]
        if mask & _STATUS:
            status[k] = _U32(body, offset)[0]
            offset += 4
        if mask & _SOURCE:
            source[k] = _tick_ns(_I64(body, offset)[0])
            offset += 8
        if mask & _SERVER:
            server[k] = _tick_ns(_I64(body, offset)[0])
            offset += 8
    columns = [
        (np.asarray(rows, dtype=np.intp), np.asarray(items, dtype=_SCALARS[vtype][2]))
        for vtype, (rows, items) in groups.items()
    ]
    columns.extend(others.columns())
    return WireValues(status, source, server, columns), offset


def _check_end(ua: Any, body: bytes, end: int) -> None:
    """The DiagnosticInfos must follow the DataValues and end with the body."""
    from asyncua.common.utils import Buffer
    from asyncua.ua.ua_binary import struct_from_binary

    (count,) = _I32(body, end)
    buffer = Buffer(body, end + 4)
    for _ in range(max(count, 0)):
        struct_from_binary(ua.DiagnosticInfo, buffer)
    if buffer.cur_pos != len(body):
        raise WireError(
            f"{len(body) - buffer.cur_pos} bytes left after the DataValues and DiagnosticInfos"
        )


class _Others:
    """Values asyncua decoded (not scalar numbers): grouped per variant type, as before."""

    def __init__(self) -> None:
        self.groups: dict[int, tuple[list[int], list[Any]]] = {}
        self.arrays: tuple[list[int], list[Any]] = ([], [])

    def add(self, k: int, variant: Any) -> None:
        if variant is None or variant.Value is None:
            return
        value = variant.Value
        if isinstance(value, list):
            self.arrays[0].append(k)
            self.arrays[1].append(value)
            return
        vtype = int(variant.VariantType)
        group = self.groups.get(vtype)
        if group is None:
            group = self.groups[vtype] = ([], [])
        group[0].append(k)
        group[1].append(value)

    def columns(self) -> list[tuple[npt.NDArray[np.intp], npt.NDArray[Any]]]:
        columns = []
        for vtype, (rows, items) in self.groups.items():
            scalar = _SCALARS.get(vtype)
            if scalar is not None:
                column: npt.NDArray[Any] = np.asarray(items, dtype=scalar[2])
            else:
                column = np.empty(len(items), dtype=object)
                for j, item in enumerate(items):
                    column[j] = item
            columns.append((np.asarray(rows, dtype=np.intp), column))
        if self.arrays[0]:
            column = np.empty(len(self.arrays[0]), dtype=object)
            for j, item in enumerate(self.arrays[1]):
                column[j] = np.asarray(item)
            columns.append((np.asarray(self.arrays[0], dtype=np.intp), column))
        return columns


def _stamp_ns(stamp: datetime) -> int:
    ns = datetime_ns(stamp)
    return ns if -_MAX_NS <= ns <= _MAX_NS else _NO_STAMP


def _stamps(dv: Any) -> tuple[int, int, int]:
    status = dv.StatusCode
    code = status.value if status is not None else 0
    source, server = dv.SourceTimestamp, dv.ServerTimestamp
    return (
        code,
        _NO_STAMP if source is None else _stamp_ns(source),
        _NO_STAMP if server is None else _stamp_ns(server),
    )


def from_data_values(data_values: Sequence[Any]) -> WireValues:
    """The same columns from DataValues asyncua decoded (notifications, history)."""
    codes: list[int] = []
    sources: list[int] = []
    servers: list[int] = []
    others = _Others()
    for k, dv in enumerate(data_values):
        status = dv.StatusCode
        codes.append(status.value if status is not None else 0)
        stamp = dv.SourceTimestamp
        sources.append(_NO_STAMP if stamp is None else _stamp_ns(stamp))
        stamp = dv.ServerTimestamp
        servers.append(_NO_STAMP if stamp is None else _stamp_ns(stamp))
        variant = dv.Value
        if variant is not None and variant.Value is not None:
            others.add(k, variant)
    return WireValues(
        np.array(codes, dtype=np.uint32),
        np.array(sources, dtype=np.int64),
        np.array(servers, dtype=np.int64),
        others.columns(),
    )

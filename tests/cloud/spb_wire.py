"""An independent reader (and tiny writer) of Sparkplug B payloads, for the tests.

It knows the protobuf wire format and the field numbers of the Sparkplug 3.0
specification, and nothing of bifrost's code or of the protobuf package, so the tests
check what bifrost sends against the schema rather than against itself.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from typing import Any

# Payload: timestamp=1 metrics=2 seq=3 uuid=4 body=5
# Metric: name=1 alias=2 timestamp=3 datatype=4 is_historical=5 is_transient=6 is_null=7
#   metadata=8 properties=9 int_value=10 long_value=11 float_value=12 double_value=13
#   boolean_value=14 string_value=15 bytes_value=16
# PropertySet: keys=1 values=2; PropertyValue: type=1 is_null=2 int_value=3 long_value=4
#   float_value=5 double_value=6 boolean_value=7 string_value=8
TYPES = {
    "Int8": 1, "Int16": 2, "Int32": 3, "Int64": 4, "UInt8": 5, "UInt16": 6, "UInt32": 7,
    "UInt64": 8, "Float": 9, "Double": 10, "Boolean": 11, "String": 12,
}  # fmt: skip
SIGNED = {1: 8, 2: 16, 3: 32, 4: 64}


def _varint(data: bytes, i: int) -> tuple[int, int]:
    shift = value = 0
    while True:
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, i
        shift += 7


def fields(data: bytes) -> list[tuple[int, int, Any]]:
    """(field number, wire type, raw value) for each field, in order."""
    out = []
    i = 0
    while i < len(data):
        key, i = _varint(data, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(data, i)
        elif wire == 1:
            value, i = data[i : i + 8], i + 8
        elif wire == 2:
            length, i = _varint(data, i)
            value, i = data[i : i + length], i + length
        elif wire == 5:
            value, i = data[i : i + 4], i + 4
        else:
            raise ValueError(f"wire type {wire}")
        out.append((number, wire, value))
    return out


@dataclass
class Metric:
    name: str | None = None
    alias: int | None = None
    timestamp: int | None = None
    datatype: int | None = None
    is_historical: bool = False
    is_null: bool = False
    value: Any = None
    properties: dict[str, Any] = field(default_factory=dict)


@dataclass
class Payload:
    timestamp: int | None = None
    seq: int | None = None
    metrics: list[Metric] = field(default_factory=list)


def _property_set(data: bytes) -> dict[str, Any]:
    keys: list[str] = []
    values: list[Any] = []
    for number, _, raw in fields(data):
        if number == 1:
            keys.append(raw.decode())
        elif number == 2:
            value = None
            for n, _, r in fields(raw):
                if n in (3, 4):
                    value = r
                elif n == 7:
                    value = bool(r)
                elif n == 8:
                    value = r.decode()
            values.append(value)
    return dict(zip(keys, values, strict=True))


def _metric(data: bytes) -> Metric:
    metric = Metric()
    for number, _, raw in fields(data):
        if number == 1:
            metric.name = raw.decode()
        elif number == 2:
            metric.alias = raw
        elif number == 3:
            metric.timestamp = raw
        elif number == 4:
            metric.datatype = raw
        elif number == 5:
            metric.is_historical = bool(raw)
        elif number == 7:
            metric.is_null = bool(raw)
        elif number == 9:
            metric.properties = _property_set(raw)
        elif number in (10, 11):
            metric.value = raw
        elif number == 12:
            metric.value = struct.unpack("<f", raw)[0]
        elif number == 13:
            metric.value = struct.unpack("<d", raw)[0]
        elif number == 14:
            metric.value = bool(raw)
        elif number == 15:
            metric.value = raw.decode()
    if metric.datatype in SIGNED and isinstance(metric.value, int):
        bits = SIGNED[metric.datatype]
        metric.value &= (1 << bits) - 1
        if metric.value >= 1 << (bits - 1):
            metric.value -= 1 << bits
    return metric


def decode(data: bytes) -> Payload:
    payload = Payload()
    for number, _, raw in fields(data):
        if number == 1:
            payload.timestamp = raw
        elif number == 2:
            payload.metrics.append(_metric(raw))
        elif number == 3:
            payload.seq = raw
    return payload


def _key(number: int, wire: int) -> bytes:
    return _encode_varint(number << 3 | wire)


def _encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def rebirth_command(timestamp: int) -> bytes:
    """An NCMD payload: metric 'Node Control/Rebirth' (Boolean) = true."""
    name = b"Node Control/Rebirth"
    metric = (
        _key(1, 2) + _encode_varint(len(name)) + name
        + _key(4, 0) + _encode_varint(TYPES["Boolean"])
        + _key(14, 0) + _encode_varint(1)
    )  # fmt: skip
    return (
        _key(1, 0) + _encode_varint(timestamp) + _key(2, 2) + _encode_varint(len(metric)) + metric
    )


def device_command(timestamp: int, metrics: list[tuple[str | int, float]]) -> bytes:
    """A DCMD payload of Double metrics, each named (str) or by alias (int)."""
    body = b""
    for key, value in metrics:
        if isinstance(key, str):
            ident = _key(1, 2) + _encode_varint(len(key.encode())) + key.encode()
        else:
            ident = _key(2, 0) + _encode_varint(key)
        metric = (
            ident + _key(4, 0) + _encode_varint(TYPES["Double"])
            + _key(13, 1) + struct.pack("<d", value)
        )  # fmt: skip
        body += _key(2, 2) + _encode_varint(len(metric)) + metric
    return _key(1, 0) + _encode_varint(timestamp) + body

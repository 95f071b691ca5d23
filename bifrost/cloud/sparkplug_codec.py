"""The Sparkplug B payload codec: the Tahu schema through the ``protobuf`` package.

The schema is bifrost's own ``sparkplug_b.proto`` (field numbers from the Sparkplug 3.0
specification), compiled once by protoc into a serialized descriptor
(:mod:`bifrost.cloud._sparkplug_b_descriptor`) that is loaded here into a private
descriptor pool: no generated message code, so no coupling to the protobuf version
that generated it. ``python -m bifrost.cloud.sparkplug_codec --regenerate`` rebuilds the
descriptor (needs ``grpcio-tools``).

Pure functions only (no MQTT): the sink (:mod:`bifrost.cloud.sparkplug`) and the MQTT
source driver both use them.
"""

from __future__ import annotations

import enum
import functools
import math
import struct
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bifrost._extras import require
from bifrost.exceptions import ConfigurationError
from bifrost.model import Quality

__all__ = [
    "NAMESPACE",
    "QUALITY_BAD",
    "QUALITY_GOOD",
    "QUALITY_UNCERTAIN",
    "SpbType",
    "decode",
    "metric_value",
    "new_payload",
    "set_metric_value",
    "spb_type",
]

NAMESPACE = "spBv1.0"
# OPC DA quality codes, the convention Sparkplug hosts (Ignition) read from the
# metric property "Quality".
QUALITY_GOOD = 192
QUALITY_UNCERTAIN = 64
QUALITY_BAD = 0


class SpbType(enum.IntEnum):
    """Sparkplug B data types (``Metric.datatype``)."""

    UNKNOWN = 0
    INT8 = 1
    INT16 = 2
    INT32 = 3
    INT64 = 4
    UINT8 = 5
    UINT16 = 6
    UINT32 = 7
    UINT64 = 8
    FLOAT = 9
    DOUBLE = 10
    BOOLEAN = 11
    STRING = 12
    DATETIME = 13
    TEXT = 14
    UUID = 15
    DATASET = 16
    BYTES = 17
    FILE = 18
    TEMPLATE = 19
    PROPERTYSET = 20
    PROPERTYSETLIST = 21
    INT8_ARRAY = 22
    INT16_ARRAY = 23
    INT32_ARRAY = 24
    INT64_ARRAY = 25
    UINT8_ARRAY = 26
    UINT16_ARRAY = 27
    UINT32_ARRAY = 28
    UINT64_ARRAY = 29
    FLOAT_ARRAY = 30
    DOUBLE_ARRAY = 31
    BOOLEAN_ARRAY = 32
    STRING_ARRAY = 33
    DATETIME_ARRAY = 34


_FROM_DTYPE = {
    "bool": SpbType.BOOLEAN,
    "int8": SpbType.INT8,
    "uint8": SpbType.UINT8,
    "int16": SpbType.INT16,
    "uint16": SpbType.UINT16,
    "int32": SpbType.INT32,
    "uint32": SpbType.UINT32,
    "int64": SpbType.INT64,
    "uint64": SpbType.UINT64,
    "float32": SpbType.FLOAT,
    "float64": SpbType.DOUBLE,
    "string": SpbType.STRING,
    "object": SpbType.STRING,
}
_INT_FIELD = {
    SpbType.INT8,
    SpbType.INT16,
    SpbType.INT32,
    SpbType.UINT8,
    SpbType.UINT16,
    SpbType.UINT32,
}
_LONG_FIELD = {SpbType.INT64, SpbType.UINT64, SpbType.DATETIME}
_SIGNED_BITS = {SpbType.INT8: 8, SpbType.INT16: 16, SpbType.INT32: 32, SpbType.INT64: 64}
_ARRAYS = {
    SpbType.INT8_ARRAY: "b",
    SpbType.INT16_ARRAY: "h",
    SpbType.INT32_ARRAY: "i",
    SpbType.INT64_ARRAY: "q",
    SpbType.UINT8_ARRAY: "B",
    SpbType.UINT16_ARRAY: "H",
    SpbType.UINT32_ARRAY: "I",
    SpbType.UINT64_ARRAY: "Q",
    SpbType.FLOAT_ARRAY: "f",
    SpbType.DOUBLE_ARRAY: "d",
    SpbType.BOOLEAN_ARRAY: "?",
}


def spb_type(dtype: str) -> SpbType:
    """The Sparkplug type of a bifrost data type (a :class:`~bifrost.model.DataType` value)."""
    try:
        return _FROM_DTYPE[dtype.lower()]
    except KeyError:
        raise ConfigurationError(f"no Sparkplug B type for data type {dtype!r}") from None


@functools.cache
def _payload_class() -> Any:
    # Through require(): a missing protobuf names the extra, and no stubs are needed.
    descriptor_pb2 = require("google.protobuf.descriptor_pb2", "Sparkplug B payloads")
    descriptor_pool = require("google.protobuf.descriptor_pool", "Sparkplug B payloads")
    message_factory = require("google.protobuf.message_factory", "Sparkplug B payloads")
    from bifrost.cloud._sparkplug_b_descriptor import DESCRIPTOR

    pool = descriptor_pool.DescriptorPool()
    pool.Add(descriptor_pb2.FileDescriptorProto.FromString(DESCRIPTOR))
    return message_factory.GetMessageClass(
        pool.FindMessageTypeByName("org.eclipse.tahu.protobuf.Payload")
    )


def new_payload() -> Any:
    """An empty ``Payload`` message."""
    return _payload_class()()


def decode(data: bytes) -> Any:
    """Parse a Sparkplug B payload (raises ``ConfigurationError`` on bad bytes)."""
    payload = new_payload()
    try:
        payload.ParseFromString(data)
    except Exception as exc:  # protobuf's DecodeError
        raise ConfigurationError(f"not a Sparkplug B payload: {exc}") from None
    return payload


def set_metric_value(metric: Any, kind: SpbType, value: Any) -> None:
    """Put ``value`` in the field its type uses; None (or NaN) sets ``is_null``."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        metric.is_null = True
        return
    if kind in _INT_FIELD:
        metric.int_value = int(value) & 0xFFFFFFFF
    elif kind in _LONG_FIELD:
        metric.long_value = int(value) & 0xFFFFFFFFFFFFFFFF
    elif kind is SpbType.FLOAT:
        metric.float_value = float(value)
    elif kind is SpbType.DOUBLE:
        metric.double_value = float(value)
    elif kind is SpbType.BOOLEAN:
        metric.boolean_value = bool(value)
    elif kind in (SpbType.STRING, SpbType.TEXT, SpbType.UUID):
        metric.string_value = value if isinstance(value, str) else str(value)
    elif kind is SpbType.BYTES:
        metric.bytes_value = bytes(value)
    elif kind in _ARRAYS:
        items = list(value)
        metric.bytes_value = struct.pack(f"<{len(items)}{_ARRAYS[kind]}", *items)
    else:
        raise ConfigurationError(f"bifrost cannot encode Sparkplug type {kind.name}")


def metric_value(metric: Any) -> Any:
    """The Python value of a decoded metric (None when ``is_null`` or unset)."""
    if metric.is_null:
        return None
    field = metric.WhichOneof("value")
    if field is None:
        return None
    value = getattr(metric, field)
    kind = metric.datatype
    if field in ("int_value", "long_value") and kind in _SIGNED_BITS:
        bits = _SIGNED_BITS[SpbType(kind)]
        value &= (1 << bits) - 1
        if value >= 1 << (bits - 1):
            value -= 1 << bits
    elif field == "bytes_value" and kind in _ARRAYS:
        code = _ARRAYS[SpbType(kind)]
        value = list(struct.unpack(f"<{len(value) // struct.calcsize(code)}{code}", value))
    return value


def metric_quality(metric: Any) -> int:
    """A bifrost quality code from a metric's ``is_null`` and ``Quality`` property."""
    code = None
    properties = metric.properties
    for key, item in zip(properties.keys, properties.values, strict=False):
        if key == "Quality":
            code = item.int_value
    if code is None:
        return int(Quality.BAD_NO_DATA) if metric.is_null else int(Quality.GOOD)
    if code >= QUALITY_GOOD:
        return int(Quality.GOOD)
    return int(Quality.UNCERTAIN) if code >= QUALITY_UNCERTAIN else int(Quality.BAD)


def sparkplug_quality(code: int) -> int:
    """The OPC DA code for the ``Quality`` property of a bifrost quality code."""
    if code < Quality.UNCERTAIN:
        return QUALITY_GOOD
    return QUALITY_UNCERTAIN if code < Quality.BAD else QUALITY_BAD


def _regenerate(argv: Sequence[str]) -> int:
    """Compile ``sparkplug_b.proto`` and rewrite the descriptor module."""
    import subprocess
    import tempfile

    here = Path(__file__).parent
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "set.pb"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "grpc_tools.protoc",
                f"-I{here}",
                f"--descriptor_set_out={out}",
                "sparkplug_b.proto",
            ],
            check=True,
        )
        descriptor_pb2 = require("google.protobuf.descriptor_pb2", "Sparkplug B payloads")
        files = descriptor_pb2.FileDescriptorSet.FromString(out.read_bytes())
        data = files.file[0].SerializeToString()
    if "--check" in argv:
        from bifrost.cloud._sparkplug_b_descriptor import DESCRIPTOR

        return 0 if data == DESCRIPTOR else 1
    (here / "_sparkplug_b_descriptor.py").write_text(descriptor_module(data))
    return 0


def descriptor_module(data: bytes) -> str:
    """The text of the descriptor module for serialized descriptor bytes."""
    lines = [repr(data[i : i + 72]) for i in range(0, len(data), 72)]
    body = "\n".join(f"    {line}" for line in lines)
    return (
        "# ruff: noqa: E501\n"
        '"""sparkplug_b.proto, compiled by protoc; do not edit.\n\n'
        'Regenerate with ``python -m bifrost.cloud.sparkplug_codec --regenerate``.\n"""\n\n'
        f"DESCRIPTOR = (\n{body}\n)\n"
    )


if __name__ == "__main__":
    raise SystemExit(_regenerate(sys.argv[1:]))

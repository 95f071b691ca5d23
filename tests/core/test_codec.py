"""Register images <-> values, checked against struct (an independent oracle)."""

from __future__ import annotations

import math
import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bifrost import codec
from bifrost.exceptions import ValueOutOfRange
from bifrost.model import ByteOrder, DataType

FORMATS = {
    DataType.INT16: "h",
    DataType.UINT16: "H",
    DataType.INT32: "i",
    DataType.UINT32: "I",
    DataType.INT64: "q",
    DataType.UINT64: "Q",
    DataType.FLOAT32: "f",
    DataType.FLOAT64: "d",
}


def wire_words(value: object, dtype: DataType, order: ByteOrder) -> list[int]:
    """The registers a device sends, built by hand from big-endian bytes."""
    raw = struct.pack(">" + FORMATS[dtype], value)
    words = [raw[i : i + 2] for i in range(0, len(raw), 2)]
    if order.swap_words:
        words.reverse()
    if order.swap_bytes:
        words = [w[::-1] for w in words]
    return [int.from_bytes(w, "big") for w in words]


def values_of(dtype: DataType) -> st.SearchStrategy[object]:
    if dtype.is_float:
        width = 32 if dtype is DataType.FLOAT32 else 64
        return st.floats(allow_nan=False, width=width)
    info = np.iinfo(dtype.numpy_dtype)
    return st.integers(int(info.min), int(info.max))


def orders_for(dtype: DataType) -> list[ByteOrder]:
    return list(ByteOrder) if dtype.size > 2 else [ByteOrder.ABCD, ByteOrder.BADC]


@pytest.mark.parametrize("dtype", list(FORMATS))
@given(data=st.data())
def test_decode_matches_struct_for_every_type_and_order(dtype: DataType, data: st.DataObject):
    order = data.draw(st.sampled_from(orders_for(dtype)))
    values = data.draw(st.lists(values_of(dtype), min_size=1, max_size=8))
    image = np.array([w for v in values for w in wire_words(v, dtype, order)], dtype=np.uint16)
    width = codec.registers_for(dtype)
    starts = np.arange(len(values), dtype=np.intp) * width
    decoded = codec.decode_registers(image, starts, dtype, order)
    assert decoded.dtype == dtype.numpy_dtype
    if dtype.is_integer:
        assert decoded.tolist() == values
    else:
        np.testing.assert_array_equal(decoded, np.array(values, dtype=dtype.numpy_dtype))


@pytest.mark.parametrize("dtype", list(FORMATS))
@given(data=st.data())
def test_encode_is_the_inverse_of_decode(dtype: DataType, data: st.DataObject):
    order = data.draw(st.sampled_from(orders_for(dtype)))
    value = data.draw(values_of(dtype))
    words = codec.encode_registers([value], dtype, order)
    assert words[0].tolist() == wire_words(value, dtype, order)


def test_well_known_float_images():
    # 123.456 as float32 is 0x42F6E979; CDAB puts the low word first.
    image = np.array([0x42F6, 0xE979, 0xE979, 0x42F6, 0xF642, 0x79E9, 0x79E9, 0xF642], np.uint16)
    starts = np.array([0])
    for index, order in enumerate(ByteOrder):
        decoded = codec.decode_registers(image, starts + 2 * index, DataType.FLOAT32, order)
        assert decoded[0] == pytest.approx(123.456, rel=1e-6), order


def test_gathering_is_vectorised_over_scattered_starts():
    image = np.arange(100, dtype=np.uint16)
    starts = np.array([3, 50, 97], dtype=np.intp)
    out = codec.decode_registers(image, starts, DataType.UINT32, ByteOrder.ABCD)
    assert out.tolist() == [(3 << 16) + 4, (50 << 16) + 51, (97 << 16) + 98]


@given(st.text(alphabet=st.characters(min_codepoint=1, max_codepoint=255), max_size=20))
def test_strings_round_trip(text: str):
    for order in (ByteOrder.ABCD, ByteOrder.BADC):
        words = codec.encode_string(text, 20, order)
        assert len(words) == 10
        decoded = codec.decode_strings(words, np.array([0]), 20, order)
        assert decoded[0] == text


def test_string_byte_order_is_high_byte_first():
    words = codec.encode_string("AB", 2, ByteOrder.ABCD)
    assert words.tolist() == [0x4142]
    assert codec.encode_string("AB", 2, ByteOrder.BADC).tolist() == [0x4241]


@pytest.mark.parametrize(
    ("value", "dtype", "kwargs", "raw"),
    [
        (75.0, DataType.FLOAT32, {}, 75.0),
        (7.5, DataType.INT16, {"scale": 0.1}, 75),
        (20.0, DataType.UINT16, {"scale": 0.5, "offset": 10.0}, 20),
        (-32768, DataType.INT16, {}, -32768),
        (2**64 - 1, DataType.UINT64, {}, 2**64 - 1),
        (True, DataType.BOOL, {}, True),
        (0, DataType.BOOL, {}, False),
    ],
)
def test_to_raw_accepts_values_that_fit(value, dtype, kwargs, raw):
    assert codec.to_raw("t", value, dtype, **kwargs) == raw


@pytest.mark.parametrize(
    ("value", "dtype", "kwargs", "fragment"),
    [
        (70000, DataType.INT16, {}, "outside -32768..32767"),
        (-1, DataType.UINT16, {}, "outside 0..65535"),
        (2**64, DataType.UINT64, {}, "outside"),
        (1.5, DataType.INT32, {}, "not an integer"),
        (7.55, DataType.INT16, {"scale": 0.1}, "not an integer"),
        (1e39, DataType.FLOAT32, {}, "overflows"),
        (math.inf, DataType.FLOAT64, {}, "not a finite"),
        ("12", DataType.INT16, {}, "not a number"),
        (True, DataType.INT16, {}, "not a number"),
        (2, DataType.BOOL, {}, "bool"),
        (12, DataType.STRING, {"length": 4}, "string"),
        ("too long", DataType.STRING, {"length": 4}, "room for 4"),
        ("€", DataType.STRING, {"length": 4}, "Latin-1"),
    ],
)
def test_to_raw_refuses_values_that_do_not_fit(value, dtype, kwargs, fragment):
    with pytest.raises(ValueOutOfRange, match=r"'tank\.x'") as caught:
        codec.to_raw("tank.x", value, dtype, **kwargs)
    assert fragment in str(caught.value)

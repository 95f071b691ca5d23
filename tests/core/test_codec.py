"""Register images <-> values, checked against struct (an independent oracle)."""

from __future__ import annotations

import struct

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from bifrost.model import ByteOrder, DataType
from bifrost.protocols.modbus import codec

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

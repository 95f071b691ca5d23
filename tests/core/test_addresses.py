"""The Modbus address grammar: both notations, every type and order, and the errors."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bifrost.exceptions import AddressError, ArgumentTypeError
from bifrost.model import ByteOrder, DataType
from bifrost.protocols.modbus.address import ModbusAddress, parse_modbus_address

REGISTER_TYPES = [
    DataType.INT16,
    DataType.UINT16,
    DataType.INT32,
    DataType.UINT32,
    DataType.INT64,
    DataType.UINT64,
    DataType.FLOAT32,
    DataType.FLOAT64,
]


@pytest.mark.parametrize(
    ("text", "table", "offset", "dtype", "order"),
    [
        ("hr:100:float32", "hr", 100, DataType.FLOAT32, ByteOrder.ABCD),
        ("hr:100:float32:CDAB", "hr", 100, DataType.FLOAT32, ByteOrder.CDAB),
        ("HR:100:FLOAT32:cdab", "hr", 100, DataType.FLOAT32, ByteOrder.CDAB),
        ("ir:5", "ir", 5, DataType.UINT16, ByteOrder.ABCD),
        ("co:3", "co", 3, DataType.BOOL, ByteOrder.ABCD),
        ("di:7", "di", 7, DataType.BOOL, ByteOrder.ABCD),
        ("hr:0:int64:DCBA", "hr", 0, DataType.INT64, ByteOrder.DCBA),
        ("hr:9:int16:BADC", "hr", 9, DataType.INT16, ByteOrder.BADC),
        ("40101:float32", "hr", 100, DataType.FLOAT32, ByteOrder.ABCD),
        ("40001", "hr", 0, DataType.UINT16, ByteOrder.ABCD),
        ("30006", "ir", 5, DataType.UINT16, ByteOrder.ABCD),
        ("00004", "co", 3, DataType.BOOL, ByteOrder.ABCD),
        ("10008", "di", 7, DataType.BOOL, ByteOrder.ABCD),
        ("465536", "hr", 65535, DataType.UINT16, ByteOrder.ABCD),
        ("400101:int32:CDAB", "hr", 100, DataType.INT32, ByteOrder.CDAB),
    ],
)
def test_valid_addresses(text: str, table: str, offset: int, dtype: DataType, order: ByteOrder):
    address = parse_modbus_address(text)
    assert (address.table, address.offset, address.dtype, address.order) == (
        table,
        offset,
        dtype,
        order,
    )


def test_classic_and_zero_based_notations_agree():
    assert parse_modbus_address("40101:float32:CDAB") == parse_modbus_address("hr:100:float32:CDAB")


def test_strings_take_two_characters_per_register():
    address = parse_modbus_address("hr:20:string[9]")
    assert (address.dtype, address.length, address.count) == (DataType.STRING, 9, 5)


def test_unit_suffix():
    assert parse_modbus_address("hr:1:int32@17").unit == 17
    assert parse_modbus_address("hr:1:int32").unit is None


@pytest.mark.parametrize(
    ("text", "position", "fragment"),
    [
        ("hr:1x0", 3, "decimal offset"),
        ("xx:1", 0, "expected a table"),
        ("hr:", 3, "expected an offset"),
        ("hr:65535:float32", 3, "past 65535"),
        ("hr:65530:string[20]", 3, "past 65535"),
        ("hr:65536", 3, "beyond 65535"),
        ("hr:0:float32:ABDC", 13, "unknown byte order"),
        ("hr:0:float33", 5, "unknown type"),
        ("co:1:int16", 5, "only bool"),
        ("hr:1:bool", 5, "coils"),
        ("hr:0:int16:CDAB", 11, "has none"),
        ("40000", 1, "1-based"),
        ("hr:1@300", 5, "unit id"),
        ("hr:1:int16:ABCD:x", 16, "too many"),
        ("hr:0:string[0]", 5, "string length"),
        ("hr:0:string[251]", 5, "string length"),
        ("co:1:bool:ABCD", 10, "no byte order"),
    ],
)
def test_malformed_addresses_name_the_position(text: str, position: int, fragment: str):
    with pytest.raises(AddressError) as caught:
        parse_modbus_address(text)
    error = caught.value
    assert error.address == text
    assert error.position == position
    assert fragment in str(error)
    assert repr(text) in str(error)


def test_address_error_is_a_value_error():
    with pytest.raises(ValueError, match="hr:zz"):
        parse_modbus_address("hr:zz")


@st.composite
def addresses(draw: st.DrawFn) -> ModbusAddress:
    table = draw(st.sampled_from(["co", "di", "ir", "hr"]))
    unit = draw(st.none() | st.integers(0, 255))
    if table in ("co", "di"):
        return ModbusAddress(table, draw(st.integers(0, 65535)), DataType.BOOL, unit=unit)
    if draw(st.booleans()):
        length = draw(st.integers(1, 250))
        order = draw(st.sampled_from([ByteOrder.ABCD, ByteOrder.BADC]))
        count = (length + 1) // 2
        offset = draw(st.integers(0, 65536 - count))
        return ModbusAddress(table, offset, DataType.STRING, order, length, unit)
    dtype = draw(st.sampled_from(REGISTER_TYPES))
    orders = list(ByteOrder) if dtype.size > 2 else [ByteOrder.ABCD, ByteOrder.BADC]
    order = draw(st.sampled_from(orders))
    offset = draw(st.integers(0, 65536 - max(1, dtype.size // 2)))
    return ModbusAddress(table, offset, dtype, order, 0, unit)


@given(addresses())
def test_every_address_round_trips_through_its_text(address: ModbusAddress):
    assert parse_modbus_address(str(address)) == address


@given(addresses())
def test_classic_notation_round_trips(address: ModbusAddress):
    digit = {"co": "0", "di": "1", "ir": "3", "hr": "4"}[address.table]
    text = str(address).split(":", 2)
    rest = (":" + text[2]) if len(text) > 2 else ("@" + str(address.unit) if "@" in text[1] else "")
    classic = f"{digit}{address.offset + 1:05d}{rest}"
    assert parse_modbus_address(classic) == address


@pytest.mark.parametrize(
    ("text", "position", "fragment"),
    [
        ("hr:\u00b2", 3, "addresses are ASCII"),  # str.isdigit accepts it, int() does not
        ("hr:\u0663", 3, "addresses are ASCII"),  # int() accepts it: still not an offset
        ("hr:" + "1" * 5000, 3, "is beyond 65535"),  # past Python's 4300-digit int limit
        ("hr:1@" + "9" * 5000, 5, "unit id 0-255"),
        ("hr:0:string[" + "9" * 5000 + "]", 5, "string length must be 1-250"),
    ],
)
def test_digits_that_are_not_a_number_here(text: str, position: int, fragment: str):
    with pytest.raises(AddressError) as caught:
        parse_modbus_address(text)
    assert (caught.value.position, caught.value.address) == (position, text)
    assert fragment in caught.value.reason


@pytest.mark.parametrize("value", [None, 40001, b"hr:0", ["hr:0"]])
def test_non_strings_are_argument_type_errors(value: object):
    with pytest.raises(ArgumentTypeError, match="must be a string") as caught:
        parse_modbus_address(value)  # type: ignore[arg-type]
    assert isinstance(caught.value, TypeError)

"""The S7 address grammar and the cost-model planner it feeds (no I/O)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bifrost.exceptions import AddressError
from bifrost.model import DataType
from bifrost.planning import CostModel, Item, pack
from bifrost.protocols.s7.address import MAX_STRING_CHARS, S7_TYPES, S7Address, parse_s7_address


@pytest.mark.parametrize(
    ("text", "area", "db", "offset", "width", "s7type", "bit", "dtype", "size"),
    [
        ("DB1.DBD4:REAL", "DB", 1, 4, "D", "REAL", 0, DataType.FLOAT32, 4),
        ("DB1.DBX0.1", "DB", 1, 0, "X", "BOOL", 1, DataType.BOOL, 1),
        ("DB1.DBW2:INT", "DB", 1, 2, "W", "INT", 0, DataType.INT16, 2),
        ("DB1.DBB10", "DB", 1, 10, "B", "BYTE", 0, DataType.UINT8, 1),
        ("DB7.DBW0", "DB", 7, 0, "W", "WORD", 0, DataType.UINT16, 2),
        ("DB7.DBD0", "DB", 7, 0, "D", "DWORD", 0, DataType.UINT32, 4),
        ("DB3.DBD8:DINT", "DB", 3, 8, "D", "DINT", 0, DataType.INT32, 4),
        ("DB3.DBD8:LREAL", "DB", 3, 8, "D", "LREAL", 0, DataType.FLOAT64, 8),
        ("MW10", "M", 0, 10, "W", "WORD", 0, DataType.UINT16, 2),
        ("MB3", "M", 0, 3, "B", "BYTE", 0, DataType.UINT8, 1),
        ("MD20:REAL", "M", 0, 20, "D", "REAL", 0, DataType.FLOAT32, 4),
        ("M0.1", "M", 0, 0, "X", "BOOL", 1, DataType.BOOL, 1),
        ("MX7.7", "M", 0, 7, "X", "BOOL", 7, DataType.BOOL, 1),
        ("I0.0", "I", 0, 0, "X", "BOOL", 0, DataType.BOOL, 1),
        ("E0.3", "I", 0, 0, "X", "BOOL", 3, DataType.BOOL, 1),
        ("IW4", "I", 0, 4, "W", "WORD", 0, DataType.UINT16, 2),
        ("EW4:INT", "I", 0, 4, "W", "INT", 0, DataType.INT16, 2),
        ("Q1.2", "Q", 0, 1, "X", "BOOL", 2, DataType.BOOL, 1),
        ("A1.2", "Q", 0, 1, "X", "BOOL", 2, DataType.BOOL, 1),
        ("QB0", "Q", 0, 0, "B", "BYTE", 0, DataType.UINT8, 1),
        ("DB2.DBB10:STRING[20]", "DB", 2, 10, "B", "STRING", 0, DataType.STRING, 22),
        ("DB2.DBB10:CHAR", "DB", 2, 10, "B", "CHAR", 0, DataType.STRING, 1),
        ("%DB1.DBD4:REAL", "DB", 1, 4, "D", "REAL", 0, DataType.FLOAT32, 4),
        ("  db1.dbd4:real  ", "DB", 1, 4, "D", "REAL", 0, DataType.FLOAT32, 4),
        ("%mw10", "M", 0, 10, "W", "WORD", 0, DataType.UINT16, 2),
    ],
)
def test_valid_addresses(
    text: str,
    area: str,
    db: int,
    offset: int,
    width: str,
    s7type: str,
    bit: int,
    dtype: DataType,
    size: int,
) -> None:
    a = parse_s7_address(text)
    assert (a.area, a.db, a.offset, a.width, a.s7type, a.bit) == (
        area,
        db,
        offset,
        width,
        s7type,
        bit,
    )
    assert a.dtype is dtype
    assert a.size == size
    assert a.end == offset + size


def test_string_layout_and_canonical_text() -> None:
    a = parse_s7_address("db2.dbb10:string[20]")
    assert (a.length, a.chars, a.size) == (20, 20, 22)
    assert str(a) == "DB2.DBB10:STRING[20]"
    assert str(parse_s7_address("E0.0")) == "I0.0"
    assert str(parse_s7_address("AW2")) == "QW2"
    assert str(parse_s7_address("DB1.DBW2:WORD")) == "DB1.DBW2"  # the width's default


@pytest.mark.parametrize(
    ("text", "position", "fragment"),
    [
        ("DB1.DBD4:INT", 9, "does not fit width D"),
        ("DB1.DBW4:REAL", 9, "does not fit width W"),
        ("DB1.DBB4:BOOL", 9, "does not fit width B"),
        ("DB1.DBX4.0:BYTE", 11, "does not fit width X"),
        ("DB1.DBW0:STRING[4]", 9, "does not fit width W"),
        ("DB1.DBX0", 8, "needs '.bit'"),
        ("DB1.DBX0.8", 9, "outside 0-7"),
        ("DB1.DBB1.2", 8, "only bit addresses"),
        ("DB0.DBB1", 2, "1-65535"),
        ("DB1.DBB70000", 7, "beyond 65535"),
        ("DB1.DBW65535", 7, "past 65535"),
        ("DB1.DBQ0", 6, "width"),
        ("DB1DBB0", 3, "'.DBX'"),
        ("DB1.DBW2:FOO", 9, "unknown S7 type"),
        ("DB1.DBW2:", 9, "expected a type"),
        ("DB1.DBB0:STRING[0]", 9, "1-254"),
        ("DB1.DBB0:STRING[255]", 9, "1-254"),
        ("DB1.DBW2 INT", 8, "':TYPE'"),
        ("MW", 2, "byte offset"),
        ("MWx", 2, "byte offset"),
        ("Z0.0", 0, "expected an area"),
        ("", 0, "expected an area"),
        ("  %", 3, "expected an area"),
        ("hr:0:float32", 0, "expected an area"),
    ],
)
def test_invalid_addresses_name_the_position(text: str, position: int, fragment: str) -> None:
    with pytest.raises(AddressError) as info:
        parse_s7_address(text)
    assert info.value.position == position
    assert info.value.address == text
    assert info.value.protocol == "S7"
    assert fragment in info.value.reason
    assert repr(text) in str(info.value)


def test_non_string_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        parse_s7_address(4)  # type: ignore[arg-type]


# -- round trip: format -> parse --------------------------------------------------------------
_WIDTH_TYPES = {"X": ["BOOL"], "B": [], "W": [], "D": []}
for _name, (_dtype, _size, _widths) in S7_TYPES.items():
    for _w in _widths:
        if _w != "X":
            _WIDTH_TYPES[_w].append(_name)


@st.composite
def s7_addresses(draw: st.DrawFn) -> S7Address:
    area = draw(st.sampled_from(["DB", "M", "I", "Q"]))
    db = draw(st.integers(1, 65535)) if area == "DB" else 0
    width = draw(st.sampled_from(["X", "B", "W", "D"]))
    if width == "X":
        offset, bit = draw(st.integers(0, 65535)), draw(st.integers(0, 7))
        return S7Address(area, db, offset, "X", "BOOL", bit)  # type: ignore[arg-type]
    choices = [*_WIDTH_TYPES[width], *(["STRING"] if width == "B" else [])]
    s7type = draw(st.sampled_from(choices))
    length = draw(st.integers(1, MAX_STRING_CHARS)) if s7type == "STRING" else 0
    size = length + 2 if s7type == "STRING" else S7_TYPES[s7type][1]
    offset = draw(st.integers(0, 65536 - size))
    return S7Address(area, db, offset, width, s7type, 0, length)  # type: ignore[arg-type]


@given(s7_addresses(), st.booleans())
def test_format_then_parse_round_trips(address: S7Address, lower: bool) -> None:
    text = str(address)
    assert parse_s7_address(text.lower() if lower else text) == address


# -- the cost-model planner --------------------------------------------------------------------
S7_LIMITS = {"max_span": 462, "budget": 466, "max_items": 20, "item_overhead": 4, "align": 2}


def test_scattered_reals_merge_into_full_pdus() -> None:
    items = [Item(("DB", 100), 16 * i, 16 * i + 4) for i in range(1000)]
    packets = pack(items, **S7_LIMITS)
    spans = [s for p in packets for s in p.spans]
    assert len(packets) == 35  # 16,000 bytes at up to 462 per request
    assert all(s.count <= 462 for s in spans)
    assert sorted(m for s in spans for m in s.members) == list(range(1000))
    assert all(len(p.spans) == 1 for p in packets)  # a full span needs a request alone


def test_contiguous_reals_need_as_many_requests_as_one_big_read() -> None:
    items = [Item(("DB", 1), 4 * i, 4 * i + 4) for i in range(1000)]
    assert len(pack(items, **S7_LIMITS)) == 9  # ceil(4000 / 460), like db_read's chunks


def test_small_spans_in_different_blocks_share_multi_item_requests() -> None:
    items = [Item(("DB", k), 0, 4) for k in range(1, 46)]
    packets = pack(items, **S7_LIMITS)
    assert [len(p.spans) for p in packets] == [20, 20, 5]


def test_the_reply_budget_limits_packing() -> None:
    # 200-byte spans: two fit a 466-byte reply (2 * 204 = 408), three do not.
    items = [Item(("DB", k), 0, 200) for k in range(1, 6)]
    packets = pack(items, **S7_LIMITS)
    assert sorted(len(p.spans) for p in packets) == [1, 2, 2]


def test_the_cost_model_decides_the_gap() -> None:
    items = [Item(("DB", 1), 0, 4), Item(("DB", 1), 64, 68)]
    assert len(pack(items, **S7_LIMITS)[0].spans) == 1  # a 60-byte hole is read over
    costly_bytes = CostModel(byte=0.01)
    packets = pack(items, **S7_LIMITS, cost=costly_bytes)
    assert len(packets) == 1
    assert len(packets[0].spans) == 2  # skipped: two items in one request
    assert CostModel(byte=0.01).max_gap(466, 20, 4) < 60 <= CostModel().max_gap(466, 20, 4)


def test_bits_of_one_byte_and_duplicates_share_a_span() -> None:
    items = [Item(("M", 0), 3, 4), Item(("M", 0), 3, 4), Item(("M", 0), 3, 4)]
    (packet,) = pack(items, **S7_LIMITS)
    (span,) = packet.spans
    assert (span.start, span.count, span.members) == (3, 1, (0, 1, 2))


def test_impossible_limits_are_refused() -> None:
    with pytest.raises(ValueError, match="max_span"):
        pack([Item("k", 0, 1)], max_span=10, budget=5, max_items=1)
    with pytest.raises(ValueError, match="spans 500"):
        pack([Item("k", 0, 500)], **S7_LIMITS)


@pytest.mark.parametrize(
    ("text", "position"),
    [
        ("DB1.DBW\u00b2", 7),  # str.isdigit accepts it, int() does not
        ("\u0131W4", 0),  # dotless i upper-cases to I
        ("DB1.DBB0:\u017fTRING[3]", 9),  # long s upper-cases to S
        ("MB\u00df", 2),  # upper() makes it two letters, shifting every position
    ],
)
def test_only_ascii(text: str, position: int) -> None:
    with pytest.raises(AddressError, match="addresses are ASCII") as caught:
        parse_s7_address(text)
    assert caught.value.position == position


@pytest.mark.parametrize(
    "text", ["DB" + "1" * 5000 + ".DBW0", "MW" + "9" * 5000, "DB1.DBB0:STRING[" + "9" * 5000 + "]"]
)
def test_long_numbers_are_address_errors(text: str) -> None:
    with pytest.raises(AddressError) as caught:
        parse_s7_address(text)
    assert caught.value.address == text

"""The Modbus address grammar.

Two notations are accepted, both case-insensitive::

    hr:100:float32:CDAB@2      table:offset[:type[:order]][@unit]   (0-based offsets)
    40101:float32              classic 1-based five- or six-digit reference (40101 == hr:100)

Tables are ``co`` (coils), ``di`` (discrete inputs), ``ir`` (input registers) and ``hr``
(holding registers). Coils and discrete inputs hold ``bool``; registers default to
``uint16``. ``string[n]`` is ``n`` characters, two per register.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Literal

from bifrost.exceptions import AddressError, ArgumentTypeError, value_repr
from bifrost.model import ByteOrder, DataType

__all__ = ["MAX_STRING_CHARS", "ModbusAddress", "Table", "parse_modbus_address"]

Table = Literal["co", "di", "ir", "hr"]

MAX_STRING_CHARS = 250  # 125 registers: the most one read request can carry
_LAST_ADDRESS = 65535
_CLASSIC_TABLES: dict[str, Table] = {"0": "co", "1": "di", "3": "ir", "4": "hr"}
_BIT_TABLES = ("co", "di")
_STRING_RE = re.compile(r"string\[([0-9]+)\]\Z")
# Longer digit runs are refused before int() sees them: past 4300 digits Python itself
# refuses, and no field of an address needs more than 6.
_MAX_DIGITS = 9
_TYPES = {t.value: t for t in DataType if t not in (DataType.STRING, DataType.INT8, DataType.UINT8)}


@dataclass(frozen=True, slots=True)
class ModbusAddress:
    """A parsed Modbus address.

    Attributes
    ----------
    table
        ``co``, ``di``, ``ir`` or ``hr``.
    offset
        0-based register or bit number.
    dtype
        Value type.
    order
        Byte/word order of multi-byte values.
    length
        Number of characters for strings, else 0.
    unit
        Device (unit) id given in the address with ``@N``; None means the connection's.
    """

    table: Table
    offset: int
    dtype: DataType
    order: ByteOrder = ByteOrder.ABCD
    length: int = 0
    unit: int | None = None

    @property
    def is_bit(self) -> bool:
        """Whether the address is in a bit table (coils or discrete inputs)."""
        return self.table in _BIT_TABLES

    @property
    def count(self) -> int:
        """Number of registers (or bits) the value occupies."""
        if self.is_bit:
            return 1
        if self.dtype is DataType.STRING:
            return (self.length + 1) // 2
        return max(1, self.dtype.size // 2)

    @property
    def end(self) -> int:
        """One past the last register (or bit) the value occupies."""
        return self.offset + self.count

    def __str__(self) -> str:
        text = f"{self.table}:{self.offset}"
        if self.dtype is DataType.STRING:
            text += f":string[{self.length}]"
        elif not self.is_bit:
            text += f":{self.dtype.value}"
        if self.order is not ByteOrder.ABCD:
            text += f":{self.order.value}"
        if self.unit is not None:
            text += f"@{self.unit}"
        return text


def _fail(address: str, position: int, reason: str) -> AddressError:
    return AddressError(address, position, reason, protocol="Modbus")


def _decimal(text: str) -> int | None:
    """``text`` as a number if it is ASCII digits of a sane length, else None."""
    if not text.isdigit() or len(text.lstrip("0")) > _MAX_DIGITS:
        return None
    return int(text)


def _clip(text: str) -> str:
    return text if len(text) <= 12 else f"{text[:12]}…"


def parse_modbus_address(address: str) -> ModbusAddress:
    """Parse a Modbus address string.

    Parameters
    ----------
    address
        For example ``"hr:100:float32:CDAB"``, ``"co:3"``, ``"40101:float32"``.

    Returns
    -------
    ModbusAddress

    Raises
    ------
    AddressError
        Naming the address and the position of the fault.
    """
    if not isinstance(address, str):
        # Checked before the cache, which would fail on an unhashable argument.
        raise ArgumentTypeError(
            f"a Modbus address must be a string, got {value_repr(address)} "
            f"({type(address).__name__})"
        )
    return _parse(address)


@functools.lru_cache(maxsize=65536)
def _parse(address: str) -> ModbusAddress:
    if not address.isascii():
        # Also keeps out digits that str.isdigit accepts but int() does not ('²') and
        # letters that case-fold onto ASCII ones.
        position = next(i for i, c in enumerate(address) if not c.isascii())
        raise _fail(address, position, f"unexpected {address[position]!r}: addresses are ASCII")
    text = address.strip()
    lead = len(address) - len(address.lstrip())
    unit: int | None = None
    if "@" in text:
        text, _, unit_text = text.partition("@")
        unit_pos = lead + len(text) + 1
        unit = _decimal(unit_text)
        if unit is None or unit > 255:
            raise _fail(address, unit_pos, "expected a unit id 0-255 after '@'")
    fields = text.split(":")
    positions = []
    pos = lead
    for f in fields:
        positions.append(pos)
        pos += len(f) + 1

    head = fields[0].lower()
    if head in ("co", "di", "ir", "hr"):
        table: Table = head  # type: ignore[assignment]
        if len(fields) < 2 or not fields[1]:
            raise _fail(address, pos - 1, f"expected an offset after '{head}:'")
        offset_text = fields[1]
        if not offset_text.isdigit():
            raise _fail(
                address, positions[1], f"expected a decimal offset, got {_clip(offset_text)!r}"
            )
        number = _decimal(offset_text)
        if number is None or number > _LAST_ADDRESS:
            raise _fail(
                address, positions[1], f"offset {_clip(offset_text)} is beyond {_LAST_ADDRESS}"
            )
        offset = number
        rest, rest_pos = fields[2:], positions[2:]
    elif head.isdigit() and len(head) in (5, 6) and head[0] in _CLASSIC_TABLES:
        table = _CLASSIC_TABLES[head[0]]
        number = int(head[1:])
        if number == 0:
            raise _fail(address, positions[0] + 1, "classic references are 1-based")
        offset = number - 1
        if offset > _LAST_ADDRESS:
            raise _fail(address, positions[0] + 1, f"reference {number} is beyond 65536")
        rest, rest_pos = fields[1:], positions[1:]
    else:
        raise _fail(
            address,
            positions[0],
            "expected a table (co, di, ir, hr) or a classic reference like 40101",
        )

    if len(rest) > 2:
        raise _fail(address, rest_pos[2], "too many ':' fields (table:offset:type:order)")
    dtype = DataType.BOOL if table in _BIT_TABLES else DataType.UINT16
    length = 0
    order = ByteOrder.ABCD
    if rest:
        type_text = rest[0].lower()
        string_match = _STRING_RE.match(type_text)
        if string_match:
            dtype, length = DataType.STRING, _decimal(string_match.group(1)) or 0
            if not 1 <= length <= MAX_STRING_CHARS:
                raise _fail(address, rest_pos[0], f"string length must be 1-{MAX_STRING_CHARS}")
        elif type_text in _TYPES:
            dtype = _TYPES[type_text]
        else:
            names = ", ".join([*_TYPES, "string[n]"])
            raise _fail(
                address, rest_pos[0], f"unknown type {_clip(rest[0])!r}; expected one of {names}"
            )
        if table in _BIT_TABLES and dtype is not DataType.BOOL:
            raise _fail(address, rest_pos[0], f"'{table}' holds single bits: only bool fits")
        if table not in _BIT_TABLES and dtype is DataType.BOOL:
            raise _fail(address, rest_pos[0], "bool is for coils (co) and discrete inputs (di)")
    if len(rest) == 2:
        order_text = rest[1].upper()
        try:
            order = ByteOrder(order_text)
        except ValueError:
            raise _fail(
                address,
                rest_pos[1],
                f"unknown byte order {_clip(rest[1])!r}; use ABCD, CDAB, BADC, DCBA",
            ) from None
        if table in _BIT_TABLES:
            raise _fail(address, rest_pos[1], "bits have no byte order")
        single_word = dtype.size <= 2 or dtype is DataType.STRING
        if single_word and order.swap_words:
            raise _fail(
                address,
                rest_pos[1],
                f"{order.value} swaps words, but {dtype.value} has none; use ABCD or BADC",
            )
    parsed = ModbusAddress(table, offset, dtype, order, length, unit)
    if parsed.end - 1 > _LAST_ADDRESS:
        raise _fail(
            address,
            positions[1] if head in ("co", "di", "ir", "hr") else positions[0],
            f"{dtype.value} at {offset} needs {parsed.count} registers, past {_LAST_ADDRESS}",
        )
    return parsed

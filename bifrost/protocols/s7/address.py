"""The Siemens S7 address grammar (classic absolute addressing, STEP 7 / TIA style).

Case-insensitive; a leading ``%`` (as TIA Portal shows addresses) is accepted::

    DB1.DBX0.1           bit 1 of byte 0 of data block 1             BOOL
    DB1.DBB10            byte 10                                      BYTE
    DB1.DBW2:INT         word at byte 2, read as a signed INT         INT
    DB1.DBD4:REAL        double word at byte 4, as REAL               REAL
    DB2.DBB10:STRING[20] S7 STRING of up to 20 characters at byte 10  STRING
    M0.1  MB3  MW10  MD20:REAL                                        merker (flag) memory
    I0.0  IB0  IW4  ID8      (German: E0.0, EW4)                      process inputs
    Q1.2  QB0  QW2  QD4      (German: A1.2, AW2)                      process outputs

The width letter (``X`` bit, ``B`` byte, ``W`` word, ``D`` double word) implies a
default type (BOOL, BYTE, WORD, DWORD); an explicit ``:TYPE`` must fit the width:

=====  ==============================================================
width  types
=====  ==============================================================
X      BOOL
B      BYTE, SINT, USINT, CHAR, STRING[n]
W      WORD, INT, UINT
D      DWORD, DINT, UDINT, REAL; and the 8-byte LREAL, LINT, ULINT, LWORD
=====  ==============================================================

Classic S7 has no 8-byte width letter: 8-byte types are written on ``D`` (their first
double word), e.g. ``DB1.DBD8:LREAL``. An S7 ``STRING[n]`` occupies ``n + 2`` bytes: a
byte with the maximum length, a byte with the current length, then ``n`` characters.
``CHAR`` is a one-character string.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from typing import Literal

from bifrost.exceptions import AddressError, ArgumentTypeError, value_repr
from bifrost.model import DataType

__all__ = ["MAX_OFFSET", "MAX_STRING_CHARS", "S7Address", "S7_TYPES", "parse_s7_address"]

Area = Literal["DB", "M", "I", "Q"]
Width = Literal["X", "B", "W", "D"]

MAX_STRING_CHARS = 254
"""Longest S7 STRING (its length bytes are single bytes)."""
MAX_OFFSET = 65535
"""Largest byte offset accepted (the size limit of a data block)."""
MAX_DB = 65535

S7_TYPES: dict[str, tuple[DataType, int, str]] = {
    # name: (bifrost data type, size in bytes, widths it may be written on)
    "BOOL": (DataType.BOOL, 1, "X"),
    "BYTE": (DataType.UINT8, 1, "B"),
    "USINT": (DataType.UINT8, 1, "B"),
    "SINT": (DataType.INT8, 1, "B"),
    "CHAR": (DataType.STRING, 1, "B"),
    "WORD": (DataType.UINT16, 2, "W"),
    "UINT": (DataType.UINT16, 2, "W"),
    "INT": (DataType.INT16, 2, "W"),
    "DWORD": (DataType.UINT32, 4, "D"),
    "UDINT": (DataType.UINT32, 4, "D"),
    "DINT": (DataType.INT32, 4, "D"),
    "REAL": (DataType.FLOAT32, 4, "D"),
    "LREAL": (DataType.FLOAT64, 8, "D"),
    "LINT": (DataType.INT64, 8, "D"),
    "ULINT": (DataType.UINT64, 8, "D"),
    "LWORD": (DataType.UINT64, 8, "D"),
}
"""The S7 types understood, with their bifrost type, size and allowed widths."""

_DEFAULT_TYPE: dict[str, str] = {"X": "BOOL", "B": "BYTE", "W": "WORD", "D": "DWORD"}
_AREAS: dict[str, Area] = {"M": "M", "I": "I", "E": "I", "Q": "Q", "A": "Q"}
_STRING_RE = re.compile(r"STRING\[([0-9]+)\]\Z")
# Longer digit runs are refused before int() sees them: past 4300 digits Python itself
# refuses, and no number in an address needs more than 5.
_MAX_DIGITS = 9
_TYPE_HINT = ", ".join([*S7_TYPES, "STRING[n]"])


@dataclass(frozen=True, slots=True)
class S7Address:
    """A parsed S7 address.

    Attributes
    ----------
    area
        ``"DB"`` (data block), ``"M"`` (merkers), ``"I"`` (inputs) or ``"Q"`` (outputs).
    db
        Data block number (0 for the other areas).
    offset
        Byte offset of the first byte.
    width
        ``"X"``, ``"B"``, ``"W"`` or ``"D"`` as written (bits are ``"X"``).
    s7type
        S7 type name, e.g. ``"REAL"``; ``"STRING"`` for strings.
    bit
        Bit number 0-7 for BOOL, else 0.
    length
        Maximum number of characters for STRING, else 0.
    """

    area: Area
    db: int
    offset: int
    width: Width
    s7type: str
    bit: int = 0
    length: int = 0

    @property
    def dtype(self) -> DataType:
        """The bifrost data type of the value."""
        if self.s7type == "STRING":
            return DataType.STRING
        return S7_TYPES[self.s7type][0]

    @property
    def is_bit(self) -> bool:
        """Whether the address names a single bit."""
        return self.width == "X"

    @property
    def size(self) -> int:
        """Bytes the value occupies (a bit occupies its byte for reading)."""
        if self.s7type == "STRING":
            return self.length + 2
        return S7_TYPES[self.s7type][1]

    @property
    def end(self) -> int:
        """One past the last byte the value occupies."""
        return self.offset + self.size

    @property
    def chars(self) -> int:
        """Characters of a string value (CHAR: 1), else 0."""
        if self.s7type == "STRING":
            return self.length
        return 1 if self.s7type == "CHAR" else 0

    def __str__(self) -> str:
        prefix = f"DB{self.db}.DB" if self.area == "DB" else self.area
        if self.is_bit:
            return f"{prefix}{'X' if self.area == 'DB' else ''}{self.offset}.{self.bit}"
        text = f"{prefix}{self.width}{self.offset}"
        if self.s7type == "STRING":
            return f"{text}:STRING[{self.length}]"
        if self.s7type != _DEFAULT_TYPE[self.width]:
            text += f":{self.s7type}"
        return text


def _fail(address: str, position: int, reason: str) -> AddressError:
    return AddressError(address, position, reason, protocol="S7")


def _number(text: str, pos: int, what: str, address: str) -> tuple[int, int]:
    """Read decimal digits of ``text`` from ``pos``; return (value, position after)."""
    end = pos
    while end < len(text) and text[end].isdigit():
        end += 1
    if end == pos:
        got = repr(text[pos]) if pos < len(text) else "the end"
        raise _fail(address, pos, f"expected {what}, got {got}")
    if len(text[pos:end].lstrip("0")) > _MAX_DIGITS:
        raise _fail(address, pos, f"expected {what}; {end - pos} digits is far too large")
    return int(text[pos:end]), end


def parse_s7_address(address: str) -> S7Address:
    """Parse an S7 address string.

    Parameters
    ----------
    address
        For example ``"DB1.DBD4:REAL"``, ``"DB1.DBX0.1"``, ``"MW10"``, ``"I0.0"``,
        ``"DB2.DBB10:STRING[20]"``.

    Returns
    -------
    S7Address

    Raises
    ------
    AddressError
        Naming the address and the position of the fault.
    """
    if not isinstance(address, str):
        # Checked before the cache, which would fail on an unhashable argument.
        raise ArgumentTypeError(
            f"an S7 address must be a string, got {value_repr(address)} ({type(address).__name__})"
        )
    return _parse(address)


@functools.lru_cache(maxsize=65536)
def _parse(address: str) -> S7Address:
    if not address.isascii():
        # upper() is length-preserving only on ASCII ('ß' -> 'SS') and maps some letters
        # onto ASCII ones (dotless i -> 'I'); and '²' passes str.isdigit but not int().
        position = next(i for i, c in enumerate(address) if not c.isascii())
        raise _fail(address, position, f"unexpected {address[position]!r}: addresses are ASCII")
    # Positions refer to `address` as given: work on an upper-cased copy of equal length.
    text = address.upper()
    pos = len(text) - len(text.lstrip())
    stop = len(text.rstrip())
    text = text[:stop]
    if pos < stop and text[pos] == "%":
        pos += 1
    if pos >= stop:
        raise _fail(address, pos, "expected an area: DB<n>., M, I (E) or Q (A)")

    area: Area
    db = 0
    if text.startswith("DB", pos) and pos + 2 < stop and text[pos + 2].isdigit():
        area = "DB"
        db_pos = pos + 2
        db, pos = _number(text, db_pos, "a data block number", address)
        if not 1 <= db <= MAX_DB:
            raise _fail(address, db_pos, f"data block number must be 1-{MAX_DB}")
        if not text.startswith(".DB", pos):
            raise _fail(address, pos, "expected '.DBX', '.DBB', '.DBW' or '.DBD' after the DB")
        pos += 3
        if pos >= stop or text[pos] not in "XBWD":
            raise _fail(address, pos, "expected a width: X (bit), B, W or D")
        width: Width = text[pos]  # type: ignore[assignment]
        pos += 1
    elif text[pos] in _AREAS:
        area = _AREAS[text[pos]]
        pos += 1
        if pos < stop and text[pos] in "XBWD":
            width = text[pos]  # type: ignore[assignment]
            pos += 1
        elif pos < stop and text[pos].isdigit():
            width = "X"  # `M0.1`, `I0.0`: a bare offset names a bit
        else:
            raise _fail(address, pos, "expected a width (X, B, W, D) or a byte offset")
    else:
        raise _fail(address, pos, "expected an area: DB<n>.DB..., M, I (E) or Q (A)")

    offset_pos = pos
    offset, pos = _number(text, pos, "a byte offset", address)
    if offset > MAX_OFFSET:
        raise _fail(address, offset_pos, f"byte offset {offset} is beyond {MAX_OFFSET}")
    bit = 0
    if width == "X":
        if pos >= stop or text[pos] != ".":
            raise _fail(address, pos, "a bit address needs '.bit' (0-7), e.g. 0.1")
        bit_pos = pos + 1
        bit, pos = _number(text, bit_pos, "a bit number 0-7", address)
        if bit > 7:
            raise _fail(address, bit_pos, f"bit number {bit} is outside 0-7")
    elif pos < stop and text[pos] == ".":
        raise _fail(address, pos, f"only bit addresses (X) take '.bit'; width {width} has none")

    s7type = _DEFAULT_TYPE[width]
    length = 0
    if pos < stop:
        if text[pos] != ":":
            raise _fail(address, pos, "expected ':TYPE' or the end of the address")
        type_pos = pos + 1
        type_text = text[type_pos:].strip()
        if not type_text:
            raise _fail(address, type_pos, f"expected a type after ':'; one of {_TYPE_HINT}")
        string_match = _STRING_RE.match(type_text)
        if string_match:
            digits = string_match.group(1)
            length = int(digits) if len(digits.lstrip("0")) <= _MAX_DIGITS else 0
            s7type = "STRING"
            if not 1 <= length <= MAX_STRING_CHARS:
                raise _fail(address, type_pos, f"STRING length must be 1-{MAX_STRING_CHARS}")
            allowed = "B"
        elif type_text in S7_TYPES:
            s7type = type_text
            allowed = S7_TYPES[type_text][2]
        else:
            shown = type_text if len(type_text) <= 12 else f"{type_text[:12]}…"
            raise _fail(address, type_pos, f"unknown S7 type {shown!r}; expected {_TYPE_HINT}")
        if width not in allowed:
            need = {"X": "X (a bit)", "B": "B", "W": "W", "D": "D"}[allowed]
            raise _fail(
                address,
                type_pos,
                f"{s7type} does not fit width {width}; write it on {need}"
                + (" (8-byte types go on D)" if allowed == "D" and _size(s7type) == 8 else ""),
            )
    parsed = S7Address(area, db, offset, width, s7type, bit, length)
    if parsed.end - 1 > MAX_OFFSET:
        raise _fail(
            address, offset_pos, f"{s7type} at byte {offset} needs {parsed.size} bytes, past 65535"
        )
    return parsed


def _size(s7type: str) -> int:
    return S7_TYPES[s7type][1] if s7type in S7_TYPES else 0

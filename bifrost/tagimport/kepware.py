"""Tag tables from Kepware (KEPServerEX) tag CSV exports of Modbus and Siemens S7 devices.

The export's header row names the columns: ``Tag Name``, ``Address``, ``Data Type``,
``Respect Data Type``, ``Client Access``, ``Scan Rate``, ``Scaling``, ``Raw Low``,
``Raw High``, ``Scaled Low``, ``Scaled High``, ``Scaled Data Type``, ``Clamp Low``,
``Clamp High``, ``Eng Units``, ``Description`` (Kepware's own order; only the first three
are needed here). What they become:

- ``Address``: Modbus ``400001``/``40001`` (holding), ``300001`` (input), ``000001``
  (coil), ``100001`` (discrete input), 1-based as Kepware's zero-based addressing shows
  them, and strings ``400001.20H`` (20 characters, high byte first; ``L`` low byte
  first); S7 ``DB1.DBD0``, ``DB1.DBX0.1``, ``MW10``, ``I0.0``, ``QB2`` ... A register bit
  (``400001.5``) or an array (``400001 [10]``) is not a bifrost address.
- ``Data Type``: Boolean, Char, Byte, Short, Word, Long, DWord, LLong, QWord, Float,
  Double, String (``Default``: the address's natural type). BCD, LBCD and Date are not
  read by bifrost.
- ``Client Access`` ``R/W`` (or ``RW``) makes the tag writable.
- ``Scaling`` ``Linear`` with ``Raw Low/High`` and ``Scaled Low/High`` becomes scale and
  offset; with ``Clamp Low/High`` the scaled limits become the tag's min/max (bifrost
  marks a value outside them UNCERTAIN and refuses writes outside them). ``Square Root``
  scaling is not supported.
- ``Eng Units`` the unit, ``Description`` the description; the Kepware tag group path
  stays in the name (``Line1.Motor.Speed``).

Kepware's Modbus devices store 32- and 64-bit values low word first by default ("First
Word Low" in the device's data encoding): ``first_word_low=False`` if the device was set
otherwise.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Mapping

from bifrost.tagimport._addresses import modbus_address, order_for
from bifrost.tagimport._source import Entry, Source, number
from bifrost.tags import TagTable, TextSource, read_tag_text

__all__ = ["from_kepware"]

_MODBUS = re.compile(r"^([0134])(\d{4,5})(?:\.(\d+)([HL])?)?$")
_S7 = re.compile(r"^%?(DB\d+\.DB[XBWD]\d+(?:\.\d+)?|[IQMEA][BWD]?\d+(?:\.\d+)?)$", re.IGNORECASE)
_TABLES = {"0": "co", "1": "di", "3": "ir", "4": "hr"}
# Kepware type -> (Modbus type, S7 type); None: that protocol has no such value.
_TYPES: dict[str, tuple[str | None, str | None]] = {
    "boolean": ("bool", "BOOL"),
    "char": (None, "SINT"),
    "byte": (None, "BYTE"),
    "short": ("int16", "INT"),
    "word": ("uint16", "WORD"),
    "long": ("int32", "DINT"),
    "dword": ("uint32", "DWORD"),
    "llong": ("int64", "LINT"),
    "qword": ("uint64", "ULINT"),
    "float": ("float32", "REAL"),
    "double": ("float64", "LREAL"),
    "string": ("string", "STRING"),
}
_NOT_READ = {"bcd", "lbcd", "date", "float array", "word array"}
_WIDTH_TYPES = {"X": "BOOL", "B": "BYTE", "W": "WORD", "D": "DWORD"}
_WRITABLE = {"r/w", "rw", "read/write", "wo", "write only"}


def from_kepware(
    source: TextSource,
    *,
    protocol: str | None = None,
    first_word_low: bool = True,
    skip_unsupported: bool = False,
    encoding: str | None = None,
) -> TagTable:
    """Read a Kepware tag CSV export (see the module docstring).

    Raises
    ------
    ConfigurationError
        Naming the file, the line and the column at fault.
    """
    if protocol not in (None, "modbus", "s7"):
        raise Source("Kepware CSV", "Kepware").error(
            f"protocol must be 'modbus', 's7' or None (told from the addresses), got {protocol!r}"
        )
    content, where = read_tag_text(source, encoding)
    src = Source(where, "Kepware", content, skip_unsupported=skip_unsupported)
    rows = csv.DictReader(io.StringIO(content))
    try:
        header = rows.fieldnames or []
        if not {"Tag Name", "Address"} <= {h.strip() for h in header}:
            raise src.error(
                "the header row needs Kepware's 'Tag Name' and 'Address' columns "
                f"(got {', '.join(map(repr, header[:6]))})",
                1,
            )
        for row in rows:
            cells = {k.strip(): (v or "").strip() for k, v in row.items() if isinstance(k, str)}
            if not any(cells.values()):
                continue
            _row(src, cells, rows.line_num, protocol, first_word_low)
    except csv.Error as exc:
        raise src.error(f"not valid CSV: {exc}", rows.line_num) from None
    return src.table()


def _row(
    src: Source, cells: Mapping[str, str], line: int, protocol: str | None, first_word_low: bool
) -> None:
    name = cells.get("Tag Name", "")
    shown = cells.get("Address", "")
    if not name:
        raise src.error("a tag without a name", line, "Tag Name")
    kind = cells.get("Data Type", "").strip().lower() or "default"
    if kind in _NOT_READ:
        src.unsupported(name, f"the data type {cells['Data Type']!r}", line, "Data Type")
        return
    if kind != "default" and kind not in _TYPES:
        raise src.error(
            f"{name!r}: unknown data type {cells.get('Data Type')!r}", line, "Data Type"
        )
    compact = shown.replace(" ", "")
    is_modbus = _MODBUS.match(compact) is not None
    chosen = protocol or ("modbus" if is_modbus else "s7" if _S7.match(compact) else None)
    if chosen is None:
        if "[" in compact:
            src.unsupported(name, f"the array address {shown!r}", line, "Address")
            return
        raise src.error(
            f"{name!r}: {shown!r} is neither a Kepware Modbus address (400001) nor an S7 "
            "one (DB1.DBD0)",
            line,
            "Address",
        )
    entry = Entry(
        name=name,
        address="",
        protocol=chosen,
        line=line,
        source_address=shown,
        unit=cells.get("Eng Units", ""),
        description=cells.get("Description", ""),
        writable=cells.get("Client Access", "").lower() in _WRITABLE,
        meta={"kepware_type": cells.get("Data Type", "")},
    )
    address = (
        _modbus_address(src, entry, compact, kind, first_word_low)
        if chosen == "modbus"
        else _s7_address(src, entry, compact, kind)
    )
    if address is None:
        return
    entry.address = address
    _scaling(src, entry, cells)
    src.add(entry, "Address")


def _modbus_address(
    src: Source, entry: Entry, address: str, kind: str, first_word_low: bool
) -> str | None:
    match = _MODBUS.match(address)
    if match is None:
        raise src.error(
            f"{entry.name!r}: {entry.source_address!r} is not a Kepware Modbus address",
            entry.line,
            "Address",
        )
    digit, reference, suffix, byte_order = match.groups()
    table = _TABLES[digit]
    if int(reference) == 0:
        raise src.error(
            f"{entry.name!r}: Kepware's Modbus references start at 1", entry.line, "Address"
        )
    offset = int(reference) - 1
    natural = "bool" if table in ("co", "di") else "uint16"
    dtype = natural if kind == "default" else _TYPES[kind][0]
    if suffix is not None and byte_order is None:
        src.unsupported(entry.name, "a bit of a register", entry.line, "Address")
        return None
    if dtype is None:
        src.unsupported(entry.name, f"{kind} values in Modbus registers", entry.line, "Data Type")
        return None
    if table in ("co", "di"):
        if dtype != "bool":
            raise src.error(
                f"{entry.name!r}: coils and discrete inputs are Boolean, not {kind}",
                entry.line,
                "Data Type",
            )
        return modbus_address(table, offset)
    if dtype == "bool":
        src.unsupported(entry.name, "a Boolean in a register", entry.line, "Data Type")
        return None
    if dtype == "string":
        if suffix is None:
            raise src.error(
                f"{entry.name!r}: a string address needs its length, e.g. 400001.20H",
                entry.line,
                "Address",
            )
        dtype = f"string[{int(suffix)}]"
        order = "ABCD" if byte_order == "H" else "BADC"
        return modbus_address(table, offset, dtype, order)
    order = order_for(dtype, "CDAB" if first_word_low else "ABCD")
    return modbus_address(table, offset, dtype, order)


def _s7_address(src: Source, entry: Entry, address: str, kind: str) -> str | None:
    text = address.lstrip("%").upper()
    match = re.match(r"^(DB\d+\.DB|[IQMEA])([XBWD]?)(\d+)(?:\.(\d+))?$", text)
    if match is None:
        raise src.error(
            f"{entry.name!r}: {entry.source_address!r} is not an S7 address like DB1.DBD0",
            entry.line,
            "Address",
        )
    width = match.group(2) or ("X" if match.group(4) is not None else "")
    s7type = _TYPES[kind][1] if kind != "default" else _WIDTH_TYPES.get(width)
    if s7type is None:
        raise src.error(
            f"{entry.name!r}: {entry.source_address!r} needs a data type", entry.line, "Data Type"
        )
    if (s7type == "BOOL") != (width == "X"):
        raise src.error(
            f"{entry.name!r}: {entry.source_address!r} is "
            f"{'a bit' if width == 'X' else 'not a bit address'}, but the data type is "
            f"{_shown_type(kind)}",
            entry.line,
            "Data Type",
        )
    if s7type == "BOOL":
        return text
    if s7type == "STRING":
        if match.group(4) is None:
            raise src.error(
                f"{entry.name!r}: a string address needs its length, e.g. DB1.DBB10.20",
                entry.line,
                "Address",
            )
        return f"{text.rsplit('.', 1)[0]}:STRING[{int(match.group(4))}]"
    return f"{text}:{s7type}"


def _scaling(src: Source, entry: Entry, cells: Mapping[str, str]) -> None:
    mode = cells.get("Scaling", "").strip().lower()
    if mode in ("", "none", "0"):
        return
    if mode not in ("linear", "1"):
        raise src.error(
            f"{entry.name!r}: {cells['Scaling']!r} scaling is not supported (only Linear)",
            entry.line,
            "Scaling",
        )
    values = {}
    for column in ("Raw Low", "Raw High", "Scaled Low", "Scaled High"):
        value = number(src, cells.get(column), entry.line, column)
        if value is None:
            raise src.error(f"{entry.name!r}: Linear scaling needs {column}", entry.line, column)
        values[column] = value
    raw_span = values["Raw High"] - values["Raw Low"]
    if raw_span == 0:
        raise src.error(
            f"{entry.name!r}: Raw Low and Raw High are both {values['Raw Low']:g}",
            entry.line,
            "Raw High",
        )
    entry.scale = (values["Scaled High"] - values["Scaled Low"]) / raw_span
    entry.offset = values["Scaled Low"] - values["Raw Low"] * entry.scale
    if entry.scale == 0:
        raise src.error(
            f"{entry.name!r}: Scaled Low and Scaled High are both {values['Scaled Low']:g}",
            entry.line,
            "Scaled High",
        )
    low, high = sorted((values["Scaled Low"], values["Scaled High"]))
    if _flag(cells.get("Clamp Low")):
        entry.min = low
    if _flag(cells.get("Clamp High")):
        entry.max = high
    entry.meta["kepware_scaling"] = (
        f"linear raw {values['Raw Low']:g}..{values['Raw High']:g} -> "
        f"{values['Scaled Low']:g}..{values['Scaled High']:g}"
    )


def _shown_type(kind: str) -> str:
    """A Kepware data type as the export writes it."""
    return "Default" if kind == "default" else kind.capitalize()


def _flag(text: str | None) -> bool:
    return (text or "").strip().lower() in ("1", "true", "yes", "on")

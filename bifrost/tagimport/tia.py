"""Tag tables from TIA Portal exports: PLC tag tables (xlsx, SimaticML XML) and data blocks.

Three exports are understood:

- **PLC tag table, Excel** (the tag table's *Export* button): sheet ``PLC Tags`` with the
  columns ``Name``, ``Path``, ``Data Type``, ``Logical Address`` (``%MW10``, ``%I0.0``,
  ``%DB1.DBX0.0``), ``Comment`` (and HMI columns, not used). Needs openpyxl
  (``pip install "bifrost-core[xlsx]"``).
- **PLC tag table, SimaticML** (TIA Openness ``Export()``): ``SW.Tags.PlcTag`` elements
  with ``Name``, ``DataTypeName``, ``LogicalAddress`` and a ``Comment`` text.
- **Global data block, SimaticML**: ``SW.Blocks.GlobalDB`` with its ``Number``,
  ``MemoryLayout`` and the ``Static`` section's members. Members with an ``Offset``
  attribute (e.g. ``6.1``) keep it; otherwise the offsets are those of TIA's standard
  memory layout (bits packed, bytes after them, everything wider on even bytes, structs
  and strings on even bytes and of even size), so the DB must have *standard* (not
  optimized) block access, which is also what classic S7 reads need. Arrays of
  elementary types become one tag per element (``Plant.Speeds[2]``).

TIA types map to bifrost's S7 types (``Int`` -> ``INT``, ``Real`` -> ``REAL``,
``String[20]`` -> ``STRING[20]``; ``Time`` is read as ``DINT`` milliseconds); other types
(``DTL``, ``Date``, user types) are errors unless ``skip_unsupported=True``.
"""

from __future__ import annotations

import os
import re
import xml.parsers.expat
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from bifrost._extras import require
from bifrost.exceptions import ConfigurationError
from bifrost.tagimport._addresses import s7_address
from bifrost.tagimport._source import Entry, Source
from bifrost.tags import TagTable

__all__ = ["from_tia"]

_ELEMENTARY = {
    "bool": "BOOL",
    "byte": "BYTE",
    "char": "CHAR",
    "sint": "SINT",
    "usint": "USINT",
    "int": "INT",
    "uint": "UINT",
    "word": "WORD",
    "dint": "DINT",
    "udint": "UDINT",
    "dword": "DWORD",
    "real": "REAL",
    "lreal": "LREAL",
    "lint": "LINT",
    "ulint": "ULINT",
    "lword": "LWORD",
    "time": "DINT",  # signed milliseconds
}
_SIZES = {"BOOL": 0, "BYTE": 1, "CHAR": 1, "SINT": 1, "USINT": 1, "INT": 2, "UINT": 2}
_SIZES.update({"WORD": 2, "DINT": 4, "UDINT": 4, "DWORD": 4, "REAL": 4})
_SIZES.update({"LREAL": 8, "LINT": 8, "ULINT": 8, "LWORD": 8})
# Types bifrost does not read but whose size is known, so the layout goes on past them.
_SKIPPED_SIZES = {
    "date": 2,
    "s5time": 2,
    "time_of_day": 4,
    "tod": 4,
    "ltime": 8,
    "date_and_time": 8,
    "dt": 8,
    "dtl": 12,
    "wchar": 2,
}
_STRING = re.compile(r"^(w?string)(?:\s*\[\s*(\d+)\s*\])?$", re.IGNORECASE)
_ARRAY = re.compile(r"^array\s*\[\s*(-?\d+)\s*\.\.\s*(-?\d+)\s*\]\s*of\s+(.+)$", re.IGNORECASE)
_ADDRESS = re.compile(r"^%?(DB\d+\.DB|[IQMEA])([XBWD]?)(\d+)(?:\.(\d+))?$", re.IGNORECASE)
_XLSX_COLUMNS = ("Name", "Data Type", "Logical Address")


def from_tia(source: str | os.PathLike[str], *, skip_unsupported: bool = False) -> TagTable:
    """Read a TIA Portal tag table (``.xlsx``/``.xml``) or data block (``.xml``) export.

    Raises
    ------
    ConfigurationError
        Naming the file, the line (or sheet row) and the field at fault.
    MissingDependency
        For an ``.xlsx`` file without openpyxl installed.
    """
    path = Path(source)
    where = str(path)
    if not path.is_file():
        raise ConfigurationError(f"the TIA Portal export {where!r} does not exist")
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        return _from_xlsx(path, skip_unsupported)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigurationError(f"cannot read the TIA Portal export {where!r}: {exc}") from None
    src = Source(where, "TIA Portal export", skip_unsupported=skip_unsupported)
    root = _parse_xml(src, data)
    found = False
    for tag in root.iter("SW.Tags.PlcTag"):
        found = True
        _plc_tag_element(src, tag)
    for block in root.iter("SW.Blocks.GlobalDB"):
        found = True
        _data_block(src, block)
    if not found:
        raise src.error(
            "no SW.Tags.PlcTag or SW.Blocks.GlobalDB elements: not a TIA Portal tag table or "
            "data block export"
        )
    return src.table()


# -- PLC tag tables -----------------------------------------------------------------------
def _plc_tag(
    src: Source,
    name: str,
    type_text: str,
    address_text: str,
    line: int | None,
    description: str = "",
    path: str = "",
) -> None:
    if not name:
        raise src.error("a tag without a name", line, "Name")
    s7type, length = _s7_type(type_text)
    if s7type is None:
        src.unsupported(name, f"the data type {type_text!r}", line, "Data Type")
        return
    match = _ADDRESS.match(address_text.strip())
    if match is None:
        raise src.error(
            f"{name!r}: {address_text!r} is not an absolute address like %MW10 or %I0.0",
            line,
            "Logical Address",
        )
    text = address_text.strip().lstrip("%").upper()
    is_bit = match.group(2).upper() == "X" or (not match.group(2) and match.group(4) is not None)
    if (s7type == "BOOL") != is_bit:
        raise src.error(
            f"{name!r}: {address_text!r} does not hold a {type_text}", line, "Logical Address"
        )
    if s7type == "STRING":
        text = f"{text}:STRING[{length}]"
    elif s7type != "BOOL":
        text = f"{text}:{s7type}"
    unit = "ms" if type_text.strip().lower() == "time" else ""
    meta = {"tia_type": type_text, **({"tia_path": path} if path else {})}
    entry = Entry(name, text, "s7", line, address_text, unit=unit, description=description)
    entry.meta.update(meta)
    src.add(entry, "Logical Address")


def _s7_type(type_text: str) -> tuple[str | None, int]:
    """A TIA type as (bifrost S7 type, string length); (None, 0) if bifrost has none."""
    key = type_text.strip().strip('"').lower()
    if key in _ELEMENTARY:
        return _ELEMENTARY[key], 0
    match = _STRING.match(key)
    if match is not None and match.group(1) == "string":
        return "STRING", int(match.group(2) or 254)
    return None, 0


def _from_xlsx(path: Path, skip_unsupported: bool) -> TagTable:
    openpyxl = require("openpyxl", "TIA Portal .xlsx tag tables")
    where = str(path)
    src = Source(where, "TIA Portal export", skip_unsupported=skip_unsupported, line_word="row")
    try:
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as exc:  # openpyxl's own errors (zip, XML) end here
        raise src.error(f"not an Excel workbook openpyxl can read: {exc}") from None
    try:
        sheet = book["PLC Tags"] if "PLC Tags" in book.sheetnames else book.worksheets[0]
        src.where = f"{where}, sheet {sheet.title!r}"
        rows = sheet.iter_rows(values_only=True)
        header = [str(c).strip() if c is not None else "" for c in next(rows, ())]
        missing = [c for c in _XLSX_COLUMNS if c not in header]
        if missing:
            raise src.error(
                f"the header row lacks the column(s) {', '.join(map(repr, missing))} of "
                "TIA Portal's PLC tag export",
                1,
            )
        index = {name: i for i, name in enumerate(header)}
        for number, row in enumerate(rows, start=2):
            cells = {
                name: ("" if i >= len(row) or row[i] is None else str(row[i]).strip())
                for name, i in index.items()
            }
            if not any(cells.values()):
                continue
            _plc_tag(
                src,
                cells["Name"],
                cells["Data Type"],
                cells["Logical Address"],
                number,
                cells.get("Comment", ""),
                cells.get("Path", ""),
            )
    finally:
        book.close()
    return src.table()


def _plc_tag_element(src: Source, element: _Element) -> None:
    attributes = element.child("AttributeList")
    if attributes is None:
        raise src.error("a PLC tag without an AttributeList", element.line, "AttributeList")
    values = {child.name: child.text.strip() for child in attributes.children}
    address = attributes.child("LogicalAddress")
    _plc_tag(
        src,
        values.get("Name", ""),
        values.get("DataTypeName", ""),
        values.get("LogicalAddress", ""),
        element.line if address is None else address.line,
        _multilingual(element),
    )


def _multilingual(element: _Element) -> str:
    for text in element.iter("MultilingualText"):
        if text.attrs.get("CompositionName") != "Comment":
            continue
        for item in text.iter("Text"):
            if item.text.strip():
                return item.text.strip()
    return ""


# -- data blocks --------------------------------------------------------------------------
@dataclass
class _Layout:
    """TIA's standard (non-optimized) memory layout: where the next member goes."""

    byte: int = 0
    bit: int = 0

    def close_bits(self) -> None:
        if self.bit:
            self.byte += 1
            self.bit = 0

    def even(self) -> None:
        self.close_bits()
        self.byte += self.byte % 2

    def place(self, size: int) -> int:
        """Byte offset of a value of ``size`` bytes (0: a bit), advancing past it."""
        if size == 0:
            offset = self.byte
            self.bit += 1
            if self.bit == 8:
                self.byte += 1
                self.bit = 0
            return offset
        if size == 1:
            self.close_bits()
        else:
            self.even()
        offset = self.byte
        self.byte += size
        return offset

    def place_here(self, size: int) -> int:
        """Like :meth:`place` for a value whose offset the export gives (no alignment)."""
        offset = self.byte
        if size == 0:
            self.bit += 1
            self.byte, self.bit = self.byte + self.bit // 8, self.bit % 8
        else:
            self.byte += size
            self.bit = 0
        return offset


def _data_block(src: Source, block: _Element) -> None:
    attributes = block.child("AttributeList")
    values = {c.name: c for c in attributes.children} if attributes is not None else {}
    name = values["Name"].text.strip() if "Name" in values else "DB"
    number_element = values.get("Number")
    if number_element is None or not number_element.text.strip().isdigit():
        raise src.error(f"data block {name!r} has no Number", block.line, "Number")
    db = int(number_element.text.strip())
    layout = values.get("MemoryLayout")
    if layout is not None and layout.text.strip().lower() == "optimized":
        raise src.error(
            f"data block {name!r} (DB{db}) has optimized block access, so its members have no "
            "absolute addresses for S7 reads; switch off 'Optimized block access' in the "
            "block's properties, compile, and export it again",
            layout.line,
            "MemoryLayout",
        )
    sections = [s for s in block.iter("Section") if s.attrs.get("Name") in ("Static", None)]
    cursor = _Layout()
    for section in sections:
        for member in section.children:
            if member.name == "Member":
                _member(src, member, db, name, cursor)


def _member(src: Source, member: _Element, db: int, prefix: str, cursor: _Layout) -> None:
    name = member.attrs.get("Name", "")
    type_text = member.attrs.get("Datatype", "").strip()
    path = f"{prefix}.{name}"
    if not name or not type_text:
        raise src.error(f"a member of {prefix!r} lacks Name or Datatype", member.line, "Member")
    explicit = member.attrs.get("Offset")
    if explicit is not None:
        _place_explicit(src, cursor, explicit, member)
    placed = cursor.place if explicit is None else cursor.place_here
    key = type_text.strip('"').lower()
    if key == "struct":
        cursor.even()
        for child in member.children:
            if child.name == "Member":
                _member(src, child, db, path, cursor)
        cursor.even()
        return
    array = _ARRAY.match(type_text)
    if array is not None:
        _array(src, member, db, path, cursor, array)
        return
    s7type, length = _s7_type(type_text)
    if s7type is None:
        size = _SKIPPED_SIZES.get(key)
        if size is None:
            raise src.error(
                f"{path!r} is of type {type_text!r}, whose size bifrost does not know, so the "
                "offsets of the members after it are unknown; export the DB with offsets or "
                "import a tag table",
                member.line,
                "Datatype",
            )
        placed(size)
        src.unsupported(path, f"the data type {type_text!r}", member.line, "Datatype")
        return
    size = length + 2 if s7type == "STRING" else _SIZES[s7type]
    bit = cursor.bit
    offset = placed(size)
    address = s7_address("DB", db, offset, s7type, bit=bit, length=length)
    unit = "ms" if key == "time" else ""
    entry = Entry(path, address, "s7", member.line, unit=unit, description=_comment(member))
    entry.meta["tia_type"] = type_text
    src.add(entry, "Datatype")


def _place_explicit(src: Source, cursor: _Layout, text: str, member: _Element) -> None:
    match = re.fullmatch(r"\s*(\d+)(?:\.([0-7]))?\s*", text)
    if match is None:
        raise src.error(f"offset {text!r} is not BYTE or BYTE.BIT", member.line, "Offset")
    cursor.byte = int(match.group(1))
    cursor.bit = int(match.group(2) or 0)


def _array(
    src: Source, member: _Element, db: int, path: str, cursor: _Layout, array: re.Match[str]
) -> None:
    low, high, element_type = int(array.group(1)), int(array.group(2)), array.group(3)
    count = high - low + 1
    s7type, length = _s7_type(element_type)
    if s7type is None or count < 1 or count > 65536:
        raise src.error(
            f"{path!r}: bifrost cannot lay out an {member.attrs.get('Datatype')!r}",
            member.line,
            "Datatype",
        )
    cursor.even()
    start = cursor.byte
    size = length + 2 if s7type == "STRING" else _SIZES[s7type]
    for k in range(count):
        if s7type == "BOOL":
            offset, bit = start + k // 8, k % 8
        else:
            offset, bit = start + k * size, 0
        address = s7_address("DB", db, offset, s7type, bit=bit, length=length)
        entry = Entry(f"{path}[{low + k}]", address, "s7", member.line)
        entry.meta["tia_type"] = element_type
        src.add(entry, "Datatype")
    cursor.byte = start + ((count + 7) // 8 if s7type == "BOOL" else count * size)
    cursor.even()


def _comment(member: _Element) -> str:
    comment = member.child("Comment")
    if comment is None:
        return ""
    for text in comment.iter("MultiLanguageText"):
        if text.text.strip():
            return text.text.strip()
    return comment.text.strip()


# -- XML with line numbers ----------------------------------------------------------------
@dataclass
class _Element:
    """An XML element with its local name and the line it starts on."""

    name: str
    attrs: dict[str, str]
    line: int
    children: list[_Element] = field(default_factory=list)
    text: str = ""

    def child(self, name: str) -> _Element | None:
        return next((c for c in self.children if c.name == name), None)

    def iter(self, name: str) -> Iterator[_Element]:
        if self.name == name:
            yield self
        for child in self.children:
            yield from child.iter(name)


def _parse_xml(src: Source, data: bytes) -> _Element:
    # expat directly: ElementTree's C parser keeps no line numbers.
    parser = xml.parsers.expat.ParserCreate(namespace_separator=" ")
    stack: list[_Element] = [_Element("", {}, 0)]

    def start(name: str, attrs: dict[str, str]) -> None:
        local = name.rsplit(" ", 1)[-1]
        attributes = {k.rsplit(" ", 1)[-1]: v for k, v in attrs.items()}
        element = _Element(local, attributes, parser.CurrentLineNumber)
        stack[-1].children.append(element)
        stack.append(element)

    def end(name: str) -> None:
        stack.pop()

    def characters(data: str) -> None:
        stack[-1].text += data

    parser.StartElementHandler = start
    parser.EndElementHandler = end
    parser.CharacterDataHandler = characters
    try:
        parser.Parse(data, True)
    except xml.parsers.expat.ExpatError as exc:
        raise src.error(f"not valid XML: {exc}", exc.lineno) from None
    return stack[0]

"""Tag tables from TIA Portal XML exports (a data block's tag list), through snap7's reader."""

from __future__ import annotations

import os
from typing import Any

from bifrost.exceptions import AddressError, ConfigurationError
from bifrost.model import Tag
from bifrost.protocols.s7.address import S7_TYPES, parse_s7_address
from bifrost.tags import TagTable

__all__ = ["tags_from_tia"]


def tags_from_tia(path: str | os.PathLike[str]) -> TagTable:
    """Import the tags of a TIA Portal XML export (a data block's tag list).

    Uses python-snap7's TIA reader; each tag's absolute offset becomes an S7 address,
    e.g. ``DB1.DBD4:REAL``. Tags of types bifrost does not decode are skipped.

    Raises
    ------
    ConfigurationError
        If the file cannot be read or holds no usable tags.
    """
    from snap7.tags import load_tia_xml

    try:
        loaded = load_tia_xml(os.fspath(path))
    except Exception as exc:  # the reader's own errors (XML, missing fields) end here
        raise ConfigurationError(f"cannot read the TIA Portal export {path!s}: {exc}") from None
    tags = []
    for name, tia in loaded.items():
        address = _address_of_snap7_tag(tia)
        if address is not None:
            tags.append(Tag(name=str(name), address=address))
    if not tags:
        raise ConfigurationError(f"the TIA Portal export {path!s} has no tags bifrost can read")
    return TagTable(tags)


def _address_of_snap7_tag(tia: Any) -> str | None:
    area = {"DB": f"DB{tia.db_number}.DB", "MK": "M", "PE": "I", "PA": "Q"}.get(
        getattr(tia.area, "name", "")
    )
    datatype = str(tia.datatype).upper()
    if area is None or getattr(tia, "count", 1) != 1:
        return None
    if datatype == "BOOL":
        return f"{area}{'X' if area.startswith('DB') else ''}{tia.byte_offset}.{tia.bit}"
    widths = {1: "B", 2: "W", 4: "D", 8: "D"}
    text = f"{area}B{tia.byte_offset}:{datatype}"
    if not datatype.startswith("STRING"):
        if datatype not in S7_TYPES:
            return None
        text = f"{area}{widths[S7_TYPES[datatype][1]]}{tia.byte_offset}:{datatype}"
    try:
        parse_s7_address(text)
    except AddressError:
        return None
    return text

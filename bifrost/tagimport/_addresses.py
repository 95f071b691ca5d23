"""bifrost address strings built from the parts other tools describe (checked later)."""

from __future__ import annotations

from bifrost.protocols.s7.address import S7_TYPES

__all__ = ["modbus_address", "order_for", "s7_address"]

_WIDTH_OF_SIZE = {1: "B", 2: "W", 4: "D", 8: "D"}  # classic S7 has no 8-byte width letter


def modbus_address(
    table: str, offset: int, dtype: str = "", order: str = "ABCD", unit: int | None = None
) -> str:
    """``hr:100:float32:CDAB@2``; the type is left out for bits, the order when ABCD."""
    text = f"{table}:{offset}"
    if table in ("hr", "ir"):
        text += f":{dtype or 'uint16'}"
        if order != "ABCD":
            text += f":{order}"
    if unit is not None:
        text += f"@{unit}"
    return text


def order_for(dtype: str, order: str) -> str:
    """A 32-bit style order (ABCD...) as it applies to ``dtype``.

    One-register values have no words to swap: CDAB is ABCD for them and DCBA is BADC,
    which is what the tools mean when one byte order is set for every register.
    """
    single = dtype in ("int16", "uint16") or dtype.startswith("string")
    if single:
        return {"CDAB": "ABCD", "DCBA": "BADC"}.get(order, order)
    return order


def s7_address(area: str, db: int, offset: int, s7type: str, bit: int = 0, length: int = 0) -> str:
    """``DB1.DBD4:REAL``, ``DB1.DBX0.1``, ``MW10:INT``, ``I0.0``, ``DB2.DBB10:STRING[20]``.

    ``area`` is ``DB``, ``M``, ``I`` or ``Q``; ``s7type`` a name of
    :data:`~bifrost.protocols.s7.address.S7_TYPES` or ``STRING``.
    """
    prefix = f"DB{db}.DB" if area == "DB" else area
    if s7type == "BOOL":
        return f"{prefix}{'X' if area == 'DB' else ''}{offset}.{bit}"
    if s7type == "STRING":
        return f"{prefix}B{offset}:STRING[{length}]"
    size = S7_TYPES[s7type][1] if s7type in S7_TYPES else 1
    return f"{prefix}{_WIDTH_OF_SIZE.get(size, 'B')}{offset}:{s7type}"

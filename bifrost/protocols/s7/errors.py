"""What an S7 refusal means and what to change on the PLC, from the code in snap7's error.

A CPU answers a request it will not serve in one of two places:

- the **header** of the reply (a 16-bit error class and code, such as ``0x8104``): the
  whole request was refused. snap7's C library reports every such reply as "CLI :
  function refused by CPU"; python-snap7 3.3 as "S7 protocol error (class=0x81,
  code=0x04)". On an S7-1200/1500 this is what a read gets while PUT/GET access is off,
  and what a read of a data block with optimized block access may get;
- the **item return code** of each address (one byte: ``0x05`` invalid address, ``0x0A``
  object does not exist, ``0x03`` access not allowed...): that address was refused.

:func:`diagnose` turns either into one sentence naming the data block and the setting in
TIA Portal to change.
"""

from __future__ import annotations

import re

__all__ = [
    "ACCESS_DENIED",
    "FUNCTION_REFUSED",
    "INVALID_ADDRESS",
    "NO_OBJECT",
    "diagnose",
    "error_code",
]

# Item return codes (one byte, 0xFF is success).
HARDWARE_FAULT = 0x01
ACCESS_DENIED = 0x03
INVALID_ADDRESS = 0x05
TYPE_NOT_SUPPORTED = 0x06
TYPE_INCONSISTENT = 0x07
NO_OBJECT = 0x0A
# Header error words (class << 8 | code) that mean "the CPU refused the function".
FUNCTION_REFUSED = 0x8104
_REFUSED_HEADERS = frozenset({0x8104, 0x8500, 0x8304, 0x8305, 0x8404, 0x8702, 0x8703})
_PROTECTION_HEADERS = frozenset({0xD0A1, 0xD241, 0xD602})
_RESOURCE_HEADERS = frozenset({0x011A, 0x011B, 0x8301, 0x8302, 0x0141})
# snap7's C library's own code for any refused header (errCliFunctionRefused).
_CLI_FUNCTION_REFUSED = 0x02300000
_ITEM_CODE = re.compile(r"\(0x([0-9a-fA-F]{2})\)")
_HEADER_CODE = re.compile(r"class=0x([0-9a-fA-F]{1,2}), code=0x([0-9a-fA-F]{1,2})")

PUT_GET = (
    "in TIA Portal open the CPU's Properties > Protection & Security > Connection "
    "mechanisms, tick 'Permit access with PUT/GET communication from remote partner' "
    "and download the hardware configuration"
)


def optimized(block: str) -> str:
    """The TIA Portal step that gives a data block absolute addresses again."""
    return (
        f"open {block}'s Properties > Attributes in TIA Portal, untick 'Optimized block "
        "access', compile and download it (optimized blocks have no byte offsets to read)"
    )


def error_code(exc: BaseException) -> int | None:
    """The S7 code of a snap7 error: the header word, else the item return code."""
    code = getattr(exc, "error_code", None)
    if isinstance(code, int) and code:
        return code
    text = str(exc)
    header = _HEADER_CODE.search(text)
    if header:
        return (int(header.group(1), 16) << 8) | int(header.group(2), 16)
    item = _ITEM_CODE.search(text)
    if item:
        return int(item.group(1), 16)
    if "function refused" in text.lower():
        return _CLI_FUNCTION_REFUSED
    return None


def diagnose(code: int | None, area: str, db: int | None = None) -> str:
    """What the refusal means for an address in ``area`` (``DB``, ``M``, ``I``, ``Q``).

    Returns an empty string for codes that need no advice beyond snap7's own text.
    """
    block = f"DB{db}" if area == "DB" and db is not None else _AREA_NAMES.get(area, area)
    is_db = area == "DB"
    if code is None:
        return ""
    if code in _REFUSED_HEADERS or code == _CLI_FUNCTION_REFUSED:
        fix = f"the CPU refused the function: {PUT_GET}"
        if is_db:
            fix += f"; if that is on already, {optimized(block)}"
        return fix
    if code in _PROTECTION_HEADERS:
        return (
            "the CPU's protection level forbids this access: in TIA Portal set the CPU's "
            "Properties > Protection & Security > Access level to 'Full access' (or "
            f"'Read access' for reading only); {PUT_GET}"
        )
    if code in _RESOURCE_HEADERS:
        return (
            "the CPU has no free connection of this type: close other connections to it "
            "(a TIA Portal online session holds a PG connection) or connect with another "
            "connection_type ('op' or 'basic')"
        )
    if code == INVALID_ADDRESS:
        if is_db:
            return (
                f"{block} has no bytes at this offset: check the address against the "
                f"block's length in TIA Portal; if the offset is right, {optimized(block)}"
            )
        return f"the address is outside the CPU's {block} area: check its size for this CPU"
    if code == NO_OBJECT:
        if is_db:
            return (
                f"{block} does not exist in the CPU or cannot be read by address: check "
                f"the number in TIA Portal's program blocks, and {optimized(block)}"
            )
        return f"the CPU has no {block} area at this address"
    if code == ACCESS_DENIED:
        return (
            f"the CPU does not allow access to {block}: {PUT_GET}; check the CPU's "
            "access level (Protection & Security) and that the block is not write-protected"
        )
    if code in (TYPE_NOT_SUPPORTED, TYPE_INCONSISTENT):
        return "the CPU does not accept this transport size: check the tag's S7 type"
    if code == HARDWARE_FAULT:
        return f"the module behind this {block} address is missing or faulty"
    return ""


_AREA_NAMES = {"M": "the marker (M)", "I": "the input (I)", "Q": "the output (Q)"}

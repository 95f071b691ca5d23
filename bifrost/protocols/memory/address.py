"""The memory address grammar.

One notation, the prefix and type case-insensitive, the key case-sensitive::

    mem:tank.level              key ``tank.level``, float64 (the default type)
    mem:pump.running:bool       key ``pump.running``, bool
    mem:batch.name:string[16]   a string of up to 16 characters
    mem:batch.note:string       a string of up to 254 characters

A key is one or more letters, digits, ``_``, ``.``, ``-`` or ``/``; it names the value in
the :class:`~bifrost.protocols.memory.device.MemoryDevice` (``device["tank.level"]``).
The type is how the value is read and what a write must fit: ``bool``, ``int8`` ...
``uint64``, ``float32``, ``float64``, ``string`` or ``string[n]``.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass

from bifrost.exceptions import AddressError
from bifrost.model import DataType

__all__ = [
    "DEFAULT_STRING_CHARS",
    "MAX_STRING_CHARS",
    "PREFIX",
    "MemoryAddress",
    "check_key",
    "parse_memory_address",
]

PREFIX = "mem:"
DEFAULT_STRING_CHARS = 254  # what an S7 STRING holds by default: a familiar size
MAX_STRING_CHARS = 65535
_KEY_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-/")
_STRING_RE = re.compile(r"string(?:\[(\d+)\])?\Z")
_TYPES = {t.value: t for t in DataType if t is not DataType.STRING}


@dataclass(frozen=True, slots=True)
class MemoryAddress:
    """A parsed memory address.

    Attributes
    ----------
    key
        The name of the value in the device.
    dtype
        How the value is read and what a write must fit.
    length
        Room in characters for strings, else 0.
    """

    key: str
    dtype: DataType = DataType.FLOAT64
    length: int = 0

    @property
    def type_name(self) -> str:
        """``float64``, ``bool``, ``string[16]`` ..."""
        if self.dtype is DataType.STRING:
            return f"string[{self.length}]"
        return str(self.dtype.value)

    def __str__(self) -> str:
        return f"{PREFIX}{self.key}:{self.type_name}"


def _fail(address: str, position: int, reason: str) -> AddressError:
    return AddressError(address, position, reason, protocol="memory")


def check_key(key: str, address: str | None = None, offset: int = 0) -> None:
    """Raise :class:`AddressError` unless ``key`` is a valid key.

    ``address`` and ``offset`` say where the key sits in a longer address, so that the
    error points into the text the user wrote.
    """
    shown = key if address is None else address
    if not key:
        raise _fail(shown, offset, "expected a key (letters, digits, '_', '.', '-', '/')")
    for i, char in enumerate(key):
        if char not in _KEY_CHARS:
            raise _fail(
                shown,
                offset + i,
                f"unexpected {char!r} in the key; keys are letters, digits, '_', '.', '-', '/'",
            )


@functools.lru_cache(maxsize=65536)
def parse_memory_address(address: str) -> MemoryAddress:
    """Parse a memory address string.

    Parameters
    ----------
    address
        For example ``"mem:tank.level"``, ``"mem:pump.running:bool"``.

    Returns
    -------
    MemoryAddress

    Raises
    ------
    AddressError
        Naming the address and the position of the fault.
    """
    if not isinstance(address, str):
        raise TypeError(f"a memory address must be a string, got {type(address).__name__}")
    text = address.strip()
    lead = len(address) - len(address.lstrip())
    if not text.lower().startswith(PREFIX):
        raise _fail(address, lead, f"expected {PREFIX!r} then a key, e.g. 'mem:tank.level'")
    fields = text[len(PREFIX) :].split(":")
    key_pos = lead + len(PREFIX)
    check_key(fields[0], address, key_pos)
    if len(fields) > 2:
        extra = key_pos + len(fields[0]) + 1 + len(fields[1])
        raise _fail(address, extra, "too many ':' fields (mem:key:type)")
    if len(fields) == 1:
        return MemoryAddress(fields[0])
    type_pos = key_pos + len(fields[0]) + 1
    type_text = fields[1].lower()
    string_match = _STRING_RE.match(type_text)
    if string_match:
        length = DEFAULT_STRING_CHARS
        if string_match.group(1) is not None:
            length = int(string_match.group(1))
            if not 1 <= length <= MAX_STRING_CHARS:
                raise _fail(address, type_pos, f"string length must be 1-{MAX_STRING_CHARS}")
        return MemoryAddress(fields[0], DataType.STRING, length)
    dtype = _TYPES.get(type_text)
    if dtype is None:
        names = ", ".join([*_TYPES, "string", "string[n]"])
        raise _fail(address, type_pos, f"unknown type {fields[1]!r}; expected one of {names}")
    return MemoryAddress(fields[0], dtype)

"""Vectorised conversion between 16-bit register images and typed NumPy columns.

Decoding gathers every tag of one (type, order) group with a single fancy-index into the
register image, reorders words/bytes on the whole block and reinterprets it with one
``view``: no Python loop per register or per value (strings excepted).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from bifrost.exceptions import ValueOutOfRange
from bifrost.model import ByteOrder, DataType

__all__ = [
    "decode_registers",
    "decode_strings",
    "encode_registers",
    "encode_string",
    "registers_for",
    "to_raw",
]

U16 = npt.NDArray[np.uint16]


def registers_for(dtype: DataType, length: int = 0) -> int:
    """Number of 16-bit registers a value of ``dtype`` occupies."""
    if dtype is DataType.STRING:
        return (length + 1) // 2
    return max(1, dtype.size // 2)


def _gather(image: U16, starts: npt.NDArray[np.intp], width: int) -> U16:
    index = starts[:, None] + np.arange(width, dtype=np.intp)[None, :]
    gathered: U16 = image[index]
    return gathered


def _reorder(words: U16, order: ByteOrder) -> U16:
    # Bring words into big-endian order (most significant word first, high byte first).
    if order.swap_words:
        words = words[:, ::-1]
    if order.swap_bytes:
        words = words.byteswap()
    return words


def decode_registers(
    image: U16, starts: npt.NDArray[np.intp], dtype: DataType, order: ByteOrder
) -> npt.NDArray[Any]:
    """Decode one numeric value per start index from a register image.

    Parameters
    ----------
    image
        The registers as read, one uint16 per register.
    starts
        Index in ``image`` of the first register of each value.
    dtype, order
        Numeric type and byte/word order shared by all values.

    Returns
    -------
    numpy.ndarray
        One value per start, of ``dtype.numpy_dtype`` in native byte order.
    """
    if dtype is DataType.STRING or dtype is DataType.BOOL:
        raise ValueError(f"decode_registers handles numeric types, not {dtype.value}")
    width = registers_for(dtype)
    words = _reorder(_gather(image, starts, width), order)
    big_endian = np.ascontiguousarray(words, dtype=">u2")
    target = dtype.numpy_dtype
    values = big_endian.view(target.newbyteorder(">")).reshape(len(starts))
    return values.astype(target, copy=False)


def decode_strings(
    image: U16, starts: npt.NDArray[np.intp], length: int, order: ByteOrder
) -> npt.NDArray[np.object_]:
    """Decode strings of ``length`` characters (two per register, NUL-padded)."""
    words = _reorder(_gather(image, starts, registers_for(DataType.STRING, length)), order)
    raw = np.ascontiguousarray(words, dtype=">u2").tobytes()
    step = 2 * words.shape[1] if words.ndim == 2 else 0
    out = np.empty(len(starts), dtype=object)
    for i in range(len(starts)):
        chunk = raw[i * step : i * step + length]
        out[i] = chunk.split(b"\x00", 1)[0].decode("latin-1")
    return out


def encode_registers(values: npt.ArrayLike, dtype: DataType, order: ByteOrder) -> U16:
    """Encode numeric values into registers (the inverse of :func:`decode_registers`).

    Returns
    -------
    numpy.ndarray
        Shape ``(n, registers_for(dtype))`` of uint16.
    """
    native = np.asarray(values, dtype=dtype.numpy_dtype).reshape(-1)
    big_endian = np.ascontiguousarray(native.astype(dtype.numpy_dtype.newbyteorder(">")))
    words = big_endian.view(">u2").reshape(-1, registers_for(dtype)).astype(np.uint16)
    return _reorder(words, order)


def encode_string(text: str, length: int, order: ByteOrder) -> U16:
    """Encode a string into ``ceil(length / 2)`` registers, NUL-padded."""
    data = text.encode("latin-1")
    nregs = registers_for(DataType.STRING, length)
    padded = data.ljust(2 * nregs, b"\x00")
    words = np.frombuffer(padded, dtype=">u2").astype(np.uint16).reshape(1, nregs)
    encoded: U16 = _reorder(words, order)[0]
    return encoded


def to_raw(
    name: str,
    value: Any,
    dtype: DataType,
    *,
    scale: float = 1.0,
    offset: float = 0.0,
    length: int = 0,
) -> Any:
    """Check a value to write and convert it from engineering units to the raw type.

    Raises
    ------
    ValueOutOfRange
        Naming the tag and the value when it does not fit ``dtype``; nothing is sent.
    """
    if dtype is DataType.STRING:
        if not isinstance(value, str):
            raise ValueOutOfRange(f"tag {name!r} is a string; got {value!r}")
        try:
            encoded = value.encode("latin-1")
        except UnicodeEncodeError:
            raise ValueOutOfRange(f"tag {name!r}: {value!r} has non-Latin-1 characters") from None
        if len(encoded) > length:
            raise ValueOutOfRange(
                f"tag {name!r}: {value!r} has {len(encoded)} characters, room for {length}"
            )
        return value
    if dtype is DataType.BOOL:
        if isinstance(value, bool | np.bool_) or value in (0, 1):
            return bool(value)
        raise ValueOutOfRange(f"tag {name!r} is a bool; got {value!r} (use True/False)")
    if isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.number):
        raise ValueOutOfRange(f"tag {name!r} is {dtype.value}; got {value!r}, not a number")
    number = float(value)
    if math.isnan(number) and dtype.is_float:
        return number
    if not math.isfinite(number):
        raise ValueOutOfRange(f"tag {name!r}: {value!r} is not a finite number")
    raw = (number - offset) / scale
    low, high = dtype.bounds()
    if dtype.is_integer:
        rounded = round(raw)
        if abs(rounded - raw) > 1e-6 * max(1.0, abs(raw)):
            raise ValueOutOfRange(
                f"tag {name!r} is {dtype.value}: {value!r} is not representable"
                f" (raw value {raw!r} is not an integer)"
            )
        exact = int(rounded) if isinstance(value, float) or scale != 1 or offset != 0 else value
        info = np.iinfo(dtype.numpy_dtype)
        if not int(info.min) <= int(exact) <= int(info.max):
            raise ValueOutOfRange(
                f"tag {name!r} is {dtype.value}: {value!r} is outside"
                f" {int(low)}..{int(high)}" + (" after scale/offset" if raw != number else "")
            )
        return int(exact)
    if not low <= raw <= high:
        raise ValueOutOfRange(f"tag {name!r} is {dtype.value}: {value!r} overflows it")
    return raw

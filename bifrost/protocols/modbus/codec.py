"""Modbus register images to typed NumPy columns and back, vectorised.

Decoding gathers every tag of one (type, order) group with a single fancy-index into the
register image, reorders words/bytes on the whole block and reinterprets it with one
``view``: no Python loop per register or per value (strings excepted).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from bifrost.model import ByteOrder, DataType

__all__ = [
    "decode_registers",
    "decode_strings",
    "encode_registers",
    "encode_string",
    "registers_for",
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
    target = dtype.numpy_dtype
    if width == 1 and target.itemsize == 2:
        # One register per value (the common case, read every cycle): the register as
        # read is the value's bits, so no gather matrix, byte-order views or copies.
        single: U16 = image[starts]
        if order.swap_bytes:
            single = single.byteswap()
        return single.view(target)
    words = _reorder(_gather(image, starts, width), order)
    big_endian = np.ascontiguousarray(words, dtype=">u2")
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

"""S7 byte images to typed NumPy columns and back (big-endian; bits by shifts)."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from bifrost.model import DataType
from bifrost.protocols.s7.address import S7Address
from bifrost.protocols.s7.plan import DecodeGroup

__all__ = ["decode", "encode"]


def encode(address: S7Address, raw: Any) -> bytes:
    """The bytes a checked raw value is written as."""
    if address.is_bit:
        return b"\x01" if raw else b"\x00"
    if address.s7type == "CHAR":
        return str(raw).encode("latin-1").ljust(1, b"\x00")
    if address.s7type == "STRING":
        data = str(raw).encode("latin-1")
        return bytes((address.length, len(data))) + data.ljust(address.length, b"\x00")
    big_endian = np.array([raw], dtype=address.dtype.numpy_dtype.newbyteorder(">"))
    return big_endian.tobytes()


def decode(
    group: DecodeGroup,
    image: npt.NDArray[np.uint8],
    starts: npt.NDArray[np.intp],
    bits: npt.NDArray[np.uint8],
) -> npt.NDArray[Any]:
    """The raw values of one group's tags from the read's byte image."""
    first = starts[group.positions]
    if group.dtype is DataType.BOOL:
        return ((image[first] >> bits[group.positions]) & 1).astype(np.bool_)
    if group.dtype is DataType.STRING:
        out = np.empty(len(first), dtype=object)
        for i, start in enumerate(first.tolist()):
            if group.s7type == "CHAR":
                out[i] = bytes(image[start : start + 1]).decode("latin-1")
                continue
            # Header: maximum length, current length; a PLC may report a current length
            # beyond the maximum while a string is half-initialised: trust the maximum.
            current = min(int(image[start + 1]), int(image[start]), group.length)
            out[i] = bytes(image[start + 2 : start + 2 + current]).decode("latin-1")
        return out
    index = first[:, None] + np.arange(group.size, dtype=np.intp)[None, :]
    raw = np.ascontiguousarray(image[index])
    target = group.dtype.numpy_dtype
    return raw.view(target.newbyteorder(">")).reshape(len(first)).astype(target)

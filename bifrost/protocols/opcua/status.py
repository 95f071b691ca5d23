"""OPC UA StatusCodes: the families bifrost tells apart, their names, their quality."""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from bifrost.model import Quality

__all__ = ["qualities", "quality_of"]

# StatusCode bits (OPC UA Part 4, 7.39): severity in the top two bits; for InfoType
# DataValue (bits 10-11 = 01) bit 7 says the server's queue overflowed.
_INFO_TYPE_MASK = 0x0C00
_INFO_TYPE_DATAVALUE = 0x0400
_OVERFLOW = 0x0080
_COMM_LOST = {
    0x80050000,  # BadCommunicationError
    0x808A0000,  # BadNotConnected
    0x800D0000,  # BadServerNotConnected
    0x80310000,  # BadNoCommunication
    0x80AE0000,  # BadConnectionClosed
    0x800C0000,  # BadShutdown
    0x800E0000,  # BadServerHalted
    0x80860000,  # BadSecureChannelClosed
    0x80260000,  # BadSessionClosed
    0x80250000,  # BadSessionIdInvalid
}
_TIMEOUTS = {0x800A0000, 0x80850000}  # BadTimeout, BadRequestTimeout
_CONFIG = {
    0x80340000,  # BadNodeIdUnknown
    0x80330000,  # BadNodeIdInvalid
    0x80350000,  # BadAttributeIdInvalid
    0x803A0000,  # BadNotReadable
    0x801F0000,  # BadUserAccessDenied
    0x806F0000,  # BadNoMatch
    0x80600000,  # BadBrowseNameInvalid
}
_NO_DATA = {0x80320000}  # BadWaitingForInitialData
USER_REFUSED = {
    0x801F0000,  # BadUserAccessDenied
    0x80200000,  # BadIdentityTokenInvalid
    0x80210000,  # BadIdentityTokenRejected
}
CERT_REFUSED = {0x80130000, 0x80140000, 0x80150000, 0x80160000, 0x80170000, 0x80180000}
CERT_REFUSED |= {0x80190000, 0x801A0000, 0x801B0000, 0x801C0000, 0x801D0000, 0x80130000}
SECURITY_REFUSED = {0x80130000, 0x80550000, 0x80580000}  # Certificate, PolicyRejected, ...
NOT_WRITABLE = {0x803B0000, 0x801F0000}  # BadNotWritable, BadUserAccessDenied
BAD_VALUE = {0x80740000, 0x803C0000}  # BadTypeMismatch, BadOutOfRange


def quality_of(code: int) -> Quality:
    """Map an OPC UA StatusCode to a :class:`~bifrost.model.Quality` code."""
    if code == 0:
        return Quality.GOOD
    severity = code >> 30
    if severity == 0:
        overflow = (code & _INFO_TYPE_MASK) == _INFO_TYPE_DATAVALUE and code & _OVERFLOW
        return Quality.GOOD_OVERFLOW if overflow else Quality.GOOD
    if severity == 1:
        return Quality.UNCERTAIN
    base = code & 0xFFFF0000
    if base in _COMM_LOST:
        return Quality.BAD_COMM_LOST
    if base in _TIMEOUTS:
        return Quality.BAD_TIMEOUT
    if base in _CONFIG:
        return Quality.BAD_CONFIG
    if base in _NO_DATA:
        return Quality.BAD_NO_DATA
    return Quality.BAD


def qualities(codes: npt.NDArray[np.uint32]) -> npt.NDArray[np.uint8]:
    """:func:`quality_of` of each code (each distinct code mapped once)."""
    out = np.full(len(codes), Quality.GOOD, dtype=np.uint8)
    nonzero = np.flatnonzero(codes)
    if len(nonzero):
        found, inverse = np.unique(codes[nonzero], return_inverse=True)
        table = np.array([quality_of(int(c)) for c in found], dtype=np.uint8)
        out[nonzero] = table[inverse]
    return out


def status_name(code: int) -> str:
    from asyncua import ua as _ua

    ua: Any = _ua  # asyncua's own annotations want its wrapper int types

    try:
        status = ua.StatusCode(code & 0xFFFF0000)
        return f"{status.name}"
    except Exception:  # unknown codes have no name
        return f"0x{code:08X}"

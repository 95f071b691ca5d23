"""Modbus requests, built by hand, and the checks a reply must pass before it is used.

No I/O here. A reply is used only if it answers its request: the request's function code
(or its exception form, ``function | 0x80``, with a code), for reads a byte count of
exactly ``2 * count`` (registers) or ``ceil(count / 8)`` (bits) that agrees with the frame's
length, and for writes the echoed address and value or quantity. Anything else raises
:class:`ReplyMismatch`, which says whether the framing itself is still to be trusted.
"""

from __future__ import annotations

import struct
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

from bifrost.exceptions import ProtocolError

__all__ = [
    "BUSY",
    "DEVICE_IDENTIFICATION",
    "READ_CODES",
    "Reply",
    "ReplyMismatch",
    "Request",
    "check_reply",
    "device_id_request",
    "echo_mismatch",
    "is_good_read",
    "read_request",
    "write_coil_request",
    "write_registers_request",
]

READ_CODES = {"co": 1, "di": 2, "hr": 3, "ir": 4}
_TABLES = {code: table for table, code in READ_CODES.items()}
WRITE_COIL, WRITE_REGISTER, WRITE_COILS, WRITE_REGISTERS = 5, 6, 15, 16
DEVICE_IDENTIFICATION = 0x2B
_READ_DEVICE_ID = 0x0E  # the MEI type of FC 43 that reads identification objects
BUSY = 6  # exception code: SERVER DEVICE BUSY, the one worth asking again
_COIL_ON, _COIL_OFF = 0xFF00, 0x0000

_ADDRESS_COUNT = struct.Struct(">BHH")


@dataclass(frozen=True, slots=True)
class Request:
    """One request as it goes on the wire, with what its reply is checked against."""

    unit: int
    function: int
    address: int
    count: int  # registers or bits read or written
    pdu: bytes  # function code and data
    values: tuple[int, ...] = ()  # what a write sends (a coil as 0/1)
    # A read's: the size of the one good reply PDU (function code, byte count, data),
    # for :func:`is_good_read`; 0 for other requests.
    reply_size: int = 0

    def describe(self) -> str:
        """``reading hr:100..109`` / ``writing hr:5..6``, for messages."""
        last = self.address + self.count - 1
        if self.function in _TABLES:
            return f"reading {_TABLES[self.function]}:{self.address}..{last}"
        if self.function == DEVICE_IDENTIFICATION:
            return "reading the device identification"
        table = "co" if self.function in (WRITE_COIL, WRITE_COILS) else "hr"
        return f"writing {table}:{self.address}..{last}"


class Reply(NamedTuple):
    """A reply that passed the checks: an exception code, or the data.

    ``data`` is the registers (big-endian words) or the packed bits of a read, the echo
    of a write, or everything after the function code for FC 43. A named tuple: one is
    made per reply, hundreds per second per device.
    """

    exception: int | None  # None for a normal reply
    data: bytes = b""


class ReplyMismatch(ProtocolError):
    """A reply that does not answer its request; nothing from it may be used.

    Parameters
    ----------
    reason
        What was wrong, e.g. ``byte count 2, expected 20 for 10 registers``.
    in_sync
        False when the frame's own length cannot be trusted, so the bytes after it are
        not known to start a frame: the connection has to be reopened.
    """

    def __init__(self, reason: str, *, in_sync: bool = True) -> None:
        super().__init__(reason)
        self.reason = reason
        self.in_sync = in_sync


def read_request(unit: int, table: str, start: int, count: int) -> Request:
    """FC 1-4: read ``count`` bits or registers of ``table`` from ``start``."""
    function = READ_CODES[table]
    data = 2 * count if function in (3, 4) else (count + 7) // 8
    pdu = _ADDRESS_COUNT.pack(function, start, count)
    return Request(unit, function, start, count, pdu, (), 2 + data if data < 256 else 0)


def write_coil_request(unit: int, address: int, value: bool) -> Request:
    """FC 5: write one coil."""
    pdu = _ADDRESS_COUNT.pack(WRITE_COIL, address, _COIL_ON if value else _COIL_OFF)
    return Request(unit, WRITE_COIL, address, 1, pdu, (int(value),))


def write_registers_request(unit: int, address: int, words: Sequence[int]) -> Request:
    """FC 16: write consecutive holding registers."""
    n = len(words)
    pdu = _ADDRESS_COUNT.pack(WRITE_REGISTERS, address, n) + struct.pack(f">B{n}H", 2 * n, *words)
    return Request(unit, WRITE_REGISTERS, address, n, pdu, tuple(words))


def device_id_request(unit: int) -> Request:
    """FC 43 / MEI 14: the basic identification objects (read code 1, from object 0)."""
    pdu = bytes((DEVICE_IDENTIFICATION, _READ_DEVICE_ID, 1, 0))
    return Request(unit, DEVICE_IDENTIFICATION, 0, 0, pdu)


def is_good_read(request: Request, pdu: bytes) -> bool:
    """Whether ``pdu`` is exactly the reply a read wants: its function code, byte count and size.

    The check every good read reply passes at the cost of three comparisons; anything
    else goes through :func:`check_reply`, which names what is wrong. Equivalent to
    :func:`check_reply` returning data for a read (the byte count is the expected one and
    agrees with the frame's length).
    """
    size = request.reply_size
    return len(pdu) == size and pdu[0] == request.function and pdu[1] + 2 == size


def check_reply(request: Request, pdu: bytes) -> Reply:
    """The reply ``pdu`` (function code onwards, at least one byte) checked against ``request``.

    Raises
    ------
    ReplyMismatch
        The reply is not an answer to ``request``.
    """
    function = pdu[0]
    if function == request.function | 0x80:
        if len(pdu) != 2:
            raise ReplyMismatch(
                f"an exception reply of {len(pdu)} bytes instead of 2", in_sync=False
            )
        return Reply(pdu[1])
    if function != request.function:
        raise ReplyMismatch(_function_mismatch(function, request.function))
    if request.function in _TABLES:
        return _read_reply(request, pdu)
    if request.function == DEVICE_IDENTIFICATION:
        if len(pdu) < 2 or pdu[1] != _READ_DEVICE_ID:
            raise ReplyMismatch("an FC 43 reply that is not device identification (MEI 14)")
        return Reply(None, pdu[1:])
    return _write_echo(request, pdu)


def echo_mismatch(address: tuple[int, int], value: tuple[object, object], what: str) -> str:
    """What a write's echo got wrong: ``(echoed, sent)`` pairs of address and value."""
    wrong = [
        f"{name} {echoed} (the request's was {sent})"
        for name, (echoed, sent) in (("address", address), (what, value))
        if echoed != sent
    ]
    return "the reply echoes " + " and ".join(wrong)


def _function_mismatch(function: int, expected: int) -> str:
    if function & 0x80:
        return (
            f"an exception reply to function code {function & 0x7F}, "
            f"the request was function code {expected}"
        )
    return f"function code {function} in the reply, expected {expected}"


def _read_reply(request: Request, pdu: bytes) -> Reply:
    if len(pdu) < 2:
        raise ReplyMismatch("a read reply without a byte count", in_sync=False)
    byte_count = pdu[1]
    if len(pdu) != 2 + byte_count:
        # The frame's length and its byte count disagree: either may be the lie, so
        # where the next frame starts is unknown.
        raise ReplyMismatch(
            f"byte count {byte_count}, but the frame carries {len(pdu) - 2} data bytes",
            in_sync=False,
        )
    registers = request.function in (3, 4)
    expected = 2 * request.count if registers else (request.count + 7) // 8
    if byte_count != expected:
        unit = "registers" if registers else "bits"
        raise ReplyMismatch(
            f"byte count {byte_count}, expected {expected} for {request.count} {unit}"
        )
    return Reply(None, pdu[2:])


def _write_echo(request: Request, pdu: bytes) -> Reply:
    # FC 5/6 echo the whole request; FC 15/16 echo the address and the quantity.
    echo = request.pdu if request.function in (WRITE_COIL, WRITE_REGISTER) else request.pdu[:5]
    if len(pdu) != len(echo):
        raise ReplyMismatch(
            f"a write reply of {len(pdu)} bytes instead of {len(echo)}", in_sync=False
        )
    if pdu != echo:
        (address, value), (sent_address, sent_value) = (
            struct.unpack(">HH", pdu[1:5]),
            struct.unpack(">HH", echo[1:5]),
        )
        single = request.function in (WRITE_COIL, WRITE_REGISTER)
        raise ReplyMismatch(
            echo_mismatch(
                (address, sent_address),
                (f"{value:#06x}", f"{sent_value:#06x}") if single else (value, sent_value),
                "value" if single else "quantity",
            )
        )
    return Reply(None, pdu[1:])

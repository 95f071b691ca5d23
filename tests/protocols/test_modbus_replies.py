"""Modbus replies checked against their requests, byte by byte (no I/O)."""

from __future__ import annotations

import struct

import pytest

from bifrost.protocols.modbus.pdu import (
    WRITE_COILS,
    WRITE_REGISTER,
    Reply,
    ReplyMismatch,
    Request,
    check_reply,
    device_id_request,
    read_request,
    write_coil_request,
    write_registers_request,
)
from bifrost.protocols.modbus.transport import TransactionIds

HR_10 = read_request(1, "hr", 100, 10)
CO_10 = read_request(1, "co", 5, 10)


def registers_reply(function: int, byte_count: int, data_bytes: int | None = None) -> bytes:
    size = byte_count if data_bytes is None else data_bytes
    return bytes((function, byte_count)) + bytes(range(size))


def test_requests_go_out_as_the_protocol_spells_them():
    assert HR_10.pdu == bytes.fromhex("03 0064 000a")
    assert CO_10.pdu == bytes.fromhex("01 0005 000a")
    assert write_coil_request(1, 7, True).pdu == bytes.fromhex("05 0007 ff00")
    assert write_coil_request(1, 7, False).pdu == bytes.fromhex("05 0007 0000")
    assert write_registers_request(1, 8, [1, 0xABCD]).pdu == bytes.fromhex(
        "10 0008 0002 04 0001 abcd"
    )
    assert device_id_request(1).pdu == bytes.fromhex("2b 0e 01 00")
    assert HR_10.describe() == "reading hr:100..109"
    assert write_coil_request(1, 7, True).describe() == "writing co:7..7"


def test_a_read_reply_with_exactly_the_registers_asked_for_is_used():
    pdu = registers_reply(3, 20)
    assert check_reply(HR_10, pdu) == Reply(None, pdu[2:])
    # Bits: ceil(10 / 8) = 2 bytes.
    assert check_reply(CO_10, bytes((1, 2, 0xFF, 0x03))) == Reply(None, b"\xff\x03")


def test_an_exception_reply_carries_its_code():
    assert check_reply(HR_10, bytes((0x83, 2))) == Reply(2)
    assert check_reply(HR_10, bytes((0x83, 0))) == Reply(0)  # an undefined code is still one


@pytest.mark.parametrize(
    ("pdu", "reason", "in_sync"),
    [
        (registers_reply(3, 2), "byte count 2, expected 20 for 10 registers", True),
        (registers_reply(3, 19), "byte count 19, expected 20", True),
        (registers_reply(3, 0), "byte count 0, expected 20", True),
        (registers_reply(3, 24), "byte count 24, expected 20", True),
        (registers_reply(4, 20), "function code 4 in the reply, expected 3", True),
        (bytes((0x84, 2)), "an exception reply to function code 4", True),
        (registers_reply(3, 20, data_bytes=18), "the frame carries 18 data bytes", False),
        (registers_reply(3, 20, data_bytes=22), "the frame carries 22 data bytes", False),
        (bytes((3,)), "without a byte count", False),
        (bytes((0x83, 2, 0)), "an exception reply of 3 bytes instead of 2", False),
    ],
)
def test_a_read_reply_that_does_not_answer_the_request_is_rejected(pdu, reason, in_sync):
    with pytest.raises(ReplyMismatch, match=reason) as caught:
        check_reply(HR_10, pdu)
    assert caught.value.in_sync is in_sync


def test_a_bit_reply_needs_one_byte_per_eight_bits():
    with pytest.raises(ReplyMismatch, match="byte count 1, expected 2 for 10 bits"):
        check_reply(CO_10, bytes((1, 1, 0xFF)))
    with pytest.raises(ReplyMismatch, match="byte count 3, expected 2"):
        check_reply(CO_10, bytes((1, 3, 0, 0, 0)))


def test_writes_must_echo_address_and_value_or_quantity():
    coil = write_coil_request(1, 7, True)
    assert check_reply(coil, coil.pdu).exception is None
    with pytest.raises(ReplyMismatch, match=r"value 0x0000 \(the request's was 0xff00\)"):
        check_reply(coil, bytes.fromhex("05 0007 0000"))
    many = write_registers_request(1, 8, [1, 2, 3])
    assert check_reply(many, bytes.fromhex("10 0008 0003")).exception is None
    with pytest.raises(ReplyMismatch, match=r"address 9 \(the request's was 8\)"):
        check_reply(many, bytes.fromhex("10 0009 0003"))
    with pytest.raises(ReplyMismatch, match=r"quantity 2 \(the request's was 3\)"):
        check_reply(many, bytes.fromhex("10 0008 0002"))
    with pytest.raises(ReplyMismatch, match="a write reply of 4 bytes instead of 5") as caught:
        check_reply(many, bytes.fromhex("10 0008 00"))
    assert not caught.value.in_sync
    # FC 6 echoes the whole request, FC 15 address and quantity, as FC 5 and 16 do.
    single = Request(1, WRITE_REGISTER, 3, 1, struct.pack(">BHH", 6, 3, 99), (99,))
    assert check_reply(single, single.pdu).exception is None
    with pytest.raises(ReplyMismatch, match="value 0x0062"):
        check_reply(single, struct.pack(">BHH", 6, 3, 98))
    coils = Request(1, WRITE_COILS, 3, 9, bytes.fromhex("0f 0003 0009 02 ff01"))
    assert check_reply(coils, bytes.fromhex("0f 0003 0009")).exception is None


def test_device_identification_must_be_mei_14():
    request = device_id_request(1)
    assert check_reply(request, bytes.fromhex("2b 0e 01 81 00 00 00")).data[0] == 0x0E
    with pytest.raises(ReplyMismatch, match="MEI 14"):
        check_reply(request, bytes.fromhex("2b 0d 01"))


def test_transaction_ids_count_on_and_wrap_at_65536():
    ids = TransactionIds(first=65534)
    assert [ids.take() for _ in range(4)] == [65534, 65535, 0, 1]
    assert 0 <= TransactionIds().take() < 65536

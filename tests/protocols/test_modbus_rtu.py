"""Modbus RTU without hardware: a pseudo-terminal pair from socat, a real pymodbus server."""

from __future__ import annotations

import struct
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from modbus_server import ModbusTestServer
from pty_pair import pty_pair

import bifrost as bf

pytestmark = pytest.mark.rtu


@pytest.fixture(scope="module", name="pty_pair")
def _pty_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    with pty_pair(tmp_path_factory.mktemp("pty")) as ends:
        yield ends


@pytest.fixture(scope="module")
def rtu_server(pty_pair: tuple[str, str]) -> Iterator[ModbusTestServer]:
    with ModbusTestServer(serial_port=pty_pair[0]) as server:
        yield server


def test_rtu_reads_and_writes(rtu_server: ModbusTestServer, pty_pair: tuple[str, str]):
    rtu_server.set("hr", 10, [0x4148, 0x0000])  # 12.5 as float32
    rtu_server.set("co", 2, [True])
    url = f"modbus+rtu://{pty_pair[1]}?baudrate=19200&parity=N"
    with bf.connect(url, unit=1, writable=True, timeout=2.0) as plc:
        assert plc.endpoint == pty_pair[1]
        frame = plc.read(["hr:10:float32", "co:2", "hr:12"])
        assert frame["value"].tolist() == [12.5, True, 0]
        plc.write({"hr:12:int16": -2})
        assert rtu_server.get("hr", 12, 1) == [65534]
        assert plc.info()["protocol"] == "modbus+rtu"


def test_rtu_url_needs_a_device():
    with pytest.raises(bf.ConfigurationError, match="serial device"):
        bf.connect("modbus+rtu://")


def crc16(frame: bytes) -> bytes:
    crc = 0xFFFF
    for byte in frame:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0xA001 if crc & 1 else crc >> 1
    return crc.to_bytes(2, "little")


class RtuResponder:
    """Answers RTU requests on one end of a pty pair, wrongly where the address says so.

    pymodbus' client has checked the CRC and the unit id of these replies; what it does
    not check (the function code, how many registers, a write's echo) bifrost does.
    Register ``a`` holds ``a``.
    """

    ONE_REGISTER, EXTRA_REGISTERS, WRONG_FUNCTION, WRONG_ECHO = 100, 200, 300, 400

    def __init__(self, device: str) -> None:
        import serial

        self._port = serial.Serial(device, baudrate=19200, timeout=0.02)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def __enter__(self) -> RtuResponder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)
        self._port.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            request = self._port.read(8)  # every request bifrost sends here is 8 bytes
            if len(request) == 8:
                self._port.write(self._reply(request[:6]))

    def _reply(self, request: bytes) -> bytes:
        unit, function = request[0], request[1]
        address, count = struct.unpack(">HH", request[2:6])
        if function in (5, 6):
            if address == self.WRONG_ECHO:
                address += 1
            body = bytes((unit, function)) + struct.pack(">HH", address, count)
            return body + crc16(body)
        if address == self.ONE_REGISTER:
            count = 1
        elif address == self.EXTRA_REGISTERS:
            count += 2
        if address == self.WRONG_FUNCTION:
            function = 4 if function == 3 else 3
        words = [address + i for i in range(count)]
        body = bytes((unit, function, 2 * count)) + struct.pack(f">{count}H", *words)
        return body + crc16(body)


@pytest.fixture
def rtu_responder(tmp_path: Path) -> Iterator[str]:
    with pty_pair(tmp_path, "device") as (device, client), RtuResponder(device):
        yield client


@pytest.mark.parametrize(
    ("start", "reason"),
    [
        (RtuResponder.ONE_REGISTER, "1 register in the reply, expected 10"),
        (RtuResponder.EXTRA_REGISTERS, "12 registers in the reply, expected 10"),
        (RtuResponder.WRONG_FUNCTION, "function code 4 in the reply, expected 3"),
    ],
)
def test_an_rtu_reply_that_does_not_answer_the_read_is_bad_quality(rtu_responder, start, reason):
    tags = [f"hr:{start + i}" for i in range(10)]
    with bf.connect(f"modbus+rtu://{rtu_responder}", timeout=1.0) as plc:
        good = plc.read(["hr:10", "hr:11"])
        assert good["value"].tolist() == [10, 11]
        frame = plc.read(tags, errors="quality")
        assert set(frame["quality"]) == {"bad_protocol"}
        assert frame["value"].isna().all()
        with pytest.raises(bf.ProtocolError, match=reason):
            plc.read(tags)
        assert plc.read_value("hr:12") == 12


def test_an_rtu_write_whose_echo_is_wrong_is_a_protocol_error(rtu_responder):
    url = f"modbus+rtu://{rtu_responder}"
    with (
        bf.connect(url, timeout=1.0, writable=True) as plc,
        pytest.raises(bf.ProtocolError, match="echoes address 401"),
    ):
        plc.write({f"co:{RtuResponder.WRONG_ECHO}": True})


def test_rtu_devices_can_be_scanned(rtu_server: ModbusTestServer, pty_pair: tuple[str, str]):
    # The test server's holding registers: 0-1999 and 3000-3009. One request at a time
    # on a serial line: no pipelining probe.
    url = f"modbus+rtu://{pty_pair[1]}?baudrate=19200&parity=N"
    with bf.connect(url, unit=1, timeout=1.0) as plc:
        result = plc.scan("hr", start=1990, stop=3099)
    assert result.tables["hr"].readable == [(1990, 1999), (3000, 3009)]
    assert result.pipeline_ok is None
    assert result.requests < 60

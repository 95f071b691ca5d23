"""Modbus RTU without hardware: a pseudo-terminal pair from socat, a real pymodbus server."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator

import pytest
from modbus_server import ModbusTestServer

import bifrost as bf

pytestmark = pytest.mark.rtu


@pytest.fixture(scope="module")
def pty_pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    socat = shutil.which("socat")
    if socat is None:
        pytest.fail("socat is needed for the RTU tests (apt-get install socat; .ci/run does)")
    folder = tmp_path_factory.mktemp("pty")
    a, b = folder / "server", folder / "client"
    process = subprocess.Popen(
        [socat, f"pty,raw,echo=0,link={a}", f"pty,raw,echo=0,link={b}"],
        stderr=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            if a.exists() and b.exists():
                break
            time.sleep(0.02)
        else:
            pytest.fail("socat did not create the pty pair")
        yield str(a), str(b)
    finally:
        process.terminate()
        process.wait(5)


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

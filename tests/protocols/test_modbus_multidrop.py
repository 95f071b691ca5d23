"""RTU multi-drop: several unit ids on one serial line (a socat pty pair, a pymodbus server).

The server answers units 1 and 2; unit 3 is on the line but never answers.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from itertools import pairwise
from typing import Any

import pytest
from modbus_server import ModbusTestServer
from pty_pair import pty_pair

import bifrost as bf

pytestmark = pytest.mark.rtu
SILENT = 3


class LineServer(ModbusTestServer):
    """Units 1 and 2 answer; a request to unit 3 is received, counted and left unanswered."""

    def __init__(self, serial_port: str) -> None:
        super().__init__(serial_port=serial_port)
        self.received: list[float] = []  # monotonic time of every request

    def _trace(self, sending: bool, pdu: Any) -> Any:
        if not sending:
            self.received.append(time.monotonic())
        if not sending and pdu.dev_id == SILENT:
            self.requests += 1
            return None  # pymodbus handles no request it was given none for
        return super()._trace(sending, pdu)


@pytest.fixture(scope="module")
def line(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ModbusTestServer, str]]:
    folder = tmp_path_factory.mktemp("line")
    with pty_pair(folder, "slaves", "master") as (slaves, master), LineServer(slaves) as server:
        server.set("hr", 0, [11, 12], unit=1)
        server.set("hr", 0, [21, 22], unit=2)
        yield server, f"modbus+rtu://{master}"


def test_units_on_one_line_share_the_port(line):
    _, url = line
    # pymodbus opens a serial port exclusively: a second opening would fail to connect.
    with bf.connect(url, unit=1, timeout=1.0) as one, bf.connect(url, unit=2, timeout=1.0) as two:
        assert one.read(["hr:0", "hr:1"])["value"].tolist() == [11, 12]
        assert two.read(["hr:0", "hr:1"])["value"].tolist() == [21, 22]
        assert one.read_value("hr:1") == 12


def test_a_silent_unit_times_out_without_closing_the_line_for_the_others(line):
    server, url = line
    with (
        bf.connect(url, unit=1, timeout=1.0) as one,
        bf.connect(url, unit=2, timeout=1.0) as two,
        bf.connect(url, unit=3, timeout=0.3) as silent,
    ):
        assert one.read_value("hr:0") == 11
        before = server.requests
        with pytest.raises(bf.TimeoutError, match="unit 3 on the Modbus line"):
            silent.read("hr:0")
        assert server.requests == before + 1  # it was asked, and only once
        assert one.connected
        assert two.connected
        assert two.read_value("hr:0") == 21
        assert one.read_value("hr:0") == 11


def test_connections_to_units_on_one_line_never_interleave(line):
    _, url = line
    errors: list[BaseException] = []
    values: dict[int, set[tuple[int, ...]]] = {1: set(), 2: set()}

    def poll(unit: int) -> None:
        try:
            with bf.connect(url, unit=unit, timeout=1.0) as plc:
                for _ in range(15):
                    values[unit].add(tuple(plc.read(["hr:0", "hr:1"])["value"].tolist()))
        except BaseException as exc:  # reported below, in the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=poll, args=(unit,)) for unit in (1, 2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors
    assert values == {1: {(11, 12)}, 2: {(21, 22)}}


def test_one_line_has_one_speed(line):
    _, url = line
    with bf.connect(url, unit=1, timeout=1.0) as one:
        one.read("hr:0")
        with pytest.raises(bf.ConfigurationError, match=r"in use at 19200 8N1 .* not 9600 8N1"):
            bf.connect(url, unit=2, baudrate=9600, timeout=1.0)


def gaps(times: list[float]) -> list[float]:
    return [b - a for a, b in pairwise(times)]


def test_pause_between_requests_holds_across_the_units_of_a_line(line):
    server, url = line
    with (
        bf.connect(url, unit=1, timeout=1.0, merge_gap=0, pause_between_requests=0.15) as one,
        bf.connect(url, unit=2, timeout=1.0, pause_between_requests=0.15) as two,
    ):
        server.received.clear()
        one.read(["hr:0", "hr:5"])
        two.read("hr:1")
        one.read("hr:1")
    assert len(server.received) == 4
    assert min(gaps(server.received)) >= 0.14


def test_close_after_each_cycle_reopens_the_port_and_waits_after_opening(line):
    server, url = line
    options = {"close_after_each_cycle": True, "pause_after_connect": 0.25}
    with bf.connect(url, unit=1, timeout=1.0, **options) as plc:
        server.received.clear()
        values = []
        for _ in range(3):
            values.append(plc.read_value("hr:1"))
            assert not plc.connected  # the port is closed between cycles
    assert values == [12, 12, 12]
    assert len(server.received) == 3
    assert min(gaps(server.received)) >= 0.24

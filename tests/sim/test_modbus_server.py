"""The simulated plant served over Modbus TCP on loopback, read with pymodbus' own client."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest
from pymodbus.client import ModbusTcpClient
from waiting import wait_for

from bifrost.exceptions import ConfigurationError
from bifrost.model import ByteOrder, DataType
from bifrost.protocols.modbus.address import parse_modbus_address
from bifrost.protocols.modbus.codec import decode_registers, decode_strings, encode_registers
from bifrost.sim import LINE_STOPPED, Plant

REQUIRED = {
    "tank.level": "m",
    "tank.inflow": "m3/h",
    "tank.outflow": "m3/h",
    "tank.high_alarm": "",
    "reactor.temperature": "degC",
    "reactor.setpoint": "degC",
    "pump.speed": "rpm",
    "pump.vibration_rms": "mm/s",
    "line.counter": "parts",
    "line.state": "",
    "line.cycle": "",
}


def port_of(url: str) -> int:
    assert url.startswith("modbus://127.0.0.1:")
    return int(url.rsplit(":", 1)[1])


@pytest.fixture
def plant() -> Iterator[Plant]:
    with Plant(seed=1, realtime=False, aux=1000) as p:
        p.serve(modbus=0)
        yield p


@pytest.fixture
def client(plant: Plant) -> Iterator[ModbusTcpClient]:
    c = ModbusTcpClient("127.0.0.1", port=port_of(plant.urls["modbus"]), timeout=3, retries=0)
    assert c.connect()
    yield c
    c.close()


def ok(response: Any) -> Any:
    assert not response.isError(), response
    return response


def read_all(client: ModbusTcpClient, unit: int = 1) -> dict[str, Any]:
    """Read every table the plant's tags live in, in one request each."""
    return {
        "hr": np.array(ok(client.read_holding_registers(0, count=32, device_id=unit)).registers),
        "ir": np.array(ok(client.read_input_registers(0, count=16, device_id=unit)).registers),
        "di": ok(client.read_discrete_inputs(0, count=16, device_id=unit)).bits,
        "co": ok(client.read_coils(0, count=16, device_id=unit)).bits,
    }


def decode_tags(plant: Plant, images: dict[str, Any]) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for tag in plant.tags("modbus"):
        addr = parse_modbus_address(tag.address)
        start = np.array([addr.offset], dtype=np.intp)
        if addr.is_bit:
            values[tag.name] = bool(images[addr.table][addr.offset])
        elif addr.dtype is DataType.STRING:
            image = images[addr.table].astype(np.uint16)
            values[tag.name] = decode_strings(image, start, addr.length, addr.order)[0]
        else:
            image = images[addr.table].astype(np.uint16)
            raw = decode_registers(image, start, addr.dtype, addr.order)[0]
            values[tag.name] = raw * tag.scale + tag.offset if tag.is_scaled else raw
    return values


def assert_matches_snapshot(plant: Plant, decoded: dict[str, Any]) -> None:
    snap = plant.snapshot()
    for tag in plant.tags("modbus"):
        addr = parse_modbus_address(tag.address)
        got, want = decoded[tag.name], snap[tag.name]
        if addr.dtype is DataType.FLOAT32:
            assert got == np.float32(want), tag.name
        elif tag.is_scaled:
            assert got == pytest.approx(want, abs=tag.scale / 2), tag.name
        else:
            assert got == want, tag.name


# -- the map --------------------------------------------------------------------------
def test_serve_returns_the_url_and_the_table_has_the_api_names(plant: Plant) -> None:
    assert set(plant.urls) == {"modbus"}
    port_of(plant.urls["modbus"])
    table = plant.tags("modbus")
    for name, unit in REQUIRED.items():
        assert table[name].unit == unit
        assert table[name].description
    writable = {t.name for t in table if t.writable}
    assert writable == {"reactor.setpoint", "line.enable"}
    assert parse_modbus_address(table["reactor.setpoint"].address).table == "hr"
    orders = {parse_modbus_address(t.address).order for t in table}
    assert ByteOrder.CDAB in orders
    assert {parse_modbus_address(t.address).table for t in table} == {"hr", "ir", "di", "co"}
    assert "pump.vibration" in plant.snapshot()
    assert "pump.vibration" not in table


def test_registers_equal_the_snapshot(plant: Plant, client: ModbusTcpClient) -> None:
    assert_matches_snapshot(plant, decode_tags(plant, read_all(client)))  # before any step
    for steps in (1, 250, 1234):
        plant.step(steps)
        decoded = decode_tags(plant, read_all(client))
        assert_matches_snapshot(plant, decoded)
    assert decoded["plant.heartbeat"] == plant.steps
    assert decoded["line.recipe"] == "PART-4711"
    assert decoded["tank.level"] > 0
    assert decoded["pump.speed"] > 1000


def test_every_unit_id_sees_the_plant(plant: Plant, client: ModbusTcpClient) -> None:
    plant.step(42)
    first = read_all(client, unit=1)
    for unit in (0, 2, 247):
        images = read_all(client, unit=unit)
        assert np.array_equal(images["hr"], first["hr"])
        assert np.array_equal(images["ir"], first["ir"])


def test_values_change_only_when_stepped(plant: Plant, client: ModbusTcpClient) -> None:
    before = read_all(client)
    time.sleep(0.05)
    assert np.array_equal(read_all(client)["ir"], before["ir"])
    plant.step(1)
    assert not np.array_equal(read_all(client)["ir"], before["ir"])


# -- writes ---------------------------------------------------------------------------
def write_float(client: ModbusTcpClient, register: int, value: float) -> None:
    words = encode_registers([value], DataType.FLOAT32, ByteOrder.ABCD)[0].tolist()
    ok(client.write_registers(register, words, device_id=1))


def test_written_setpoint_is_followed(plant: Plant, client: ModbusTcpClient) -> None:
    register = parse_modbus_address(plant.tags("modbus")["reactor.setpoint"].address).offset
    plant.step(10)
    write_float(client, register, 85.5)
    # the write shows at once and reaches the model before its next step
    assert decode_tags(plant, read_all(client))["reactor.setpoint"] == np.float32(85.5)
    assert plant.snapshot()["reactor.setpoint"] == 60.0
    plant.step(1)
    assert plant.snapshot()["reactor.setpoint"] == 85.5
    plant.step(6000)  # 60 s
    decoded = decode_tags(plant, read_all(client))
    assert decoded["reactor.setpoint"] == np.float32(85.5)
    assert decoded["reactor.temperature"] == pytest.approx(85.5, abs=0.5)
    assert_matches_snapshot(plant, decoded)


def test_setpoint_write_is_clipped_by_the_plant(plant: Plant, client: ModbusTcpClient) -> None:
    write_float(client, 8, 1000.0)
    plant.step(1)
    assert decode_tags(plant, read_all(client))["reactor.setpoint"] == 150.0


def test_writes_to_read_only_registers_are_refused(plant: Plant, client: ModbusTcpClient) -> None:
    plant.step(5)
    before = read_all(client)
    for response in (
        client.write_register(0, 1, device_id=1),  # tank.level
        client.write_registers(6, [1, 2, 3, 4], device_id=1),  # overlaps the setpoint
        client.write_register(1000, 1, device_id=1),  # an aux channel
        client.write_coil(1, True, device_id=1),  # no tag there
    ):
        assert response.isError()
        assert response.exception_code == 2
    assert np.array_equal(read_all(client)["hr"], before["hr"])
    plant.step(1)
    assert_matches_snapshot(plant, decode_tags(plant, read_all(client)))


def test_line_enable_coil_stops_the_line(plant: Plant, client: ModbusTcpClient) -> None:
    assert read_all(client)["co"][0] is True
    ok(client.write_coil(0, False, device_id=1))
    plant.step(1)
    counter = plant.snapshot()["line.counter"]
    plant.step(1000)
    decoded = decode_tags(plant, read_all(client))
    assert decoded["line.enable"] is False
    assert decoded["line.state"] == LINE_STOPPED
    assert decoded["line.counter"] == counter


def test_scratch_area_keeps_what_is_written(plant: Plant, client: ModbusTcpClient) -> None:
    ok(client.write_registers(900, list(range(1, 101)), device_id=1))
    plant.step(3)
    assert ok(client.read_holding_registers(900, count=100, device_id=1)).registers == list(
        range(1, 101)
    )


# -- aux channels ---------------------------------------------------------------------
def test_aux_registers_read_in_blocks(plant: Plant, client: ModbusTcpClient) -> None:
    plant.step(77)
    words: list[int] = []
    for start in range(1000, 2000, 125):
        words += ok(client.read_holding_registers(start, count=125, device_id=1)).registers
    assert np.array_equal(np.array(words, dtype=np.uint16), plant.aux_values())
    plant.step(1)
    again = ok(client.read_holding_registers(1000, count=125, device_id=1)).registers
    assert again != words[:125]
    beyond = client.read_holding_registers(2000, count=1, device_id=1)
    assert beyond.isError()
    assert beyond.exception_code == 2


def test_aux_tags(plant: Plant) -> None:
    table = plant.aux_tags(1000)
    assert len(table) == 1000
    assert table.names[0] == "aux.0000"
    assert table["aux.0999"].address == "hr:1999:uint16"
    assert plant.aux_tags(3, dtype="int16")["aux.0002"].address == "hr:1002:int16"
    with pytest.raises(ConfigurationError):
        plant.aux_tags(1001)
    with pytest.raises(ConfigurationError):
        plant.aux_tags(3, dtype="float32")


def test_default_plant_has_4000_aux_registers() -> None:
    with Plant(realtime=False) as plant:
        plant.serve(modbus=0)
        assert len(plant.aux_tags(4000)) == 4000
        c = ModbusTcpClient("127.0.0.1", port=port_of(plant.urls["modbus"]), timeout=3)
        assert c.connect()
        try:
            last = ok(c.read_holding_registers(4875, count=125, device_id=1)).registers
            assert np.array_equal(np.array(last, dtype=np.uint16), plant.aux_values()[-125:])
        finally:
            c.close()


# -- lifecycle ------------------------------------------------------------------------
def test_serving_twice_or_unknown_protocols_is_refused(plant: Plant) -> None:
    with pytest.raises(ConfigurationError, match="already served"):
        plant.serve(modbus=0)
    with pytest.raises(ConfigurationError):
        plant.serve(profinet=0)
    with pytest.raises(ConfigurationError):
        plant.tags("bacnet")


def test_bad_ports_and_modes_are_refused() -> None:
    with Plant(realtime=False) as plant:
        with pytest.raises(ConfigurationError):
            plant.serve(modbus=70000)
        with pytest.raises(ConfigurationError):
            plant.run(0.1)
    with Plant(realtime=True) as plant, pytest.raises(ConfigurationError):
        plant.step(1)
    with pytest.raises(ConfigurationError):
        plant.serve(modbus=0)  # closed


def test_busy_port_is_a_configuration_error() -> None:
    with Plant(realtime=False) as first, Plant(realtime=False) as second:
        port = port_of(first.serve(modbus=0)["modbus"])
        with pytest.raises(ConfigurationError, match="cannot listen"):
            second.serve(modbus=port)
        assert second.urls == {}


def test_realtime_plant_advances_and_close_leaves_no_thread() -> None:
    baseline = threading.active_count()
    plant = Plant(seed=5, dt=0.01)
    c = ModbusTcpClient("127.0.0.1", port=1, timeout=3, retries=0)
    try:
        port = port_of(plant.serve(modbus=0)["modbus"])
        assert logging.getLogger("pymodbus").getEffectiveLevel() >= logging.WARNING
        c = ModbusTcpClient("127.0.0.1", port=port, timeout=3, retries=0)
        assert c.connect()
        first = ok(c.read_input_registers(5, count=1, device_id=1)).registers[0]
        time.sleep(0.3)
        second = ok(c.read_input_registers(5, count=1, device_id=1)).registers[0]
        assert 10 <= (second - first) % 65536 <= 100  # heartbeat: about 30 steps
        assert 0.2 <= plant.time <= 2.0
        started = time.monotonic()
        plant.close()  # with a client still connected
        assert time.monotonic() - started < 2.0
    finally:
        plant.close()
        c.close()
    assert wait_for(lambda: threading.active_count() <= baseline, timeout=2.0)
    assert threading.active_count() == baseline
    assert plant.closed
    assert plant.urls == {}


def test_run_serves_for_the_given_time() -> None:
    baseline = threading.active_count()
    seen: list[dict[str, str]] = []
    plant = Plant(seed=2)
    started = time.monotonic()
    plant.run(0.3, ready=seen.append, modbus=0)
    assert 0.25 <= time.monotonic() - started < 2.5
    assert set(seen[0]) == {"modbus"}
    assert plant.closed
    assert plant.time >= 0.2
    assert threading.active_count() == baseline

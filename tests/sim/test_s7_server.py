"""The simulated plant served over S7 (snap7 server) next to Modbus, from one shared state."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import numpy as np
import pytest

import bifrost as bf
from bifrost.exceptions import ConfigurationError
from bifrost.protocols.s7.address import parse_s7_address
from bifrost.protocols.s7.server import S7Binding
from bifrost.sim import LINE_STOPPED, Plant, tagmap


@pytest.fixture
def plant() -> Iterator[Plant]:
    with Plant(seed=3, realtime=False, aux=1000) as p:
        p.serve(modbus=0, s7=0)
        p.step(250)
        yield p


def test_s7_table_has_the_modbus_names_and_a_valid_layout() -> None:
    s7 = tagmap.tag_table("s7")
    assert {t.name for t in s7} == {t.name for t in tagmap.tag_table("modbus")}
    for tag in s7:
        address = parse_s7_address(tag.address)
        assert address.area == "DB"
        assert address.db == tagmap.S7_PLANT_DB
        assert address.end <= tagmap.S7_PLANT_DB_SIZE
    writable = {t.name for t in s7 if t.writable}
    assert writable == {t.name for t in tagmap.tag_table("modbus") if t.writable}
    assert "s7" in tagmap.PROTOCOLS


def test_overlapping_or_foreign_tags_are_refused() -> None:
    lock = threading.RLock()
    overlap = bf.TagTable([bf.Tag("a", "DB1.DBD0:REAL"), bf.Tag("b", "DB1.DBW2")])
    with pytest.raises(ConfigurationError, match="overlaps"):
        S7Binding(overlap, lock, aux=0)
    with pytest.raises(ConfigurationError, match="outside"):
        S7Binding(bf.TagTable([bf.Tag("a", "MW0")]), lock, aux=0)


def test_serve_returns_both_urls(plant: Plant) -> None:
    urls = plant.urls
    assert urls["s7"].startswith("s7://127.0.0.1:")
    assert urls["modbus"].startswith("modbus://127.0.0.1:")


def test_the_same_tag_reads_the_same_over_modbus_and_s7(plant: Plant) -> None:
    names = [t.name for t in plant.tags("s7")]
    with plant.connect("s7") as s7, plant.connect("modbus") as modbus:
        for _ in range(3):
            over_s7 = s7.read(names)["value"].tolist()
            over_modbus = modbus.read(names)["value"].tolist()
            assert over_s7 == over_modbus
            snapshot = plant.snapshot()
            assert over_s7[names.index("plant.heartbeat")] == snapshot["plant.heartbeat"]
            assert over_s7[names.index("line.recipe")] == snapshot["line.recipe"]
            plant.step(37)
        assert s7.read_value("tank.level") == pytest.approx(plant.snapshot()["tank.level"])


def test_aux_channels_are_reals_in_db100(plant: Plant) -> None:
    tags = list(tagmap.s7_aux_tags(250, every=4, aux=plant.aux))
    with plant.connect("s7") as s7:
        values = s7.read(tags)["value"].to_numpy(dtype=float)
    np.testing.assert_array_equal(values, plant.aux_values()[::4][:250].astype(float))
    assert tags[1].address == "DB100.DBD16:REAL"
    with pytest.raises(ConfigurationError):
        tagmap.s7_aux_tags(251, every=4, aux=1000)


def test_a_setpoint_written_over_s7_reaches_the_model_and_modbus(plant: Plant) -> None:
    with plant.connect("s7", writable=True) as s7, plant.connect("modbus") as modbus:
        s7.write({"reactor.setpoint": 82.5})
        assert s7.read_value("reactor.setpoint") == 82.5  # in the image before the step
        plant.step(1)
        assert plant.snapshot()["reactor.setpoint"] == 82.5
        assert modbus.read_value("reactor.setpoint") == 82.5


def test_line_enable_bit_write_stops_the_line_and_spares_its_neighbours(plant: Plant) -> None:
    server = plant._bindings["s7"].server  # type: ignore[attr-defined]
    with plant.connect("s7", writable=True) as s7:
        before = s7.read_value("DB1.DBB38")
        s7.write({"line.enable": False})
        after = s7.read_value("DB1.DBB38")
        assert after == before & ~0b100  # tank.high_alarm and line.cycle bits untouched
        assert server.write_requests == 1
        plant.step(200)
        assert plant.snapshot()["line.enable"] is False
        assert s7.read_value("line.state") == LINE_STOPPED


def test_writes_outside_the_writable_tags_are_refused_like_a_plc(plant: Plant) -> None:
    with plant.connect("s7", writable=True) as s7:
        level = s7.read_value("DB1.DBD0:REAL")
        bits = s7.read_value("DB1.DBB38")
        with pytest.raises(bf.ProtocolError) as info:
            s7.write({"DB1.DBD0:REAL": 1.0})  # tank.level: access denied
        assert info.value.code == 0x03
        with pytest.raises(bf.ProtocolError) as info:
            s7.write({"DB1.DBX38.0": True})  # the read-only alarm bit next to line.enable
        assert info.value.code == 0x03
        with pytest.raises(bf.ProtocolError) as info:
            s7.write({"DB100.DBD0:REAL": 1.0})
        assert info.value.code == 0x03
        with pytest.raises(bf.ProtocolError) as info:
            s7.write({"DB3.DBW0": 1})
        assert info.value.code == 0x0A
        assert s7.read_value("DB1.DBD0:REAL") == level
        assert s7.read_value("DB1.DBB38") == bits


def test_scratch_areas_keep_what_is_written(plant: Plant) -> None:
    values = {"DB2.DBD100:REAL": 1.25, "MW4": 777, "Q0.5": True, "QB2": 9}
    with plant.connect("s7", writable=True) as s7:
        s7.write(values)
        plant.step(5)
        assert s7.read(list(values))["value"].tolist() == list(values.values())
        assert s7.read_value("IW0") == 0


def test_closing_the_plant_cuts_s7_clients(no_thread_leak: None) -> None:
    plant = Plant(seed=1, realtime=False)
    urls = plant.serve(s7=0)
    try:
        with bf.connect(urls["s7"], tags=plant.tags("s7"), timeout=1.0) as s7:
            assert s7.read_value("line.recipe") == plant.snapshot()["line.recipe"]
            plant.close()
            with pytest.raises(bf.ConnectionError, match=urls["s7"].removeprefix("s7://")):
                s7.read_value("tank.level")
    finally:
        plant.close()


def test_a_realtime_plant_serves_changing_values_over_s7() -> None:
    with Plant(seed=2, realtime=True) as plant, plant.connect("s7") as s7:
        first = s7.read_value("plant.heartbeat")
        deadline = threading.Event()
        for _ in range(100):
            if s7.read_value("plant.heartbeat") != first:
                break
            deadline.wait(0.02)
        else:
            pytest.fail("the heartbeat never changed over S7")

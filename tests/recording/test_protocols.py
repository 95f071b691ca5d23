"""The same recording over Modbus, S7 and OPC UA from one simulated plant."""

from __future__ import annotations

import pytest

import bifrost as bf

TAGS = ["tank.level", "line.counter", "tank.high_alarm", "line.recipe"]


@pytest.fixture(scope="module")
def plant():
    with bf.sim.Plant(seed=2) as plant:
        plant.serve(modbus=0, s7=0, opcua=0)
        yield plant


@pytest.mark.parametrize("protocol", ["modbus", "s7", "opcua"])
def test_recordings_have_the_same_typed_columns_over_every_protocol(plant, protocol):
    with plant.connect(protocol) as plc:
        rec = plc.record(TAGS, interval="50ms", duration="0.3s", progress=False)
    frame = rec.to_pandas()
    assert list(frame.columns) == TAGS
    assert frame["tank.level"].dtype == "float64"
    assert str(frame["line.counter"].dtype) == "Int64"
    assert str(frame["tank.high_alarm"].dtype) == "boolean"
    assert frame["line.recipe"].iloc[-1] == "PART-4711"
    assert rec.metadata["protocol"] == protocol


def test_opcua_waveforms_become_a_second_dimension(plant):
    with plant.connect("opcua") as plc:
        rec = plc.record(["pump.vibration"], interval="50ms", duration="0.3s", progress=False)
    data = rec.to_xarray()["pump.vibration"]
    assert data.dims == ("time", "pump.vibration.sample")
    assert data.shape[1] == 64


@pytest.mark.parametrize(("protocol", "first_request"), [("s7", "read_area"), ("opcua", "Read")])
def test_explain_over_every_protocol(plant, protocol, first_request):
    with plant.connect(protocol) as plc:
        plan = plc.explain(plc.tags.names)
    assert plan["request"].iloc[0] == first_request
    assert len(plan) == 1

"""Imported tag tables read the right values: files describing the simulated plant's map,
in each tool's format, read through the plant's real Modbus and S7 servers."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import bifrost as bf
from bifrost.protocols.s7.address import parse_s7_address
from bifrost.sim import Plant

# The plant's Modbus map (bifrost/sim/tagmap.py) as a Telegraf request-style config.
TELEGRAF = """\
[[inputs.modbus]]
  name = "plant"
  controller = "tcp://127.0.0.1:5020"
  configuration_type = "request"

  [[inputs.modbus.request]]
    slave_id = 1
    byte_order = "ABCD"
    register = "holding"
    fields = [
      { address=0, name="tank.level",          type="FLOAT32" },
      { address=8, name="reactor.setpoint",    type="FLOAT32" },
      { address=12, name="line.state",         type="UINT16" },
      { address=16, name="line.recipe",        type="STRING", length=8 },
    ]

  [[inputs.modbus.request]]
    slave_id = 1
    byte_order = "CDAB"
    register = "input"
    fields = [
      { address=0, name="pump.vibration_rms",  type="FLOAT32" },
      { address=4, name="reactor.heater",      type="INT16", scale=0.1 },
    ]

  [[inputs.modbus.request]]
    slave_id = 1
    register = "discrete"
    fields = [
      { address=0, name="tank.high_alarm" },
      { address=1, name="line.cycle" },
    ]
"""

# The plant's S7 data block as Kepware exports it (Linear scaling raw 0-1000 -> 0-100 %).
KEPWARE = (
    '"Tag Name","Address","Data Type","Respect Data Type","Client Access","Scan Rate",'
    '"Scaling","Raw Low","Raw High","Scaled Low","Scaled High","Scaled Data Type",'
    '"Clamp Low","Clamp High","Eng Units","Description"\n'
    '"tank.level","DB1.DBD0","Float",1,"RO",100,"","","","","","","","","m",""\n'
    '"pump.speed","DB1.DBD20","Float",1,"RO",100,"","","","","","","","","rpm",""\n'
    '"line.counter","DB1.DBD28","DWord",1,"RO",100,"","","","","","","","","",""\n'
    '"reactor.heater","DB1.DBW34","Short",1,"RO",100,"Linear",0,1000,0,100,"Float",0,0,"%",""\n'
    '"line.enable","DB1.DBX38.2","Boolean",1,"R/W",100,"","","","","","","","","",""\n'
)

# The same data block as TIA Portal exports it, without offsets: the standard layout
# must put every member where the plant's server has it.
TIA_DB = """\
<?xml version="1.0" encoding="utf-8"?>
<Document>
  <SW.Blocks.GlobalDB ID="0">
    <AttributeList>
      <Interface>
        <Sections xmlns="http://www.siemens.com/automation/Openness/SW/Interface/v5">
          <Section Name="Static">
            <Member Name="level" Datatype="Real" />
            <Member Name="inflow" Datatype="Real" />
            <Member Name="outflow" Datatype="Real" />
            <Member Name="temperature" Datatype="Real" />
            <Member Name="setpoint" Datatype="Real" />
            <Member Name="speed" Datatype="Real" />
            <Member Name="vibration_rms" Datatype="Real" />
            <Member Name="counter" Datatype="DWord" />
            <Member Name="state" Datatype="Word" />
            <Member Name="heater" Datatype="Int" />
            <Member Name="heartbeat" Datatype="Word" />
            <Member Name="high_alarm" Datatype="Bool" />
            <Member Name="cycle" Datatype="Bool" />
            <Member Name="enable" Datatype="Bool" />
            <Member Name="recipe" Datatype="String[16]" />
          </Section>
        </Sections>
      </Interface>
      <MemoryLayout>Standard</MemoryLayout>
      <Name>plant</Name>
      <Number>1</Number>
    </AttributeList>
  </SW.Blocks.GlobalDB>
</Document>
"""
_TIA_NAMES = {
    "level": "tank.level",
    "inflow": "tank.inflow",
    "outflow": "tank.outflow",
    "temperature": "reactor.temperature",
    "setpoint": "reactor.setpoint",
    "speed": "pump.speed",
    "vibration_rms": "pump.vibration_rms",
    "counter": "line.counter",
    "state": "line.state",
    "heater": "reactor.heater",
    "heartbeat": "plant.heartbeat",
    "high_alarm": "tank.high_alarm",
    "cycle": "line.cycle",
    "enable": "line.enable",
    "recipe": "line.recipe",
}


@pytest.fixture(scope="module")
def plant() -> Iterator[Plant]:
    with Plant(seed=5, realtime=False, aux=0) as p:
        p.serve(modbus=0, s7=0)
        p.step(1234)  # tank level, counter and heater well away from zero
        yield p


_FLOAT32 = ("tank.level", "reactor.setpoint", "pump.vibration_rms")


def _same(read: Any, expected: Any, dtype: str) -> bool:
    if dtype == "float32":
        return bool(np.float32(read) == np.float32(expected))
    return bool(read == expected)


def _read(url: str, table: bf.TagTable) -> dict[str, Any]:
    with bf.connect(url, tags=table, timeout=5.0) as plc:
        frame = plc.read(table.names)
    assert (frame["quality"] == "good").all(), frame
    return dict(zip(frame.index, frame["value"], strict=True))


def test_a_telegraf_table_reads_the_plant_over_modbus(plant: Plant) -> None:
    table = bf.TagTable.from_telegraf(TELEGRAF)
    values = _read(plant.urls["modbus"], table)
    snapshot = plant.snapshot()
    # The heater is served as a raw int16 (tenths of a percent): what the plant's own
    # table reads is the reference for it.
    own = _read(plant.urls["modbus"], bf.TagTable([plant.tags("modbus")["reactor.heater"]]))
    snapshot["reactor.heater"] = own["reactor.heater"]
    assert abs(own["reactor.heater"] - plant.snapshot()["reactor.heater"]) <= 0.05
    for name, value in values.items():
        dtype = (
            "float32" if name in ("tank.level", "reactor.setpoint", "pump.vibration_rms") else ""
        )
        assert _same(value, snapshot[name], dtype), (name, value, snapshot[name])
    assert values["tank.level"] > 0


def test_kepware_and_tia_tables_read_the_plant_over_s7(plant: Plant, tmp_path: Path) -> None:
    snapshot = plant.snapshot()
    kepware = bf.TagTable.from_kepware(KEPWARE)
    values = _read(plant.urls["s7"], kepware)
    assert np.float32(values["tank.level"]) == np.float32(snapshot["tank.level"])
    assert np.float32(values["pump.speed"]) == np.float32(snapshot["pump.speed"])
    assert values["line.counter"] == snapshot["line.counter"]
    own = _read(plant.urls["s7"], bf.TagTable([plant.tags("s7")["reactor.heater"]]))
    assert values["reactor.heater"] == pytest.approx(own["reactor.heater"], abs=1e-9)
    assert values["line.enable"] == snapshot["line.enable"]

    path = tmp_path / "plant_db.xml"
    path.write_text(TIA_DB)
    tia = bf.TagTable.from_tia(path)
    plant_table = plant.tags("s7")
    for tag in tia:
        served = plant_table[_TIA_NAMES[tag.name.split(".", 1)[1]]].address
        assert parse_s7_address(tag.address) == parse_s7_address(served), tag
    values = _read(plant.urls["s7"], tia)
    assert values["plant.recipe"] == snapshot["line.recipe"]
    assert values["plant.counter"] == snapshot["line.counter"]
    assert np.float32(values["plant.temperature"]) == np.float32(snapshot["reactor.temperature"])

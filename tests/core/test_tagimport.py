"""Tag tables from Telegraf, Kepware, TIA Portal and Node-RED files.

Every sample below is written from the tool's documented format: Telegraf's plugin
READMEs/sample configs (inputs.modbus register, request and metric styles; inputs.s7comm;
inputs.opcua), Kepware's "CSV Import/Export" help page, TIA Portal's PLC tag table export
and Openness (SimaticML) exports, and node-red-contrib-modbus' node properties.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from bifrost import ConfigurationError, TagTable
from bifrost.exceptions import TagFileWarning

# -- Telegraf -----------------------------------------------------------------------------
TELEGRAF_REGISTER = """\
[[inputs.modbus]]
  name = "Device"
  slave_id = 1
  timeout = "1s"
  controller = "tcp://localhost:502"
  configuration_type = "register"

  discrete_inputs = [
    { name = "start", address = [0]},
    { name = "stop", address = [1]},
  ]
  coils = [
    { name = "motor1_run", address = [0]},
  ]
  holding_registers = [
    { name = "power_factor", byte_order = "AB", data_type = "FIXED", scale=0.01, address = [8]},
    { name = "energy", byte_order = "ABCD", data_type = "FIXED", scale=0.001, address = [5,6]},
    { name = "frequency", byte_order = "BA", data_type = "UFIXED", scale=0.1, address = [7]},
    { name = "power", byte_order = "CDAB", data_type = "FLOAT32-IEEE", address = [3,4]},
    { name = "total", byte_order = "GHEFCDAB", data_type = "FLOAT64-IEEE", address = [10,11,12,13]},
  ]
  input_registers = [
    { name = "tank_level", byte_order = "AB", data_type = "INT16", scale=1.0, address = [0]},
    { name = "pump1_speed", byte_order = "ABCD", data_type = "INT32", scale=1.0, address = [3,4]},
  ]
"""

TELEGRAF_REQUEST = """\
[[inputs.modbus]]
  name = "Device"
  controller = "tcp://localhost:502"
  configuration_type = "request"

  [[inputs.modbus.request]]
    slave_id = 1
    byte_order = "ABCD"
    register = "coil"
    fields = [
      { address=0, name="motor1_run"},
      { address=1, name="jog", measurement="motor"},
      { address=2, name="motor1_stop", omit=true},
    ]

  [[inputs.modbus.request]]
    slave_id = 2
    byte_order = "DCBA"
    register = "holding"
    fields = [
      { address=0, name="voltage",      type="INT16",   scale=0.1   },
      { address=1, name="current",      type="INT32",   scale=0.001 },
      { address=5, name="energy",       type="FLOAT32", scale=0.001, measurement="W" },
      { address=8, name="power_factor", type="INT64",   scale=0.01  },
      { address=20, name="serial",      type="STRING",  length=4    },
    ]
"""

TELEGRAF_METRIC = """\
[[inputs.modbus]]
  name = "Meter"
  controller = "tcp://localhost:502"
  configuration_type = "metric"

  [[inputs.modbus.metric]]
    slave_id = 3
    byte_order = "CDAB"
    measurement = "machine"
    fields = [
      { register="holding", address=0, name="voltage", type="FLOAT32" },
      { register="input",   address=2, name="count",   type="UINT16"  },
      { register="coil",    address=4, name="running" },
    ]
"""

TELEGRAF_S7 = """\
[[inputs.s7comm]]
  server = "127.0.0.1:102"
  rack = 0
  slot = 0

  [[inputs.s7comm.metric]]
    fields = [
      { name="rpm",             address="DB1.R4"    },
      { name="status_ok",       address="DB1.X2.1"  },
      { name="last_error",      address="DB2.S1.32" },
      { name="count",           address="DB1.DI8"   },
      { name="inputs",          address="PE0.W4"    },
      { name="flag",            address="MK0.X10.3" },
    ]
"""

TELEGRAF_OPCUA = """\
[[inputs.opcua]]
  name = "opcua"
  endpoint = "opc.tcp://localhost:4840"
  nodes = [
    {name="level", namespace="2", identifier_type="s", identifier="Plant.Tank.Level"},
    {name="uptime", namespace="0", identifier_type="i", identifier="2256"},
  ]

  [[inputs.opcua.group]]
    name = "reactor"
    namespace = "2"
    identifier_type = "s"
    nodes = [
      {name="temperature", identifier="Plant.Reactor.Temperature"},
      {name="heater", identifier="Plant.Reactor.Heater"},
    ]
"""


def _addresses(table: TagTable) -> dict[str, str]:
    return {t.name: t.address for t in table}


def test_telegraf_modbus_register_style(tmp_path: Path) -> None:
    path = tmp_path / "telegraf.conf"
    path.write_text(TELEGRAF_REGISTER)
    table = TagTable.from_telegraf(path)
    assert _addresses(table) == {
        "start": "di:0@1",
        "stop": "di:1@1",
        "motor1_run": "co:0@1",
        "power_factor": "hr:8:int16@1",
        "energy": "hr:5:int32@1",
        "frequency": "hr:7:uint16:BADC@1",
        "power": "hr:3:float32:CDAB@1",
        "total": "hr:10:float64:CDAB@1",
        "tank_level": "ir:0:int16@1",
        "pump1_speed": "ir:3:int32@1",
    }
    assert table["power_factor"].scale == 0.01
    assert table["energy"].scale == 0.001
    assert table["power"].scale == 1.0
    energy_line = _line(TELEGRAF_REGISTER, '"energy"')
    assert table["energy"].meta["source"] == f"{path}, line {energy_line}"


def test_telegraf_modbus_request_and_metric_styles() -> None:
    table = TagTable.from_telegraf(TELEGRAF_REQUEST)
    assert _addresses(table) == {
        "motor1_run": "co:0@1",
        "motor.jog": "co:1@1",
        "voltage": "hr:0:int16:BADC@2",
        "current": "hr:1:int32:DCBA@2",
        "W.energy": "hr:5:float32:DCBA@2",
        "power_factor": "hr:8:int64:DCBA@2",
        "serial": "hr:20:string[8]:BADC@2",
    }
    assert table["voltage"].scale == 0.1
    metric = TagTable.from_telegraf(TELEGRAF_METRIC)
    assert _addresses(metric) == {
        "machine.voltage": "hr:0:float32:CDAB@3",
        "machine.count": "ir:2:uint16@3",
        "machine.running": "co:4@3",
    }


def test_telegraf_s7comm_and_opcua() -> None:
    assert _addresses(TagTable.from_telegraf(TELEGRAF_S7)) == {
        "rpm": "DB1.DBD4:REAL",
        "status_ok": "DB1.DBX2.1",
        "last_error": "DB2.DBB1:STRING[32]",
        "count": "DB1.DBD8:DINT",
        "inputs": "IW4:WORD",
        "flag": "M10.3",
    }
    assert _addresses(TagTable.from_telegraf(TELEGRAF_OPCUA)) == {
        "level": "ns=2;s=Plant.Tank.Level",
        "uptime": "ns=0;i=2256",
        "reactor.temperature": "ns=2;s=Plant.Reactor.Temperature",
        "reactor.heater": "ns=2;s=Plant.Reactor.Heater",
    }


def test_telegraf_file_with_several_devices_needs_device() -> None:
    both = TELEGRAF_REGISTER + "\n" + TELEGRAF_S7
    with pytest.raises(ConfigurationError, match=r"2 devices .*pick one with device="):
        TagTable.from_telegraf(both)
    assert "rpm" in TagTable.from_telegraf(both, device="127.0.0.1:102").names
    assert "energy" in TagTable.from_telegraf(both, device="Device").names
    with pytest.raises(ConfigurationError, match="no device matches device='nope'"):
        TagTable.from_telegraf(both, device="nope")


@pytest.mark.parametrize(
    ("old", "new", "needle", "message"),
    [
        (
            'data_type = "INT32", scale=1.0, address = [3,4]',
            'data_type = "INT32", scale=1.0, address = [3]',
            '"pump1_speed"',
            r"field 'address': 'pump1_speed': INT32 takes 2 registers",
        ),
        (
            'data_type = "INT16", scale=1.0, address = [0]',
            'data_type = "WORD16", scale=1.0, address = [0]',
            '"tank_level"',
            r"field 'data_type': 'tank_level': unknown data_type 'WORD16'",
        ),
        (
            "address = [5,6]",
            "address = [5,7]",
            '"energy"',
            r"field 'address': 'energy': the registers \[5, 7\] are not consecutive",
        ),
        ('byte_order = "BA"', 'byte_order = "XY"', '"frequency"', r"field 'byte_order'"),
        ("address = [8]", "address = [70000]", '"power_factor"', r"field 'address': .*beyond"),
        ("slave_id = 1", "slave_id = 300", "slave_id", r"field 'slave_id'"),
    ],
)
def test_telegraf_errors_name_file_line_and_field(
    tmp_path: Path, old: str, new: str, needle: str, message: str
) -> None:
    path = tmp_path / "bad.conf"
    assert old in TELEGRAF_REGISTER
    text = TELEGRAF_REGISTER.replace(old, new, 1)
    path.write_text(text)
    line = _line(text, needle)
    with pytest.raises(
        ConfigurationError, match=rf"{re.escape(str(path))}, line {line}, {message}"
    ):
        TagTable.from_telegraf(path)


def _line(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_telegraf_syntax_error_and_unsupported_types() -> None:
    with pytest.raises(ConfigurationError, match=r"not valid TOML: .*line 2"):
        TagTable.from_telegraf('[[inputs.modbus]]\n  name = "x\n')
    int8 = TELEGRAF_REGISTER.replace('data_type = "INT16"', 'data_type = "INT8L"')
    at = _line(int8, '"tank_level"')
    with pytest.raises(
        ConfigurationError, match=rf"line {at}, field 'data_type': INT8L is the low"
    ):
        TagTable.from_telegraf(int8)
    with pytest.warns(TagFileWarning, match=r"left out 1 Telegraf entry .*'tank_level'"):
        table = TagTable.from_telegraf(int8, skip_unsupported=True)
    assert "tank_level" not in table
    assert "pump1_speed" in table
    with pytest.raises(ConfigurationError, match="DATE_AND_TIME"):
        TagTable.from_telegraf(TELEGRAF_S7.replace('"DB1.DI8"', '"DB2.DT2"'))
    with pytest.raises(ConfigurationError, match=r"no \[\[inputs.modbus\]\]"):
        TagTable.from_telegraf("[[inputs.cpu]]\n  percpu = true\n")


# -- Kepware ------------------------------------------------------------------------------
KEPWARE_HEADER = (
    '"Tag Name","Address","Data Type","Respect Data Type","Client Access","Scan Rate",'
    '"Scaling","Raw Low","Raw High","Scaled Low","Scaled High","Scaled Data Type",'
    '"Clamp Low","Clamp High","Eng Units","Description","Negate Value"\n'
)
KEPWARE_MODBUS = KEPWARE_HEADER + (
    '"Tank.Level","400001","Float",1,"RO",100,"","","","","","","","","m","tank level",0\n'
    '"Tank.Setpoint","40003","Float",1,"R/W",100,"","","","","","","","","m","",0\n'
    '"Pump.Raw","300005","Word",1,"RO",100,"Linear",0,4095,0,100,"Float",1,1,"%","",0\n'
    '"Pump.Run","000001","Boolean",1,"R/W",100,"","","","","","","","","","",0\n'
    '"Alarm","100002","Default",1,"RO",100,"","","","","","","","","","",0\n'
    '"Count","400010","Long",1,"RO",100,"","","","","","","","","","",0\n'
    '"Total","400020","Double",1,"RO",100,"","","","","","","","","","",0\n'
    '"Recipe","400030.16H","String",1,"RO",100,"","","","","","","","","","",0\n'
    '"Word","400040","Default",1,"RO",100,"","","","","","","","","","",0\n'
)
KEPWARE_S7 = KEPWARE_HEADER + (
    '"Level","DB1.DBD0","Float",1,"RO",100,"","","","","","","","","m","",0\n'
    '"Run","DB1.DBX6.1","Boolean",1,"R/W",100,"","","","","","","","","","",0\n'
    '"Count","DB1.DBW4","Short",1,"RO",100,"","","","","","","","","","",0\n'
    '"Flags","MW10","Word",1,"RO",100,"","","","","","","","","","",0\n'
    '"Start","I0.0","Boolean",1,"RO",100,"","","","","","","","","","",0\n'
)


def test_kepware_modbus_export(tmp_path: Path) -> None:
    path = tmp_path / "device.csv"
    path.write_text(KEPWARE_MODBUS)
    table = TagTable.from_kepware(path)
    assert _addresses(table) == {
        "Tank.Level": "hr:0:float32:CDAB",
        "Tank.Setpoint": "hr:2:float32:CDAB",
        "Pump.Raw": "ir:4:uint16",
        "Pump.Run": "co:0",
        "Alarm": "di:1",
        "Count": "hr:9:int32:CDAB",
        "Total": "hr:19:float64:CDAB",
        "Recipe": "hr:29:string[16]",
        "Word": "hr:39:uint16",
    }
    level, raw = table["Tank.Level"], table["Pump.Raw"]
    assert (level.unit, level.description, level.writable) == ("m", "tank level", False)
    assert table["Tank.Setpoint"].writable
    assert table["Pump.Run"].writable
    assert raw.scale == pytest.approx(100 / 4095)
    assert raw.offset == 0.0
    assert (raw.min, raw.max, raw.unit) == (0.0, 100.0, "%")
    high_first = TagTable.from_kepware(path, first_word_low=False)
    assert high_first["Tank.Level"].address == "hr:0:float32"


def test_kepware_s7_export_and_errors(tmp_path: Path) -> None:
    assert _addresses(TagTable.from_kepware(KEPWARE_S7)) == {
        "Level": "DB1.DBD0:REAL",
        "Run": "DB1.DBX6.1",
        "Count": "DB1.DBW4:INT",
        "Flags": "MW10:WORD",
        "Start": "I0.0",
    }
    path = tmp_path / "bad.csv"
    path.write_text(KEPWARE_S7.replace('"DB1.DBW4","Short"', '"DB1.DBW4","Float"'))
    with pytest.raises(
        ConfigurationError, match=rf"{re.escape(str(path))}, line 4, field 'Address'"
    ):
        TagTable.from_kepware(path)
    path.write_text(KEPWARE_MODBUS.replace('"300005","Word"', '"300005","BCD"'))
    with pytest.raises(ConfigurationError, match=r"line 4, field 'Data Type': the data type 'BCD'"):
        TagTable.from_kepware(path)
    path.write_text(KEPWARE_MODBUS.replace('"400010"', '"400010.3"'))
    with pytest.raises(ConfigurationError, match=r"line 7, field 'Address': a bit of a register"):
        TagTable.from_kepware(path)
    path.write_text(KEPWARE_MODBUS.replace(",4095,", ",0,"))
    with pytest.raises(ConfigurationError, match=r"line 4, field 'Raw High'"):
        TagTable.from_kepware(path)
    with pytest.raises(ConfigurationError, match=r"line 1: the header row needs"):
        TagTable.from_kepware("name,address\nx,hr:0\n")


# -- TIA Portal ---------------------------------------------------------------------------
TIA_TAG_TABLE_XML = """\
<?xml version="1.0" encoding="utf-8"?>
<Document>
  <Engineering version="V17" />
  <SW.Tags.PlcTagTable ID="0">
    <AttributeList>
      <Name>Default tag table</Name>
    </AttributeList>
    <ObjectList>
      <SW.Tags.PlcTag ID="1" CompositionName="Tags">
        <AttributeList>
          <DataTypeName>Bool</DataTypeName>
          <ExternalAccessible>true</ExternalAccessible>
          <LogicalAddress>%I0.0</LogicalAddress>
          <Name>Start</Name>
        </AttributeList>
        <ObjectList>
          <MultilingualText ID="2" CompositionName="Comment">
            <ObjectList>
              <MultilingualTextItem ID="3" CompositionName="Items">
                <AttributeList>
                  <Culture>en-US</Culture>
                  <Text>start button</Text>
                </AttributeList>
              </MultilingualTextItem>
            </ObjectList>
          </MultilingualText>
        </ObjectList>
      </SW.Tags.PlcTag>
      <SW.Tags.PlcTag ID="4" CompositionName="Tags">
        <AttributeList>
          <DataTypeName>Real</DataTypeName>
          <LogicalAddress>%MD20</LogicalAddress>
          <Name>Speed</Name>
        </AttributeList>
      </SW.Tags.PlcTag>
      <SW.Tags.PlcTag ID="5" CompositionName="Tags">
        <AttributeList>
          <DataTypeName>Int</DataTypeName>
          <LogicalAddress>%IW64</LogicalAddress>
          <Name>Analog in</Name>
        </AttributeList>
      </SW.Tags.PlcTag>
    </ObjectList>
  </SW.Tags.PlcTagTable>
</Document>
"""

TIA_DB_XML = """\
<?xml version="1.0" encoding="utf-8"?>
<Document>
  <SW.Blocks.GlobalDB ID="0">
    <AttributeList>
      <Interface>
        <Sections xmlns="http://www.siemens.com/automation/Openness/SW/Interface/v5">
          <Section Name="Static">
            <Member Name="Run" Datatype="Bool" />
            <Member Name="Fault" Datatype="Bool" />
            <Member Name="Mode" Datatype="Byte" />
            <Member Name="Level" Datatype="Real">
              <Comment><MultiLanguageText Lang="en-US">tank level</MultiLanguageText></Comment>
            </Member>
            <Member Name="Flag" Datatype="Bool" />
            <Member Name="Count" Datatype="Int" />
            <Member Name="Motor" Datatype="Struct">
              <Member Name="On" Datatype="Bool" />
              <Member Name="Speed" Datatype="Real" />
            </Member>
            <Member Name="Recipe" Datatype="String[10]" />
            <Member Name="Stamp" Datatype="DTL" />
            <Member Name="Speeds" Datatype="Array[0..2] of Int" />
            <Member Name="Elapsed" Datatype="Time" />
          </Section>
        </Sections>
      </Interface>
      <MemoryLayout>Standard</MemoryLayout>
      <Name>Plant</Name>
      <Number>1</Number>
    </AttributeList>
  </SW.Blocks.GlobalDB>
</Document>
"""


def test_tia_plc_tag_table_xml(tmp_path: Path) -> None:
    path = tmp_path / "tags.xml"
    path.write_text(TIA_TAG_TABLE_XML)
    table = TagTable.from_tia(path)
    assert _addresses(table) == {"Start": "I0.0", "Speed": "MD20:REAL", "Analog in": "IW64:INT"}
    assert table["Start"].description == "start button"
    path.write_text(TIA_TAG_TABLE_XML.replace("%MD20", "%MW20"))
    at = _line(TIA_TAG_TABLE_XML, "%MD20")
    with pytest.raises(ConfigurationError, match=rf"line {at}, field 'Logical Address'"):
        TagTable.from_tia(path)


def test_tia_data_block_standard_layout(tmp_path: Path) -> None:
    path = tmp_path / "db.xml"
    path.write_text(TIA_DB_XML)
    at = _line(TIA_DB_XML, 'Name="Stamp"')
    with pytest.raises(
        ConfigurationError, match=rf"line {at}, field 'Datatype': the data type 'DTL'"
    ):
        TagTable.from_tia(path)
    with pytest.warns(TagFileWarning, match="Plant.Stamp"):
        table = TagTable.from_tia(path, skip_unsupported=True)
    # Bits packed, a byte after them, wider values on even bytes, structs and strings
    # even-aligned and of even size; the skipped DTL still takes its 12 bytes.
    assert _addresses(table) == {
        "Plant.Run": "DB1.DBX0.0",
        "Plant.Fault": "DB1.DBX0.1",
        "Plant.Mode": "DB1.DBB1:BYTE",
        "Plant.Level": "DB1.DBD2:REAL",
        "Plant.Flag": "DB1.DBX6.0",
        "Plant.Count": "DB1.DBW8:INT",
        "Plant.Motor.On": "DB1.DBX10.0",
        "Plant.Motor.Speed": "DB1.DBD12:REAL",
        "Plant.Recipe": "DB1.DBB16:STRING[10]",
        "Plant.Speeds[0]": "DB1.DBW40:INT",
        "Plant.Speeds[1]": "DB1.DBW42:INT",
        "Plant.Speeds[2]": "DB1.DBW44:INT",
        "Plant.Elapsed": "DB1.DBD46:DINT",
    }
    assert table["Plant.Level"].description == "tank level"
    assert table["Plant.Elapsed"].unit == "ms"
    path.write_text(TIA_DB_XML.replace("Standard", "Optimized"))
    at = _line(TIA_DB_XML, "<MemoryLayout>")
    with pytest.raises(ConfigurationError, match=rf"line {at}, field 'MemoryLayout': .*optimized"):
        TagTable.from_tia(path)


def test_tia_xlsx_export(tmp_path: Path) -> None:
    openpyxl = pytest.importorskip("openpyxl")
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "PLC Tags"
    sheet.append(["Name", "Path", "Data Type", "Logical Address", "Comment", "Hmi Visible"])
    sheet.append(["Start", "Default tag table", "Bool", "%I0.0", "start button", "True"])
    sheet.append(["Level", "Default tag table", "Real", "%MD4", "", "True"])
    sheet.append(["Count", "Line", "Int", "%MW8", "parts", "True"])
    sheet.append(["Recipe", "Line", "String[20]", "%MB100", "", "True"])
    sheet.append(["Cycle", "Line", "Time", "%MD12", "", "True"])
    path = tmp_path / "PLCTags.xlsx"
    book.save(path)
    table = TagTable.from_tia(path)
    assert _addresses(table) == {
        "Start": "I0.0",
        "Level": "MD4:REAL",
        "Count": "MW8:INT",
        "Recipe": "MB100:STRING[20]",
        "Cycle": "MD12:DINT",
    }
    assert table["Count"].description == "parts"
    assert table["Count"].meta["tia_path"] == "Line"
    sheet.append(["Stamp", "Line", "DTL", "%MB200", "", "True"])
    book.save(path)
    with pytest.raises(ConfigurationError, match=r"sheet 'PLC Tags', row 7, field 'Data Type'"):
        TagTable.from_tia(path)


def test_tia_xlsx_without_openpyxl_names_the_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import sys

    from bifrost.exceptions import MissingDependency

    path = tmp_path / "PLCTags.xlsx"
    path.write_bytes(b"PK")
    monkeypatch.setitem(sys.modules, "openpyxl", None)
    with pytest.raises(MissingDependency, match=r'pip install "bifrost-core\[xlsx\]"'):
        TagTable.from_tia(path)


# -- Node-RED -----------------------------------------------------------------------------
NODE_RED_FLOW = [
    {"id": "f1", "type": "tab", "label": "Flow 1"},
    {
        "id": "a1b2",
        "type": "modbus-read",
        "z": "f1",
        "name": "tank",
        "topic": "",
        "unitid": "",
        "dataType": "HoldingRegister",
        "adr": "0",
        "quantity": "3",
        "rate": "1",
        "rateUnit": "s",
        "server": "srv1",
        "wires": [[]],
    },
    {
        "id": "c3d4",
        "type": "modbus-getter",
        "z": "f1",
        "name": "",
        "topic": "alarms",
        "unitid": "2",
        "dataType": "Input",
        "adr": "4",
        "quantity": "2",
        "server": "srv1",
        "wires": [[]],
    },
    {
        "id": "srv1",
        "type": "modbus-client",
        "name": "plc",
        "clienttype": "tcp",
        "tcpHost": "127.0.0.1",
        "tcpPort": "502",
        "unit_id": "1",
    },
]


def test_node_red_read_nodes(tmp_path: Path) -> None:
    path = tmp_path / "flows.json"
    path.write_text(json.dumps(NODE_RED_FLOW, indent=4))
    table = TagTable.from_node_red(path)
    assert _addresses(table) == {
        "tank.0": "hr:0:uint16@1",
        "tank.1": "hr:1:uint16@1",
        "tank.2": "hr:2:uint16@1",
        "alarms.0": "di:4@2",
        "alarms.1": "di:5@2",
    }
    bad = [dict(n) for n in NODE_RED_FLOW]
    bad[2]["dataType"] = "Holding"
    path.write_text(json.dumps(bad, indent=4))
    line = path.read_text().splitlines().index('        "id": "c3d4",') + 1
    with pytest.raises(ConfigurationError, match=rf"line {line}, field 'dataType'"):
        TagTable.from_node_red(path)
    with pytest.raises(ConfigurationError, match=r"line 1: not valid JSON"):
        TagTable.from_node_red('[{"id": }\n')


def test_node_red_several_servers_need_server() -> None:
    flow = [dict(n) for n in NODE_RED_FLOW]
    flow[2]["server"] = "srv2"
    flow.append({"id": "srv2", "type": "modbus-client", "name": "meter", "tcpHost": "10.0.0.9"})
    text = json.dumps(flow, indent=2)
    with pytest.raises(ConfigurationError, match=r"2 Modbus servers .*server="):
        TagTable.from_node_red(text)
    assert TagTable.from_node_red(text, server="meter").names == ["alarms.0", "alarms.1"]
    assert TagTable.from_node_red(text, server="127.0.0.1:502").names[0] == "tank.0"


def test_a_zero_scale_is_an_error_naming_the_field() -> None:
    config = TELEGRAF_REGISTER.replace("scale=0.1, address = [7]", "scale=0.0, address = [7]")
    at = _line(config, '"frequency"')
    with pytest.raises(ConfigurationError, match=rf"line {at}, field 'scale': .*non-zero"):
        TagTable.from_telegraf(config)

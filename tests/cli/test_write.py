"""write: refused without --writable, old -> new and a confirmation, --dry-run sends nothing.

Requests are counted on the server side: the Modbus test server counts every request it
receives, the plant's S7 server its read and write requests.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Iterator

import pytest
from cli_support import CliPlant, bifrost
from modbus_server import ModbusTestServer


@pytest.fixture(scope="module")
def server() -> Iterator[ModbusTestServer]:
    with ModbusTestServer() as running:
        yield running


def _float(registers: list[int]) -> float:
    return float(struct.unpack(">f", struct.pack(">HH", *registers))[0])


def test_write_needs_writable_and_a_dry_run_sends_nothing(server: ModbusTestServer):
    server.set("hr", 10, [0, 0])
    before = server.requests
    refused = bifrost("write", server.url, "hr:10:float32=55.5")
    assert refused.returncode == 6
    assert "--writable" in refused.stderr
    dry = bifrost("write", server.url, "hr:10:float32=55.5", "hr:12=7", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    requests = json.loads(dry.stdout)
    assert [r["tag"] for r in requests] == ["hr:10:float32", "hr:12"]
    assert _float(requests[0]["payload"]) == 55.5
    assert requests[1]["payload"] == [7]
    assert server.requests == before  # neither sent a single request
    assert server.get("hr", 10, 2) == [0, 0]


def test_write_shows_old_and_new_and_asks(server: ModbusTestServer):
    server.set("hr", 20, [0x4248, 0x0000])  # 50.0
    no = bifrost("write", server.url, "hr:20:float32=75.5", "--writable", input="n\n")
    assert no.returncode == 6
    assert "nothing was written" in no.stderr
    assert "50" in no.stdout
    assert "75.5" in no.stdout  # old -> new shown before the question
    assert server.get("hr", 20, 2) == [0x4248, 0x0000]
    yes = bifrost("write", server.url, "hr:20:float32=75.5", "--writable", input="y\n")
    assert yes.returncode == 0, yes.stderr
    assert "wrote 1 value" in yes.stdout
    assert _float(server.get("hr", 20, 2)) == 75.5
    scripted = bifrost("write", server.url, "hr:20:float32=80", "--writable", "--yes", "--json")
    assert scripted.returncode == 0, scripted.stderr
    (row,) = json.loads(scripted.stdout)
    assert (row["tag"], row["old"], row["new"]) == ("hr:20:float32", 75.5, 80)
    assert _float(server.get("hr", 20, 2)) == 80.0


def test_a_value_out_of_range_is_refused_before_anything_is_sent(cli_plant: CliPlant):
    s7 = cli_plant.plant._bindings["s7"].server  # the plant's snap7 server, counting
    args = cli_plant.args("s7")
    writes = s7.write_requests
    refused = bifrost("write", *args, "reactor.setpoint=500", "--writable", "--yes")
    assert refused.returncode == 2
    assert "reactor.setpoint" in refused.stderr
    assert "150" in refused.stderr  # the tag's range
    not_writable = bifrost("write", *args, "tank.level=1", "--writable", "--yes")
    assert not_writable.returncode == 6
    dry = bifrost("write", *args, "reactor.setpoint=55", "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert "DB1.DBD16:REAL" in dry.stdout
    assert s7.write_requests == writes
    done = bifrost("write", *args, "reactor.setpoint=55", "--writable", "--yes")
    assert done.returncode == 0, done.stderr
    assert s7.write_requests == writes + 1
    with cli_plant.connect("s7") as plc:
        assert plc.read_value("reactor.setpoint") == 55.0


def test_write_over_opcua(cli_plant: CliPlant):
    args = cli_plant.args("opcua")
    dry = bifrost("write", *args, "reactor.setpoint=42.5", "--dry-run", "--json")
    assert dry.returncode == 0, dry.stderr
    (request,) = json.loads(dry.stdout)
    assert request["address"] == "ns=2;s=Plant.Reactor.Setpoint"
    assert request["value"] == 42.5
    with cli_plant.connect("opcua") as plc:
        before = plc.read_value("reactor.setpoint")
    assert before != 42.5  # the dry run wrote nothing
    done = bifrost("write", *args, "reactor.setpoint=42.5", "--writable", "--yes", "--json")
    assert done.returncode == 0, done.stderr
    (row,) = json.loads(done.stdout)
    assert (row["old"], row["new"]) == (before, 42.5)
    with cli_plant.connect("opcua") as plc:
        assert plc.read_value("reactor.setpoint") == 42.5

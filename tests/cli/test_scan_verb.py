"""``bifrost scan`` against the libmodbus-like reference server, as a user runs it."""

from __future__ import annotations

import json
import subprocess

from cli_support import SCRIPT, bifrost
from modbus_reference_server import ReferenceServer

from bifrost.protocols.modbus.quirks import Quirks


def test_scan_lists_ranges_and_saves_quirks(tmp_path):
    path = tmp_path / "device.yaml"
    mapping = {"hr": [(100, 1099)], "co": [(0, 15)]}
    with ReferenceServer(mapping, max_batch={"hr": 60}) as server:
        done = bifrost(
            "scan", server.url, "-T", "hr", "-T", "co", "--stop", "1199",
            "--quirks-out", str(path), "--json",
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        rows = json.loads(done.stdout)
        readable = [(r["table"], r["first"], r["last"]) for r in rows if r["readable"]]
        assert readable == [("co", 0, 15), ("hr", 100, 1099)]
        assert Quirks.from_yaml(path).max_registers_per_request == 60
        assert server.writes == 0
        table = bifrost("scan", server.url, "--stop", "1199", "--pipeline", "0")
        assert table.returncode == 0, table.stderr
        assert "largest batch: hr 60; pipelining not probed" in table.stdout


def test_scan_refuses_other_protocols_and_bad_tables():
    done = bifrost("scan", "memory://cli-scan")
    assert done.returncode == 2
    assert "modbus://" in done.stderr
    with ReferenceServer({"hr": [(0, 9)]}) as server:
        bad = bifrost("scan", server.url, "-T", "xx")
        assert bad.returncode == 2
        assert "unknown Modbus table 'xx'" in bad.stderr
        assert server.requests == 0


def test_bifrost_sim_serves_a_device_with_holes_for_the_scanner():
    assert SCRIPT is not None
    command = [SCRIPT, "sim", "--modbus", "0", "--modbus-holes", "hr:100-199"]
    with subprocess.Popen(
        [*command, "--modbus-max-batch", "40"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as sim:
        try:
            assert sim.stdout is not None
            url = sim.stdout.readline().split()[1]
            done = bifrost("scan", url, "--stop", "1999", "--pipeline", "0", "--json")
        finally:
            sim.terminate()
            sim.wait(30)
    assert done.returncode == 0, done.stderr
    readable = [(r["first"], r["last"]) for r in json.loads(done.stdout) if r["readable"]]
    assert readable == [(0, 99), (200, 1999)]


def test_bifrost_sim_refuses_holes_it_cannot_read():
    done = bifrost("sim", "--modbus", "0", "--modbus-holes", "hr:100", "--seconds", "0")
    assert done.returncode == 0, done.stderr  # one register is a range too
    bad = bifrost("sim", "--modbus", "0", "--modbus-holes", "hr100-199", "--seconds", "0")
    assert bad.returncode == 2
    assert "TABLE:FIRST-LAST" in bad.stderr

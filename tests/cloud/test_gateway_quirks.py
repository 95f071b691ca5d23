"""Gateway devices with Modbus quirks: inline or from a file next to the config."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest
from quirky_server import QuirkyServer
from waiting import wait_for

import bifrost as bf
from bifrost.cloud.gateway import Gateway, load_config


def _closed_port() -> int:
    # A broker that is not there: the sink spools, the device records regardless.
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _config(tmp_path: Path, url: str, quirks: str, tags: str = "") -> Path:
    tags = tags or "{" + ", ".join(f"r{i}: 'hr:{i}'" for i in range(30)) + "}"
    path = tmp_path / "gateway.yaml"
    path.write_text(
        f"""\
spool: spool
sinks:
  broker:
    url: mqtt://127.0.0.1:{_closed_port()}
devices:
  meter:
    url: {url}
    tags: {tags}
    interval: 100ms
    quirks: {quirks}
"""
    )
    return path


def test_a_device_reads_with_the_quirks_file_named_in_the_config(tmp_path: Path):
    (tmp_path / "meter.yaml").write_text("max_registers_per_request: 10\n")
    with QuirkyServer() as server:
        server.max_registers = 10  # larger reads are refused
        gateway = Gateway(_config(tmp_path, server.url, "meter.yaml"))
        gateway.start()
        try:
            wait_for(lambda: len([s for s in server.seen if s.function == 3]) >= 6, timeout=10)
        finally:
            gateway.close()
    reads = [s for s in server.seen if s.function == 3]
    assert {s.count for s in reads} == {10}
    assert gateway.devices["meter"].error == ""


def test_inline_quirks_are_checked_when_the_config_loads(tmp_path: Path):
    path = _config(tmp_path, "modbus://127.0.0.1:1", "{max_bits_per_request: 5000}")
    with pytest.raises(bf.ConfigurationError) as caught:
        load_config(path)
    message = str(caught.value)
    assert "line 10: devices.meter.quirks" in message
    assert "less than or equal to 2000" in message


def test_a_missing_quirks_file_is_the_device_error(tmp_path: Path):
    with QuirkyServer() as server:
        gateway = Gateway(_config(tmp_path, server.url, "nowhere.yaml"))
        gateway.start()
        try:
            device = gateway.devices["meter"]
            wait_for(lambda: "cannot read the device quirks file" in device.error, timeout=10)
        finally:
            gateway.close()
        assert server.requests == 0


def test_a_device_reads_with_the_quirks_of_its_tag_table(tmp_path: Path):
    rows = "\n".join(f"  - {{name: r{i}, address: 'hr:{i}'}}" for i in range(30))
    (tmp_path / "meter-tags.yaml").write_text(
        f"quirks:\n  max_registers_per_request: 10\ntags:\n{rows}\n"
    )
    with QuirkyServer() as server:
        server.max_registers = 10  # larger reads are refused
        gateway = Gateway(_config(tmp_path, server.url, "null", tags="meter-tags.yaml"))
        gateway.start()
        try:
            wait_for(lambda: len([s for s in server.seen if s.function == 3]) >= 6, timeout=10)
        finally:
            gateway.close()
    reads = [s for s in server.seen if s.function == 3]
    assert {s.count for s in reads} == {10}
    assert gateway.devices["meter"].error == ""

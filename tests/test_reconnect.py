"""Reconnection: a real plant process killed and restarted, and a proxy that stalls or cuts.

Recordings keep their schedule through the outage, mark it with bad-quality gap rows,
and come back on their own (exponential backoff with jitter) once the device does.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from modbus_server import ModbusTestServer
from tcp_proxy import FaultyProxy
from waiting import wait_for

import bifrost as bf
from bifrost.sim.tagmap import tag_table

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class PlantProcess:
    """`bifrost sim` in its own process, on fixed ports so a restart keeps the URL."""

    def __init__(self, protocol: str) -> None:
        self.protocol = protocol
        self.port = free_port()
        self.process: subprocess.Popen[str] | None = None
        self.url = ""

    def start(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "bifrost",
                "sim",
                f"--{self.protocol}",
                str(self.port),
                "--seconds",
                "120",
            ],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        assert line.startswith(self.protocol), line
        self.url = line.split()[-1]

    def kill(self) -> None:
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait(10)
        if self.process.stdout is not None:
            self.process.stdout.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.kill()


@pytest.fixture(params=["modbus", "s7", "opcua"])
def plant_process(request: pytest.FixtureRequest) -> Iterator[PlantProcess]:
    plant = PlantProcess(request.param)
    plant.start()
    try:
        yield plant
    finally:
        plant.stop()


def quality_of(rec: bf.Recording, tag: str) -> list[str]:
    return list(rec.quality_frame()[tag])


def test_killed_and_restarted_plant_process(plant_process: PlantProcess):
    # The same tag names over every protocol; the plant's maps say where they live.
    protocol = plant_process.protocol
    table = tag_table(protocol)
    tags = ["tank.level", "reactor.setpoint"]
    options = {"security": "None"} if protocol == "opcua" else {}
    with bf.connect(plant_process.url, tags=table, timeout=1.0, **options) as plc:
        rec = plc.record(tags, interval="50ms", background=True)
        assert wait_for(lambda: len(rec) >= 5)
        plant_process.kill()
        # Calls fail within their timeout with a clear error naming the endpoint.
        started = time.monotonic()
        with pytest.raises(bf.ConnectionError, match=f"127.0.0.1:{plant_process.port}"):
            plc.read(tags)
        assert time.monotonic() - started < 5
        assert wait_for(lambda: rec.stats.gaps >= 5)
        plant_process.start()
        assert wait_for(lambda: rec.stats.reconnects >= 1)
        good_before = quality_of(rec, tags[0]).count("good")
        assert wait_for(lambda: quality_of(rec, tags[0]).count("good") >= good_before + 5)
        rec.stop()
        rec.wait(10)
        assert plc.read(tags)["quality"].tolist() == ["good", "good"]
    frame = rec.to_pandas()
    assert frame.index.is_unique
    assert frame.index.is_monotonic_increasing
    quality = quality_of(rec, tags[0])
    first_bad = (
        quality.index("bad_comm_lost")
        if "bad_comm_lost" in quality
        else quality.index("bad_timeout")
    )
    # good ... bad (the outage, explicit rows) ... good again
    assert "good" in quality[:first_bad]
    assert "good" in quality[first_bad:]
    assert rec.stats.samples + rec.stats.missed_cycles >= len(rec)


@pytest.fixture
def proxied() -> Iterator[tuple[ModbusTestServer, FaultyProxy]]:
    server = ModbusTestServer().start()
    proxy = FaultyProxy(server.port).start()
    try:
        yield server, proxy
    finally:
        proxy.stop()
        server.stop()


def test_a_stalled_connection_becomes_timeout_rows_then_recovers(proxied):
    server, proxy = proxied
    server.set("hr", 0, [3])
    with bf.connect(f"modbus://127.0.0.1:{proxy.port}", timeout=0.3) as plc:
        rec = plc.record(["hr:0"], interval="50ms", background=True)
        assert wait_for(lambda: len(rec) >= 3)
        proxy.stall()
        assert wait_for(lambda: "bad_timeout" in quality_of(rec, "hr:0"))
        proxy.heal()
        assert wait_for(lambda: rec.stats.reconnects >= 1)
        assert wait_for(lambda: quality_of(rec, "hr:0")[-3:] == ["good"] * 3)
        rec.stop()
        rec.wait(10)
    assert rec.to_pandas().index.is_unique


def test_a_cut_connection_is_reopened(proxied):
    server, proxy = proxied
    server.set("hr", 0, [4])
    with bf.connect(f"modbus://127.0.0.1:{proxy.port}", timeout=0.5) as plc:
        rec = plc.record(["hr:0"], interval="50ms", background=True)
        assert wait_for(lambda: len(rec) >= 3)
        connections = proxy.connections
        proxy.cut()
        assert wait_for(lambda: proxy.connections > connections)
        assert wait_for(lambda: quality_of(rec, "hr:0")[-3:] == ["good"] * 3)
        rec.stop()
        rec.wait(10)
        # A one-off call also reconnects by itself.
        proxy.cut()
        value = None
        for _ in range(3):
            try:
                value = plc.read_value("hr:0")
                break
            except bf.ConnectionError:
                continue
        assert value == 4

"""Sparkplug DCMDs through the edge gateway: written only to a device configured writable."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
import spb_wire
from brokers import Mosquitto
from waiting import wait_for

import bifrost as bf

pytest.importorskip("google.protobuf")

NS = "spBv1.0/G"


def _birth_aliases(subscriber: Any, device: str) -> dict[str, int]:
    with subscriber.lock:
        births = [p for t, p in subscriber.messages if t == f"{NS}/DBIRTH/N/{device}"]
    if not births:
        return {}
    return {m.name: m.alias for m in spb_wire.decode(births[-1]).metrics}


def test_dcmd_writes_a_writable_device_and_is_refused_on_a_read_only_one(
    tmp_path: Path, broker: Mosquitto, subscriber_factory: Any
) -> None:
    subscriber = subscriber_factory(broker.port, f"{NS}/#")
    with bf.sim.Plant(seed=3) as plant:
        url = plant.serve(modbus=0)["modbus"]
        tags = tmp_path / "plant.yaml"
        plant.tags("modbus").to_yaml(tags)
        device = {"url": url, "tags": str(tags), "read": ["reactor.setpoint"], "interval": 0.1}
        gateway = bf.cloud.Gateway(
            {
                "spool": str(tmp_path / "spool"),
                "sinks": {
                    "spb": {"url": broker.url, "payload": "sparkplug", "group": "G", "node": "N"}
                },
                "devices": {"press": {**device, "writable": True}, "viewer": device},
            }
        )
        with gateway:
            assert wait_for(lambda: _birth_aliases(subscriber, "press"), 20)
            assert wait_for(lambda: _birth_aliases(subscriber, "viewer"), 20)
            with bf.connect(url, tags=plant.tags("modbus")) as check:
                before = check.read_value("reactor.setpoint")
                stamp = time.time_ns() // 10**6
                viewer = spb_wire.device_command(stamp, [("reactor.setpoint", before + 11.0)])
                subscriber.client.publish(f"{NS}/DCMD/N/viewer", viewer, qos=1)
                time.sleep(1.0)
                assert check.read_value("reactor.setpoint") == before  # read-only: refused
                alias = _birth_aliases(subscriber, "press")["reactor.setpoint"]
                press = spb_wire.device_command(stamp, [(alias, 61.5), ("no.such.tag", 1.0)])
                subscriber.client.publish(f"{NS}/DCMD/N/press", press, qos=1)
                assert wait_for(lambda: check.read_value("reactor.setpoint") == 61.5, 10)

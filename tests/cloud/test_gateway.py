"""The edge gateway: config validation, and SIGKILLs while the broker is away."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from brokers import Mosquitto, free_port
from waiting import wait_for

import bifrost as bf
from bifrost.cloud.gateway import load_config, main
from bifrost.cloud.payloads import decode_row
from bifrost.cloud.spool import Spool

TAGS = ["tank.level", "reactor.temperature", "line.counter"]


def _config(tmp_path: Path, plant_url: str, broker_port: int, **extra: Any) -> Path:
    tags = tmp_path / "plant.yaml"
    with bf.sim.Plant(realtime=False) as plant:
        plant.tags("modbus").to_yaml(tags)
    text = f"""\
spool: spool
status_interval: 1s
flush_timeout: 5s
sinks:
  broker:
    url: mqtt://127.0.0.1:{broker_port}
    topic: "plant/{{device}}/{{tag}}"
devices:
  press:
    url: {plant_url}
    tags: plant.yaml
    read: {TAGS}
    interval: 100ms
"""
    for key, value in extra.items():
        text += f"{key}: {value}\n"
    path = tmp_path / "gateway.yaml"
    path.write_text(text)
    return path


def test_bad_config_names_line_and_key(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "spool: s\n"
        "sinks:\n"
        "  broker:\n"
        "    url: mqtt://127.0.0.1:1883\n"
        "    qos: 2\n"
        "    password: hunter2\n"
        "devices:\n"
        "  press:\n"
        "    url: modbus://127.0.0.1:5020\n"
        "    interval: often\n"
        "    colour: red\n"
    )
    with pytest.raises(bf.ConfigurationError) as info:
        load_config(path)
    message = str(info.value)
    assert "line 5: sinks.broker.qos" in message
    assert "line 6: sinks.broker.password" in message
    assert "hunter2" not in message
    assert "line 11: devices.press.colour" in message
    assert main([str(path)]) == 2
    assert "line 5" in capsys.readouterr().err
    path.write_text(path.read_text().replace("    interval: often\n    colour: red\n", ""))
    path.write_text(path.read_text().replace("qos: 2\n    password: hunter2\n", "qos: 1\n"))
    path.write_text(path.read_text() + "    sinks: [cloud]\n")
    with pytest.raises(bf.ConfigurationError, match=r"line 9: devices\.press\.sinks: no sink"):
        load_config(path)
    path.write_text("spool: [unclosed\n")
    assert main([str(path)]) == 2
    assert main([str(tmp_path / "missing.yaml")]) == 2


def test_example_config_is_valid() -> None:
    example = Path(__file__).parents[2] / "docs" / "gateway.example.yaml"
    config = load_config(example)
    assert config.devices
    assert config.sinks


def _start(config: Path) -> subprocess.Popen[bytes]:
    """Start a gateway process; returns once it runs (its first log line)."""
    log = config.parent / "gateway.log"
    started = log.read_text().count("gateway started") if log.exists() else 0
    with open(log, "ab") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "bifrost.cloud.gateway", str(config)],
            cwd=config.parent,
            stdout=subprocess.DEVNULL,
            stderr=handle,
        )
    assert wait_for(lambda: log.read_text().count("gateway started") > started, 30)
    return process


def _pending(spool: Path) -> dict[int, tuple[int, ...]]:
    """What the spool holds (seq -> row times): read after the gateway died."""
    if not spool.exists():
        return {}
    with Spool(spool) as opened:
        return {e.seq: (decode_row(e.payload).time_ns,) for e in opened}


@pytest.mark.slow
def test_gateway_killed_10_times_while_the_broker_is_down_loses_nothing(
    tmp_path: Path, subscriber_factory: Any
) -> None:
    rng = random.Random(12)
    port = free_port()
    plant = bf.sim.Plant(seed=5)
    try:
        url = plant.serve(modbus=0)["modbus"]
        config = _config(tmp_path, url, port)
        spool = tmp_path / "spool" / "broker"
        spooled: dict[int, tuple[int, ...]] = {}
        for _ in range(10):
            gateway = _start(config)
            time.sleep(rng.uniform(0.2, 2.5))
            os.kill(gateway.pid, signal.SIGKILL)
            gateway.wait(10)
            found = _pending(spool)
            assert set(spooled) <= set(found)  # nothing spooled before went missing
            spooled.update(found)
        assert len(spooled) > 50  # the runs did record
        broker = Mosquitto(tmp_path / "broker", port=port).start()
        try:
            subscriber = subscriber_factory(port, "plant/#")
            up_kills = 3
            for _ in range(up_kills):  # crashes while delivering
                gateway = _start(config)
                time.sleep(rng.uniform(0.5, 2.0))
                os.kill(gateway.pid, signal.SIGKILL)
                gateway.wait(10)
            gateway = _start(config)
            expected = {(seq, tag) for seq in spooled for tag in TAGS}
            assert wait_for(lambda: _received(subscriber) >= expected, 60)
            time.sleep(1.0)
            gateway.send_signal(signal.SIGTERM)
            assert gateway.wait(30) == 0  # flushed and closed cleanly
        finally:
            broker.stop()
        messages = subscriber.json()
        keys = Counter(m["key"] for m in messages)
        assert _received(subscriber) >= expected
        # A crash resends at most what was unacknowledged (or acknowledged in its last
        # moment): never a key more than once per crash.
        assert max(keys.values()) <= 1 + up_kills
        per_sample = Counter((m["tag"], m["time_ns"]) for m in messages)
        assert len(per_sample) == len(keys)  # one key per sample, whatever the restarts
        assert _pending(spool) == {}  # drained
        print(
            f"gateway: {len(spooled)} rows spooled across 10 kills with the broker down; "
            f"{sum(keys.values()) - len(keys)} repeated messages after {up_kills} kills while "
            f"delivering (at most {max(keys.values())} copies of a key)"
        )
        log = (tmp_path / "gateway.log").read_text()
        assert "sink broker: connected" in log  # the status lines
        assert "SIGTERM: stopping" in log
    finally:
        plant.close()


def _received(subscriber: Any) -> set[tuple[int, str]]:
    return {(m["seq"], m["tag"]) for m in subscriber.json()}

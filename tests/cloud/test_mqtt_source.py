"""MQTT as a source: topics and Sparkplug metrics read like tags, from a real mosquitto."""

from __future__ import annotations

import json
import threading
import time
from importlib.metadata import EntryPoint
from pathlib import Path
from typing import Any

import pytest
from brokers import Mosquitto
from waiting import wait_for

import bifrost as bf
from bifrost.cloud import MqttSink
from bifrost.protocols import registry

SCHEMES = ("mqtt", "mqtts", "spb")


def test_the_mqtt_schemes_are_registered() -> None:
    # The bifrost-cloud distribution registers them (packages/bifrost-cloud/pyproject.toml).
    from importlib.metadata import PackageNotFoundError, distribution

    try:
        cloud = distribution("bifrost-cloud")
    except PackageNotFoundError:
        pytest.skip("the bifrost-cloud distribution is not installed (a monolithic install)")
    installed = {ep.name for ep in cloud.entry_points if ep.group == registry.GROUP}
    missing = [s for s in SCHEMES if s not in installed]
    assert not missing, f"bifrost-cloud registers no entry point for {missing}"


@pytest.fixture(autouse=True)
def _schemes(monkeypatch: pytest.MonkeyPatch) -> None:
    # Until the distribution that registers them is reinstalled, the tests below still
    # run (test_the_mqtt_schemes_are_registered says whether it is).
    found = registry._entry_points()
    for scheme in SCHEMES:
        if scheme not in found:
            entry = EntryPoint(scheme, "bifrost.protocols.mqtt:create_driver", registry.GROUP)
            monkeypatch.setitem(found, scheme, entry)


def _publish(subscriber: Any, topic: str, payload: str | bytes, retain: bool = True) -> None:
    info = subscriber.client.publish(topic, payload, qos=1, retain=retain)
    info.wait_for_publish(5)


def test_read_returns_the_last_values_and_ages_them(
    broker: Mosquitto, subscriber_factory: Any
) -> None:
    publisher = subscriber_factory(broker.port, "none/#", client_id="publisher")
    _publish(publisher, "plant/a/temp", "21.5")
    _publish(publisher, "plant/a/status", json.dumps({"motor": {"speed": 1200, "on": True}}))
    _publish(publisher, "plant/a/name", "press one")
    tags = bf.TagTable(
        [
            bf.Tag("temp", "plant/a/temp", unit="degC"),
            bf.Tag("speed", "plant/a/status$.motor.speed"),
            bf.Tag("on", "plant/a/status$.motor.on"),
            bf.Tag("name", "plant/a/name"),
            bf.Tag("missing", "plant/a/nothing"),
            bf.Tag("wrong_path", "plant/a/status$.pump.speed"),
        ]
    )
    with bf.connect(broker.url, tags=tags, stale=1.0) as plc:
        assert plc.protocol == "mqtt"
        frame = plc.read(tags.names, errors="quality")
        assert frame.loc["temp", "value"] == 21.5
        assert frame.loc["speed", "value"] == 1200
        assert frame.loc["on", "value"] == True  # noqa: E712
        assert frame.loc["name", "value"] == "press one"
        assert list(frame["quality"].astype(str)) == [
            "good", "good", "good", "good", "bad_no_data", "bad_config",
        ]  # fmt: skip
        _publish(publisher, "plant/a/temp", "22.0")
        assert wait_for(lambda: plc.read_value("temp") == 22.0, 5)
        time.sleep(1.2)
        frame = plc.read(["temp", "speed"])
        assert list(frame["quality"].astype(str)) == ["uncertain", "uncertain"]  # stale
        assert (bf.clock.wall_ns() - frame["timestamp"].astype("int64")).min() > 1e9  # age
        with pytest.raises(bf.WriteNotAllowed):
            bf.connect(broker.url, writable=True).write({"plant/a/temp": 1.0})
        with pytest.raises(bf.AddressError, match="wildcard"):
            plc.read(["plant/+/temp"])


def test_bifrost_messages_keep_their_time_and_quality(tmp_path: Path, broker: Mosquitto) -> None:
    with MqttSink(broker.url, device="press") as sink:
        sink.send({"level": 3.25}, time_ns=1_700_000_000_000_000_000, quality=64)
        assert sink.flush(10)
    # Not retained: subscribe first, then send.
    with bf.connect(broker.url) as plc:
        plc.read(["plant/press/level"], errors="quality")  # subscribes
        with MqttSink(broker.url, device="press") as sink:
            sink.send({"level": 4.5}, time_ns=1_700_000_000_000_000_000, quality=64)
            assert sink.flush(10)
        assert wait_for(lambda: plc.read_value("plant/press/level") == 4.5, 5)
        frame = plc.read(["plant/press/level"])
        assert str(frame["quality"].iloc[0]) == "uncertain"
        assert frame["timestamp"].iloc[0].value == 1_700_000_000_000_000_000


def test_subscribe_and_record_are_native(broker: Mosquitto, subscriber_factory: Any) -> None:
    publisher = subscriber_factory(broker.port, "none/#", client_id="publisher")
    with bf.connect(broker.url) as plc:
        seen: list[Any] = []
        subscription = plc.subscribe(["plant/b/x", "plant/b/y"], seen.append)
        assert subscription.native
        recording = plc.record(
            ["plant/b/x", "plant/b/y"], mode="subscribe", background=True, interval="100ms"
        )
        time.sleep(0.2)
        for i in range(10):
            _publish(publisher, "plant/b/x", str(i), retain=False)
            _publish(publisher, "plant/b/y", str(10 * i), retain=False)
        assert wait_for(lambda: sum(len(f) for f in seen) >= 20, 5)
        assert wait_for(lambda: len(recording) >= 20, 5)
        subscription.cancel()
        recording.stop()
        recording.wait(5)
    values = [v for f in seen for v in f["value"]]
    assert values[:2] == [0, 0]
    assert values[-2:] == [9, 90]
    frame = recording.to_pandas()
    assert frame["plant/b/x"].iloc[-1] == 9
    assert frame["plant/b/y"].iloc[-1] == 90


def test_spb_browse_reads_the_namespace_back(tmp_path: Path, broker: Mosquitto) -> None:
    sink = MqttSink(
        broker.url, payload="sparkplug", group="G", node="edge1", spool=tmp_path / "spool"
    )
    stop = threading.Event()

    def keep_sending() -> None:
        while not stop.wait(0.1):
            sink.send({"rpm": 900.0}, device="pump")

    sender = threading.Thread(target=keep_sending)
    try:
        sink.send({"temp": 21.5, "count": 7, "on": True}, device="press")
        assert sink.flush(10)
        sender.start()
        # The births went out before this connection: browse sees the node's data and
        # asks it for a rebirth.
        with bf.connect(f"spb://127.0.0.1:{broker.port}/G", browse_wait=0.5) as spb:
            frame = spb.browse()
            stop.set()
            sender.join()
            assert set(frame.index) >= {
                "spb:G/edge1/press:temp", "spb:G/edge1/press:count", "spb:G/edge1/press:on",
                "spb:G/edge1/pump:rpm", "spb:G/edge1:bdSeq",
            }  # fmt: skip
            assert frame.loc["spb:G/edge1/press:temp", "datatype"] == "double"
            assert frame.loc["spb:G/edge1/press:count", "datatype"] == "int64"
            assert frame.loc["spb:G/edge1/press:temp", "value"] == 21.5
            sink.send({"temp": 23.0, "count": 8, "on": False}, device="press")
            assert sink.flush(10)
            assert wait_for(lambda: spb.read_value("spb:G/edge1/press:temp") == 23.0, 5)
            values = spb.read(["spb:G/edge1/press:count", "spb:G/edge1/press:on"])
            assert list(values["value"]) == [8, False]
    finally:
        stop.set()
        if sender.is_alive():
            sender.join()
        sink.close()

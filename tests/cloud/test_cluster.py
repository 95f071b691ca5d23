"""Scale-out: a sink failing over inside a 3-node nats-server cluster with MQTT enabled."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from brokers import NatsCluster
from waiting import wait_for

from bifrost.cloud import MqttSink


def _ready(port: int) -> bool:
    from paho.mqtt import client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    answers: list[Any] = []
    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=f"probe-{port}")
    client.on_connect = lambda c, u, f, reason, p: answers.append(reason)
    try:
        client.connect("127.0.0.1", port, keepalive=5)
    except OSError:
        return False
    client.loop_start()
    wait_for(lambda: bool(answers), 3)
    client.disconnect()
    client.loop_stop()
    return bool(answers) and not answers[0].is_failure


@pytest.mark.slow
def test_sink_fails_over_when_its_node_dies_and_loses_nothing(
    tmp_path: Path, subscriber_factory: Any
) -> None:
    cluster = NatsCluster(tmp_path / "nats")
    cluster.start()
    try:
        for port in cluster.mqtt_ports:  # JetStream elects its leaders first
            assert wait_for(lambda port=port: _ready(port), 60, step=0.3)
        subscriber = subscriber_factory(cluster.mqtt_ports[2], "plant/#")
        urls = [cluster.url(i) for i in range(3)]
        sink = MqttSink(urls, protocol="3.1.1", spool=tmp_path / "spool", device="d")
        try:
            assert wait_for(lambda: sink.connected, 30)
            first = sink.stats.broker
            assert first == urls[0]
            sent = 0
            stop = threading.Event()

            def produce() -> None:
                nonlocal sent
                while not stop.wait(0.05):
                    sink.send({"x": sent})
                    sent += 1

            producer = threading.Thread(target=produce)
            producer.start()
            time.sleep(4)
            cluster.kill(0)  # the node the sink is connected to
            assert wait_for(lambda: sink.connected and sink.stats.broker != first, 30)
            time.sleep(4)
            stop.set()
            producer.join()
            assert sink.flush(60), sink.stats
            assert wait_for(lambda: len({m["key"] for m in subscriber.json()}) >= sent, 60)
            values = sorted({m["value"] for m in subscriber.json()})
            assert values == list(range(sent))  # nothing lost
            assert sink.stats.reconnects >= 1
            assert sink.stats.dropped == 0
            print(
                f"cluster: {sent} rows, failed over {first} -> {sink.stats.broker}, "
                f"{len(subscriber.json()) - sent} duplicates"
            )
        finally:
            sink.close()
    finally:
        cluster.stop()

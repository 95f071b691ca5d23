"""Fixtures of the cloud tests: brokers on free loopback ports, independent subscribers."""

from __future__ import annotations

import json
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from brokers import Mosquitto

pytest.importorskip("paho.mqtt")


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Mosquitto]:
    with Mosquitto(tmp_path / "broker") as running:
        yield running


class Subscriber:
    """A plain paho-mqtt subscriber: QoS 1, persistent session, reconnecting on its own.

    It knows nothing of bifrost: messages are kept as received (topic, payload).
    """

    def __init__(self, port: int, topic: str = "#", client_id: str = "checker") -> None:
        from paho.mqtt import client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        self.messages: list[tuple[str, bytes]] = []
        self.lock = threading.Lock()
        self.connected = threading.Event()
        client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id=client_id, clean_session=False)
        client.reconnect_delay_set(0.05, 0.5)
        client.on_connect = self._on_connect
        client.on_message = self._on_message
        self.topic = topic
        self.client = client
        client.connect("127.0.0.1", port, keepalive=5)
        client.loop_start()

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        client.subscribe(self.topic, qos=1)
        self.connected.set()

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        with self.lock:
            self.messages.append((message.topic, bytes(message.payload)))

    def json(self) -> list[dict[str, Any]]:
        with self.lock:
            return [json.loads(p) for t, p in self.messages if p[:1] == b"{"]

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@pytest.fixture
def subscriber_factory() -> Iterator[Any]:
    made: list[Subscriber] = []

    def make(port: int, topic: str = "#", client_id: str = "checker") -> Subscriber:
        subscriber = Subscriber(port, topic, client_id)
        made.append(subscriber)
        assert subscriber.connected.wait(10)
        return subscriber

    yield make
    for subscriber in made:
        subscriber.close()

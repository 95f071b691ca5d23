"""MQTT as a source: topics (and Sparkplug B metrics) read like tags.

``bf.connect("mqtt://broker:1883", tags=...)``: each tag's address is a topic, with an
optional JSON path (``plant/press/status$.motor.speed``), or a Sparkplug metric
(``spb:GROUP/NODE/DEVICE:metric name``). The driver subscribes to what its plans need
and keeps the last value of each; ``read`` answers from that cache (values older than
``stale`` are ``UNCERTAIN``, values never seen ``BAD_NO_DATA``; the timestamp column
says how old each one is). Subscriptions and ``record(mode="subscribe")`` are native:
every message is a notification.

``bf.connect("spb://broker:1883/GROUP")`` reads a Sparkplug B namespace: ``browse()``
lists every node, device and metric seen (births, with data types and aliases; a
rebirth is requested from nodes seen without one) as a DataFrame.

Registered under the ``bifrost.protocols`` entry points for ``mqtt://``, ``mqtts://``
and ``spb://``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bifrost.protocols.mqtt.driver import MqttDriver

__all__ = ["create_driver"]


def create_driver(url: str, **options: Any) -> MqttDriver:
    """The entry point's factory: an MQTT driver for ``url`` (not connected)."""
    from bifrost.protocols.mqtt.driver import MqttDriver
    from bifrost.protocols.mqtt.options import MqttOptions

    return MqttDriver(MqttOptions.from_url(url, **options))

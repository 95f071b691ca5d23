"""Publishing to brokers and clouds: MQTT and Sparkplug B sinks through a disk spool.

>>> import bifrost as bf
>>> sink = bf.cloud.MqttSink("mqtt://127.0.0.1:1883", spool="spool")  # doctest: +SKIP
>>> plc.record(["tank.level"], interval="100ms", background=True, sinks=[sink])  # doctest: +SKIP

Names load on first use, so ``import bifrost.cloud`` needs no MQTT library.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bifrost.cloud.gateway import Gateway
    from bifrost.cloud.presets import aws_iot_core, azure_iot_hub, google_iot
    from bifrost.cloud.sinks import Feed, MqttSink, SinkStats, Tls, TlsWarning
    from bifrost.cloud.spool import Spool, SpoolError

__all__ = [
    "Feed",
    "Gateway",
    "MqttSink",
    "SinkStats",
    "Spool",
    "SpoolError",
    "Tls",
    "TlsWarning",
    "aws_iot_core",
    "azure_iot_hub",
    "google_iot",
]


def __getattr__(name: str) -> Any:
    # Spelled out (not a computed import) so that import-linter sees each import.
    if name in ("Feed", "MqttSink", "SinkStats", "Tls", "TlsWarning"):
        from bifrost.cloud import sinks

        return getattr(sinks, name)
    if name in ("Spool", "SpoolError"):
        from bifrost.cloud import spool

        return getattr(spool, name)
    if name in ("aws_iot_core", "azure_iot_hub", "google_iot"):
        from bifrost.cloud import presets

        return getattr(presets, name)
    if name == "Gateway":
        from bifrost.cloud import gateway

        return gateway.Gateway
    raise AttributeError(f"module 'bifrost.cloud' has no attribute {name!r}")

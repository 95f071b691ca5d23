"""What a read of MQTT tags needs: their parsed addresses and the topics to subscribe."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from bifrost.model import Tag
from bifrost.protocols.base import parse_tag_address
from bifrost.protocols.mqtt.address import MqttAddress, parse_address

__all__ = ["ReadPlan", "compile_read"]


@dataclass(frozen=True)
class ReadPlan:
    """Tags, their addresses, and the topics (filters) that bring their values."""

    tags: tuple[Tag, ...]
    addresses: tuple[MqttAddress, ...]
    topics: tuple[str, ...]


def compile_read(tags: Sequence[Tag]) -> ReadPlan:
    """Parse every address (no I/O); Sparkplug metrics subscribe to their group."""
    addresses = tuple(parse_tag_address(t, parse_address, "MQTT") for t in tags)
    topics: dict[str, None] = {}
    for address in addresses:
        if address.spb is not None:
            # Births carry names and aliases; data only aliases: the whole group is needed.
            topics[f"spBv1.0/{address.spb.group}/#"] = None
        else:
            topics[address.topic] = None
    return ReadPlan(tuple(tags), addresses, tuple(topics))

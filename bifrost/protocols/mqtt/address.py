"""The MQTT address grammar (pure parsing).

::

    plant/press/temperature              the payload: a number, text, JSON, or a
                                         bifrost JSON message (its "value")
    plant/press/status$.motor.speed      a JSON path into the payload ($.a.b[0].c)
    spb:GROUP/NODE/DEVICE:metric name    a Sparkplug B device metric
    spb:GROUP/NODE:metric name           a Sparkplug B node metric

Topics are exact (no ``+`` or ``#``): a tag is one value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bifrost.exceptions import AddressError

__all__ = ["MqttAddress", "SpbAddress", "is_address", "parse_address"]

_PROTOCOL = "MQTT"
_STEP = re.compile(r"\.([^.\[\]]+)|\[(\d+)\]")


@dataclass(frozen=True, slots=True)
class SpbAddress:
    """A Sparkplug B metric: group, edge node, device (None: a node metric), name."""

    group: str
    node: str
    device: str | None
    metric: str


@dataclass(frozen=True, slots=True)
class MqttAddress:
    """A topic and a path into its JSON payload, or a Sparkplug metric."""

    topic: str
    path: tuple[str | int, ...] = ()
    spb: SpbAddress | None = None


def is_address(text: str) -> bool:
    """Whether ``text`` looks like an MQTT address (has a level separator or spb:)."""
    return text.startswith("spb:") or ("/" in text and not text.startswith("/"))


def parse_address(text: str) -> MqttAddress:
    """Parse an address; :class:`AddressError` names the position of the fault."""
    if not isinstance(text, str) or not text:
        raise AddressError(str(text), 0, "expected a topic", _PROTOCOL)
    if text.startswith("spb:"):
        return _parse_spb(text)
    topic, dollar, path_text = text.partition("$")
    _check_topic(text, topic)
    path: tuple[str | int, ...] = ()
    if dollar:
        path = _parse_path(text, len(topic) + 1, path_text)
    return MqttAddress(topic, path)


def _check_topic(text: str, topic: str) -> None:
    if not topic:
        raise AddressError(text, 0, "expected a topic before '$'", _PROTOCOL)
    for i, char in enumerate(topic):
        if char in "+#":
            raise AddressError(
                text, i, f"wildcard {char!r}: a tag is one topic, not a filter", _PROTOCOL
            )
        if char == "\0":
            raise AddressError(text, i, "NUL in a topic", _PROTOCOL)


def _parse_path(text: str, start: int, path: str) -> tuple[str | int, ...]:
    if not path:
        raise AddressError(text, start, "expected a JSON path after '$', e.g. $.value", _PROTOCOL)
    steps: list[str | int] = []
    position = 0
    while position < len(path):
        match = _STEP.match(path, position)
        if match is None:
            raise AddressError(
                text, start + position, "expected '.key' or '[index]' in the JSON path", _PROTOCOL
            )
        key, index = match.groups()
        steps.append(int(index) if index is not None else key)
        position = match.end()
    return tuple(steps)


def _parse_spb(text: str) -> MqttAddress:
    body = text[4:]
    where, colon, metric = body.partition(":")
    if not colon or not metric:
        raise AddressError(
            text, len(text), "expected ':metric name' after spb:GROUP/NODE[/DEVICE]", _PROTOCOL
        )
    parts = where.split("/")
    if len(parts) not in (2, 3) or not all(parts):
        raise AddressError(text, 4, "expected spb:GROUP/NODE[/DEVICE]:metric", _PROTOCOL)
    for part in parts:
        bad = next((c for c in part if c in "+#"), None)
        if bad is not None:
            raise AddressError(text, text.index(bad), "wildcards are not metrics", _PROTOCOL)
    group, node = parts[0], parts[1]
    device = parts[2] if len(parts) == 3 else None
    kind = "DDATA" if device else "NDATA"
    topic = f"spBv1.0/{group}/{kind}/{node}" + (f"/{device}" if device else "")
    return MqttAddress(topic, (), SpbAddress(group, node, device, metric))

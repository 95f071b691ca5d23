"""What sinks send: rows of samples, their spool records and their JSON messages.

A :class:`Row` is one moment of one device: the values of some of its tags at one time,
with one quality code each. Sinks spool rows (:func:`encode_row`), then turn them into
messages when they send them, so that a row replayed from the spool can be marked
historical (and get the Sparkplug sequence number of the session it is sent in).

Every message carries a stable key, ``device/tag/time_ns/seq``: the same sample sent
twice (after a lost acknowledgement, or a crash) has the same key, so consumers
deduplicate on it. ``seq`` is the row's number in its sink's spool, unique for the
spool's lifetime.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from bifrost.model import Quality

__all__ = [
    "Encoder",
    "JsonEncoder",
    "Message",
    "Row",
    "decode_row",
    "encode_row",
    "json_row_message",
    "json_value_message",
    "message_key",
    "plain_value",
    "quality_name",
    "topic_for",
]

_INTEGER = {"int8", "uint8", "int16", "uint16", "int32", "uint32", "int64", "uint64"}


@dataclass(slots=True)
class Row:
    """The values of some tags of one device at one moment.

    Attributes
    ----------
    device
        The device's name (a topic level: no ``/``, ``+`` or ``#``).
    time_ns
        UTC time, ns since the epoch.
    names, dtypes
        The tags and their data types (``"float64"``, ``"bool"``, ``"string"`` ...).
    values
        One plain Python value per tag (None where there is none).
    quality
        One :class:`~bifrost.model.Quality` code per tag.
    """

    device: str
    time_ns: int
    names: tuple[str, ...]
    dtypes: tuple[str, ...]
    values: list[Any]
    quality: list[int]
    historical: bool = False


@dataclass(slots=True)
class Message:
    """One MQTT message to send, and the spooled rows (seqs) it carries.

    A message without a topic is not sent: its rows are done as they are (Sparkplug
    rows of a device already dead, which its DDEATH stood for).
    """

    topic: str
    payload: bytes
    seqs: tuple[int, ...] = ()
    historical: bool = False


class Encoder:
    """Turns spooled rows into messages; the session messages of a payload format.

    The sink calls :meth:`will` before each connect, :meth:`hello` once connected,
    :meth:`messages` for rows (in order, right before sending them), :meth:`command` for
    each message on :meth:`subscriptions`, and :meth:`goodbye` before a clean
    disconnect. :meth:`held` can keep a connected session from starting (Sparkplug's
    wait for the primary host), :meth:`wants_reconnect` end it.
    """

    def will(self) -> tuple[str, bytes] | None:
        """The last will ``(topic, payload)`` of the next connection, if any."""
        return None

    def hello(self) -> list[Message]:
        """Messages that open a connection (Sparkplug births)."""
        return []

    def goodbye(self) -> tuple[str, bytes] | None:
        """The message sent before a clean disconnect, if any."""
        return None

    def subscriptions(self) -> list[str]:
        """Topics to subscribe to (commands)."""
        return []

    def command(self, topic: str, payload: bytes) -> list[Message]:
        """Messages to send in answer to a command."""
        return []

    def held(self) -> str:
        """Why this connection's session may not start yet ("" when it may).

        While held, the sink is connected and subscribed but sends no births and no
        data: rows stay in the spool and go out as backlog once the session starts.
        """
        return ""

    def wants_reconnect(self) -> bool:
        """True once a command asked for the session to end (with its death) and restart."""
        return False

    def take_writes(self) -> list[tuple[str, dict[str, Any]]]:
        """Writes that commands asked for since the last call: ``(device, {tag: value})``."""
        return []

    def messages(self, rows: Sequence[tuple[int, Row]], historical: bool) -> list[Message]:
        """The messages carrying ``(seq, row)`` pairs."""
        raise NotImplementedError


class JsonEncoder(Encoder):
    """Rows to JSON messages: one per value (topics with ``{tag}``), else one per row."""

    def __init__(self, topic: str) -> None:
        self.topic = topic
        self.per_value = "{tag}" in topic
        # Per (device, tag): the topic and the JSON-escaped parts that never change.
        self._parts: dict[tuple[str, str], tuple[str, str, str]] = {}

    def _fixed(self, device: str, name: str) -> tuple[str, str, str]:
        parts = self._parts.get((device, name))
        if parts is None:
            topic = topic_for(topic_for(self.topic, device), device, name)
            key = json.dumps(f"{device}/{name}/")[:-1]  # an open JSON string
            head = f'{{"key":{key}'
            body = f'"device":{json.dumps(device)},"tag":{json.dumps(name)}'
            parts = (topic, head, body)
            if len(self._parts) < 100_000:
                self._parts[device, name] = parts
        return parts

    def messages(self, rows: Sequence[tuple[int, Row]], historical: bool) -> list[Message]:
        """The messages carrying ``(seq, row)`` pairs."""
        out: list[Message] = []
        append = out.append
        for seq, row in rows:
            late = historical or row.historical
            if not self.per_value:
                topic = topic_for(self.topic, row.device)
                append(Message(topic, json_row_message(row, seq, late), (seq,), late))
                continue
            # The same text json_value_message makes, built from cached parts: the
            # time is formatted once per row, the names escaped once per tag.
            time_ns = row.time_ns
            stamp = f'{time_ns}/{seq}",'
            tail_row = f',"time":"{_iso(time_ns)}","time_ns":{time_ns},"seq":{seq},"value":'
            flag = "true" if late else "false"
            for i, name in enumerate(row.names):
                topic, head, body = self._fixed(row.device, name)
                code = row.quality[i]
                text = (
                    f"{head}{stamp}{body}{tail_row}{_json_value(row.values[i], row.dtypes[i])}"
                    f',"quality":"{quality_name(code)}","quality_code":{code},'
                    f'"historical":{flag}}}'
                )
                append(Message(topic, text.encode(), (seq,), late))
        return out


def _json_value(value: Any, dtype: str) -> str:
    if value is None:
        return "null"
    if type(value) is float and dtype not in _INTEGER and dtype != "bool":
        return repr(value) if math.isfinite(value) else "null"
    return json.dumps(plain_value(value, dtype), allow_nan=False)


def plain_value(value: Any, dtype: str) -> Any:
    """A JSON-friendly value of a tag of ``dtype`` (recorders keep numbers as float64)."""
    if value is None:
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if dtype == "bool":
        return bool(value)
    if dtype in _INTEGER:
        return int(value)
    if hasattr(value, "tolist"):  # NumPy scalars and arrays (waveforms)
        return value.tolist()
    if isinstance(value, bytes | bytearray):
        return value.hex()
    return value


def encode_row(row: Row) -> bytes:
    """The spool record of a row."""
    return json.dumps(
        [row.device, row.time_ns, row.names, row.dtypes, row.values, row.quality, row.historical],
        separators=(",", ":"),
    ).encode()


def decode_row(data: bytes) -> Row:
    """The row of a spool record."""
    device, time_ns, names, dtypes, values, quality, historical = json.loads(data)
    return Row(device, time_ns, tuple(names), tuple(dtypes), values, quality, historical)


def message_key(device: str, tag: str, time_ns: int, seq: int) -> str:
    """The dedup key of one sample: ``device/tag/time_ns/seq``."""
    return f"{device}/{tag}/{time_ns}/{seq}"


def quality_name(code: int) -> str:
    """``good``, ``uncertain`` or ``bad``."""
    if code < Quality.UNCERTAIN:
        return "good"
    return "uncertain" if code < Quality.BAD else "bad"


def _iso(time_ns: int) -> str:
    stamp = datetime.fromtimestamp(time_ns // 1_000_000_000, UTC)
    return f"{stamp:%Y-%m-%dT%H:%M:%S}.{time_ns % 1_000_000_000:09d}Z"


def topic_for(template: str, device: str, tag: str | None = None) -> str:
    """Fill ``{device}`` and ``{tag}`` in a topic template.

    The device is one topic level (``/`` becomes ``_``); a ``/`` in a tag name is kept
    (it makes levels), ``+`` and ``#`` (wildcards) become ``_``.
    """
    topic = template.replace("{device}", _level(device))
    if tag is not None:
        topic = topic.replace("{tag}", tag.replace("+", "_").replace("#", "_"))
    return topic


def _level(text: str) -> str:
    return text.replace("/", "_").replace("+", "_").replace("#", "_")


def json_value_message(row: Row, index: int, seq: int, historical: bool) -> bytes:
    """One tag's sample as a JSON message (topics with ``{tag}``)."""
    name = row.names[index]
    code = row.quality[index]
    return json.dumps(
        {
            "key": message_key(row.device, name, row.time_ns, seq),
            "device": row.device,
            "tag": name,
            "time": _iso(row.time_ns),
            "time_ns": row.time_ns,
            "seq": seq,
            "value": plain_value(row.values[index], row.dtypes[index]),
            "quality": quality_name(code),
            "quality_code": code,
            "historical": historical,
        },
        separators=(",", ":"),
        allow_nan=False,
    ).encode()


def json_row_message(row: Row, seq: int, historical: bool) -> bytes:
    """A whole row as one JSON message (topics without ``{tag}``).

    ``keys`` holds each sample's dedup key, tag by tag.
    """
    names: Sequence[str] = row.names
    return json.dumps(
        {
            "key": message_key(row.device, "*", row.time_ns, seq),
            "device": row.device,
            "time": _iso(row.time_ns),
            "time_ns": row.time_ns,
            "seq": seq,
            "historical": historical,
            "values": {
                n: plain_value(v, d) for n, v, d in zip(names, row.values, row.dtypes, strict=True)
            },
            "quality": {n: quality_name(q) for n, q in zip(names, row.quality, strict=True)},
            "keys": {n: message_key(row.device, n, row.time_ns, seq) for n in names},
        },
        separators=(",", ":"),
        allow_nan=False,
    ).encode()

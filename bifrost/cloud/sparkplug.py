"""Sparkplug B (spBv1.0) sessions for :class:`~bifrost.cloud.MqttSink`.

One sink is one edge node ``spBv1.0/<group>/.../<node>``; each device of its rows is a
Sparkplug device. Per connection:

1. the will is an NDEATH carrying ``bdSeq``, incremented for every connection and
   persisted in the spool folder (``sparkplug.json``), so it keeps counting across
   restarts;
2. once connected: NBIRTH (``seq`` 0, the same ``bdSeq``, ``Node Control/Rebirth``),
   then a DBIRTH for every device known from earlier runs: every metric with its name,
   alias, data type and last value;
3. rows go out as DDATA, metrics by alias only; a device seen for the first time, or
   with a tag its birth did not have, is (re)born first. Rows waiting together (a
   burst, or the spool's backlog) share a DDATA; replayed ones carry ``is_historical``;
4. an NCMD ``Node Control/Rebirth`` = true makes it publish NBIRTH and the DBIRTHs again;
5. a row whose every value is bad because the device could not be reached (comm lost,
   timeout) is a DDEATH for that device; its next row with a value is born again first;
6. a DCMD to a device sets metrics of its birth (by name or alias): the writes go to the
   sink's ``on_write`` (the gateway writes them to a device configured ``writable``).
   A metric the device was not born with, or a null, is ignored with a warning.

With a ``primary_host`` (Sparkplug 3.0), a connection subscribes to
``spBv1.0/STATE/<host>`` and sends nothing until the host's retained STATE says
``{"online": true}``; rows spooled meanwhile go out afterwards, as history. When the
host goes offline, the node sends its NDEATH, disconnects and waits again. A STATE older
than the last one seen (its ``timestamp``) is ignored; Sparkplug 2.2's plain
``ONLINE``/``OFFLINE`` payloads on ``STATE/<host>`` are understood too.

``seq`` counts every message of the node from 0 to 255 and wraps. Quality: a bad value
is ``is_null``; a value that is not good has the property ``Quality`` (OPC DA codes: 0
bad, 64 uncertain; good values carry none, 192 is implied).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bifrost.cloud import sparkplug_codec as codec
from bifrost.cloud.payloads import Encoder, Message, Row
from bifrost.model import Quality

__all__ = ["SparkplugEncoder"]

_log = logging.getLogger("bifrost.cloud")
_REBIRTH = "Node Control/Rebirth"
_BATCH = 64  # rows per historical DDATA


class _Device:
    def __init__(self, names: Sequence[str] = (), dtypes: Sequence[str] = ()) -> None:
        self.metrics: dict[str, str] = dict(zip(names, dtypes, strict=True))
        self.values: dict[str, tuple[Any, int, int]] = {}  # name -> value, quality, ms
        self.born = False


class SparkplugEncoder(Encoder):
    """Sparkplug B births, deaths and data for one edge node.

    Parameters
    ----------
    folder
        Where ``sparkplug.json`` (bdSeq, devices, aliases) is kept: the sink's spool.
    group, node
        Group id and edge node id.
    primary_host
        Host application id whose STATE must be online before births (None: never wait).
    """

    def __init__(
        self,
        folder: str | os.PathLike[str],
        group: str,
        node: str,
        primary_host: str | None = None,
    ) -> None:
        checked = [("group", group), ("node", node)]
        if primary_host is not None:
            checked.append(("primary host", primary_host))
        for what, text in checked:
            if not text or any(c in text for c in "/+#"):
                from bifrost.exceptions import ConfigurationError

                raise ConfigurationError(
                    f"Sparkplug {what} id {text!r} must be non-empty without '/', '+' or '#'"
                )
        self.group = group
        self.node = node
        self.path = Path(folder) / "sparkplug.json"
        self.bdseq = -1
        self.seq = 0
        self.aliases: dict[str, int] = {}
        self.devices: dict[str, _Device] = {}
        self.primary_host = primary_host
        self._host_online = primary_host is None
        self._host_stamp = -1
        self._reconnect = False
        self._writes: list[tuple[str, dict[str, Any]]] = []
        self._load()

    # -- state ----------------------------------------------------------------------------
    def _load(self) -> None:
        if not self.path.exists():
            return
        try:
            state = json.loads(self.path.read_text())
        except ValueError:
            return
        self.bdseq = int(state.get("bdseq", -1))
        self.aliases = {str(k): int(v) for k, v in state.get("aliases", {}).items()}
        for name, spec in state.get("devices", {}).items():
            self.devices[name] = _Device(spec["names"], spec["dtypes"])

    def _save(self) -> None:
        state = {
            "bdseq": self.bdseq,
            "aliases": self.aliases,
            "devices": {
                name: {"names": list(d.metrics), "dtypes": list(d.metrics.values())}
                for name, d in self.devices.items()
            },
        }
        temporary = self.path.with_suffix(".tmp")
        with open(temporary, "w") as handle:
            json.dump(state, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.path)

    def topic(self, kind: str, device: str | None = None) -> str:
        """``spBv1.0/<group>/<kind>/<node>[/<device>]``."""
        base = f"{codec.NAMESPACE}/{self.group}/{kind}/{self.node}"
        return base if device is None else f"{base}/{_level(device)}"

    def _alias(self, device: str, name: str) -> int:
        key = f"{device}\x1f{name}"
        alias = self.aliases.get(key)
        if alias is None:
            alias = len(self.aliases) + 1
            self.aliases[key] = alias
        return alias

    def _next_seq(self) -> int:
        seq = self.seq
        self.seq = (seq + 1) % 256
        return seq

    # -- session --------------------------------------------------------------------------
    def will(self) -> tuple[str, bytes]:
        """NDEATH with the next bdSeq (persisted before the connection is made)."""
        # A new connection knows nothing of the host until its retained STATE arrives.
        self._host_online = self.primary_host is None
        self._reconnect = False
        self.bdseq = (self.bdseq + 1) % 256
        self._save()
        return self.topic("NDEATH"), self._death()

    def _death(self) -> bytes:
        payload = codec.new_payload()
        payload.timestamp = _now_ms()
        metric = payload.metrics.add()
        metric.name = "bdSeq"
        metric.datatype = codec.SpbType.UINT64
        metric.long_value = self.bdseq
        data: bytes = payload.SerializeToString()
        return data

    def goodbye(self) -> tuple[str, bytes]:
        """NDEATH before a clean disconnect."""
        return self.topic("NDEATH"), self._death()

    def subscriptions(self) -> list[str]:
        """The node's NCMD topic, and the primary host's STATE topics."""
        topics = [self.topic("NCMD"), f"{self.topic('DCMD')}/+"]
        if self.primary_host is not None:
            topics += [f"{codec.NAMESPACE}/STATE/{self.primary_host}", f"STATE/{self.primary_host}"]
        return topics

    def held(self) -> str:
        """Why births wait: the primary host has not said it is online."""
        if self._host_online:
            return ""
        return f"waiting for the Sparkplug primary host {self.primary_host!r} to be online"

    def wants_reconnect(self) -> bool:
        """True once the primary host went offline: die, reconnect, wait for it again."""
        return self._reconnect

    def take_writes(self) -> list[tuple[str, dict[str, Any]]]:
        """The DCMD writes received since the last call."""
        writes, self._writes = self._writes, []
        return writes

    def hello(self) -> list[Message]:
        """NBIRTH (seq 0) and a DBIRTH per known device."""
        self.seq = 0
        payload = codec.new_payload()
        payload.timestamp = _now_ms()
        payload.seq = self._next_seq()
        metric = payload.metrics.add()
        metric.name = "bdSeq"
        metric.datatype = codec.SpbType.UINT64
        metric.long_value = self.bdseq
        metric = payload.metrics.add()
        metric.name = _REBIRTH
        metric.datatype = codec.SpbType.BOOLEAN
        metric.boolean_value = False
        out = [Message(self.topic("NBIRTH"), payload.SerializeToString())]
        for name, device in self.devices.items():
            device.born = False
            if device.metrics:
                out.append(self._birth(name, device, historical=False))
        return out

    def command(self, topic: str, payload: bytes) -> list[Message]:
        """Answer ``Node Control/Rebirth`` = true with new births; follow the host's STATE."""
        if self.primary_host is not None and topic.endswith(f"STATE/{self.primary_host}"):
            self._host_state(topic, payload)
            return []
        if topic.startswith(f"{self.topic('DCMD')}/"):
            self._device_command(topic.rsplit("/", 1)[1], payload)
            return []
        if topic != self.topic("NCMD"):
            return []
        try:
            message = codec.decode(payload)
        except ValueError:
            return []
        for metric in message.metrics:
            if metric.name == _REBIRTH and metric.boolean_value:
                return self.hello()
        return []

    def _device_command(self, level: str, payload: bytes) -> None:
        name = next((n for n in self.devices if _level(n) == level), None)
        if name is None:
            _log.warning("DCMD for unknown device %r ignored", level)
            return
        try:
            message = codec.decode(payload)
        except ValueError:
            _log.warning("DCMD for %r is not a Sparkplug payload: ignored", name)
            return
        metrics = self.devices[name].metrics
        by_alias = {
            alias: key.split("\x1f", 1)[1]
            for key, alias in self.aliases.items()
            if key.startswith(f"{name}\x1f")
        }
        values: dict[str, Any] = {}
        for metric in message.metrics:
            tag = metric.name if metric.name else by_alias.get(metric.alias)
            value = codec.metric_value(metric)
            if tag not in metrics or value is None:
                _log.warning(
                    "DCMD for %r: metric %r ignored (not in its birth, or null)",
                    name,
                    tag or metric.alias,
                )
                continue
            values[tag] = value
        if values:
            self._writes.append((name, values))

    def _host_state(self, topic: str, payload: bytes) -> None:
        if topic.startswith(f"{codec.NAMESPACE}/"):
            try:
                state = json.loads(payload)
                online = state["online"] is True
                stamp = int(state.get("timestamp", 0))
            except (ValueError, TypeError, KeyError):
                return  # not a STATE message: neither online nor offline
            if stamp < self._host_stamp:
                return  # an older STATE delivered late
            self._host_stamp = stamp
        else:
            text = payload.strip().upper()
            if text not in (b"ONLINE", b"OFFLINE"):
                return
            online = text == b"ONLINE"
        if online:
            self._host_online = True
        elif self._host_online:
            self._host_online = False
            self._reconnect = True

    def _birth(self, name: str, device: _Device, historical: bool) -> Message:
        payload = codec.new_payload()
        payload.timestamp = _now_ms()
        payload.seq = self._next_seq()
        for tag, dtype in device.metrics.items():
            metric = payload.metrics.add()
            metric.name = tag
            metric.alias = self._alias(name, tag)
            kind = codec.spb_type(dtype)
            metric.datatype = kind
            value, quality, ms = device.values.get(tag, (None, int(Quality.BAD_NO_DATA), 0))
            if ms:
                metric.timestamp = ms
            _fill(metric, kind, value, quality)
            if historical:
                metric.is_historical = True
        device.born = True
        return Message(self.topic("DBIRTH", name), payload.SerializeToString())

    # -- data -----------------------------------------------------------------------------
    def messages(self, rows: Sequence[tuple[int, Row]], historical: bool) -> list[Message]:
        """DDATA for rows (births first where needed).

        Rows of one device that are waiting together go in one DDATA (up to 64, each
        metric with its own timestamp): replayed rows, and live rows that arrived in one
        burst; a row is never held back to wait for others.
        """
        out: list[Message] = []
        i = 0
        while i < len(rows):
            row = rows[i][1]
            late = historical or row.historical
            j = i + 1
            while (
                j < len(rows)
                and j - i < _BATCH
                and rows[j][1].device == row.device
                and (historical or rows[j][1].historical) == late
            ):
                j += 1
            out.extend(self._data(rows[i:j], late))
            i = j
        return out

    def _data(self, rows: Sequence[tuple[int, Row]], historical: bool) -> list[Message]:
        out: list[Message] = []
        i = 0
        while i < len(rows):
            dead = _unreachable(rows[i][1])
            j = i + 1
            while j < len(rows) and _unreachable(rows[j][1]) == dead:
                j += 1
            if dead:
                out.append(self._device_death(rows[i:j], historical))
            else:
                out.extend(self._alive(rows[i:j], historical))
            i = j
        return out

    def _device_death(self, rows: Sequence[tuple[int, Row]], historical: bool) -> Message:
        name = rows[0][1].device
        device = self.devices.get(name)
        seqs = tuple(seq for seq, _ in rows)
        if device is None or not device.born:
            return Message("", b"", seqs, historical)  # dead already, or never born
        device.born = False
        payload = codec.new_payload()
        payload.timestamp = rows[0][1].time_ns // 1_000_000
        payload.seq = self._next_seq()
        return Message(self.topic("DDEATH", name), payload.SerializeToString(), seqs, historical)

    def _alive(self, rows: Sequence[tuple[int, Row]], historical: bool) -> list[Message]:
        out: list[Message] = []
        name = rows[0][1].device
        device = self.devices.get(name)
        grown = False
        if device is None:
            device = self.devices[name] = _Device()
        for _, row in rows:
            for tag, dtype in zip(row.names, row.dtypes, strict=True):
                if tag not in device.metrics:
                    device.metrics[tag] = dtype
                    grown = True
        if grown:
            self._save()
        if grown or not device.born:
            # Born with the batch's first values, so a host never sees an alias unbirthed.
            first = rows[0][1]
            for tag, value, quality in zip(first.names, first.values, first.quality, strict=True):
                device.values[tag] = (value, quality, first.time_ns // 1_000_000)
            out.append(self._birth(name, device, historical))
        payload = codec.new_payload()
        payload.timestamp = _now_ms()
        payload.seq = self._next_seq()
        for _, row in rows:
            ms = row.time_ns // 1_000_000
            for tag, value, quality in zip(row.names, row.values, row.quality, strict=True):
                metric = payload.metrics.add()
                metric.alias = self._alias(name, tag)
                metric.timestamp = ms
                kind = codec.spb_type(device.metrics[tag])
                metric.datatype = kind
                _fill(metric, kind, value, quality)
                if historical:
                    metric.is_historical = True
                device.values[tag] = (value, quality, ms)
        out.append(
            Message(
                self.topic("DDATA", name),
                payload.SerializeToString(),
                tuple(seq for seq, _ in rows),
                historical,
            )
        )
        return out


def _fill(metric: Any, kind: codec.SpbType, value: Any, quality: int) -> None:
    if quality >= Quality.BAD:
        value = None
    codec.set_metric_value(metric, kind, value)
    if quality >= Quality.UNCERTAIN:
        metric.properties.keys.append("Quality")
        item = metric.properties.values.add()
        item.type = codec.SpbType.INT32
        item.int_value = codec.sparkplug_quality(quality)


_UNREACHABLE = frozenset((int(Quality.BAD_COMM_LOST), int(Quality.BAD_TIMEOUT)))


def _unreachable(row: Row) -> bool:
    """Every value of the row is missing because its device could not be reached."""
    return bool(row.quality) and all(q in _UNREACHABLE for q in row.quality)


def _level(text: str) -> str:
    return text.replace("/", "_").replace("+", "_").replace("#", "_")


def _now_ms() -> int:
    return time.time_ns() // 1_000_000

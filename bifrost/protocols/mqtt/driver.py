"""The MQTT source driver: a last-value cache fed by paho-mqtt's network thread.

paho-mqtt runs its own thread (``loop_start``) and reconnects by itself, subscribing
again to every topic the driver's plans asked for. Messages update the cache under a
lock; native subscriptions get their notifications on the event loop
(``call_soon_threadsafe``). Reads never wait for a message: they answer from the cache,
after a first subscription to a new topic has been acknowledged (retained messages
come right after).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from bifrost._extras import require
from bifrost.clock import wall_ns
from bifrost.exceptions import ConnectionError, TimeoutError, WriteNotAllowed
from bifrost.model import Quality, Tag
from bifrost.protocols.base import Driver, ReadResult
from bifrost.protocols.mqtt.address import is_address
from bifrost.protocols.mqtt.codec import NOT_FOUND, extract
from bifrost.protocols.mqtt.options import MqttOptions
from bifrost.protocols.mqtt.plan import ReadPlan, compile_read

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["MqttDriver"]

_REBIRTH_WAIT = 1.0


@dataclass
class _Metric:
    value: Any
    time_ns: int
    quality: int
    datatype: int
    alias: int | None


class _Watch:
    """A native subscription: which tags each topic (or Sparkplug metric) feeds."""

    def __init__(
        self,
        plan: ReadPlan,
        on_data: Callable[[ReadResult], None],
        loop: asyncio.AbstractEventLoop,
    ) -> None:
        self.plan = plan
        self.on_data = on_data
        self.loop = loop
        self.by_topic: dict[str, list[int]] = {}
        self.by_metric: dict[tuple[str, str, str | None, str], list[int]] = {}
        for i, address in enumerate(plan.addresses):
            if address.spb is not None:
                spb = address.spb
                self.by_metric.setdefault((spb.group, spb.node, spb.device, spb.metric), []).append(
                    i
                )
            else:
                self.by_topic.setdefault(address.topic, []).append(i)
        self.closed = False


class _Handle:
    def __init__(self, driver: MqttDriver, watch: _Watch) -> None:
        self.driver = driver
        self.watch = watch

    async def close(self) -> None:
        self.watch.closed = True
        with self.driver._lock:
            if self.watch in self.driver._watches:
                self.driver._watches.remove(self.watch)


class MqttDriver(Driver):
    """Driver for ``mqtt://``, ``mqtts://`` and ``spb://`` URLs (a broker, read-only)."""

    protocol: ClassVar[str] = "mqtt"

    def __init__(self, options: MqttOptions) -> None:
        require("paho.mqtt", "MQTT connections")
        import paho.mqtt

        self.options = options
        self.library = f"paho-mqtt {paho.mqtt.__version__}"
        self._client: Any = None
        self._lock = threading.Lock()
        self._topics: set[str] = set()
        self._subacks: dict[int, threading.Event] = {}
        self._last: dict[str, tuple[bytes, int]] = {}
        self._metrics: dict[tuple[str, str, str | None, str], _Metric] = {}
        self._aliases: dict[tuple[str, str, str | None], dict[int, str]] = {}
        self._nodes: dict[tuple[str, str], bool] = {}  # (group, node) -> born
        self._watches: list[_Watch] = []
        self._connected = threading.Event()
        self._refused = ""

    # -- transport ------------------------------------------------------------------------
    @property
    def endpoint(self) -> str:
        """``host:port`` of the broker."""
        return self.options.endpoint

    @property
    def connected(self) -> bool:
        """Whether the broker connection is up."""
        return self._client is not None and self._connected.is_set()

    async def connect(self) -> None:
        """Connect to the broker (paho reconnects by itself afterwards)."""
        if self._client is not None:
            if self.connected:
                return
            await self.close()
        from paho.mqtt import client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        options = self.options
        v5 = options.protocol == "5"
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=options.client_id or f"bifrost-src-{os.getpid()}-{id(self):x}",
            protocol=mqtt.MQTTv5 if v5 else mqtt.MQTTv311,
            clean_session=None if v5 else True,
        )
        client.reconnect_delay_set(1, 5)
        client.connect_timeout = options.timeout
        if options.tls:
            import ssl

            context = ssl.create_default_context(cafile=options.ca)
            if options.cert:
                context.load_cert_chain(options.cert, options.key)
            client.tls_set_context(context)
        if options.username is not None or options.password is not None:
            client.username_pw_set(
                options.username, None if options.password is None else options.password.reveal()
            )
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_message = self._on_message
        client.on_subscribe = self._on_subscribe
        self._connected.clear()
        self._refused = ""
        try:
            await asyncio.to_thread(client.connect, options.host, options.port, 30)
        except (OSError, ValueError) as exc:
            with contextlib.suppress(Exception):
                client._sock_close()
            raise ConnectionError(
                f"cannot connect to the MQTT broker {self.endpoint}: {exc}"
            ) from None
        self._client = client
        client.loop_start()
        deadline = time.monotonic() + options.timeout
        while not self._connected.is_set():
            if self._refused:
                await self.close()
                raise ConnectionError(self._refused)
            if time.monotonic() > deadline:
                await self.close()
                raise TimeoutError(f"the MQTT broker {self.endpoint} did not answer in time")
            await asyncio.sleep(0.01)

    async def close(self) -> None:
        """Disconnect and stop paho's thread (idempotent)."""
        client, self._client = self._client, None
        if client is None:
            return
        client.disconnect()
        await asyncio.to_thread(client.loop_stop)
        self._connected.clear()

    # paho's callbacks, on its network thread
    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any) -> None:
        if reason.is_failure:
            self._refused = f"the MQTT broker {self.endpoint} refused the connection: {reason}"
            return
        with self._lock:
            topics = sorted(self._topics)
        for topic in topics:
            client.subscribe(topic, qos=1)
        self._connected.set()

    def _on_disconnect(
        self, client: Any, userdata: Any, flags: Any, reason: Any, props: Any
    ) -> None:
        self._connected.clear()

    def _on_subscribe(self, client: Any, userdata: Any, mid: int, codes: Any, props: Any) -> None:
        with self._lock:
            event = self._subacks.pop(mid, None)
        if event is not None:
            event.set()

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        topic = message.topic
        payload = bytes(message.payload)
        now = wall_ns()
        if topic.startswith("spBv1.0/"):
            self._on_sparkplug(topic, payload, now)
            return
        with self._lock:
            self._last[topic] = (payload, now)
            watches = [w for w in self._watches if topic in w.by_topic]
        for watch in watches:
            self._notify(watch, watch.by_topic[topic])

    def _on_sparkplug(self, topic: str, payload: bytes, now: int) -> None:
        from bifrost.cloud import sparkplug_codec as codec

        parts = topic.split("/")
        if len(parts) < 4:
            return
        group, kind, node = parts[1], parts[2], parts[3]
        device = parts[4] if len(parts) > 4 else None
        if kind in ("NCMD", "DCMD", "STATE"):
            return
        try:
            message = codec.decode(payload)
        except ValueError:
            return
        changed: set[tuple[str, str, str | None, str]] = set()
        with self._lock:
            if kind == "NBIRTH":
                self._nodes[group, node] = True
            else:
                self._nodes.setdefault((group, node), False)
            aliases = self._aliases.setdefault((group, node, device), {})
            if kind in ("NDEATH", "DDEATH"):
                for key, metric in self._metrics.items():
                    if key[:2] == (group, node) and (kind == "NDEATH" or key[2] == device):
                        metric.quality = int(Quality.BAD_COMM_LOST)
                        changed.add(key)
                if kind == "NDEATH":
                    self._nodes[group, node] = False
            else:
                for item in message.metrics:
                    name = item.name if item.name else aliases.get(item.alias)
                    if name is None:
                        continue
                    alias = item.alias if item.HasField("alias") else None
                    if kind.endswith("BIRTH") and alias is not None:
                        aliases[alias] = name
                    key = (group, node, device, name)
                    old = self._metrics.get(key)
                    datatype = item.datatype or (old.datatype if old else 0)
                    if item.datatype == 0 and old is not None:
                        item.datatype = old.datatype
                    stamp = item.timestamp * 1_000_000 if item.timestamp else now
                    self._metrics[key] = _Metric(
                        codec.metric_value(item),
                        stamp,
                        codec.metric_quality(item),
                        datatype,
                        alias if alias is not None else (old.alias if old else None),
                    )
                    changed.add(key)
            watches = list(self._watches)
        for watch in watches:
            positions = [i for key in changed for i in watch.by_metric.get(key, [])]
            if positions:
                self._notify(watch, sorted(positions))

    def _notify(self, watch: _Watch, positions: list[int]) -> None:
        if watch.closed:
            return
        result = self._result(watch.plan, positions)
        with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
            watch.loop.call_soon_threadsafe(self._deliver, watch, result)

    @staticmethod
    def _deliver(watch: _Watch, result: ReadResult) -> None:
        if not watch.closed:
            watch.on_data(result)

    # -- reading --------------------------------------------------------------------------
    def is_address(self, text: str) -> bool:
        """Topics (with a level separator) and ``spb:`` metrics."""
        return is_address(text)

    def compile_read(self, tags: Sequence[Tag]) -> ReadPlan:
        """Parse the addresses (no I/O)."""
        return compile_read(tags)

    def explain(self, plan: Any) -> list[dict[str, Any]]:
        """One row per topic the plan subscribes to."""
        return [{"request": "subscribe", "topic": topic} for topic in plan.topics]

    async def _ensure(self, topics: Sequence[str]) -> None:
        client = self._client
        if client is None or not self._connected.is_set():
            raise ConnectionError(f"not connected to the MQTT broker {self.endpoint}")
        with self._lock:
            new = [t for t in topics if t not in self._topics]
            self._topics.update(new)
        if not new:
            return
        events = []
        for topic in new:
            event = threading.Event()
            with self._lock:
                _result, mid = client.subscribe(topic, qos=1)
                self._subacks[mid] = event
            events.append(event)
        deadline = time.monotonic() + self.options.timeout
        while not all(e.is_set() for e in events):
            if time.monotonic() > deadline:
                raise TimeoutError(
                    f"the MQTT broker {self.endpoint} did not confirm a subscription"
                )
            await asyncio.sleep(0.005)
        # Retained messages follow the SUBACK at once; give them a moment.
        await asyncio.sleep(0.05)

    async def execute_read(self, plan: ReadPlan) -> ReadResult:
        """The cached values of the plan's tags (subscribing first if need be)."""
        await self._ensure(plan.topics)
        return self._result(plan, None)

    def _result(self, plan: ReadPlan, positions: Sequence[int] | None) -> ReadResult:
        now = wall_ns()
        stale = int(self.options.stale * 1e9)
        chosen = range(len(plan.tags)) if positions is None else positions
        values: list[Any] = []
        quality: list[int] = []
        stamps: list[int] = []
        with self._lock:
            for i in chosen:
                address = plan.addresses[i]
                value: Any = None
                code = int(Quality.BAD_NO_DATA)
                stamp = now
                if address.spb is not None:
                    spb = address.spb
                    metric = self._metrics.get((spb.group, spb.node, spb.device, spb.metric))
                    if metric is not None:
                        value, code, stamp = metric.value, metric.quality, metric.time_ns
                else:
                    last = self._last.get(address.topic)
                    if last is not None:
                        value, sent, code = extract(last[0], address.path)
                        stamp = sent or last[1]
                        if value is NOT_FOUND:
                            value, code = None, int(Quality.BAD_CONFIG)
                if code < Quality.UNCERTAIN and now - stamp > stale:
                    code = int(Quality.UNCERTAIN)  # the last value, but old: see its time
                values.append(value if code < Quality.BAD else None)
                quality.append(code)
                stamps.append(stamp)
        tags = plan.tags if positions is None else tuple(plan.tags[i] for i in positions)
        numeric = [k for k, v in enumerate(values) if isinstance(v, int | float) and v is not None]
        other = [k for k in range(len(values)) if k not in set(numeric)]
        columns = []
        if numeric:
            columns.append(
                (np.array(numeric, dtype=np.intp), np.array([float(values[k]) for k in numeric]))
            )
        if other:
            objects = np.empty(len(other), dtype=object)
            objects[:] = [values[k] for k in other]
            columns.append((np.array(other, dtype=np.intp), objects))
        return ReadResult(
            tags,
            columns,
            np.array(quality, dtype=np.uint8),
            np.array(stamps, dtype=np.int64),
            indices=None if positions is None else np.array(positions, dtype=np.intp),
        )

    # -- subscriptions --------------------------------------------------------------------
    async def subscribe(
        self,
        plan: Any,
        interval_s: float,
        on_data: Callable[[ReadResult], None],
        *,
        queue_size: int | None = None,
        deadband: float = 0.0,
    ) -> _Handle:
        """Every message for the plan's tags is a notification (native)."""
        watch = _Watch(plan, on_data, asyncio.get_running_loop())
        with self._lock:
            self._watches.append(watch)
        await self._ensure(plan.topics)
        return _Handle(self, watch)

    # -- writing, identification, browsing ------------------------------------------------
    def compile_write(self, items: Sequence[tuple[Tag, Any]]) -> Any:
        """MQTT sources are read-only."""
        raise WriteNotAllowed(
            "an MQTT connection is read-only; publish with bifrost.cloud.MqttSink"
        )

    async def execute_write(self, plan: Any) -> None:
        """MQTT sources are read-only."""
        raise WriteNotAllowed("an MQTT connection is read-only")

    async def info(self) -> dict[str, Any]:
        """The broker and the protocol version."""
        return {"broker": self.endpoint, "protocol": f"MQTT {self.options.protocol}"}

    def describe(self, tag: Tag) -> dict[str, Any]:
        """Static facts: the topic (types are known only from the messages)."""
        address = compile_read([tag]).addresses[0]
        return {"dtype": "object", "topic": address.topic}

    async def browse(self, path: str | None, depth: int) -> pd.DataFrame | None:
        """Sparkplug: every metric of the group; MQTT: the topics seen below ``path``."""
        import pandas as pd

        wait = self.options.browse_wait
        group = self.options.group
        if group is not None or (path or "").startswith("spBv1.0/"):
            group = group or (path or "").split("/")[1]
            await self._ensure([f"spBv1.0/{group}/#"])
            await asyncio.sleep(wait)
            await self._request_rebirths(group)
            return self._namespace(group)
        topic = f"{path.rstrip('/')}/#" if path else "#"
        await self._ensure([topic])
        await asyncio.sleep(wait)
        with self._lock:
            rows = [
                {
                    "topic": t,
                    "payload": p[:80].decode("utf-8", "replace"),
                    "timestamp": pd.Timestamp(ns, tz="UTC"),
                }
                for t, (p, ns) in sorted(self._last.items())
                if not path or t.startswith(path)
            ]
        frame = pd.DataFrame(rows, columns=["topic", "payload", "timestamp"])
        return frame.set_index("topic")

    async def _request_rebirths(self, group: str) -> None:
        from bifrost.cloud import sparkplug_codec as codec

        with self._lock:
            unborn = [n for (g, n), born in self._nodes.items() if g == group and not born]
        client = self._client
        if not unborn or client is None:
            return
        for node in unborn:
            payload = codec.new_payload()
            payload.timestamp = time.time_ns() // 1_000_000
            metric = payload.metrics.add()
            metric.name = "Node Control/Rebirth"
            metric.datatype = codec.SpbType.BOOLEAN
            metric.boolean_value = True
            client.publish(f"spBv1.0/{group}/NCMD/{node}", payload.SerializeToString(), qos=1)
        await asyncio.sleep(_REBIRTH_WAIT)

    def _namespace(self, group: str) -> pd.DataFrame:
        import pandas as pd

        from bifrost.cloud.sparkplug_codec import SpbType

        rows = []
        with self._lock:
            for (g, node, device, name), metric in sorted(
                self._metrics.items(), key=lambda item: (item[0][1], item[0][2] or "", item[0][3])
            ):
                if g != group:
                    continue
                where = f"{g}/{node}" + (f"/{device}" if device else "")
                try:
                    kind = SpbType(metric.datatype).name.lower()
                except ValueError:
                    kind = str(metric.datatype)
                rows.append(
                    {
                        "address": f"spb:{where}:{name}",
                        "node": node,
                        "device": device or "",
                        "metric": name,
                        "datatype": kind,
                        "alias": metric.alias,
                        "value": metric.value,
                        "quality": Quality(metric.quality).name.lower()
                        if metric.quality in Quality._value2member_map_
                        else str(metric.quality),
                        "timestamp": pd.Timestamp(metric.time_ns, tz="UTC"),
                    }
                )
        columns = [
            "address",
            "node",
            "device",
            "metric",
            "datatype",
            "alias",
            "value",
            "quality",
            "timestamp",
        ]
        return pd.DataFrame(rows, columns=columns).set_index("address")

    def __repr__(self) -> str:
        return f"<MqttDriver {self.options.scheme}://{self.endpoint}>"

"""Sinks: samples from recordings and subscriptions, published to MQTT through a spool.

``MqttSink`` runs one thread of its own (plus paho-mqtt's network thread while
connected). A row handed to it (:meth:`MqttSink.feed`) is queued in memory at once, so
acquisition never waits for the network or the disk; the sink's thread appends what
arrived to the spool as one batch (one fsync), then publishes:

- *live* rows (spooled while connected) at once;
- the *backlog* (rows spooled while the broker was away, or before a restart), oldest
  first and marked historical, with no more of it in flight than drains in half of
  ``max_live_delay`` (and at most ``backlog_window`` messages), so that a live value,
  sent behind it, is late by ``max_live_delay`` at most even over a slow link;

and the broker's PUBACKs move the spool's acknowledged offset. The drain rate is
measured from the PUBACKs: each message's bytes in flight ahead of it (itself included)
over the time it took to be acknowledged, smoothed; it needs no knowledge of the link,
and a window of W bytes that comes back in more than the target shrinks to what does
(Little's law), one that comes back sooner grows. A connection that drops
loses nothing: everything not acknowledged is replayed from the spool after the next
connect (paho's own resending is not used: a new client per connection, so a Sparkplug
session never mixes with the previous one's sequence numbers).

A message the broker refuses (an MQTT 5 PUBACK with an error reason code, e.g. "Not
authorized") is retried ``max_attempts`` times, then put in the spool's quarantine
folder instead of blocking the rows behind it. A broker that drops the connection
instead (MQTT 3.1.1, a packet over its size limit) makes the sink send one row at a
time after two such drops; the row it drops ``max_attempts`` times is quarantined.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import math
import os
import queue
import ssl
import tempfile
import threading
import time
import warnings
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import numpy as np
import numpy.typing as npt

from bifrost._extras import require
from bifrost.backoff import Backoff
from bifrost.clock import wall_ns
from bifrost.cloud.payloads import Encoder, JsonEncoder, Message, Row, decode_row, encode_row
from bifrost.cloud.spool import Spool, SpoolError
from bifrost.exceptions import BifrostWarning, ConfigurationError
from bifrost.secrets import Secret

__all__ = ["Feed", "MqttSink", "SinkStats", "Tls", "TlsWarning"]

_log = logging.getLogger("bifrost.cloud")
_SINK_NUMBERS = itertools.count(1)
_HISTORY_CHUNK = 5_000  # rows of a finished recording turned into Python rows at a time
_HISTORY_QUEUE = 20_000  # rows of it waiting for the spool at most
_PROBE_ACKS = 50  # messages through, one row at a time, before the full window again
_RATE_WEIGHT = 0.1  # of each PUBACK's drain-rate sample in the smoothed estimate

PayloadKind = Literal["json", "sparkplug"]


class TlsWarning(BifrostWarning):
    """TLS was configured not to check the broker's certificate (``tls_insecure=True``)."""


class _ClosingSSLSocket(ssl.SSLSocket):
    """Closes itself when the handshake fails (paho-mqtt would leave it to the GC)."""

    def do_handshake(self, block: bool = False) -> None:
        try:
            super().do_handshake(block)
        except BaseException:
            self.close()
            raise


@dataclass(frozen=True)
class Tls:
    """TLS settings of a broker connection.

    Parameters
    ----------
    ca
        CA certificate file (PEM) the broker's certificate must chain to; None uses the
        system's trust store.
    cert, key
        Client certificate and key (PEM) for mutual TLS.
    key_password
        Password of an encrypted key.
    alpn
        ALPN protocols to offer (AWS IoT Core on port 443 needs ``x-amzn-mqtt-ca``).
    server_hostname
        Name to check the broker's certificate against, when it differs from the host
        connected to.
    insecure
        Do not check the broker's certificate at all (warns; never the default).
    """

    ca: str | os.PathLike[str] | None = None
    cert: str | os.PathLike[str] | None = None
    key: str | os.PathLike[str] | None = None
    key_password: Secret | None = None
    alpn: tuple[str, ...] = ()
    server_hostname: str | None = None
    insecure: bool = False

    def context(self) -> ssl.SSLContext:
        """An SSL context: hostname verification on, unless ``insecure``."""
        context = ssl.create_default_context(cafile=None if self.ca is None else os.fspath(self.ca))
        context.minimum_version = ssl.TLSVersion.TLSv1_2
        if self.cert is not None:
            context.load_cert_chain(
                os.fspath(self.cert),
                None if self.key is None else os.fspath(self.key),
                None if self.key_password is None else self.key_password.reveal(),
            )
        if self.alpn:
            context.set_alpn_protocols(list(self.alpn))
        if self.insecure:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        context.sslsocket_class = _ClosingSSLSocket
        return context


@dataclass
class SinkStats:
    """How a sink is doing.

    Attributes
    ----------
    connected
        Whether the broker connection is up.
    broker
        The broker URL in use (or last tried).
    rows
        Rows handed to the sink.
    pending
        Rows in the spool not yet acknowledged.
    published
        Messages handed to the broker.
    acknowledged
        Rows acknowledged by the broker.
    historical
        Rows sent as historical (replayed from the spool).
    dropped
        Rows dropped unsent by the spool's caps (``max_spool_bytes``, ``max_spool_age``)
        or because the spool could not be written and memory filled up.
    quarantined
        Messages the broker kept refusing, set aside in ``<spool>/quarantine/``.
    refused
        Refusals (error reason codes in PUBACKs) so far.
    unspooled
        Rows held in memory because the spool folder could not be written.
    connects, reconnects
        Successful connections; those after the first.
    oldest_spooled, newest_spooled
        Times (ns, UTC) of the oldest and newest pending rows, or None.
    spool_bytes
        Size of the spool on disk.
    last_error
        The latest error (connection, TLS, spool), or "".
    """

    connected: bool = False
    broker: str = ""
    rows: int = 0
    pending: int = 0
    published: int = 0
    acknowledged: int = 0
    historical: int = 0
    dropped: int = 0
    quarantined: int = 0
    refused: int = 0
    unspooled: int = 0
    connects: int = 0
    reconnects: int = 0
    oldest_spooled: int | None = None
    newest_spooled: int | None = None
    spool_bytes: int = 0
    last_error: str = ""

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (for logs and JSON)."""
        return asdict(self)


class Feed:
    """Rows of one device (a fixed list of tags) into a sink; made by :meth:`MqttSink.feed`.

    ``rows`` is cheap and never blocks a live feed: it copies the rows and queues them.
    A historical feed (a finished recording) is queued in chunks, each waiting until the
    sink has spooled all but ``_HISTORY_QUEUE`` rows, so a long recording never sits in
    memory twice, as Python rows, while the disk catches up.
    """

    def __init__(
        self,
        sink: MqttSink,
        device: str,
        names: Sequence[str],
        dtypes: Sequence[str],
        historical: bool = False,
    ) -> None:
        self.sink = sink
        self.device = device
        self.names = tuple(names)
        self.dtypes = tuple(dtypes)
        self.historical = historical
        self._refined = "object" not in self.dtypes

    def rows(
        self,
        times: npt.NDArray[np.int64],
        columns: list[npt.NDArray[Any]],
        quality: npt.NDArray[np.uint8],
    ) -> None:
        """Queue rows: times (ns), one value column per tag, a rows-by-tags quality matrix."""
        count = len(times)
        if not self.historical:
            self._queue(times, columns, quality)
            return
        for start in range(0, count, _HISTORY_CHUNK):
            self.sink._wait_for_room(_HISTORY_QUEUE)
            stop = start + _HISTORY_CHUNK
            self._queue(times[start:stop], [c[start:stop] for c in columns], quality[start:stop])

    def _queue(
        self,
        times: npt.NDArray[np.int64],
        columns: list[npt.NDArray[Any]],
        quality: npt.NDArray[np.uint8],
    ) -> None:
        count = len(times)
        if count == 0:
            return
        values = [column.tolist() for column in columns]
        if not self._refined:
            self._refine(values)
        codes = quality.tolist()
        stamps = times.tolist()
        put, device, names, dtypes = self.sink.put, self.device, self.names, self.dtypes
        for i in range(count):
            put(
                Row(
                    device,
                    stamps[i],
                    names,
                    dtypes,
                    [v[i] for v in values],
                    codes[i],
                    self.historical,
                )
            )

    def _refine(self, values: list[list[Any]]) -> None:
        # Protocols that learn types at run time (OPC UA) say "object": the values tell.
        dtypes = list(self.dtypes)
        for j, dtype in enumerate(dtypes):
            if dtype == "object":
                sample = next((v for v in values[j] if v is not None), None)
                if sample is not None:
                    dtypes[j] = _dtype_of(sample)
        self.dtypes = tuple(dtypes)
        self._refined = True

    def close(self) -> None:
        """Nothing more comes from this feed (the sink stays open)."""


@dataclass
class _Flight:
    message: Message
    backlog: bool = False
    attempts: int = 1
    size: int = 0  # bytes on the wire, about
    ahead: int = 0  # bytes in flight when it was handed to paho, its own included
    sent: float = 0.0  # time.monotonic() then


@dataclass
class _Connection:
    """One paho client, for one connection; thrown away when it ends."""

    client: Any
    url: str
    connected: threading.Event = field(default_factory=threading.Event)
    ended: threading.Event = field(default_factory=threading.Event)
    refused: str = ""
    deadline: float = 0.0
    acknowledged: int = 0  # PUBACKs that accepted a message
    subscribed: bool = False
    held: bool = False  # the session had to wait (for Sparkplug's primary host)
    started: bool = False


class MqttSink:
    """Publish recordings and subscriptions to an MQTT broker, store-and-forward.

    Parameters
    ----------
    url
        ``mqtt://host:1883`` or ``mqtts://host:8883`` (TLS); a list of URLs fails over
        to the next one when a broker cannot be reached.
    topic
        Topic template: ``{device}`` and ``{tag}`` are filled in. With ``{tag}``, one
        message per value; without, one message per row (all its tags).
    payload
        ``"json"`` or ``"sparkplug"`` (Sparkplug B; ``group`` and ``node`` name the edge
        node, and ``topic`` is not used).
    qos
        1 (at least once, the default; the spool moves on PUBACKs) or 0 (fire and
        forget: a row counts as acknowledged once written to the socket's buffer).
    tls
        A :class:`Tls`, or True for TLS with the system's trust store; ``mqtts://``
        implies True.
    username, password
        Broker credentials; the password is a :class:`~bifrost.Secret` (``bf.secret(...)``)
        or a callable returning ``(Secret, valid_until_epoch_s)`` that is asked again
        before each connect and whose expiry makes the sink reconnect in time (Azure's
        SAS tokens).
    client_id
        MQTT client id (default: ``bifrost-<hostname>-<pid>-<n>``, unique per sink).
    spool
        Folder of the disk spool; None keeps it in a temporary folder deleted on close
        (samples then do not survive a restart).
    max_spool_bytes, max_spool_age
        Caps of the spool (bytes; seconds). Beyond them the oldest rows are dropped and
        counted in ``stats.dropped``.
    device
        Device name of every row (default: each source's endpoint, e.g. a connection's
        ``host:port``).
    protocol
        ``"5"`` (MQTT 5, default: refusals have reason codes) or ``"3.1.1"``.
    group, node
        Sparkplug group id and edge node id (default node: ``bifrost-<hostname>``).
    primary_host
        Sparkplug host application id: births and data wait until its STATE says it is
        online, and the node dies and waits again when it goes offline (None: no wait).
    on_write
        Called as ``on_write(device, {tag: value})`` for a Sparkplug DCMD, on the sink's
        thread (hand the write over; do not block). None: DCMDs are logged and ignored.
    tls_insecure
        Do not verify the broker's certificate (warns). Never the default.
    window, backlog_window
        Messages in flight at most, all told and for the backlog.
    max_live_delay
        Seconds a live row may wait behind the backlog (default 0.1: one publish
        interval of a 10 Hz recording; set it to the feeds' interval). The backlog keeps
        in flight only what drains in half of it at the rate measured from PUBACKs (the
        other half is for spooling and the broker's forwarding), and one message at
        least, so it always moves on. None: only ``backlog_window`` bounds it.
    max_attempts
        Refusals of one message before it is quarantined.
    keepalive, connect_timeout
        Seconds.
    """

    def __init__(
        self,
        url: str | Sequence[str],
        *,
        topic: str = "plant/{device}/{tag}",
        payload: PayloadKind = "json",
        qos: int = 1,
        tls: Tls | bool | None = None,
        username: str | None = None,
        password: Secret | Callable[[], tuple[Secret, float]] | None = None,
        client_id: str | None = None,
        spool: str | os.PathLike[str] | None = None,
        max_spool_bytes: int = 1 << 30,
        max_spool_age: float | None = None,
        device: str | None = None,
        protocol: Literal["5", "3.1.1"] = "5",
        group: str = "bifrost",
        node: str | None = None,
        primary_host: str | None = None,
        on_write: Callable[[str, dict[str, Any]], None] | None = None,
        tls_insecure: bool = False,
        window: int = 200,
        backlog_window: int = 100,
        max_live_delay: float | None = 0.1,
        max_attempts: int = 3,
        keepalive: int = 30,
        connect_timeout: float = 5.0,
    ) -> None:
        require("paho.mqtt", "MQTT sinks")
        urls = [url] if isinstance(url, str) else list(url)
        if not urls:
            raise ConfigurationError("MqttSink needs at least one broker URL")
        self._brokers = [_broker(u, tls) for u in urls]
        if qos not in (0, 1):
            raise ConfigurationError(f"qos must be 0 or 1, got {qos!r}")
        if payload not in ("json", "sparkplug"):
            raise ConfigurationError(f"payload must be 'json' or 'sparkplug', got {payload!r}")
        if protocol not in ("5", "3.1.1"):
            raise ConfigurationError(f"protocol must be '5' or '3.1.1', got {protocol!r}")
        if password is not None and not (isinstance(password, Secret) or callable(password)):
            raise ConfigurationError(
                "password must be a bifrost Secret, e.g. bf.secret('env:MQTT_PASSWORD'); "
                "a plain string would show up in reprs and logs"
            )
        tls_config = tls if isinstance(tls, Tls) else Tls() if tls else None
        if tls_insecure:
            tls_config = Tls(**{**asdict(tls_config or Tls()), "insecure": True})
        if tls_config is not None and tls_config.insecure:
            warnings.warn(
                "TLS certificate verification is off (tls_insecure=True): anyone on the "
                "path can impersonate the broker",
                TlsWarning,
                stacklevel=2,
            )
        self.topic = topic
        self.payload = payload
        self.qos = qos
        self.tls = tls_config
        self.username = username
        self._password = password
        # Unique per sink: two clients with one id make the broker drop one, endlessly.
        self.client_id = client_id or (
            f"bifrost-{os.uname().nodename}-{os.getpid()}-{next(_SINK_NUMBERS)}"
        )
        self.device = device
        self.on_write = on_write
        self.protocol = protocol
        self.window = max(1, window)
        self.backlog_window = max(1, min(backlog_window, self.window))
        if max_live_delay is not None and not max_live_delay > 0:
            raise ConfigurationError(
                f"max_live_delay must be a positive number of seconds or None, "
                f"got {max_live_delay!r}"
            )
        self.max_live_delay = max_live_delay
        self.max_attempts = max(1, max_attempts)
        self.keepalive = keepalive
        self.connect_timeout = connect_timeout
        self._ephemeral = spool is None
        folder = Path(tempfile.mkdtemp(prefix="bifrost-spool-")) if spool is None else Path(spool)
        self.spool = Spool(
            folder,
            max_bytes=max_spool_bytes,
            max_age=max_spool_age,
            fsync=not self._ephemeral,
            state_interval=0.1,
        )
        self._encoder: Encoder
        if payload == "sparkplug":
            from bifrost.cloud.sparkplug import SparkplugEncoder

            self._encoder = SparkplugEncoder(
                folder, group, node or f"bifrost-{os.uname().nodename}", primary_host
            )
        else:
            self._encoder = JsonEncoder(topic)
        self._stats = SinkStats(broker=self._brokers[0][0])
        self._incoming: queue.SimpleQueue[Row] = queue.SimpleQueue()
        self._acks: queue.SimpleQueue[tuple[Any, int, int, str, float]] = queue.SimpleQueue()
        self._commands: queue.SimpleQueue[tuple[Any, str, bytes]] = queue.SimpleQueue()
        self._unspooled: deque[Row] = deque()
        self._max_unspooled = 100_000
        self._memory_dropped = 0
        self._handled = 0  # rows taken from the queue and spooled (or held in memory)
        self._fresh: deque[tuple[int, Row]] = deque()  # just spooled, for live sending
        self._fresh_lock = threading.Lock()
        self._inflight: dict[int, _Flight] = {}
        self._parts: dict[int, int] = {}
        self._retry: deque[tuple[float, _Flight]] = deque()
        self._backlog_flying = 0
        self._flying_bytes = 0
        self._drain_rate: float | None = None  # bytes/s, from PUBACKs on this connection
        self._row_bytes = 0.0  # bytes of messages per backlog row, smoothed
        # A broker that drops the connection on a message (no reason code): see _note_loss.
        self._stalls = 0
        self._probing = False
        self._probe_acks = 0
        self._suspects: dict[tuple[int, ...], int] = {}
        self._live = self._back = self._back_end = self._startup_end = self.spool.end
        self._connection: _Connection | None = None
        self._broker_index = 0
        self._backoff = Backoff(first=0.2, ceiling=5.0)
        self._next_attempt = 0.0
        self._credentials_until = math.inf
        self._spool_retry_at = 0.0
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._flush_deadline = 0.0
        self._closed = False
        # Two threads: the writer spools what arrives (its fsyncs never stall sending),
        # the sender connects, publishes and handles acknowledgements.
        self._writer = threading.Thread(
            target=self._write_loop, name="bifrost-mqtt-spool", daemon=True
        )
        self._thread = threading.Thread(target=self._run, name="bifrost-mqtt-sink", daemon=True)
        self._writer.start()
        self._thread.start()

    # -- the public surface ------------------------------------------------------------
    def feed(
        self,
        source: str,
        names: Sequence[str],
        dtypes: Sequence[str],
        *,
        historical: bool = False,
    ) -> Feed:
        """A feed of rows with the tags ``names`` (of ``dtypes``) from ``source``.

        The rows' device is the sink's ``device`` if it was given, else ``source`` (a
        connection's endpoint, e.g. ``127.0.0.1:5020``).
        """
        device = self.device or source.replace("/", "_") or "device"
        return Feed(self, device, names, dtypes, historical)

    def _wait_for_room(self, limit: int) -> None:
        """Wait until at most ``limit`` rows are queued for the spool (historical feeds)."""
        while (
            self._incoming.qsize() > limit
            and self._writer.is_alive()
            and not self._stopping.is_set()
        ):
            time.sleep(0.005)

    def put(self, row: Row) -> None:
        """Queue one row (from any thread; never blocks)."""
        if self._closed:
            return
        self._stats.rows += 1
        self._incoming.put(row)
        self._wake.set()

    def send(
        self,
        values: dict[str, Any],
        *,
        device: str | None = None,
        time_ns: int | None = None,
        quality: int = 0,
    ) -> None:
        """Queue one row of plain values ``{tag: value}`` (for scripts and tests)."""
        names = tuple(values)
        dtypes = tuple(_dtype_of(v) for v in values.values())
        self.put(
            Row(
                device or self.device or "device",
                wall_ns() if time_ns is None else time_ns,
                names,
                dtypes,
                list(values.values()),
                [quality] * len(names),
            )
        )

    @property
    def stats(self) -> SinkStats:
        """Counters, connection state and the spool's oldest and newest pending times."""
        stats = self._stats
        stats.pending = self.spool.pending + len(self._unspooled) + self._incoming.qsize()
        stats.dropped = self.spool.dropped + self._memory_dropped
        stats.quarantined = self.spool.quarantined
        stats.unspooled = len(self._unspooled)
        stats.oldest_spooled, stats.newest_spooled = self.spool.times()
        stats.spool_bytes = self.spool.size
        connection = self._connection
        stats.connected = connection is not None and connection.connected.is_set()
        return stats

    @property
    def connected(self) -> bool:
        """Whether the broker connection is up."""
        connection = self._connection
        return connection is not None and connection.connected.is_set()

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything handed to the sink is acknowledged (True) or ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._drained():
                return True
            self._wake.set()
            time.sleep(0.01)
        return self._drained()

    def _drained(self) -> bool:
        return (
            self._handled == self._stats.rows
            and not self._unspooled
            and self.spool.pending == 0
            and not self._inflight
        )

    def close(self, timeout: float = 5.0) -> None:
        """Flush for up to ``timeout`` s if connected, then disconnect and stop.

        What is not acknowledged by then stays in the spool for the next run.
        """
        if self._closed:
            return
        if self.connected:
            self.flush(timeout)
        self._closed = True
        self._stopping.set()
        self._wake.set()
        self._writer.join()
        self._thread.join()
        if self._ephemeral:
            self.spool.destroy()
        else:
            self.spool.close()

    def __enter__(self) -> MqttSink:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "connected" if self.connected else "closed" if self._closed else "connecting"
        brokers = ", ".join(b[0] for b in self._brokers)
        return (
            f"<MqttSink {brokers} {state}, payload={self.payload}, qos={self.qos}, "
            f"{self.spool.pending} pending>"
        )

    # -- the sink's thread ---------------------------------------------------------------
    def _run(self) -> None:
        last_enforce = 0.0
        try:
            while not self._stopping.is_set():
                self._wake.wait(0.05)
                self._wake.clear()
                now = time.monotonic()
                if now - last_enforce >= 1.0:
                    last_enforce = now
                    self._enforce()
                self._manage_connection()
                self._handle_acks()
                if self.connected:
                    self._handle_commands()
                    self._pump()
                self.spool.compact()
        except Exception as exc:  # never die silently: the stats say why
            self._stats.last_error = f"sink thread failed: {exc!r}"
            _log.exception("MQTT sink thread failed")
        finally:
            self._end_connection(clean=True)

    def _write_loop(self) -> None:
        try:
            while not self._stopping.is_set():
                self._take(block=True)
            self._take(block=False)  # what came in the last moment is spooled too
        except Exception as exc:  # never die silently: the stats say why
            self._stats.last_error = f"spool thread failed: {exc!r}"
            _log.exception("MQTT sink spool thread failed")

    def _take(self, block: bool) -> None:
        rows: list[Row] = []
        with contextlib.suppress(queue.Empty):
            if block:
                rows.append(self._incoming.get(timeout=0.05))
            while True:
                rows.append(self._incoming.get_nowait())
        taken = len(rows)
        if self._unspooled:
            if time.monotonic() < self._spool_retry_at:
                self._unspooled.extend(rows)
                self._handled += taken
                self._trim_unspooled()
                return
            rows = [*self._unspooled, *rows]
            self._unspooled.clear()
        if not rows:
            return
        try:
            first = self.spool.append([(r.time_ns, encode_row(r)) for r in rows])
        except SpoolError as exc:
            self._spool_failed(exc, rows)
            self._handled += taken
            return
        with self._fresh_lock:
            fresh = self._fresh
            fresh.extend((first + i, row) for i, row in enumerate(rows))
            while len(fresh) > 4 * self.window:
                fresh.popleft()
        self._handled += taken
        self._wake.set()

    def _spool_failed(self, exc: SpoolError, rows: list[Row]) -> None:
        if self._stats.last_error != str(exc):
            _log.error("%s; acquisition goes on, rows are kept in memory", exc)
        self._stats.last_error = str(exc)
        self._spool_retry_at = time.monotonic() + 1.0
        self._unspooled.extend(rows)
        self._trim_unspooled()

    def _trim_unspooled(self) -> None:
        while len(self._unspooled) > self._max_unspooled:
            self._unspooled.popleft()
            self._memory_dropped += 1

    def _enforce(self) -> None:
        dropped = self.spool.enforce(wall_ns())
        if dropped:
            _log.warning("spool caps reached: %d oldest rows dropped", dropped)
            self._back = max(self._back, self.spool.head)

    # -- connection ----------------------------------------------------------------------
    def _manage_connection(self) -> None:
        connection = self._connection
        now = time.monotonic()
        if connection is not None:
            if connection.ended.is_set():
                self._note_loss(connection)
                self._end_connection(clean=False)
                self._schedule_retry(connection.refused or "connection lost")
            elif not connection.connected.is_set() and now > connection.deadline:
                self._end_connection(clean=False)
                self._schedule_retry(connection.refused or "no CONNACK in time")
            elif connection.connected.is_set() and now >= self._credentials_until:
                _log.info("credentials expire soon: reconnecting with new ones")
                self._end_connection(clean=True)
                self._next_attempt = now
            return
        if now >= self._next_attempt and not self._stopping.is_set():
            self._connect()

    def _schedule_retry(self, reason: str) -> None:
        self._stats.last_error = reason
        self._broker_index = (self._broker_index + 1) % len(self._brokers)
        delay = self._backoff.failed() if self._broker_index == 0 else 0.05
        self._next_attempt = time.monotonic() + delay

    def _connect(self) -> None:
        from paho.mqtt import client as mqtt
        from paho.mqtt.enums import CallbackAPIVersion

        url, host, port, secure = self._brokers[self._broker_index]
        self._stats.broker = url
        version = mqtt.MQTTv5 if self.protocol == "5" else mqtt.MQTTv311
        client = mqtt.Client(
            CallbackAPIVersion.VERSION2,
            client_id=self.client_id,
            protocol=version,
            clean_session=None if version == mqtt.MQTTv5 else True,
            reconnect_on_failure=False,
        )
        # paho walks all its queued messages on every PUBACK: a short queue keeps that
        # cheap (measured: 100 in flight ~10k msg/s, 1000 ~4k msg/s on loopback).
        client.max_inflight_messages_set(min(self.window, 100))
        client.max_queued_messages_set(0)
        client.connect_timeout = self.connect_timeout
        if secure:
            tls = self.tls or Tls()
            client.tls_set_context(tls.context())
            if tls.insecure:
                client.tls_insecure_set(True)
        if self.username is not None or self._password is not None:
            client.username_pw_set(self.username, self._reveal_password())
        will = self._encoder.will()
        if will is not None:
            client.will_set(will[0], will[1], qos=1, retain=False)
        connection = _Connection(client, url)
        connection.deadline = time.monotonic() + self.connect_timeout
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        client.user_data_set(connection)
        try:
            if version == mqtt.MQTTv5:
                client.connect(host, port, keepalive=self.keepalive, clean_start=True)
            else:
                client.connect(host, port, keepalive=self.keepalive)
        except (OSError, ValueError) as exc:
            with contextlib.suppress(Exception):
                client._sock_close()
            self._schedule_retry(f"cannot connect to {url}: {_describe(exc)}")
            return
        self._connection = connection
        client.loop_start()

    def _reveal_password(self) -> str | None:
        password = self._password
        if password is None:
            self._credentials_until = math.inf
            return None
        if isinstance(password, Secret):
            self._credentials_until = math.inf
            return password.reveal()
        secret, valid_until = password()
        # Reconnect with fresh credentials well before these expire.
        remaining = valid_until - time.time()
        self._credentials_until = time.monotonic() + max(1.0, remaining * 0.8)
        return secret.reveal()

    def _end_connection(self, clean: bool) -> None:
        connection = self._connection
        if connection is None:
            return
        self._connection = None
        client = connection.client
        if clean and connection.connected.is_set():
            goodbye = self._encoder.goodbye()
            if goodbye is not None:
                info = client.publish(goodbye[0], goodbye[1], qos=1)
                with contextlib.suppress(Exception):
                    info.wait_for_publish(1.0)
            client.disconnect()
        else:
            # Stop the network thread without a DISCONNECT: the broker publishes the will.
            with contextlib.suppress(Exception):
                client._sock_close()
        client.loop_stop()
        with contextlib.suppress(Exception):
            client._sock_close()
            client._reset_sockets()
        # Everything not acknowledged goes again, from the spool, on the next connection.
        self._inflight.clear()
        self._parts.clear()
        self._retry.clear()
        self._backlog_flying = 0
        self._flying_bytes = 0
        self._drain_rate = None  # the next connection may be another broker, another link
        self._stats.connected = False
        with contextlib.suppress(queue.Empty):
            while True:
                self._acks.get_nowait()

    # paho's callbacks run on paho's network thread: they only hand over.
    def _on_connect(
        self, client: Any, connection: _Connection, flags: Any, reason: Any, properties: Any
    ) -> None:
        if reason.is_failure:
            connection.refused = f"broker {connection.url} refused the connection: {reason}"
            connection.ended.set()
        else:
            connection.connected.set()
        self._wake.set()

    def _on_disconnect(
        self, client: Any, connection: _Connection, flags: Any, reason: Any, properties: Any
    ) -> None:
        connection.ended.set()
        self._wake.set()

    def _on_publish(
        self, client: Any, connection: _Connection, mid: int, reason: Any, properties: Any
    ) -> None:
        acks = self._acks
        acks.put((connection, mid, int(reason.value), str(reason), time.monotonic()))
        # Wake the sink's thread for a batch of acknowledgements, not for each one (one
        # thread switch per PUBACK costs as much as the publish), unless few are left.
        waiting = acks.qsize()
        if waiting >= 32 or len(self._inflight) - waiting < 32:
            self._wake.set()

    def _on_message(self, client: Any, connection: _Connection, message: Any) -> None:
        self._commands.put((connection, message.topic, bytes(message.payload)))
        self._wake.set()

    # -- on connect, commands -------------------------------------------------------------
    def _connected_now(self, connection: _Connection) -> None:
        """The first pump of a new connection: births, and everything pending is backlog."""
        stats = self._stats
        stats.connects += 1
        if stats.connects > 1:
            stats.reconnects += 1
        self._backoff.succeeded()
        stats.last_error = ""
        # The backlog: what is pending from earlier runs, or from before this connection
        # (the broker was away). Rows spooled while this sink made its very first
        # connection are only a moment late: they go out live.
        self._back = self.spool.head
        # Rows spooled while a session waited are late too: backlog, marked historical.
        if stats.connects == 1 and not connection.held:
            self._back_end = self._live = self._startup_end
        else:
            self._back_end = self._live = self.spool.end
        for message in self._encoder.hello():
            self._publish(connection, message, backlog=False)

    def _handle_commands(self) -> None:
        with contextlib.suppress(queue.Empty):
            while True:
                source, topic, payload = self._commands.get_nowait()
                current = self._connection
                if current is None or source is not current:
                    continue
                for message in self._encoder.command(topic, payload):
                    if current.started:
                        self._publish(current, message, backlog=False)
                self._hand_over_writes()
                if self._encoder.wants_reconnect():
                    _log.info("the session was asked to end: reconnecting")
                    self._end_connection(clean=current.started)
                    self._next_attempt = time.monotonic()
                    return

    def _hand_over_writes(self) -> None:
        for device, values in self._encoder.take_writes():
            if self.on_write is None:
                _log.warning(
                    "a command to write %s on %r ignored: this sink takes no writes",
                    sorted(values),
                    device,
                )
                continue
            try:
                self.on_write(device, values)
            except Exception:  # a writer's failure must not stop publishing
                _log.exception("writing %s on %r failed", sorted(values), device)

    # -- publishing ----------------------------------------------------------------------
    def _pump(self) -> None:
        connection = self._connection
        if connection is None:
            return
        if not connection.subscribed:
            connection.subscribed = True
            for topic in self._encoder.subscriptions():
                connection.client.subscribe(topic, qos=1)
        if not connection.started:
            reason = self._encoder.held()
            if reason:
                connection.held = True
                self._stats.last_error = reason
                return
            connection.started = True
            self._connected_now(connection)
        self._send_retries(connection)
        spool = self.spool
        # Live rows first: they must not wait behind the backlog.
        end = spool.end
        window = self._window_now()
        if self._live < end and len(self._inflight) < window:
            rows = self._live_rows(end)
            if rows:
                for message in self._encoder.messages(rows, historical=False):
                    self._publish(connection, message, backlog=False)
        # Then the backlog, as much as drains in time.
        while (
            self._back < self._back_end
            and self._backlog_flying < min(self.backlog_window, window)
            and len(self._inflight) < window
        ):
            budget = min(self.backlog_window, window) - self._backlog_flying
            budget = min(budget, self._backlog_rows_in_time())
            if budget <= 0:
                break
            entries = spool.read(self._back, budget, stop=self._back_end)
            if not entries:
                self._back = self._back_end
                break
            self._back = entries[-1].seq + 1
            rows = [(e.seq, decode_row(e.payload)) for e in entries]
            self._stats.historical += len(rows)
            before = self._flying_bytes
            for message in self._encoder.messages(rows, historical=True):
                self._publish(connection, message, backlog=True)
            per_row = (self._flying_bytes - before) / len(rows)
            self._row_bytes = (
                per_row if not self._row_bytes else 0.8 * self._row_bytes + 0.2 * per_row
            )

    def _backlog_rows_in_time(self) -> int:
        """Backlog rows that can go now with what is in flight still draining in time.

        One row when nothing of the backlog is in flight (it always moves on); none
        more until a PUBACK has told how fast the link drains. QoS 0 has no PUBACKs to
        measure by: only the count window bounds it.
        """
        if self.max_live_delay is None or self.qos == 0:
            return self.window
        if self._backlog_flying == 0:
            return 1
        rate = self._drain_rate
        if rate is None or not self._row_bytes:
            return 0
        room = rate * self.max_live_delay / 2 - self._flying_bytes
        return int(room / self._row_bytes)

    def _live_rows(self, end: int) -> list[tuple[int, Row]]:
        room = self._window_now() - len(self._inflight)
        rows: list[tuple[int, Row]] = []
        with self._fresh_lock:
            fresh = self._fresh
            while fresh and fresh[0][0] < self._live:
                fresh.popleft()
            while self._live < end and len(rows) < room and fresh and fresh[0][0] == self._live:
                seq, row = fresh.popleft()
                if not self.spool.is_done(seq):
                    rows.append((seq, row))
                self._live += 1
        while self._live < end and len(rows) < room:
            entries = self.spool.read(self._live, room - len(rows), stop=end)
            if not entries:
                self._live = end
                break
            rows.extend((e.seq, decode_row(e.payload)) for e in entries)
            self._live = entries[-1].seq + 1
        return rows

    def _window_now(self) -> int:
        return 1 if self._probing else self.window

    def _publish(self, connection: _Connection, message: Message, backlog: bool) -> None:
        if not message.topic:
            for seq in message.seqs:
                self._part_done(seq, 1)
            return
        info = connection.client.publish(message.topic, message.payload, qos=self.qos)
        self._stats.published += 1
        if not message.seqs:
            return  # births and deaths are not spooled
        if self.qos == 0:
            for seq in message.seqs:
                self._part_done(seq, 1)
            return
        flight = _Flight(message, backlog)
        self._track(flight)
        self._inflight[info.mid] = flight
        if backlog:
            self._backlog_flying += 1
        for seq in message.seqs:
            self._parts[seq] = self._parts.get(seq, 0) + 1

    def _send_retries(self, connection: _Connection) -> None:
        now = time.monotonic()
        while self._retry and self._retry[0][0] <= now:
            _, flight = self._retry.popleft()
            info = connection.client.publish(
                flight.message.topic, flight.message.payload, qos=self.qos
            )
            self._track(flight)
            self._inflight[info.mid] = flight
            if flight.backlog:
                self._backlog_flying += 1

    def _track(self, flight: _Flight) -> None:
        # A PUBLISH's fixed header, topic length, packet id and properties: ~8 bytes.
        flight.size = len(flight.message.topic) + len(flight.message.payload) + 8
        self._flying_bytes += flight.size
        flight.ahead = self._flying_bytes
        flight.sent = time.monotonic()

    def _drained_in(self, flight: _Flight, acked_at: float) -> None:
        """Learn the drain rate: the bytes ahead of this message got through in this time."""
        self._flying_bytes -= flight.size
        took = max(acked_at - flight.sent, 1e-4)
        sample = flight.ahead / took
        rate = self._drain_rate
        self._drain_rate = sample if rate is None else rate + _RATE_WEIGHT * (sample - rate)

    def _handle_acks(self) -> None:
        with contextlib.suppress(queue.Empty):
            while True:
                connection, mid, code, reason, acked_at = self._acks.get_nowait()
                current = self._connection
                if current is None or connection is not current:
                    continue
                flight = self._inflight.pop(mid, None)
                if flight is None:
                    continue
                self._drained_in(flight, acked_at)
                if flight.backlog:
                    self._backlog_flying -= 1
                if code >= 0x80:
                    self._refused(flight, reason)
                    continue
                current.acknowledged += 1
                if self._probing:
                    self._probe_acks += 1
                    if self._probe_acks >= _PROBE_ACKS:
                        self._probing = False
                for seq in flight.message.seqs:
                    self._part_done(seq, 1)

    def _part_done(self, seq: int, count: int) -> None:
        remaining = self._parts.get(seq, count) - count
        if remaining > 0:
            self._parts[seq] = remaining
            return
        self._parts.pop(seq, None)
        if self.spool.ack(seq):
            self._stats.acknowledged += 1

    def _refused(self, flight: _Flight, reason: str) -> None:
        self._stats.refused += 1
        if flight.attempts >= self.max_attempts:
            self._quarantine(flight, f"refused {flight.attempts} times: {reason}")
            return
        flight.attempts += 1
        self._retry.append((time.monotonic() + 0.2 * flight.attempts, flight))

    def _quarantine(self, flight: _Flight, reason: str) -> None:
        message = flight.message
        name = message.topic.replace("/", "_")[-80:]
        path = self.spool.quarantine(message.seqs[0], name, message.payload, reason)
        self._stats.last_error = f"the broker {reason} on {message.topic!r}; it is in {path}"
        _log.error("%s", self._stats.last_error)
        for seq in message.seqs:
            self._part_done(seq, 1)

    def _note_loss(self, connection: _Connection) -> None:
        """A connection dropped; if it had messages in flight and none went through, suspect them.

        A broker that drops the connection instead of refusing with a reason code (an
        MQTT 3.1.1 broker, a packet over its size limit) would otherwise get the same
        message again forever. After two such drops the sink sends one row at a time;
        a row that takes the connection down ``max_attempts`` times alone is quarantined.
        """
        if not connection.started or not self._inflight or connection.acknowledged:
            self._stalls = 0
            return
        self._stalls += 1
        if not self._probing:
            if self._stalls >= 2:
                self._probing = True
                self._probe_acks = 0
                _log.warning(
                    "the broker dropped the connection %d times with messages in flight and "
                    "none acknowledged: sending one row at a time to find the one it refuses",
                    self._stalls,
                )
            return
        rows = {flight.message.seqs for flight in self._inflight.values()}
        if len(rows) != 1:
            return
        (key,) = rows
        attempts = self._suspects.get(key, 0) + 1
        if attempts < self.max_attempts:
            self._suspects[key] = attempts
            return
        self._suspects.pop(key, None)
        for flight in list(self._inflight.values()):
            self._quarantine(
                flight, f"dropped the connection each of {attempts} times it was sent a message"
            )
        self._inflight.clear()


def _broker(url: str, tls: Tls | bool | None) -> tuple[str, str, int, bool]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("mqtt", "mqtts", "tcp", "ssl"):
        raise ConfigurationError(f"broker URL {url!r} must start with mqtt:// or mqtts://")
    secure = scheme in ("mqtts", "ssl") or bool(tls)
    if not parts.hostname:
        raise ConfigurationError(f"broker URL {url!r} has no host")
    if parts.password:
        raise ConfigurationError(
            f"broker URL for {parts.hostname} holds a password; pass password=bf.secret(...)"
        )
    try:
        port = parts.port or (8883 if secure else 1883)
    except ValueError:
        raise ConfigurationError(f"broker URL {url!r} has an invalid port") from None
    shown = f"{'mqtts' if secure else 'mqtt'}://{parts.hostname}:{port}"
    return shown, parts.hostname, port, secure


def _describe(exc: BaseException) -> str:
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"the broker's certificate was refused: {exc.verify_message or exc}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS failed: {exc.reason or exc}"
    return str(exc) or type(exc).__name__


def _dtype_of(value: Any) -> str:
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int):
        return "int64"
    if isinstance(value, float):
        return "float64"
    return "string"

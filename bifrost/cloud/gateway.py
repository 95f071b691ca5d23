"""The edge gateway: devices, tags, intervals and sinks from one YAML file, run as a service.

``bifrost gateway config.yaml`` (or ``python -m bifrost.cloud.gateway config.yaml``)
validates the file (errors name the line and the key, exit status 2), then records
every device on its interval and forwards each row to its sinks, which spool to disk
and publish. It runs until SIGTERM or SIGINT, then stops the recordings, flushes the
sinks for up to ``flush_timeout`` and exits 0; what is not acknowledged by then stays
in the spool for the next start. A status line is logged every ``status_interval``.

A device that cannot be reached is retried with backoff; a broker that is away only
makes the spool grow (within its caps). Recordings are rotated every
``rotate_interval`` so that a gateway running for months holds at most that much in
memory (its rows are on their way in the spools).

See ``docs/gateway.md`` and ``docs/gateway.example.yaml``.
"""

from __future__ import annotations

import logging
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator

from bifrost.backoff import Backoff
from bifrost.exceptions import BifrostError, ConfigurationError
from bifrost.protocols.options import explain_errors, load_yaml
from bifrost.recording.timing import seconds

__all__ = [
    "DeviceConfig",
    "Gateway",
    "GatewayConfig",
    "SinkConfig",
    "TlsConfig",
    "load_config",
    "main",
]

_log = logging.getLogger("bifrost.gateway")


def duration(value: Any, what: str) -> float:
    """Seconds from ``"100ms"``, ``"1min"`` or a number."""
    return seconds(value, what)


class TlsConfig(BaseModel):
    """TLS of a sink: CA, client certificate and key (paths relative to the file)."""

    model_config = ConfigDict(extra="forbid")
    ca: str | None = None
    cert: str | None = None
    key: str | None = None
    key_password: str | None = None
    alpn: list[str] = Field(default_factory=list)
    insecure: bool = False


class SinkConfig(BaseModel):
    """One sink: a broker (or several, failing over) and how to publish to it."""

    model_config = ConfigDict(extra="forbid")
    url: str | list[str]
    topic: str = "plant/{device}/{tag}"
    payload: Literal["json", "sparkplug"] = "json"
    qos: Literal[0, 1] = 1
    protocol: Literal["5", "3.1.1"] = "5"
    client_id: str | None = None
    username: str | None = None
    password: str | None = None
    tls: TlsConfig | bool | None = None
    max_spool_bytes: int = Field(default=1 << 30, gt=0)
    max_spool_age: float | None = None
    group: str = "bifrost"
    node: str | None = None
    primary_host: str | None = None

    @field_validator("max_spool_age", mode="before")
    @classmethod
    def _age(cls, value: Any) -> Any:
        return None if value is None else duration(value, "max_spool_age")

    @field_validator("password")
    @classmethod
    def _reference(cls, value: str | None) -> str | None:
        if value is not None and not value.startswith(("env:", "keyring:")):
            raise ValueError(
                "a password is a secret reference, 'env:NAME' or 'keyring:SERVICE/USER', "
                "never the password itself"
            )
        return value


class DeviceConfig(BaseModel):
    """One device: its URL, tag table, what to record and where to send it."""

    model_config = ConfigDict(extra="forbid")
    url: str
    tags: str | list[dict[str, Any]] | dict[str, Any] | None = None
    read: list[str] | None = None
    interval: float = 1.0
    mode: Literal["poll", "subscribe"] = "poll"
    sinks: list[str] | None = None
    timeout: float = Field(default=3.0, gt=0)
    # Sparkplug DCMDs write to the device only when this says so.
    writable: bool = False
    options: dict[str, Any] = Field(default_factory=dict)
    # Modbus device workarounds: a quirks file (relative to this file) or its keys inline.
    quirks: str | dict[str, Any] | None = None

    @field_validator("interval", mode="before")
    @classmethod
    def _interval(cls, value: Any) -> float:
        return duration(value, "interval")

    @field_validator("quirks")
    @classmethod
    def _quirks(cls, value: Any) -> Any:
        if isinstance(value, dict):
            from bifrost.protocols.modbus.quirks import Quirks

            Quirks.from_mapping(value, "quirks")  # its ConfigurationError is a ValueError
        return value


class GatewayConfig(BaseModel):
    """The whole file: the spool folder, the sinks, the devices, the timings."""

    model_config = ConfigDict(extra="forbid")
    spool: str
    devices: dict[str, DeviceConfig] = Field(min_length=1)
    sinks: dict[str, SinkConfig] = Field(min_length=1)
    status_interval: float = 60.0
    flush_timeout: float = 10.0
    rotate_interval: float = 3600.0
    _base: Path = PrivateAttr(default_factory=Path.cwd)

    @field_validator("status_interval", "flush_timeout", "rotate_interval", mode="before")
    @classmethod
    def _durations(cls, value: Any) -> float:
        return duration(value, "duration")


# -- loading ------------------------------------------------------------------------------
def load_config(source: str | os.PathLike[str] | Mapping[str, Any]) -> GatewayConfig:
    """Read and validate a gateway configuration (a YAML file or a mapping).

    Raises
    ------
    ConfigurationError
        Naming the file, the line and the key of each problem.
    """
    lines: dict[tuple[Any, ...], int] = {}
    where = "<config>"
    base = Path.cwd()
    if isinstance(source, Mapping):
        data: Any = dict(source)
    else:
        path = Path(source)
        where, base = str(path), path.resolve().parent
        data, lines = load_yaml(path, "gateway config")
    if not isinstance(data, Mapping):
        raise ConfigurationError(f"{where}: expected a mapping with spool, sinks and devices")
    try:
        config = GatewayConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigurationError(_explain(exc, where, lines)) from None
    except ConfigurationError as exc:  # from a validator (a bad duration)
        raise ConfigurationError(f"{where}: {exc}") from None
    for name, device in config.devices.items():
        for sink in device.sinks or []:
            if sink not in config.sinks:
                line = lines.get(("devices", name, "sinks"), 0)
                raise ConfigurationError(
                    f"{where}, line {line}: devices.{name}.sinks: no sink named {sink!r} "
                    f"(sinks: {', '.join(config.sinks)})"
                )
    config._base = base  # relative paths (tag files, spool) are relative to the file
    return config


def _explain(exc: Any, where: str, lines: dict[tuple[Any, ...], int]) -> str:
    problems = explain_errors(exc.errors(), where, lines)
    return f"{where}: invalid gateway config:\n  " + "\n  ".join(problems)


# -- running ------------------------------------------------------------------------------
class _Named:
    """A sink seen by one device: its rows carry the device's name from the config."""

    def __init__(self, sink: Any, device: str) -> None:
        self.sink = sink
        self.device = device

    def feed(self, source: str, names: Any, dtypes: Any, *, historical: bool = False) -> Any:
        return self.sink.feed(self.device, names, dtypes, historical=historical)


class _Device(threading.Thread):
    """Connects to one device (retrying with backoff) and keeps its recording going."""

    def __init__(self, gateway: Gateway, name: str, config: DeviceConfig, sinks: list[Any]) -> None:
        super().__init__(name=f"bifrost-gateway-{name}", daemon=True)
        self.gateway = gateway
        self.device = name
        self.config = config
        self.sinks = sinks
        self.state = "starting"
        self.rows = 0
        self.error = ""
        self._stop_event = threading.Event()
        self._recording: Any = None
        self._writes: queue.SimpleQueue[dict[str, Any]] = queue.SimpleQueue()

    def run(self) -> None:
        from bifrost.connection import connect

        config = self.config
        backoff = Backoff(first=0.5, ceiling=30.0)
        tags = _tags(config.tags, self.gateway.base)
        options = dict(config.options)
        if isinstance(config.quirks, str):
            options["quirks"] = str(self.gateway.base / config.quirks)  # an absolute one stays
        elif config.quirks is not None:
            options["quirks"] = config.quirks
        while not self._stop_event.is_set():
            try:
                with connect(
                    config.url,
                    tags=tags,
                    timeout=config.timeout,
                    writable=config.writable,
                    **options,
                ) as plc:
                    backoff.succeeded()
                    self.error = ""
                    self._record(plc)
            except BifrostError as exc:
                self.error = str(exc)
                self.state = "unreachable"
                _log.warning("device %s: %s", self.device, exc)
                self._stop_event.wait(backoff.failed())

    def _record(self, plc: Any) -> None:
        config = self.config
        names = config.read or plc.tags.names
        while not self._stop_event.is_set():
            recording = plc.record(
                names,
                interval=config.interval,
                mode=config.mode,
                background=True,
                sinks=self.sinks,
            )
            self._recording = recording
            self.state = "recording"
            # Rotate: a fresh recording every rotate_interval keeps memory bounded.
            rotate_at = time.monotonic() + self.gateway.config.rotate_interval
            while not self._stop_event.is_set() and time.monotonic() < rotate_at:
                self._write_waiting(plc, min(0.2, max(0.0, rotate_at - time.monotonic())))
            recording.stop()
            recording.wait(30)
            self.rows += len(recording)
            self._recording = None

    def write(self, values: dict[str, Any]) -> None:
        """Queue a write (a Sparkplug DCMD) for this device's thread."""
        self._writes.put(values)

    def _write_waiting(self, plc: Any, timeout: float) -> None:
        try:
            values = self._writes.get(timeout=timeout)
        except queue.Empty:
            return
        if not self.config.writable:
            _log.warning(
                "device %s: a write of %s refused: the gateway config does not make it "
                "writable (writable: true)",
                self.device,
                sorted(values),
            )
            return
        try:
            plc.write(values)
            _log.info("device %s: wrote %s", self.device, values)
        except BifrostError as exc:
            _log.warning("device %s: write of %s failed: %s", self.device, sorted(values), exc)

    @property
    def recorded(self) -> int:
        recording = self._recording
        return self.rows + (len(recording) if recording is not None else 0)

    def stop(self) -> None:
        self._stop_event.set()
        recording = self._recording
        if recording is not None:
            recording.stop()


class Gateway:
    """Record devices and forward them to sinks, as a configuration file says.

    Parameters
    ----------
    config
        A YAML file, a mapping, or a loaded configuration (:func:`load_config`).
    """

    def __init__(self, config: str | os.PathLike[str] | Mapping[str, Any] | GatewayConfig) -> None:
        if not isinstance(config, GatewayConfig):
            config = load_config(config)
        self.config = config
        self.base: Path = config._base
        self.sinks: dict[str, Any] = {}
        self.devices: dict[str, _Device] = {}
        self._stop = threading.Event()
        self._started = False

    def start(self) -> None:
        """Open the sinks and start recording every device (returns at once)."""
        from bifrost.cloud.sinks import MqttSink, Tls
        from bifrost.secrets import secret

        if self._started:
            return
        self._started = True
        spool = self._path(self.config.spool)
        for name, sink in self.config.sinks.items():
            tls: Any = sink.tls
            if tls is not None and not isinstance(tls, bool):
                tls = Tls(
                    ca=self._maybe_path(tls.ca),
                    cert=self._maybe_path(tls.cert),
                    key=self._maybe_path(tls.key),
                    key_password=None if tls.key_password is None else secret(tls.key_password),
                    alpn=tuple(tls.alpn),
                    insecure=tls.insecure,
                )
            # A live value may be late by one publish interval of the devices it carries.
            intervals = [
                d.interval
                for d in self.config.devices.values()
                if d.interval > 0 and (d.sinks is None or name in d.sinks)
            ]
            self.sinks[name] = MqttSink(
                sink.url,
                topic=sink.topic,
                payload=sink.payload,
                qos=sink.qos,
                protocol=sink.protocol,
                tls=tls,
                username=sink.username,
                password=None if sink.password is None else secret(sink.password),
                client_id=sink.client_id,
                spool=spool / name,
                max_spool_bytes=sink.max_spool_bytes,
                max_spool_age=sink.max_spool_age,
                group=sink.group,
                node=sink.node,
                primary_host=sink.primary_host,
                on_write=self._write,
                max_live_delay=min(intervals, default=0.1),
            )
        for name, device in self.config.devices.items():
            targets = device.sinks if device.sinks is not None else list(self.sinks)
            thread = _Device(self, name, device, [_Named(self.sinks[s], name) for s in targets])
            self.devices[name] = thread
            thread.start()

    def _write(self, device: str, values: dict[str, Any]) -> None:
        thread = self.devices.get(device)
        if thread is None:
            _log.warning("a write for unknown device %r ignored", device)
            return
        thread.write(values)

    def _path(self, text: str) -> Path:
        path = Path(text).expanduser()
        return path if path.is_absolute() else self.base / path

    def _maybe_path(self, text: str | None) -> Path | None:
        return None if text is None else self._path(text)

    def status(self) -> str:
        """One line: each device's state and rows, each sink's connection and spool."""
        parts = []
        for name, device in self.devices.items():
            parts.append(f"{name}: {device.state}, {device.recorded} rows")
        for name, sink in self.sinks.items():
            stats = sink.stats
            state = "connected" if stats.connected else "disconnected"
            parts.append(
                f"sink {name}: {state}, {stats.acknowledged} acknowledged, {stats.pending} "
                f"pending, {stats.dropped} dropped, {stats.quarantined} quarantined"
                + (f" ({stats.last_error})" if stats.last_error and not stats.connected else "")
            )
        return "; ".join(parts)

    def run(self) -> None:
        """Start, then run until :meth:`stop` (or SIGTERM/SIGINT via :func:`main`)."""
        self.start()
        _log.info(
            "gateway started: %d devices, %d sinks (spool %s)",
            len(self.devices),
            len(self.sinks),
            self._path(self.config.spool),
        )
        interval = self.config.status_interval
        next_status = time.monotonic() + interval
        while not self._stop.wait(max(0.0, next_status - time.monotonic())):
            _log.info("%s", self.status())
            next_status += interval
        self.close()

    def stop(self) -> None:
        """Ask :meth:`run` to end (from a signal handler or another thread)."""
        self._stop.set()

    def close(self) -> None:
        """Stop the recordings, flush the sinks for up to ``flush_timeout``, close them."""
        for device in self.devices.values():
            device.stop()
        for device in self.devices.values():
            device.join(30)
        deadline = time.monotonic() + self.config.flush_timeout
        for sink in self.sinks.values():
            sink.close(timeout=max(0.0, deadline - time.monotonic()))
        _log.info("stopped: %s", self.status())

    def __enter__(self) -> Gateway:
        self.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _tags(spec: Any, base: Path) -> Any:
    from bifrost.tags import TagTable

    if spec is None:
        return None
    if isinstance(spec, str):
        path = Path(spec)
        return TagTable.load(path if path.is_absolute() else base / path)
    if isinstance(spec, Mapping):
        spec = [
            {"name": k, **(v if isinstance(v, Mapping) else {"address": v})}
            for k, v in spec.items()
        ]
    return TagTable.from_records(spec, "gateway config")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the gateway: ``main(["config.yaml"])``; returns the exit status.

    0 after a clean stop (SIGTERM, SIGINT), 2 for a bad configuration or arguments.
    """
    import argparse

    parser = argparse.ArgumentParser(
        prog="bifrost gateway", description="Record devices and forward them to MQTT sinks."
    )
    parser.add_argument("config", help="the gateway's YAML configuration")
    parser.add_argument("--check", action="store_true", help="validate the config and exit")
    parser.add_argument("--log-level", default="INFO", help="DEBUG, INFO, WARNING ...")
    try:
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    except SystemExit as exc:
        return int(exc.code or 0)
    logging.basicConfig(
        level=args.log_level.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        config = load_config(args.config)
    except ConfigurationError as exc:
        print(f"bifrost gateway: {exc}", file=sys.stderr)
        return 2
    if args.check:
        print(f"{args.config}: OK ({len(config.devices)} devices, {len(config.sinks)} sinks)")
        return 0
    gateway = Gateway(config)

    def on_signal(number: int, frame: Any) -> None:
        _log.info("%s: stopping", signal.Signals(number).name)
        gateway.stop()

    previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        gateway.run()
    except ConfigurationError as exc:
        print(f"bifrost gateway: {exc}", file=sys.stderr)
        gateway.close()
        return 2
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Modbus connection settings from a URL's query and keyword arguments."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from bifrost.exceptions import ConfigurationError
from bifrost.protocols.options import TABLE_QUIRKS, convert, flag, query

__all__ = [
    "MAX_BITS",
    "MAX_BUSY_RETRIES",
    "MAX_PAUSE_S",
    "MAX_REGISTERS",
    "ModbusOptions",
    "check_unit",
    "pause_seconds",
    "unreadable_ranges",
]

PARITIES = {"N", "E", "O", "M", "S"}
MAX_PIPELINE = 64
# The protocol's limits per read request (registers for FC 3/4, bits for FC 1/2).
MAX_REGISTERS = 125
MAX_BITS = 2000
MAX_PAUSE_S = 60.0
MAX_BUSY_RETRIES = 20
_DURATION = re.compile(r"^\s*(\d+(?:\.\d*)?|\.\d+)\s*(ms|s)?\s*$")


@dataclass(frozen=True, slots=True)
class ModbusOptions:
    """Connection settings, from the URL and keyword arguments."""

    host: str = "127.0.0.1"
    port: int = 502
    serial_port: str | None = None
    baudrate: int = 19200
    parity: str = "N"
    stopbits: int = 1
    bytesize: int = 8
    unit: int = 1
    timeout: float = 3.0
    max_gap_registers: int = 16
    max_gap_bits: int = 128
    allow_any_unit: bool = False
    busy_retries: int = 2  # times a request answered "busy" (exception 6) is sent again
    busy_backoff: float = 0.05  # seconds before the first retry; doubles with each
    # Requests of one read in flight at once on a TCP connection (1: one at a time).
    # Opt-in: many devices and gateways answer only one request at a time correctly.
    pipeline: int = 1
    # Workarounds for devices that break the rules (see bifrost.protocols.modbus.quirks).
    max_registers_per_request: int = MAX_REGISTERS
    max_bits_per_request: int = MAX_BITS
    one_request_per_tag: bool = False
    pause_between_requests: float = 0.0  # seconds from one reply to the next request
    pause_after_connect: float = 0.0  # seconds between opening and the first request
    close_after_each_cycle: bool = False  # a new connection (or port opening) per read
    quirks: str | None = None  # the quirks file the options came from, for info()
    # (table, first, last) address ranges the device refuses (from plc.scan): no
    # merged request reaches into them.
    unreadable: tuple[tuple[str, int, int], ...] = ()

    @property
    def endpoint(self) -> str:
        """``host:port`` for TCP, the serial device for RTU."""
        return self.serial_port if self.serial_port else f"{self.host}:{self.port}"

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> ModbusOptions:
        """Parse ``modbus://host:port?unit=1`` or ``modbus+rtu:///dev/ttyUSB0?baudrate=...``.

        Keyword arguments override query parameters.
        """
        parts = urlsplit(url)
        settings: dict[str, Any] = {**query(parts.query), **kwargs}
        values: dict[str, Any] = {}
        table = settings.pop(TABLE_QUIRKS, None)
        source = settings.pop("quirks", None)
        if table is not None or source is not None:
            from bifrost.protocols.modbus import quirks

            # Explicit options (keywords, the URL's query) win over the quirks file's,
            # which win over the tag table's.
            if source is not None:
                settings = {**quirks.load(source).options(), **settings}
                if not isinstance(source, quirks.Quirks | dict):
                    values["quirks"] = str(source)
            if table is not None:
                settings = {**quirks.Quirks.from_table(table).options(), **settings}
        gap = settings.pop("merge_gap", None)
        if gap is not None:
            # One knob for both tables; max_gap_registers/max_gap_bits still win.
            gap = convert({"merge_gap": gap}, {"merge_gap": int}, "Modbus")["merge_gap"]
            _check_range("merge_gap", gap, 0, MAX_REGISTERS)
            settings.setdefault("max_gap_registers", gap)
            settings.setdefault("max_gap_bits", gap)
        try:
            if parts.scheme in ("modbus", "modbus+tcp"):
                values["host"] = parts.hostname or "127.0.0.1"
                values["port"] = parts.port if parts.port is not None else 502
            elif parts.scheme == "modbus+rtu":
                device = (parts.netloc + parts.path) if parts.netloc else parts.path
                if not device:
                    raise ConfigurationError(f"{url!r}: a Modbus RTU URL needs a serial device")
                values["serial_port"] = device
            else:
                raise ConfigurationError(f"{url!r} is not a modbus:// or modbus+rtu:// URL")
        except ValueError as exc:
            if isinstance(exc, ConfigurationError):
                raise
            raise ConfigurationError(f"{url!r}: {exc}") from None
        converters: dict[str, Any] = {
            "unit": int,
            "baudrate": int,
            "stopbits": int,
            "bytesize": int,
            "timeout": float,
            "max_gap_registers": int,
            "max_gap_bits": int,
            "parity": lambda v: str(v).upper(),
            "allow_any_unit": flag,
            "busy_retries": int,
            "busy_backoff": lambda v: pause_seconds(v, "busy_backoff"),
            "pipeline": int,
            "max_registers_per_request": int,
            "max_bits_per_request": int,
            "one_request_per_tag": flag,
            "pause_between_requests": lambda v: pause_seconds(v, "pause_between_requests"),
            "pause_after_connect": lambda v: pause_seconds(v, "pause_after_connect"),
            "close_after_each_cycle": flag,
            "unreadable": unreadable_ranges,
        }
        values.update(convert(settings, converters, "Modbus", extra_known=("merge_gap", "quirks")))
        options = cls(**values)
        options.validate()
        return options

    def validate(self) -> None:
        """Raise ConfigurationError for values no device accepts."""
        check_unit(self.unit, self.allow_any_unit)
        if not self.timeout > 0:
            raise ConfigurationError(f"timeout must be positive, got {self.timeout}")
        if self.parity not in PARITIES:
            raise ConfigurationError(f"parity must be one of N, E, O, got {self.parity!r}")
        if not 0 < self.port < 65536:
            raise ConfigurationError(f"port {self.port} is outside 1-65535")
        if self.max_gap_registers < 0 or self.max_gap_bits < 0:
            raise ConfigurationError("max_gap_registers and max_gap_bits must be >= 0")
        _check_range("busy_retries", self.busy_retries, 0, MAX_BUSY_RETRIES)
        _check_range("max_registers_per_request", self.max_registers_per_request, 1, MAX_REGISTERS)
        _check_range("max_bits_per_request", self.max_bits_per_request, 1, MAX_BITS)
        for name in ("pause_between_requests", "pause_after_connect", "busy_backoff"):
            pause_seconds(getattr(self, name), name)
        if isinstance(self.pipeline, bool) or not 1 <= self.pipeline <= MAX_PIPELINE:
            raise ConfigurationError(
                f"pipeline must be 1-{MAX_PIPELINE} requests in flight, got {self.pipeline!r}"
            )
        if self.pipeline > 1 and self.serial_port:
            raise ConfigurationError(
                "pipeline= is for Modbus TCP; a serial line carries one request at a time"
            )
        if self.pipeline > 1 and self.pause_between_requests:
            raise ConfigurationError(
                "pause_between_requests needs one request at a time; drop pipeline= or the pause"
            )

    @property
    def paced(self) -> bool:
        """Whether reads need the slow path: pauses or a new connection per cycle."""
        return bool(
            self.pause_between_requests or self.pause_after_connect or self.close_after_each_cycle
        )


def unreadable_ranges(value: Any) -> tuple[tuple[str, int, int], ...]:
    """``{"hr": [[first, last], ...], ...}`` (inclusive, as a quirks file has them) as triples.

    Sorted per table, overlapping ranges joined.
    """
    if isinstance(value, tuple) and all(isinstance(v, tuple) and len(v) == 3 for v in value):
        value = _by_table(value)
    if not isinstance(value, Mapping):
        raise ConfigurationError(
            f"unreadable={value!r}: expected a mapping of table to [first, last] ranges, "
            "e.g. {'hr': [[2000, 2999]]}"
        )
    triples: list[tuple[str, int, int]] = []
    for table, ranges in value.items():
        if table not in ("co", "di", "hr", "ir"):
            raise ConfigurationError(
                f"unreadable: unknown Modbus table {table!r}; use co, di, hr, ir"
            )
        joined: list[list[int]] = []
        for item in sorted(_range(table, r) for r in ranges):
            if joined and item[0] <= joined[-1][1] + 1:
                joined[-1][1] = max(joined[-1][1], item[1])
            else:
                joined.append(list(item))
        triples.extend((table, first, last) for first, last in joined)
    return tuple(triples)


def _by_table(triples: tuple[tuple[str, int, int], ...]) -> dict[str, list[tuple[int, int]]]:
    tables: dict[str, list[tuple[int, int]]] = {}
    for table, first, last in triples:
        tables.setdefault(table, []).append((first, last))
    return tables


def _range(table: str, item: Any) -> tuple[int, int]:
    try:
        first, last = item
    except (TypeError, ValueError):
        raise ConfigurationError(
            f"unreadable {table}: {item!r} is not a [first, last] address range"
        ) from None
    for number in (first, last):
        if isinstance(number, bool) or not isinstance(number, int) or not 0 <= number <= 65535:
            raise ConfigurationError(
                f"unreadable {table}: {item!r} needs addresses 0-65535 as whole numbers"
            )
    if last < first:
        raise ConfigurationError(f"unreadable {table}: {item!r} ends before it starts")
    return first, last


def pause_seconds(value: Any, name: str) -> float:
    """Seconds from a number or ``"20ms"``/``"1.5s"``; 0 means no pause; at most MAX_PAUSE_S."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        result = float(value)
    else:
        match = _DURATION.match(value) if isinstance(value, str) else None
        if match is None:
            raise ConfigurationError(
                f"{name}={value!r} is not a duration; use seconds or e.g. '20ms', '1.5s' "
                f"(accepted range 0-{MAX_PAUSE_S:g} s)"
            )
        number, unit = match.groups()
        result = float(number) / (1000.0 if unit == "ms" else 1.0)
    if not 0 <= result <= MAX_PAUSE_S:
        raise ConfigurationError(
            f"{name}={value!r} is outside the accepted range 0-{MAX_PAUSE_S:g} s"
        )
    return result


def _check_range(name: str, value: Any, low: int, high: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ConfigurationError(f"{name}={value!r} is outside the accepted range {low}-{high}")


def check_unit(unit: int, allow_any: bool) -> None:
    """Unit ids 1-247 address devices; 0 is broadcast and 248-255 are reserved."""
    if not isinstance(unit, int) or not 0 <= unit <= 255:
        raise ConfigurationError(f"Modbus unit id {unit!r} is outside 0-255")
    if not allow_any and not 1 <= unit <= 247:
        raise ConfigurationError(
            f"Modbus unit id {unit} is outside 1-247 (0 is broadcast, 248-255 reserved); "
            "pass allow_any_unit=True if your device really uses it"
        )

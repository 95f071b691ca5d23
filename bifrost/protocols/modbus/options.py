"""Modbus connection settings from a URL's query and keyword arguments."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from bifrost.exceptions import ConfigurationError
from bifrost.protocols.options import convert, flag, query

__all__ = ["ModbusOptions", "check_unit"]

PARITIES = {"N", "E", "O", "M", "S"}
MAX_PIPELINE = 64


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
    # Requests of one read in flight at once on a TCP connection (1: one at a time).
    # Opt-in: many devices and gateways answer only one request at a time correctly.
    pipeline: int = 1

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
            "pipeline": int,
        }
        values.update(convert(settings, converters, "Modbus"))
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
        if self.busy_retries < 0:
            raise ConfigurationError(f"busy_retries must be >= 0, got {self.busy_retries}")
        if isinstance(self.pipeline, bool) or not 1 <= self.pipeline <= MAX_PIPELINE:
            raise ConfigurationError(
                f"pipeline must be 1-{MAX_PIPELINE} requests in flight, got {self.pipeline!r}"
            )
        if self.pipeline > 1 and self.serial_port:
            raise ConfigurationError(
                "pipeline= is for Modbus TCP; a serial line carries one request at a time"
            )


def check_unit(unit: int, allow_any: bool) -> None:
    """Unit ids 1-247 address devices; 0 is broadcast and 248-255 are reserved."""
    if not isinstance(unit, int) or not 0 <= unit <= 255:
        raise ConfigurationError(f"Modbus unit id {unit!r} is outside 0-255")
    if not allow_any and not 1 <= unit <= 247:
        raise ConfigurationError(
            f"Modbus unit id {unit} is outside 1-247 (0 is broadcast, 248-255 reserved); "
            "pass allow_any_unit=True if your device really uses it"
        )

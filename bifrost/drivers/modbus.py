"""Modbus TCP and RTU through pymodbus' asyncio clients.

Reads are planned once per tag set: tags are grouped by unit id and table, sorted,
merged across small gaps and split at 125 registers / 2000 bits; the register images of
all requests are concatenated and decoded per (type, order) group with one NumPy step.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, cast
from urllib.parse import urlsplit

import numpy as np
import numpy.typing as npt

from bifrost import codec
from bifrost.addresses.modbus import ModbusAddress, parse_modbus_address
from bifrost.drivers import _options
from bifrost.drivers._modbus_io import ModbusWorker
from bifrost.drivers.base import Driver, ReadResult
from bifrost.exceptions import (
    AddressError,
    BifrostError,
    ConfigurationError,
    ProtocolError,
    WriteNotAllowed,
)
from bifrost.model import ByteOrder, DataType, Quality, Tag
from bifrost.planning import Item, Span, coalesce

__all__ = ["EXCEPTION_NAMES", "ModbusDriver", "ModbusOptions"]

logging.getLogger("pymodbus").setLevel(logging.CRITICAL)

MAX_REGISTERS = 125
MAX_BITS = 2000
EXCEPTION_NAMES = {
    1: "ILLEGAL FUNCTION",
    2: "ILLEGAL DATA ADDRESS",
    3: "ILLEGAL DATA VALUE",
    4: "SERVER DEVICE FAILURE",
    5: "ACKNOWLEDGE",
    6: "SERVER DEVICE BUSY",
    8: "MEMORY PARITY ERROR",
    10: "GATEWAY PATH UNAVAILABLE",
    11: "GATEWAY TARGET DEVICE FAILED TO RESPOND",
}
_READ_FUNCTIONS = {
    "co": "read_coils",
    "di": "read_discrete_inputs",
    "ir": "read_input_registers",
    "hr": "read_holding_registers",
}
_PARITIES = {"N", "E", "O", "M", "S"}


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
        settings: dict[str, Any] = {**_options.query(parts.query), **kwargs}
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
            "allow_any_unit": _options.flag,
        }
        values.update(_options.convert(settings, converters, "Modbus"))
        options = cls(**values)
        options.validate()
        return options

    def validate(self) -> None:
        """Raise ConfigurationError for values no device accepts."""
        check_unit(self.unit, self.allow_any_unit)
        if not self.timeout > 0:
            raise ConfigurationError(f"timeout must be positive, got {self.timeout}")
        if self.parity not in _PARITIES:
            raise ConfigurationError(f"parity must be one of N, E, O, got {self.parity!r}")
        if not 0 < self.port < 65536:
            raise ConfigurationError(f"port {self.port} is outside 1-65535")
        if self.max_gap_registers < 0 or self.max_gap_bits < 0:
            raise ConfigurationError("max_gap_registers and max_gap_bits must be >= 0")


def check_unit(unit: int, allow_any: bool) -> None:
    """Unit ids 1-247 address devices; 0 is broadcast and 248-255 are reserved."""
    if not isinstance(unit, int) or not 0 <= unit <= 255:
        raise ConfigurationError(f"Modbus unit id {unit!r} is outside 0-255")
    if not allow_any and not 1 <= unit <= 247:
        raise ConfigurationError(
            f"Modbus unit id {unit} is outside 1-247 (0 is broadcast, 248-255 reserved); "
            "pass allow_any_unit=True if your device really uses it"
        )


@dataclass(frozen=True, slots=True)
class _Group:
    """Tags decoded together: one type and order, gathered from one image."""

    dtype: DataType
    order: ByteOrder
    length: int
    bits: bool
    positions: npt.NDArray[np.intp]
    starts: npt.NDArray[np.intp]
    scale: npt.NDArray[np.float64] | None
    offset: npt.NDArray[np.float64] | None


@dataclass(frozen=True, slots=True)
class _ReadPlan:
    tags: tuple[Tag, ...]
    addresses: tuple[ModbusAddress, ...]
    spans: tuple[Span, ...]
    span_base: tuple[int, ...]  # where each span's data starts in its image
    register_size: int
    bit_size: int
    groups: tuple[_Group, ...]
    span_of_tag: npt.NDArray[np.intp]


@dataclass(slots=True)
class _Replies:
    """What the requests of one read brought back, filled span by span."""

    registers: npt.NDArray[np.uint16]
    bits: npt.NDArray[np.bool_]
    quality: npt.NDArray[np.uint8]
    errors: list[ProtocolError]


@dataclass(frozen=True, slots=True)
class _Write:
    tag: Tag
    address: ModbusAddress
    unit: int
    payload: list[int] | bool


class ModbusDriver(Driver):
    """Modbus TCP/RTU driver (pymodbus asyncio client)."""

    protocol: ClassVar[str] = "modbus"

    def __init__(self, options: ModbusOptions) -> None:
        from importlib.metadata import version

        self.options = options
        self.library = f"pymodbus {version('pymodbus')}"
        self._worker = ModbusWorker(self._make_client, options.endpoint, options.timeout)

    @property
    def endpoint(self) -> str:
        """``host:port`` or the serial device."""
        return self.options.endpoint

    @property
    def connected(self) -> bool:
        """Whether the client's transport is up."""
        return self._worker.connected

    # -- transport ------------------------------------------------------------------------
    def _make_client(self) -> Any:
        from pymodbus.client import ModbusSerialClient, ModbusTcpClient

        # No pymodbus retries or reconnects: one request, bounded by `timeout`; the
        # connection layer decides when to try again.
        common: dict[str, Any] = {
            "timeout": self.options.timeout,
            "retries": 0,
            "reconnect_delay": 0,
        }
        if self.options.serial_port:
            return ModbusSerialClient(
                self.options.serial_port,
                baudrate=self.options.baudrate,
                parity=self.options.parity,
                stopbits=self.options.stopbits,
                bytesize=self.options.bytesize,
                **common,
            )
        return ModbusTcpClient(self.options.host, port=self.options.port, **common)

    async def connect(self) -> None:
        """Open the TCP connection or the serial port."""
        await self._worker.run(lambda abandon: self._worker.connect())

    async def close(self) -> None:
        """Close the client and stop its thread (idempotent)."""
        await self._worker.shutdown()

    # -- addresses ------------------------------------------------------------------------
    def is_address(self, text: str) -> bool:
        """Whether ``text`` starts like a Modbus address (``hr:``, ``40101``...)."""
        head = text.split(":", 1)[0].split("@", 1)[0].strip().lower()
        return head in _READ_FUNCTIONS or (head.isdigit() and len(head) in (5, 6))

    def _address(self, tag: Tag) -> tuple[ModbusAddress, int]:
        try:
            address = parse_modbus_address(tag.address)
        except AddressError as exc:
            if tag.name != tag.address:
                raise AddressError(
                    exc.address, exc.position, f"{exc.reason} (tag {tag.name!r})", "Modbus"
                ) from None
            raise
        unit = self.options.unit if address.unit is None else address.unit
        if address.unit is not None:
            try:
                check_unit(unit, self.options.allow_any_unit)
            except ConfigurationError as exc:
                raise ConfigurationError(f"tag {tag.name!r} ({tag.address}): {exc}") from None
        return address, unit

    def describe(self, tag: Tag) -> dict[str, Any]:
        """Data type, table, offset, order and unit id of a tag."""
        address, unit = self._address(tag)
        dtype = (
            f"string[{address.length}]" if address.dtype is DataType.STRING else address.dtype.value
        )
        return {
            "dtype": dtype,
            "table": address.table,
            "offset": address.offset,
            "registers": address.count,
            "order": address.order.value,
            "unit_id": unit,
        }

    # -- reading --------------------------------------------------------------------------
    def compile_read(self, tags: Sequence[Tag]) -> _ReadPlan:
        """Plan requests for ``tags`` and the vectorised decoding of their replies."""
        parsed = [self._address(tag) for tag in tags]
        items = [Item((unit, a.table), a.offset, a.end) for a, unit in parsed]
        bit_items = [i for i, (a, _) in enumerate(parsed) if a.is_bit]
        reg_items = [i for i, (a, _) in enumerate(parsed) if not a.is_bit]
        spans: list[Span] = []
        for indices, limit, gap in (
            (reg_items, MAX_REGISTERS, self.options.max_gap_registers),
            (bit_items, MAX_BITS, self.options.max_gap_bits),
        ):
            for span in coalesce([items[i] for i in indices], limit, gap):
                members = tuple(indices[m] for m in span.members)
                spans.append(Span(span.key, span.start, span.count, members))
        return self._layout(tuple(tags), parsed, spans)

    def _layout(
        self, tags: tuple[Tag, ...], parsed: Sequence[tuple[ModbusAddress, int]], spans: list[Span]
    ) -> _ReadPlan:
        span_base: list[int] = []
        sizes = {"reg": 0, "bit": 0}
        start_of_tag = np.zeros(len(tags), dtype=np.intp)
        span_of_tag = np.zeros(len(tags), dtype=np.intp)
        for s_index, span in enumerate(spans):
            kind = "bit" if span.key[1] in ("co", "di") else "reg"  # type: ignore[index]
            base = sizes[kind]
            span_base.append(base)
            sizes[kind] += span.count
            for member in span.members:
                start_of_tag[member] = base + parsed[member][0].offset - span.start
                span_of_tag[member] = s_index
        buckets: dict[tuple[DataType, ByteOrder, int, bool], list[int]] = defaultdict(list)
        for i, (address, _) in enumerate(parsed):
            key = (address.dtype, address.order, address.length, address.is_bit)
            buckets[key].append(i)
        groups = []
        for (dtype, order, length, bits), members in buckets.items():
            positions = np.asarray(members, dtype=np.intp)
            scaled = any(tags[i].is_scaled for i in members) and dtype.is_integer | dtype.is_float
            groups.append(
                _Group(
                    dtype,
                    order,
                    length,
                    bits,
                    positions,
                    start_of_tag[positions],
                    np.array([tags[i].scale for i in members]) if scaled else None,
                    np.array([tags[i].offset for i in members]) if scaled else None,
                )
            )
        return _ReadPlan(
            tags,
            tuple(address for address, _ in parsed),
            tuple(spans),
            tuple(span_base),
            sizes["reg"],
            sizes["bit"],
            tuple(groups),
            span_of_tag,
        )

    def explain(self, plan: _ReadPlan) -> list[dict[str, Any]]:
        """One row per Modbus request: unit, function, first address, count, tags served."""
        rows = []
        for span in plan.spans:
            unit, table = cast(tuple[int, str], span.key)
            rows.append(
                {
                    "request": _READ_FUNCTIONS[table],
                    "unit": unit,
                    "start": f"{table}:{span.start}",
                    "count": span.count,
                    "tags": len(span.members),
                }
            )
        return rows

    def _read_span(self, abandon: threading.Event, span: Span) -> Any:
        unit, table = cast(tuple[int, str], span.key)
        return self._worker.request(
            abandon, _READ_FUNCTIONS[table], span.start, count=span.count, device_id=unit
        )

    def _exception(self, plan: _ReadPlan, span: Span, code: int) -> ProtocolError:
        unit, table = cast(tuple[int, str], span.key)
        names = [plan.tags[m].name for m in span.members]
        shown = ", ".join(repr(n) for n in names[:5]) + (" …" if len(names) > 5 else "")
        what = EXCEPTION_NAMES.get(code, "unknown exception")
        return ProtocolError(
            f"Modbus exception {code} ({what}) from unit {unit} at {self.endpoint} reading "
            f"{table}:{span.start}..{span.end - 1} for tag{'s' if len(names) > 1 else ''} {shown}",
            code=code,
            tags=names,
        )

    async def execute_read(self, plan: _ReadPlan) -> ReadResult:
        """Send the planned requests and decode every tag's value."""
        return await self._worker.run(self._read_blocking, plan)

    async def execute_read_at(self, plan: _ReadPlan, due: float) -> ReadResult:
        """Like :meth:`execute_read`, the first request going out at monotonic ``due``."""
        return await self._worker.run(self._read_blocking_at, plan, due)

    def _read_blocking_at(
        self, abandon: threading.Event, plan: _ReadPlan, due: float
    ) -> ReadResult:
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        return self._read_blocking(abandon, plan)

    def _read_blocking(self, abandon: threading.Event, plan: _ReadPlan) -> ReadResult:
        started = time.monotonic()
        replies = _Replies(
            np.zeros(plan.register_size, dtype=np.uint16),
            np.zeros(plan.bit_size, dtype=np.bool_),
            np.zeros(len(plan.tags), dtype=np.uint8),
            [],
        )
        for span, base in zip(plan.spans, plan.span_base, strict=True):
            self._fill_span(abandon, plan, span, base, replies)
        timestamp = time.time_ns()
        columns = [(g.positions, _decode(g, replies.registers, replies.bits)) for g in plan.groups]
        return ReadResult(
            plan.tags,
            columns,
            replies.quality,
            np.full(len(plan.tags), timestamp, dtype=np.int64),
            replies.errors,
            started=started,
        )

    def _fill_span(
        self,
        abandon: threading.Event,
        plan: _ReadPlan,
        span: Span,
        base: int,
        replies: _Replies,
        *,
        may_split: bool = True,
    ) -> None:
        response = self._read_span(abandon, span)
        if response.isError():
            code = int(getattr(response, "exception_code", 0))
            if code == 2 and may_split and len(span.members) > 1:
                # The merge may have read over registers the device does not have:
                # read the tags one by one so the good ones still read.
                self._split_span(abandon, plan, span, base, replies)
                return
            replies.errors.append(self._exception(plan, span, code))
            replies.quality[list(span.members)] = Quality.BAD_PROTOCOL
            return
        if span.key[1] in ("co", "di"):  # type: ignore[index]
            replies.bits[base : base + span.count] = response.bits[: span.count]
        else:
            replies.registers[base : base + span.count] = response.registers[: span.count]

    def _split_span(
        self, abandon: threading.Event, plan: _ReadPlan, span: Span, base: int, replies: _Replies
    ) -> None:
        # Tags at the same address share one request; no further splitting after this,
        # so a refused tag costs one request, never a recursion.
        by_range: dict[tuple[int, int], list[int]] = {}
        for member in span.members:
            address = plan.addresses[member]
            by_range.setdefault((address.offset, address.end), []).append(member)
        for (start, end), members in sorted(by_range.items()):
            sub = Span(span.key, start, end - start, tuple(members))
            self._fill_span(abandon, plan, sub, base + start - span.start, replies, may_split=False)

    # -- writing --------------------------------------------------------------------------
    def compile_write(self, items: Sequence[tuple[Tag, Any]]) -> list[_Write]:
        """Check every value against its tag's type and encode it; no I/O."""
        writes = []
        for tag, value in items:
            address, unit = self._address(tag)
            if address.table in ("ir", "di"):
                kind = "input registers" if address.table == "ir" else "discrete inputs"
                raise WriteNotAllowed(
                    f"tag {tag.name!r} ({tag.address}) is in the {kind}, which Modbus "
                    "devices never accept writes to; use a holding register or coil"
                )
            raw = codec.to_raw(
                tag.name,
                value,
                address.dtype,
                scale=tag.scale,
                offset=tag.offset,
                length=address.length,
            )
            payload: list[int] | bool
            if address.is_bit:
                payload = bool(raw)
            elif address.dtype is DataType.STRING:
                payload = codec.encode_string(raw, address.length, address.order).tolist()
            else:
                payload = codec.encode_registers([raw], address.dtype, address.order)[0].tolist()
            writes.append(_Write(tag, address, unit, payload))
        return writes

    async def execute_write(self, plan: list[_Write]) -> None:
        """Send the writes in order; stop at the first refusal."""
        await self._worker.run(self._write_blocking, plan)

    def _write_blocking(self, abandon: threading.Event, plan: list[_Write]) -> None:
        for write in plan:
            function = "write_coil" if isinstance(write.payload, bool) else "write_registers"
            response = self._worker.request(
                abandon, function, write.address.offset, write.payload, device_id=write.unit
            )
            if response.isError():
                code = int(getattr(response, "exception_code", 0))
                raise ProtocolError(
                    f"Modbus exception {code} ({EXCEPTION_NAMES.get(code, 'unknown')}) from "
                    f"unit {write.unit} at {self.endpoint} writing tag {write.tag.name!r} "
                    f"({write.address})",
                    code=code,
                    tags=[write.tag.name],
                )

    # -- identification -------------------------------------------------------------------
    async def info(self) -> dict[str, Any]:
        """Basic identification (FC 43/14) where the device supports it."""
        result: dict[str, Any] = {
            "protocol": "modbus+rtu" if self.options.serial_port else "modbus",
            "endpoint": self.endpoint,
            "unit": self.options.unit,
        }
        try:
            response = await self._worker.run(
                lambda abandon: self._worker.request(
                    abandon, "read_device_information", read_code=1, device_id=self.options.unit
                )
            )
        except BifrostError:
            return result
        names = {0: "vendor", 1: "product_code", 2: "revision", 3: "vendor_url", 4: "product"}
        if not response.isError():
            for key, value in getattr(response, "information", {}).items():
                text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
                result[names.get(key, f"object_{key}")] = text
        return result


def _decode(
    group: _Group, registers: npt.NDArray[np.uint16], bits: npt.NDArray[np.bool_]
) -> npt.NDArray[Any]:
    if group.bits:
        return bits[group.starts]
    if group.dtype is DataType.STRING:
        return codec.decode_strings(registers, group.starts, group.length, group.order)
    values = codec.decode_registers(registers, group.starts, group.dtype, group.order)
    if group.scale is not None and group.offset is not None:
        return values * group.scale + group.offset
    return values

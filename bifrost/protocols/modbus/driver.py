"""Modbus TCP and RTU through pymodbus' blocking clients on the connection's worker thread.

Reads are planned once per tag set (:mod:`bifrost.protocols.modbus.plan`); one read is
one job on the worker, its replies filling one register and one bit image that decode
per (type, order) group in one NumPy step.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import numpy.typing as npt

from bifrost import values
from bifrost.clock import wall_ns
from bifrost.exceptions import BifrostError, ProtocolError, WriteNotAllowed
from bifrost.model import DataType, Quality, Tag
from bifrost.planning import Span
from bifrost.protocols.base import Driver, ReadResult
from bifrost.protocols.modbus import codec
from bifrost.protocols.modbus.address import ModbusAddress
from bifrost.protocols.modbus.client import ModbusClient
from bifrost.protocols.modbus.options import ModbusOptions
from bifrost.protocols.modbus.plan import (
    READ_FUNCTIONS,
    ReadPlan,
    compile_read,
    decode,
    explain,
    is_bit_table,
    resolve,
    span_unit_table,
)
from bifrost.protocols.worker import BlockingWorker

__all__ = ["EXCEPTION_NAMES", "ModbusDriver"]

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


@dataclass(slots=True)
class _Replies:
    """What the requests of one read brought back, filled span by span."""

    registers: npt.NDArray[np.uint16]
    bits: npt.NDArray[np.bool_]
    quality: npt.NDArray[np.uint8]
    errors: list[ProtocolError]


@dataclass(frozen=True, slots=True)
class ModbusWrite:
    """One write request, encoded."""

    tag: Tag
    address: ModbusAddress
    unit: int
    payload: list[int] | bool


class ModbusDriver(Driver):
    """Modbus TCP/RTU driver (pymodbus' blocking client on a worker thread)."""

    protocol: ClassVar[str] = "modbus"

    def __init__(self, options: ModbusOptions) -> None:
        from importlib.metadata import version

        self.options = options
        self.library = f"pymodbus {version('pymodbus')}"
        self._worker = BlockingWorker(f"bifrost-modbus-{options.endpoint}")
        self._client = ModbusClient(self._make_client, options.endpoint, options.timeout)

    @property
    def endpoint(self) -> str:
        """``host:port`` or the serial device."""
        return self.options.endpoint

    @property
    def connected(self) -> bool:
        """Whether the client's transport is up."""
        return self._client.connected

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
        await self._worker.run(lambda abandon: self._client.connect())

    async def close(self) -> None:
        """Close the client and stop its thread (idempotent)."""
        await self._worker.shutdown(self._client.disconnect, self.options.timeout)

    # -- addresses ------------------------------------------------------------------------
    def is_address(self, text: str) -> bool:
        """Whether ``text`` starts like a Modbus address (``hr:``, ``40101``...)."""
        head = text.split(":", 1)[0].split("@", 1)[0].strip().lower()
        return head in READ_FUNCTIONS or (head.isdigit() and len(head) in (5, 6))

    def describe(self, tag: Tag) -> dict[str, Any]:
        """Data type, table, offset, order and unit id of a tag."""
        address, unit = resolve(tag, self.options)
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
    def compile_read(self, tags: Sequence[Tag]) -> ReadPlan:
        """Plan requests for ``tags`` and the vectorised decoding of their replies."""
        return compile_read(tags, self.options)

    def explain(self, plan: ReadPlan) -> list[dict[str, Any]]:
        """One row per Modbus request: unit, function, first address, count, tags served."""
        return explain(plan)

    def _read_span(self, abandon: threading.Event, span: Span) -> Any:
        unit, table = span_unit_table(span)
        return self._client.request(
            abandon, READ_FUNCTIONS[table], span.start, count=span.count, device_id=unit
        )

    def _exception(self, plan: ReadPlan, span: Span, code: int) -> ProtocolError:
        unit, table = span_unit_table(span)
        names = [plan.tags[m].name for m in span.members]
        shown = ", ".join(repr(n) for n in names[:5]) + (" …" if len(names) > 5 else "")
        what = EXCEPTION_NAMES.get(code, "unknown exception")
        return ProtocolError(
            f"Modbus exception {code} ({what}) from unit {unit} at {self.endpoint} reading "
            f"{table}:{span.start}..{span.end - 1} for tag{'s' if len(names) > 1 else ''} {shown}",
            code=code,
            tags=names,
        )

    async def execute_read(self, plan: ReadPlan) -> ReadResult:
        """Send the planned requests and decode every tag's value."""
        return await self._worker.run(self._read_blocking, plan)

    async def execute_read_at(self, plan: ReadPlan, due: float) -> ReadResult:
        """Like :meth:`execute_read`, the first request going out at monotonic ``due``."""
        return await self._worker.run(self._read_blocking_at, plan, due)

    def _read_blocking_at(self, abandon: threading.Event, plan: ReadPlan, due: float) -> ReadResult:
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        return self._read_blocking(abandon, plan)

    def _read_blocking(self, abandon: threading.Event, plan: ReadPlan) -> ReadResult:
        started = time.monotonic()
        replies = _Replies(
            np.zeros(plan.register_size, dtype=np.uint16),
            np.zeros(plan.bit_size, dtype=np.bool_),
            np.zeros(len(plan.tags), dtype=np.uint8),
            [],
        )
        for span, base in zip(plan.spans, plan.span_base, strict=True):
            self._fill_span(abandon, plan, span, base, replies)
        timestamp = wall_ns()
        columns = [(g.positions, decode(g, replies.registers, replies.bits)) for g in plan.groups]
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
        plan: ReadPlan,
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
        _, table = span_unit_table(span)
        if is_bit_table(table):
            replies.bits[base : base + span.count] = response.bits[: span.count]
        else:
            replies.registers[base : base + span.count] = response.registers[: span.count]

    def _split_span(
        self, abandon: threading.Event, plan: ReadPlan, span: Span, base: int, replies: _Replies
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
    def compile_write(self, items: Sequence[tuple[Tag, Any]]) -> list[ModbusWrite]:
        """Check every raw value against its tag's type and encode it; no I/O."""
        writes = []
        for tag, value in items:
            address, unit = resolve(tag, self.options)
            if address.table in ("ir", "di"):
                kind = "input registers" if address.table == "ir" else "discrete inputs"
                raise WriteNotAllowed(
                    f"tag {tag.name!r} ({tag.address}) is in the {kind}, which Modbus "
                    "devices never accept writes to; use a holding register or coil"
                )
            raw = values.check(tag, value, address.dtype, address.length)
            payload: list[int] | bool
            if address.is_bit:
                payload = bool(raw)
            elif address.dtype is DataType.STRING:
                payload = codec.encode_string(raw, address.length, address.order).tolist()
            else:
                payload = codec.encode_registers([raw], address.dtype, address.order)[0].tolist()
            writes.append(ModbusWrite(tag, address, unit, payload))
        return writes

    async def execute_write(self, plan: list[ModbusWrite]) -> None:
        """Send the writes in order; stop at the first refusal."""
        await self._worker.run(self._write_blocking, plan)

    def _write_blocking(self, abandon: threading.Event, plan: list[ModbusWrite]) -> None:
        for write in plan:
            function = "write_coil" if isinstance(write.payload, bool) else "write_registers"
            response = self._client.request(
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
                lambda abandon: self._client.request(
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

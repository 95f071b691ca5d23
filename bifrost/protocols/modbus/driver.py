"""Modbus TCP (bifrost's own transport) and RTU (pymodbus) on the connection's worker thread.

Reads are planned once per tag set (:mod:`bifrost.protocols.modbus.plan`); one read is
one job on the worker, its replies filling one register and one bit image that decode
per (type, order) group in one NumPy step. A reply is used only once it has been checked
against its request (:mod:`bifrost.protocols.modbus.pdu`); one that fails the checks
makes its tags ``BAD_PROTOCOL`` and the read goes on with the next request.
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
from bifrost.protocols.modbus.client import SerialClient
from bifrost.protocols.modbus.options import ModbusOptions
from bifrost.protocols.modbus.pdu import (
    BUSY,
    Reply,
    ReplyMismatch,
    Request,
    read_request,
    write_coil_request,
    write_registers_request,
)
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
from bifrost.protocols.modbus.transport import Link, TcpTransport, TransactionIds
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
# The first pause before asking a busy device again; it doubles with each retry.
BUSY_BACKOFF_S = 0.05


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
    """Modbus TCP/RTU driver (blocking transports on a worker thread)."""

    protocol: ClassVar[str] = "modbus"

    def __init__(self, options: ModbusOptions) -> None:
        from importlib.metadata import version

        self.options = options
        pymodbus = f"pymodbus {version('pymodbus')}"
        self._worker = BlockingWorker(f"bifrost-modbus-{options.endpoint}")
        # The driver's, not the connection's: ids go on counting across reconnects.
        self._transaction_ids = TransactionIds()
        self._link: Link
        if options.serial_port:
            self.library = pymodbus
            port = options.serial_port
            self._link = SerialClient(
                lambda: self._make_serial_client(port), options.endpoint, options.timeout
            )
        else:
            self.library = f"{pymodbus} (identification); Modbus TCP framing by bifrost"
            self._link = TcpTransport(
                options.host, options.port, options.timeout, self._transaction_ids
            )

    @property
    def endpoint(self) -> str:
        """``host:port`` or the serial device."""
        return self.options.endpoint

    @property
    def connected(self) -> bool:
        """Whether the transport is up."""
        return self._link.connected

    # -- transport ------------------------------------------------------------------------
    def _make_serial_client(self, port: str) -> Any:
        from pymodbus.client import ModbusSerialClient

        # No pymodbus retries or reconnects: one request, bounded by `timeout`; the
        # connection layer decides when to try again.
        return ModbusSerialClient(
            port,
            baudrate=self.options.baudrate,
            parity=self.options.parity,
            stopbits=self.options.stopbits,
            bytesize=self.options.bytesize,
            timeout=self.options.timeout,
            retries=0,
            reconnect_delay=0,
        )

    async def connect(self) -> None:
        """Open the TCP connection or the serial port."""
        await self._worker.run(lambda abandon: self._link.connect())

    async def close(self) -> None:
        """Close the transport and stop its thread (idempotent)."""
        await self._worker.shutdown(self._link.disconnect, self.options.timeout)

    def _exchange(self, abandon: threading.Event, request: Request) -> Reply:
        # A busy device is asked again after a pause that doubles, and only while the
        # next try still fits in the request's one timeout: busy never stretches it.
        deadline = time.monotonic() + self.options.timeout
        delay = BUSY_BACKOFF_S
        retries = self.options.busy_retries
        while True:
            BlockingWorker.check(abandon)
            reply = self._link.exchange(request, deadline)
            if reply.exception != BUSY or retries == 0 or time.monotonic() + delay >= deadline:
                return reply
            retries -= 1
            time.sleep(delay)
            delay *= 2

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

    def _exception(self, plan: ReadPlan, span: Span, code: int) -> ProtocolError:
        unit, table = span_unit_table(span)
        names = [plan.tags[m].name for m in span.members]
        what = EXCEPTION_NAMES.get(code, "unknown exception")
        return ProtocolError(
            f"Modbus exception {code} ({what}) from unit {unit} at {self.endpoint} reading "
            f"{table}:{span.start}..{span.end - 1}{_for_tags(names)}",
            code=code,
            tags=names,
        )

    def _rejected(
        self, plan: ReadPlan, span: Span, request: Request, exc: ReplyMismatch
    ) -> ProtocolError:
        names = [plan.tags[m].name for m in span.members]
        return ProtocolError(
            f"bad Modbus reply from unit {request.unit} at {self.endpoint} "
            f"{request.describe()}{_for_tags(names)}: {exc.reason}; no value was taken from it",
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
        unit, table = span_unit_table(span)
        request = read_request(unit, table, span.start, span.count)
        try:
            reply = self._exchange(abandon, request)
        except ReplyMismatch as exc:
            replies.errors.append(self._rejected(plan, span, request, exc))
            replies.quality[list(span.members)] = Quality.BAD_PROTOCOL
            return
        code = reply.exception
        if code is not None:
            if code == 2 and may_split and len(span.members) > 1:
                # The merge may have read over registers the device does not have:
                # read the tags one by one so the good ones still read.
                self._split_span(abandon, plan, span, base, replies)
                return
            replies.errors.append(self._exception(plan, span, code))
            replies.quality[list(span.members)] = Quality.BAD_PROTOCOL
            return
        # The checks guarantee exactly `count` registers, or the bytes of `count` bits.
        if is_bit_table(table):
            packed = np.frombuffer(reply.data, dtype=np.uint8)
            bits = np.unpackbits(packed, count=span.count, bitorder="little")
            replies.bits[base : base + span.count] = bits.view(np.bool_)
        else:
            replies.registers[base : base + span.count] = np.frombuffer(reply.data, dtype=">u2")

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
            offset = write.address.offset
            if isinstance(write.payload, bool):
                request = write_coil_request(write.unit, offset, write.payload)
            else:
                request = write_registers_request(write.unit, offset, write.payload)
            try:
                reply = self._exchange(abandon, request)
            except ReplyMismatch as exc:
                raise ProtocolError(
                    f"bad Modbus reply from unit {write.unit} at {self.endpoint} writing tag "
                    f"{write.tag.name!r} ({write.address}): {exc.reason}; the write may or "
                    "may not have taken effect",
                    tags=[write.tag.name],
                ) from None
            code = reply.exception
            if code is not None:
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
            information = await self._worker.run(self._identify)
        except BifrostError:
            return result
        names = {0: "vendor", 1: "product_code", 2: "revision", 3: "vendor_url", 4: "product"}
        for key, value in information.items():
            text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
            result[names.get(key, f"object_{key}")] = text
        return result

    def _identify(self, abandon: threading.Event) -> dict[int, Any]:
        BlockingWorker.check(abandon)
        return self._link.identify(self.options.unit, time.monotonic() + self.options.timeout)


def _for_tags(names: Sequence[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:5]) + (" …" if len(names) > 5 else "")
    return f" for tag{'s' if len(names) > 1 else ''} {shown}"

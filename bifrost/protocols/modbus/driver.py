"""Modbus TCP (bifrost's own transport, on the event loop) and RTU (pymodbus, on a worker).

Reads are planned once per tag set (:mod:`bifrost.protocols.modbus.plan`); their replies
fill one register and one bit image that decode per (type, order) group in one NumPy
step. A reply is used only once it has been checked against its request
(:mod:`bifrost.protocols.modbus.pdu`); one that fails the checks makes its tags
``BAD_PROTOCOL`` and the read goes on with the next request.

Modbus TCP runs on the caller's event loop with no thread of its own: a sync call costs
one hop onto bifrost's loop, and a hundred devices cost no thread each. With
``pipeline=N`` up to N requests of a read are in flight at once, matched to their
replies by transaction id; a device found not to answer them correctly falls back to
one at a time. RTU keeps pymodbus' blocking serial client, a whole plan as one job on
the connection's worker thread. Either way the requests of one read or write never
interleave with another's.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import numpy.typing as npt

from bifrost import values
from bifrost.clock import wall_ns
from bifrost.exceptions import (
    BifrostError,
    ConfigurationError,
    ConnectionError,
    ProtocolError,
    TimeoutError,
    WriteNotAllowed,
)
from bifrost.model import DataType, Quality, Tag
from bifrost.planning import Span
from bifrost.protocols.base import Driver, ReadResult, RowRead
from bifrost.protocols.modbus import codec
from bifrost.protocols.modbus.address import ModbusAddress
from bifrost.protocols.modbus.client import (
    LineSettings,
    SerialClient,
    SerialLine,
    attach_line,
    release_line,
)
from bifrost.protocols.modbus.options import ModbusOptions, check_unit
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
    decode_row,
    explain,
    is_bit_table,
    resolve,
    row_layout,
    span_unit_table,
)
from bifrost.protocols.modbus.transport import TcpTransport, TransactionIds
from bifrost.protocols.modbus.wire import Dropped, Pending, Resend
from bifrost.protocols.worker import HANDOVER_LEAD, BlockingWorker

if TYPE_CHECKING:
    from bifrost.protocols.modbus.scan import ScanResult

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
# How long a pipelined request may stay unanswered once the device has answered another
# of its burst: this many times that one's round trip, at least STRAGGLER_MIN_S.
STRAGGLER_FACTOR = 20
STRAGGLER_MIN_S = 0.05

log = logging.getLogger("bifrost.modbus")


@dataclass(slots=True)
class _Replies:
    """What the requests of one read brought back, filled span by span."""

    registers: npt.NDArray[np.uint16]
    bits: npt.NDArray[np.bool_]
    quality: npt.NDArray[np.uint8]
    errors: list[ProtocolError]


@dataclass(frozen=True, slots=True)
class _Job:
    """One request of a read and where its data goes."""

    span: Span
    base: int
    request: Request
    may_split: bool = True


@dataclass(frozen=True, slots=True)
class ModbusWrite:
    """One write request, encoded."""

    tag: Tag
    address: ModbusAddress
    unit: int
    payload: list[int] | bool


@dataclass(slots=True)
class PipelineStats:
    """How pipelining went on one driver (see :meth:`ModbusDriver.info`)."""

    requested: int  # the pipeline= option
    in_flight: int  # the window now: requested, or 1 after a fallback
    fallbacks: int = 0  # times the device was found not to answer pipelined requests
    reason: str = ""  # why, the first time
    resent: int = 0  # requests asked again after a reset or a drop


# What a plain address starts with: a table, then its offset or its unit id.
_PLAIN_HEADS = frozenset(f"{table}{sep}" for table in READ_FUNCTIONS for sep in ":@")


class ModbusDriver(Driver):
    """Modbus TCP (on the event loop) and RTU (blocking, on a worker thread) driver."""

    protocol: ClassVar[str] = "modbus"

    def __init__(self, options: ModbusOptions) -> None:
        from importlib.metadata import version

        self.options = options
        pymodbus = f"pymodbus {version('pymodbus')}"
        # The driver's, not the connection's: ids go on counting across reconnects.
        self._transaction_ids = TransactionIds()
        # One read, write or identification at a time: requests never interleave.
        self._lock = asyncio.Lock()
        self.pipeline = PipelineStats(options.pipeline, options.pipeline)
        self._proven = False  # the device answered a whole pipelined burst
        self._probed = False  # the first burst, of reads of distinct sizes, was sent
        self._unprobeable: ReadPlan | None = None  # the last plan no probe can be made of
        self._tcp: TcpTransport | None = None
        # RTU: the serial line, shared with every connection to another unit on it,
        # held from connect() to close().
        self._line: SerialLine | None = None
        self._last_reply = 0.0  # TCP, for pause_between_requests
        self._last_jobs: tuple[ReadPlan, tuple[_Job, ...]] | None = None
        if options.serial_port:
            self.library = pymodbus
        else:
            self.library = f"{pymodbus} (identification); Modbus TCP framing by bifrost"
            self._tcp = TcpTransport(
                options.host, options.port, options.timeout, self._transaction_ids
            )
            self._tcp.settle = options.pause_after_connect
            if options.pipeline > 1:
                self._tcp.straggler = self._straggler_grace

    @property
    def endpoint(self) -> str:
        """``host:port`` or the serial device."""
        return self.options.endpoint

    @property
    def connected(self) -> bool:
        """Whether the transport is up."""
        if self._tcp is not None:
            return self._tcp.connected
        return self._line is not None and self._line.client.connected

    def _attach(self) -> SerialLine:
        line = self._line
        if line is None:
            o = self.options
            assert o.serial_port is not None
            port = o.serial_port
            settings = LineSettings(port, o.baudrate, o.parity, o.stopbits, o.bytesize)
            line = self._line = attach_line(
                settings, lambda: self._make_serial_client(port), o.timeout, o.pause_after_connect
            )
        return line

    @property
    def _worker(self) -> BlockingWorker:
        return self._attach().worker

    @property
    def _serial(self) -> SerialClient:
        return self._attach().client

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

    def _straggler_grace(self, round_trip: float) -> float:
        return min(self.options.timeout, max(STRAGGLER_MIN_S, STRAGGLER_FACTOR * round_trip))

    async def connect(self) -> None:
        """Open the TCP connection or the serial port."""
        if self._tcp is not None:
            await self._tcp.connect()
            return
        serial = self._serial
        await self._worker.run(lambda abandon: serial.connect())

    async def close(self) -> None:
        """Close the transport (and the serial worker's thread); idempotent."""
        if self._tcp is not None:
            self._tcp.disconnect()
            return
        line, self._line = self._line, None
        if line is not None:
            await release_line(line, self.options.timeout)

    async def _ask(self, request: Request) -> Reply:
        # A busy device is asked again after a pause that doubles, and only while the
        # next try still fits in the request's one timeout: busy never stretches it.
        assert self._tcp is not None
        if self.options.pause_between_requests:
            return await self._ask_paced(request)
        deadline = time.monotonic() + self.options.timeout
        reply = await self._tcp.exchange(request)
        if reply.exception != BUSY:
            return reply  # the usual reply: no retry loop entered for it
        return await self._busy_retries(request, reply, deadline)

    async def _ask_paced(self, request: Request) -> Reply:
        # For devices that need quiet time between one reply and the next request.
        assert self._tcp is not None
        wait = self._last_reply + self.options.pause_between_requests - time.monotonic()
        if wait > 0:
            await asyncio.sleep(wait)
        try:
            deadline = time.monotonic() + self.options.timeout
            reply = await self._tcp.exchange(request)
            return await self._busy_retries(request, reply, deadline)
        finally:
            self._last_reply = time.monotonic()

    async def _busy_retries(self, request: Request, reply: Reply, deadline: float) -> Reply:
        assert self._tcp is not None
        delay = self.options.busy_backoff
        retries = self.options.busy_retries
        quiet = self.options.pause_between_requests  # a retry is a request too
        while (
            reply.exception == BUSY
            and retries > 0
            and time.monotonic() + max(delay, quiet) < deadline
        ):
            retries -= 1
            await asyncio.sleep(max(delay, quiet))
            delay *= 2
            reply = await self._tcp.exchange(request, max(0.001, deadline - time.monotonic()))
        return reply

    def _exchange_blocking(self, abandon: threading.Event, request: Request) -> Reply:
        # RTU on the worker thread: the same busy rule, with blocking pauses.
        serial = self._serial
        options = self.options
        quiet = options.pause_between_requests
        if quiet:
            # The line's last reply, whichever unit gave it: the quiet time is the line's.
            wait = serial.last_reply + quiet - time.monotonic()
            if wait > 0:
                time.sleep(wait)
        deadline = time.monotonic() + options.timeout
        delay = options.busy_backoff
        retries = options.busy_retries
        while True:
            BlockingWorker.check(abandon)
            reply = serial.exchange(request, deadline, options.timeout)
            pause = max(delay, quiet)
            if reply.exception != BUSY or retries == 0 or time.monotonic() + pause >= deadline:
                return reply
            retries -= 1
            time.sleep(pause)
            delay *= 2

    # -- addresses ------------------------------------------------------------------------
    def is_address(self, text: str) -> bool:
        """Whether ``text`` starts like a Modbus address (``hr:``, ``40101``...)."""
        if text[:3] in _PLAIN_HEADS:  # the usual form, asked once per tag of a cold plan
            return True
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
        if self._tcp is None:
            return await self._worker.run(self._read_blocking, plan)
        async with self._lock:
            if not self.options.close_after_each_cycle:
                return await self._read_tcp(plan)
            try:
                return await self._read_tcp(plan)
            finally:
                self._tcp.disconnect()

    @property
    def cycle_lead(self) -> float:
        """RTU waits on its worker thread: handed each cycle early; TCP at its due time."""
        return HANDOVER_LEAD if self._tcp is None else 0.0

    async def execute_read_at(self, plan: ReadPlan, due: float) -> ReadResult:
        """Like :meth:`execute_read`, the first request going out at monotonic ``due``."""
        if self._tcp is None:
            # Waited on the worker thread, so no thread hand-over sits between the due
            # time and the request.
            return await self._worker.run(self._read_blocking_at, plan, due)
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        return await self.execute_read(plan)

    def row_reader(self, plan: ReadPlan) -> RowRead | None:
        """Modbus TCP cycles decoded straight into a recording's row (RTU: None).

        The same requests, checks, qualities and timeouts as :meth:`execute_read_at`;
        only the result goes into the caller's row instead of a ReadResult.
        """
        tcp = self._tcp
        if tcp is None:
            return None
        layout = row_layout(plan)
        jobs = _jobs_of(plan)
        single = jobs[0] if len(jobs) == 1 else None
        lock = self._lock

        async def read_row(
            due: float, values: npt.NDArray[np.float64], quality: npt.NDArray[np.uint8]
        ) -> float:
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            # What `async with` does, without its two coroutines per cycle.
            await lock.acquire()
            try:
                started = time.monotonic()
                if single is not None:
                    # One request: never pipelined, so what _replies_tcp would do.
                    replies = self._new_replies(plan)
                    if self.options.pause_between_requests:
                        await self._sequential(plan, single, replies)
                    else:
                        await self._one_request(plan, single, replies)
                else:
                    replies = await self._replies_tcp(plan, jobs)
            finally:
                try:
                    if self.options.close_after_each_cycle:
                        tcp.disconnect()
                finally:
                    lock.release()
            quality[:] = replies.quality
            # A tag's quality turns bad only with an error of its read kept beside it:
            # with none, every tag is good and no value needs blanking.
            checked = quality if replies.errors else None
            decode_row(layout, replies.registers, replies.bits, checked, values)
            return started

        return read_row

    def _new_replies(self, plan: ReadPlan) -> _Replies:
        return _Replies(
            np.zeros(plan.register_size, dtype=np.uint16),
            np.zeros(plan.bit_size, dtype=np.bool_),
            np.zeros(len(plan.tags), dtype=np.uint8),
            [],
        )

    def _result(self, plan: ReadPlan, replies: _Replies, started: float) -> ReadResult:
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

    # -- reading over TCP, on the loop ----------------------------------------------------
    def _jobs(self, plan: ReadPlan) -> tuple[_Job, ...]:
        # The jobs of a plan never change: made once for the plan read last (a
        # connection reads the same plan cycle after cycle), not per read.
        cached = self._last_jobs
        if cached is not None and cached[0] is plan:
            return cached[1]
        jobs = _jobs_of(plan)
        self._last_jobs = (plan, jobs)
        return jobs

    async def _read_tcp(self, plan: ReadPlan) -> ReadResult:
        started = time.monotonic()
        return self._result(plan, await self._replies_tcp(plan, self._jobs(plan)), started)

    async def _replies_tcp(self, plan: ReadPlan, jobs: tuple[_Job, ...]) -> _Replies:
        replies = self._new_replies(plan)
        if self.pipeline.in_flight > 1 and len(jobs) > 1 and await self._trust_bursts(plan):
            fallbacks = self.pipeline.fallbacks
            await self._pipelined(plan, deque(jobs), replies)
            if self.pipeline.fallbacks == fallbacks:
                return replies
            # A burst went wrong: a reply under another request's id may have passed for
            # its answer, so nothing from the burst is kept; ask again one at a time.
            replies = self._new_replies(plan)
        for job in jobs:
            await self._sequential(plan, job, replies)
        return replies

    async def _trust_bursts(self, plan: ReadPlan) -> bool:
        """Whether to pipeline; before the first burst, a probe that replies cannot fool.

        Replies to requests of one size pass each other's checks: a device that sends
        them under the wrong transaction ids would give wrong values no check catches.
        So the first burst is reads of sizes that all differ (within the plan's own
        spans), and a device that gets it wrong is read one request at a time.
        """
        if self._probed:
            return self.pipeline.in_flight > 1
        if plan is self._unprobeable:
            return False
        requests = _probe_requests(plan, self.pipeline.in_flight)
        if len(requests) < 2:
            # Spans of one size only (single registers): no probe can be made of them
            # and no check would catch swapped replies, so this plan is read one
            # request at a time until another plan's probe has proven the device.
            # Remembered, as the connection reads the same plan again and again.
            self._unprobeable = plan
            return False
        assert self._tcp is not None
        # A connection that cannot be opened fails the read here; the next one probes.
        outcomes = await _burst(self._tcp, requests, self.options.timeout)
        self._probed = True
        for request, outcome in zip(requests, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                self._fall_back(
                    f"its first burst came back wrong ({request.describe()}: {outcome})"
                )
                return False
        return True

    async def _one_request(self, plan: ReadPlan, job: _Job, replies: _Replies) -> None:
        # _sequential and _ask in one coroutine, for a device asked without pauses: a
        # recording's cycle of one request goes through it every time.
        assert self._tcp is not None
        deadline = time.monotonic() + self.options.timeout
        try:
            reply = await self._tcp.exchange(job.request)
            if reply.exception == BUSY:
                reply = await self._busy_retries(job.request, reply, deadline)
        except ReplyMismatch as exc:
            self._reject(plan, job, exc, replies)
            return
        for sub in self._take(plan, job, reply, replies):
            await self._sequential(plan, sub, replies)

    async def _sequential(self, plan: ReadPlan, job: _Job, replies: _Replies) -> None:
        try:
            reply = await self._ask(job.request)
        except ReplyMismatch as exc:
            self._reject(plan, job, exc, replies)
            return
        for sub in self._take(plan, job, reply, replies):
            await self._sequential(plan, sub, replies)

    async def _pipelined(self, plan: ReadPlan, jobs: deque[_Job], replies: _Replies) -> None:
        # Up to `in_flight` requests on the wire; replies are taken in the order sent
        # (each is matched to its request by transaction id whatever order it came in).
        tcp = self._tcp
        assert tcp is not None
        in_flight: deque[tuple[_Job, Pending]] = deque()
        duplicates = tcp.duplicates
        burst = answered = 0
        try:
            while jobs or in_flight:
                window = self.pipeline.in_flight
                if jobs and len(in_flight) < window:
                    batch = [jobs.popleft() for _ in range(min(window - len(in_flight), len(jobs)))]
                    pendings = await tcp.start([job.request for job in batch])
                    in_flight.extend(zip(batch, pendings, strict=True))
                    burst = max(burst, len(in_flight))
                job, pending = in_flight.popleft()
                deadline = pending.sent + self.options.timeout
                try:
                    reply = await tcp.reply(pending)
                except ReplyMismatch as exc:
                    answered += 1
                    self._reject(plan, job, exc, replies)
                    if burst > 1:
                        self._fall_back(f"a reply during a burst did not answer its request: {exc}")
                    continue
                except (Resend, Dropped) as exc:
                    # The connection was reset over another request's reply, or the
                    # device dropped requests of a burst: reads are safe to ask again.
                    if isinstance(exc, Dropped):
                        self._fall_back("it left requests of a burst unanswered")
                    tcp.disconnect()
                    unanswered = [job] + [j for j, p in in_flight]
                    for _, other in in_flight:
                        tcp.forget(other)
                    in_flight.clear()
                    self.pipeline.resent += len(unanswered)
                    jobs.extendleft(reversed(unanswered))
                    continue
                except TimeoutError:
                    if burst > 1 and answered:
                        self._fall_back("a request of a burst timed out while others were answered")
                    raise
                answered += 1
                if reply.exception == BUSY:
                    reply = await self._busy_retries(job.request, reply, deadline)
                jobs.extendleft(reversed(self._take(plan, job, reply, replies)))
        finally:
            for _, pending in in_flight:
                tcp.forget(pending)
        if tcp.duplicates > duplicates and self.pipeline.in_flight > 1:
            # Every value was still matched by id, but a device that repeats replies
            # is not one to keep several requests in flight with.
            self._fall_back("it answered a request twice")
        elif burst > 1 and not self._proven:
            self._proven = True
            if tcp.stream is not None:
                tcp.stream.probing = False

    def _fall_back(self, reason: str) -> None:
        stats = self.pipeline
        if stats.in_flight == 1:
            return
        stats.in_flight = 1
        stats.fallbacks += 1
        if stats.fallbacks == 1:
            stats.reason = reason
            log.warning(
                "the Modbus device at %s does not answer pipelined requests correctly (%s); "
                "sending one request at a time from now on",
                self.endpoint,
                reason,
            )
        if self._tcp is not None:
            self._tcp.straggler = None

    def _reject(self, plan: ReadPlan, job: _Job, exc: ReplyMismatch, replies: _Replies) -> None:
        replies.errors.append(self._rejected(plan, job.span, job.request, exc))
        replies.quality[list(job.span.members)] = Quality.BAD_PROTOCOL

    def _take(self, plan: ReadPlan, job: _Job, reply: Reply, replies: _Replies) -> list[_Job]:
        """Put a checked reply's data into the images; the requests still to send."""
        span, base = job.span, job.base
        code = reply.exception
        if code is not None:
            if code == 2 and job.may_split and len(span.members) > 1:
                # The merge may have read over registers the device does not have:
                # read the tags one by one so the good ones still read.
                return _split(plan, span, base)
            replies.errors.append(self._exception(plan, span, code))
            replies.quality[list(span.members)] = Quality.BAD_PROTOCOL
            return []
        # The checks guarantee exactly `count` registers, or the bytes of `count` bits.
        if is_bit_table(span_unit_table(span)[1]):
            packed = np.frombuffer(reply.data, dtype=np.uint8)
            bits = np.unpackbits(packed, count=span.count, bitorder="little")
            replies.bits[base : base + span.count] = bits.view(np.bool_)
        else:
            replies.registers[base : base + span.count] = np.frombuffer(reply.data, dtype=">u2")
        return []

    # -- reading over RTU, on the worker thread -------------------------------------------
    def _read_blocking_at(self, abandon: threading.Event, plan: ReadPlan, due: float) -> ReadResult:
        delay = due - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        return self._read_blocking(abandon, plan)

    def _read_blocking(self, abandon: threading.Event, plan: ReadPlan) -> ReadResult:
        started = time.monotonic()
        replies = self._new_replies(plan)
        try:
            for span, base, request in zip(plan.spans, plan.span_base, plan.requests, strict=True):
                self._fill_blocking(abandon, plan, _Job(span, base, request), replies)
        finally:
            if self.options.close_after_each_cycle:
                self._serial.disconnect()
        return self._result(plan, replies, started)

    def _fill_blocking(
        self, abandon: threading.Event, plan: ReadPlan, job: _Job, replies: _Replies
    ) -> None:
        try:
            reply = self._exchange_blocking(abandon, job.request)
        except ReplyMismatch as exc:
            self._reject(plan, job, exc, replies)
            return
        for sub in self._take(plan, job, reply, replies):
            self._fill_blocking(abandon, plan, sub, replies)

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
        if self._tcp is None:
            await self._worker.run(self._write_blocking, plan)
            return
        async with self._lock:
            for write in plan:
                try:
                    reply = await self._ask(_write_request(write))
                except ReplyMismatch as exc:
                    raise self._write_mismatch(write, exc) from None
                self._check_write(write, reply)

    def _write_blocking(self, abandon: threading.Event, plan: list[ModbusWrite]) -> None:
        for write in plan:
            try:
                reply = self._exchange_blocking(abandon, _write_request(write))
            except ReplyMismatch as exc:
                raise self._write_mismatch(write, exc) from None
            self._check_write(write, reply)

    def _write_mismatch(self, write: ModbusWrite, exc: ReplyMismatch) -> ProtocolError:
        return ProtocolError(
            f"bad Modbus reply from unit {write.unit} at {self.endpoint} writing tag "
            f"{write.tag.name!r} ({write.address}): {exc.reason}; the write may or "
            "may not have taken effect",
            tags=[write.tag.name],
        )

    def _check_write(self, write: ModbusWrite, reply: Reply) -> None:
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
        """Basic identification (FC 43/14) where the device supports it.

        TCP connections also report how pipelining went under ``"pipeline"``: the
        requested and current number of requests in flight, fallbacks and their reason,
        and the replies dropped because no request waited for them.
        """
        result: dict[str, Any] = {
            "protocol": "modbus+rtu" if self.options.serial_port else "modbus",
            "endpoint": self.endpoint,
            "unit": self.options.unit,
        }
        if self.options.quirks:
            result["quirks"] = self.options.quirks
        if self._tcp is not None:
            stats = self.pipeline
            result["pipeline"] = {
                "requested": stats.requested,
                "in_flight": stats.in_flight,
                "fallbacks": stats.fallbacks,
                "reason": stats.reason,
                "resent": stats.resent,
                "stale_replies": self._tcp.stale_replies,
                "duplicates": self._tcp.duplicates,
            }
        try:
            information = await self._identify()
        except BifrostError:
            return result
        names = {0: "vendor", 1: "product_code", 2: "revision", 3: "vendor_url", 4: "product"}
        for key, value in information.items():
            text = value.decode("latin-1") if isinstance(value, bytes) else str(value)
            result[names.get(key, f"object_{key}")] = text
        return result

    async def _identify(self) -> dict[int, Any]:
        if self._tcp is not None:
            async with self._lock:
                return await self._tcp.identify(self.options.unit)
        serial, unit, timeout = self._serial, self.options.unit, self.options.timeout
        return await self._worker.run(
            lambda abandon: serial.identify(unit, time.monotonic() + timeout)
        )

    # -- scanning -------------------------------------------------------------------------
    async def scan(
        self,
        table: str | Sequence[str] = "hr",
        start: int = 0,
        stop: int = 65535,
        unit: int | None = None,
        *,
        resolution: int = 64,
        pipeline: int = 8,
        timeout: float | None = None,
    ) -> ScanResult:
        """Readable ranges, largest batch and pipelining of one unit; reads only.

        See :mod:`bifrost.protocols.modbus.scan`. ``stop`` is the last address scanned;
        ``timeout`` bounds each read (devices silent on refusals cost it per refusal).
        """
        from bifrost.protocols.modbus import scan

        tables = scan.check_scan_arguments(table, start, stop, resolution, pipeline)
        unit = self.options.unit if unit is None else unit
        check_unit(unit, self.options.allow_any_unit)
        wait = self.options.timeout if timeout is None else timeout
        if isinstance(wait, bool) or not isinstance(wait, int | float) or not wait > 0:
            raise ConfigurationError(f"scan: timeout={timeout!r} must be a positive number")
        run = functools.partial(
            scan.scan_device, self.endpoint, unit, tables, start, stop, resolution=resolution
        )
        # A device that needs quiet time between requests gets it during a scan too,
        # and no burst.
        pause = self.options.pause_between_requests
        if self._tcp is None:
            worker, serial = self._worker, self._serial

            def exchange_serial(request: Request) -> Reply:
                if pause:
                    time.sleep(max(0.0, serial.last_reply + pause - time.monotonic()))
                return serial.exchange(request, time.monotonic() + wait, wait)

            async def ask_serial(request: Request) -> Reply:
                return await worker.run(lambda abandon: exchange_serial(request))

            return await run(ask=ask_serial, burst=None, pipeline=0)
        tcp = self._tcp

        async def ask(request: Request) -> Reply:
            if pause:
                await asyncio.sleep(max(0.0, self._last_reply + pause - time.monotonic()))
            deadline = time.monotonic() + wait
            try:
                reply = await tcp.exchange(request, wait)
                return await self._busy_retries(request, reply, deadline)
            finally:
                self._last_reply = time.monotonic()

        async def burst(requests: list[Request]) -> list[Reply | BaseException]:
            return await _burst(tcp, requests, wait)

        async with self._lock:
            return await run(ask=ask, burst=burst, pipeline=0 if pause else pipeline)


async def _burst(
    tcp: TcpTransport, requests: list[Request], timeout: float
) -> list[Reply | BaseException]:
    # All of them in flight at once; each one's reply, or what went wrong with it.
    duplicates = tcp.duplicates
    pendings = await tcp.start(requests, timeout)
    outcomes: list[Reply | BaseException] = []
    for pending in pendings:
        try:
            outcomes.append(await tcp.reply(pending))
        except (ProtocolError, ConnectionError) as exc:
            outcomes.append(exc)
        except Dropped:
            outcomes.append(ProtocolError("unanswered while later requests were answered"))
        except Resend:
            outcomes.append(ProtocolError("the connection was reset over another reply"))
    await asyncio.sleep(0)  # a duplicate sent right after the last reply
    if tcp.duplicates > duplicates:
        outcomes[-1] = ProtocolError("the device answered a request of the burst twice")
    if any(isinstance(o, BaseException) for o in outcomes):
        tcp.disconnect()
    return outcomes


def _probe_requests(plan: ReadPlan, depth: int) -> list[Request]:
    # Up to `depth` reads within the plan's spans, no two of which a reply could answer
    # alike (unit, function code and byte count all checked): the largest size left in
    # each span, bigger spans first.
    taken: set[tuple[int, int, int]] = set()
    requests: list[Request] = []
    for span in sorted(plan.spans, key=lambda s: -s.count):
        unit, table = span_unit_table(span)
        bits = is_bit_table(table)
        for count in range(span.count, 0, -1):
            request = read_request(unit, table, span.start, count)
            shape = (unit, request.function, (count + 7) // 8 if bits else 2 * count)
            if shape not in taken:
                taken.add(shape)
                requests.append(request)
                break
        if len(requests) == depth:
            break
    return requests


def _write_request(write: ModbusWrite) -> Request:
    offset = write.address.offset
    if isinstance(write.payload, bool):
        return write_coil_request(write.unit, offset, write.payload)
    return write_registers_request(write.unit, offset, write.payload)


def _jobs_of(plan: ReadPlan) -> tuple[_Job, ...]:
    return tuple(
        _Job(span, base, request)
        for span, base, request in zip(plan.spans, plan.span_base, plan.requests, strict=True)
    )


def _split(plan: ReadPlan, span: Span, base: int) -> list[_Job]:
    # Tags at the same address share one request; no further splitting after this,
    # so a refused tag costs one request, never a recursion.
    by_range: dict[tuple[int, int], list[int]] = {}
    for member in span.members:
        address = plan.addresses[member]
        by_range.setdefault((address.offset, address.end), []).append(member)
    unit, table = span_unit_table(span)
    jobs = []
    for (start, end), members in sorted(by_range.items()):
        sub = Span(span.key, start, end - start, tuple(members))
        request = read_request(unit, table, start, end - start)
        jobs.append(_Job(sub, base + start - span.start, request, may_split=False))
    return jobs


def _for_tags(names: Sequence[str]) -> str:
    shown = ", ".join(repr(n) for n in names[:5]) + (" …" if len(names) > 5 else "")
    return f" for tag{'s' if len(names) > 1 else ''} {shown}"

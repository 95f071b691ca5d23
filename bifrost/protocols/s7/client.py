"""python-snap7's blocking client calls, run on the connection's worker thread.

The snap7 client is blocking and not thread-safe: every call to one PLC runs on the
connection's :class:`~bifrost.protocols.worker.BlockingWorker`, a whole batch read being
one job there.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from bifrost.model import Tag
from bifrost.planning import Packet, Span, coalesce
from bifrost.protocols.s7.address import S7Address
from bifrost.protocols.s7.errors import error_code
from bifrost.protocols.s7.plan import Layout, ReadPlan

__all__ = [
    "Failure",
    "S7Write",
    "read_all",
    "adjacent_run",
    "disconnect",
    "identify",
    "is_link_failure",
    "read_packet",
    "snap7_area",
    "span_key",
    "try_read",
    "write_all",
]

AREA_NAMES = {"DB": "DB", "M": "MK", "I": "PE", "Q": "PA"}

_snap7_log = logging.getLogger("snap7")
if _snap7_log.level == logging.NOTSET:
    # snap7 logs every refused item and dropped connection as a warning; bifrost turns
    # those into exceptions and quality codes instead. Users can set the level back.
    _snap7_log.setLevel(logging.CRITICAL)


@dataclass(slots=True)
class Failure:
    """Tags of a read the PLC refused, with its message and return code."""

    members: tuple[int, ...]
    message: str
    code: int | None


@dataclass(frozen=True, slots=True)
class S7Write:
    """One write, encoded."""

    tag: Tag
    address: S7Address
    data: bytes


def disconnect(client: Any) -> None:
    """Close the client; a broken connection's failure to close is only logged."""
    try:
        client.disconnect()
    except Exception:  # closing a broken connection must not fail the close
        logging.getLogger("bifrost.s7").debug("disconnect failed", exc_info=True)


def snap7_area(name: str) -> Any:
    """snap7's Area for one of bifrost's area letters (DB, M, I, Q)."""
    from snap7.type import Area

    return Area[AREA_NAMES[name]]


def span_key(span: Span) -> tuple[str, int]:
    """The area and data block number a span reads from."""
    area, db = cast(tuple[str, int], span.key)
    return area, db


def read_packet(
    client: Any, spans: tuple[Span, ...], bases: dict[Span, int], image: npt.NDArray[np.uint8]
) -> None:
    """One read request (area read or multi-item read) into ``image``."""
    if len(spans) == 1:
        span = spans[0]
        area, db = span_key(span)
        data = client.read_area(snap7_area(area), db, span.start, span.count)
        replies = [data]
    else:
        requests = []
        for span in spans:
            area, db = span_key(span)
            requests.append(
                {"area": snap7_area(area), "db_number": db, "start": span.start, "size": span.count}
            )
        _, replies = client.read_multi_vars(requests)
    for span, data in zip(spans, replies, strict=True):
        if len(data) != span.count:
            from snap7.error import S7ProtocolError

            raise S7ProtocolError(f"short reply: {len(data)} of {span.count} bytes")
        base = bases[span]
        image[base : base + span.count] = np.frombuffer(bytes(data), dtype=np.uint8)


def adjacent_run(packets: tuple[Packet, ...], first: int) -> tuple[Packet, ...]:
    """The packets from ``first`` on that are single spans, each starting where the last ended."""
    end = first + 1
    while (
        end < len(packets)
        and len(packets[end - 1].spans) == 1
        and len(packets[end].spans) == 1
        and packets[end].spans[0].key == packets[end - 1].spans[0].key
        and packets[end].spans[0].start == packets[end - 1].spans[0].end
    ):
        end += 1
    return packets[first:end]


def try_read(
    client: Any, spans: tuple[Span, ...], bases: dict[Span, int], image: npt.NDArray[np.uint8]
) -> Exception | None:
    """Read; return the device's refusal instead of raising it (link failures still raise)."""
    from snap7.error import S7ProtocolError

    try:
        read_packet(client, spans, bases, image)
    except S7ProtocolError as exc:
        if is_link_failure(exc):
            raise
        return exc
    return None


def write_all(client: Any, plan: list[S7Write]) -> tuple[S7Write, str, int | None] | None:
    """Write in order; the first write the PLC refuses, its message and code, or None."""
    from snap7.error import S7ProtocolError
    from snap7.type import WordLen

    for write in plan:
        address = write.address
        target = snap7_area(address.area)
        try:
            if address.is_bit:
                # A bit-level write: the PLC changes only this bit, not its neighbours.
                start = address.offset * 8 + address.bit
                client.write_area(target, address.db, start, bytearray(write.data), WordLen.Bit)
            else:
                client.write_area(target, address.db, address.offset, bytearray(write.data))
        except S7ProtocolError as exc:
            if is_link_failure(exc):
                raise
            return write, str(exc), error_code(exc)
    return None


def identify(client: Any) -> dict[str, Any]:
    """CPU, order code, blocks and state, each only as far as the PLC answers."""
    from snap7.error import S7Error
    from snap7.type import Block

    def text(value: Any) -> str:
        raw = value if isinstance(value, bytes) else str(value).encode()
        return raw.split(b"\x00", 1)[0].decode("latin-1").strip()

    out: dict[str, Any] = {}
    # Each query is optional: many PLCs and gateways answer only some SZL lists.
    try:
        cpu = client.get_cpu_info()
        out.update(
            model=text(cpu.ModuleTypeName),
            module_name=text(cpu.ModuleName),
            as_name=text(cpu.ASName),
            serial_number=text(cpu.SerialNumber),
            copyright=text(cpu.Copyright),
        )
    except S7Error as exc:
        if is_link_failure(exc):
            raise
    try:
        order = client.get_order_code()
        out.update(order_code=text(order.OrderCode), firmware=f"{order.V1}.{order.V2}.{order.V3}")
    except S7Error as exc:
        if is_link_failure(exc):
            raise
    try:
        blocks = client.list_blocks()
        out["blocks"] = {
            name: int(getattr(blocks, f"{name}Count"))
            for name in ("OB", "FB", "FC", "SFB", "SFC", "DB", "SDB")
        }
        out["data_blocks"] = sorted(int(n) for n in client.list_blocks_of_type(Block.DB, 4096))
    except S7Error as exc:
        if is_link_failure(exc):
            raise
    try:
        out["cpu_state"] = str(client.get_cpu_state())
    except S7Error as exc:
        if is_link_failure(exc):
            raise
    return out


def is_link_failure(exc: Exception) -> bool:
    """Whether an error means the connection is gone rather than a refused request."""
    from snap7.error import S7ConnectionError, S7PacketLostError, S7StalePacketError, S7TimeoutError

    return isinstance(
        exc, S7ConnectionError | S7TimeoutError | S7PacketLostError | S7StalePacketError
    )


def read_all(
    client: Any,
    plan: ReadPlan,
    layout: Layout,
    image: npt.NDArray[np.uint8],
    due: float | None,
) -> tuple[list[Failure], float]:
    """Every request of a layout, filling ``image``: the refusals and when it started."""
    if due is not None and (delay := due - time.monotonic()) > 0:
        time.sleep(delay)
    started = time.monotonic()
    return _read_layout(client, plan, layout, image), started


def _read_layout(
    client: Any, plan: ReadPlan, layout: Layout, image: npt.NDArray[np.uint8]
) -> list[Failure]:
    failures: list[Failure] = []
    packets = layout.packets
    i = 0
    while i < len(packets):
        run = adjacent_run(packets, i)
        i += len(run)
        if len(run) > 1:
            # Back-to-back full requests over one range: one area read, which snap7
            # splits at the PDU itself, saves its per-call overhead on every request.
            first, last = run[0].spans[0], run[-1].spans[0]
            whole = Span(first.key, first.start, last.end - first.start, ())
            refused = try_read(client, (whole,), {whole: layout.span_base[first]}, image)
            if refused is None:
                continue
        for packet in run:
            refused = try_read(client, packet.spans, layout.span_base, image)
            if refused is not None:
                _read_apart(client, plan, packet.spans, layout, image, failures, refused)
    return failures


def _read_apart(
    client: Any,
    plan: ReadPlan,
    spans: tuple[Span, ...],
    layout: Layout,
    image: npt.NDArray[np.uint8],
    failures: list[Failure],
    error: Exception,
) -> None:
    """A refused request: read its spans, then their tags, alone to find the bad ones.

    A merged span may cover bytes past the end of a data block, or one item may name
    a block that does not exist; the other tags must still read.
    """
    for span in spans:
        if len(spans) > 1:
            refused = try_read(client, (span,), layout.span_base, image)
            if refused is None:
                continue
            error = refused
        base = layout.span_base[span]
        # The runs of touching tags; where a run is refused, each of its tags alone.
        runs = coalesce([plan.items[m] for m in span.members], span.count, 0)
        for run in runs:
            members = tuple(span.members[i] for i in run.members)
            part = Span(run.key, run.start, run.count, members)
            refused = (
                error
                if len(runs) == 1  # the run is the whole span: known to be refused
                else try_read(client, (part,), {part: base + run.start - span.start}, image)
            )
            if refused is None:
                continue
            if len(members) == 1:
                failures.append(Failure(members, str(refused), error_code(refused)))
                continue
            for m in members:
                own = _own(plan, m)
                bad = try_read(client, (own,), {own: base + own.start - span.start}, image)
                if bad is not None:
                    failures.append(Failure((m,), str(bad), error_code(bad)))


def _own(plan: ReadPlan, member: int) -> Span:
    item = plan.items[member]
    return Span(item.key, item.start, item.end - item.start, (member,))

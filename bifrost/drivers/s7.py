"""Siemens S7 (classic S7 protocol, ISO-on-TCP) through python-snap7's client.

The snap7 client is blocking and not thread-safe, so every call to one PLC runs on one
dedicated worker thread per connection (a single-thread executor) awaited from the event
loop: the loop never blocks and the calls to a PLC are serialised. A whole batch read is
one call onto that thread, not one per request.

Reads are planned per tag set with :func:`bifrost.planning.pack`: tags are grouped by
area and data block, merged across holes that a cost model (per request, per item, per
byte) says are cheaper to read over than to skip, split at the negotiated PDU size, and
small spans are packed into multi-item requests (at most 20 items) while large ones go
alone as plain area reads. The replies are concatenated into one byte image and decoded
per type with one vectorised NumPy step (big-endian; bits by shifts; strings per tag).

Classic S7 exposes no symbol table: there is nothing to browse but the data blocks
(listed by :meth:`S7Driver.info`); the connection's tag table (CSV, YAML, or a TIA Portal
export through :func:`tags_from_tia`) names the addresses.
"""

from __future__ import annotations

import asyncio
import builtins
import concurrent.futures
import logging
import os
import re
import socket
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar, TypeVar, cast
from urllib.parse import urlsplit

import numpy as np
import numpy.typing as npt

from bifrost import codec
from bifrost.addresses.s7 import S7Address, parse_s7_address
from bifrost.drivers import _options
from bifrost.drivers.base import Driver, ReadResult
from bifrost.exceptions import (
    AddressError,
    BifrostError,
    ConfigurationError,
    ConnectionError,
    ProtocolError,
    TimeoutError,
    WriteNotAllowed,
)
from bifrost.model import DataType, Quality, Tag
from bifrost.planning import CostModel, Item, Packet, Span, coalesce, pack
from bifrost.tags import TagTable

__all__ = ["S7Driver", "S7Options", "tags_from_tia"]

_snap7_log = logging.getLogger("snap7")
if _snap7_log.level == logging.NOTSET:
    # snap7 logs every refused item and dropped connection as a warning; bifrost turns
    # those into exceptions and quality codes instead. Users can set the level back.
    _snap7_log.setLevel(logging.CRITICAL)

MAX_ITEMS = 20
"""Most items one S7 multi-item read carries (the protocol's limit, as in snap7)."""
_REPLY_HEADER = 14  # S7 ack-data header (12) + function and item count (2)
_ITEM_HEADER = 4  # return code, transport size, bit length
_ADDRESS_SPEC = 12  # one item's address specification in a request
_AREA_NAMES = {"DB": "DB", "M": "MK", "I": "PE", "Q": "PA"}
_RETURN_CODE = re.compile(r"\(0x([0-9a-fA-F]{2})\)")
_ADDRESS_START = re.compile(r"\s*%?(DB\d+\.DB[XBWD]|[MIEQA][XBWD]?\d)", re.IGNORECASE)
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True)
class S7Options:
    """Connection settings, from the URL and keyword arguments.

    ``item_cost`` and ``byte_cost`` are the planner's costs relative to one request
    (see :class:`bifrost.planning.CostModel`).
    """

    host: str = "127.0.0.1"
    port: int = 102
    rack: int = 0
    slot: int = 1
    timeout: float = 3.0
    item_cost: float = 0.2
    byte_cost: float = 0.0005
    multi_item: bool = True

    @property
    def endpoint(self) -> str:
        """``host:port``."""
        return f"{self.host}:{self.port}"

    @property
    def cost(self) -> CostModel:
        """The planner's cost model."""
        return CostModel(request=1.0, item=self.item_cost, byte=self.byte_cost)

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> S7Options:
        """Parse ``s7://host:port?rack=0&slot=1``; keyword arguments override the query.

        Raises
        ------
        ConfigurationError
            For another scheme, unknown options or values no PLC accepts.
        """
        parts = urlsplit(url)
        if parts.scheme.lower() != "s7":
            raise ConfigurationError(f"{url!r} is not an s7:// URL")
        try:
            port = parts.port
        except ValueError as exc:
            raise ConfigurationError(f"{url!r}: {exc}") from None
        values: dict[str, Any] = {
            "host": parts.hostname or "127.0.0.1",
            "port": port if port is not None else 102,
        }
        converters: dict[str, Callable[[Any], Any]] = {
            "rack": int,
            "slot": int,
            "timeout": float,
            "item_cost": float,
            "byte_cost": float,
            "multi_item": _options.flag,
        }
        settings = {**_options.query(parts.query), **kwargs}
        values.update(_options.convert(settings, converters, "S7"))
        options = cls(**values)
        options.validate()
        return options

    def validate(self) -> None:
        """Raise ConfigurationError for values no PLC accepts."""
        # The remote TSAP packs the rack into 3 bits and the slot into 5.
        if not 0 <= self.rack <= 7:
            raise ConfigurationError(f"S7 rack {self.rack} is outside 0-7")
        if not 0 <= self.slot <= 31:
            raise ConfigurationError(f"S7 slot {self.slot} is outside 0-31")
        if not 0 < self.port < 65536:
            raise ConfigurationError(f"port {self.port} is outside 1-65535")
        if not self.timeout > 0:
            raise ConfigurationError(f"timeout must be positive, got {self.timeout}")
        if self.item_cost < 0 or self.byte_cost < 0:
            raise ConfigurationError("item_cost and byte_cost must be >= 0")


@dataclass(frozen=True, slots=True)
class _Group:
    """Tags decoded together: one S7 type gathered from the byte image."""

    s7type: str
    dtype: DataType
    size: int
    length: int
    positions: npt.NDArray[np.intp]
    scale: npt.NDArray[np.float64] | None
    offset: npt.NDArray[np.float64] | None


@dataclass(frozen=True, slots=True)
class _Layout:
    """A plan bound to one PDU size: the requests and where each tag lands in the image."""

    packets: tuple[Packet, ...]
    span_base: dict[Span, int]
    size: int
    starts: npt.NDArray[np.intp]  # image index of each tag's first byte


@dataclass(frozen=True, slots=True)
class _ReadPlan:
    tags: tuple[Tag, ...]
    addresses: tuple[S7Address, ...]
    items: tuple[Item, ...]
    groups: tuple[_Group, ...]
    bits: npt.NDArray[np.uint8]
    layouts: dict[int, _Layout] = field(default_factory=dict, compare=False)


@dataclass(frozen=True, slots=True)
class _Write:
    tag: Tag
    address: S7Address
    data: bytes


@dataclass(slots=True)
class _Failure:
    members: tuple[int, ...]
    message: str
    code: int | None


def tags_from_tia(path: str | os.PathLike[str]) -> TagTable:
    """Import the tags of a TIA Portal XML export (a data block's tag list).

    Uses python-snap7's TIA reader; each tag's absolute offset becomes an S7 address,
    e.g. ``DB1.DBD4:REAL``. Tags of types bifrost does not decode are skipped.

    Raises
    ------
    ConfigurationError
        If the file cannot be read or holds no usable tags.
    """
    from snap7.tags import load_tia_xml

    try:
        loaded = load_tia_xml(os.fspath(path))
    except Exception as exc:  # the reader's own errors (XML, missing fields) end here
        raise ConfigurationError(f"cannot read the TIA Portal export {path!s}: {exc}") from None
    tags = []
    for name, tia in loaded.items():
        address = _address_of_snap7_tag(tia)
        if address is not None:
            tags.append(Tag(name=str(name), address=address))
    if not tags:
        raise ConfigurationError(f"the TIA Portal export {path!s} has no tags bifrost can read")
    return TagTable(tags)


def _address_of_snap7_tag(tia: Any) -> str | None:
    area = {"DB": f"DB{tia.db_number}.DB", "MK": "M", "PE": "I", "PA": "Q"}.get(
        getattr(tia.area, "name", "")
    )
    datatype = str(tia.datatype).upper()
    if area is None or getattr(tia, "count", 1) != 1:
        return None
    if datatype == "BOOL":
        return f"{area}{'X' if area.startswith('DB') else ''}{tia.byte_offset}.{tia.bit}"
    widths = {1: "B", 2: "W", 4: "D", 8: "D"}
    text = f"{area}B{tia.byte_offset}:{datatype}"
    if not datatype.startswith("STRING"):
        from bifrost.addresses.s7 import S7_TYPES

        if datatype not in S7_TYPES:
            return None
        text = f"{area}{widths[S7_TYPES[datatype][1]]}{tia.byte_offset}:{datatype}"
    try:
        parse_s7_address(text)
    except AddressError:
        return None
    return text


class S7Driver(Driver):
    """Classic S7 driver (python-snap7 client on a dedicated worker thread)."""

    protocol: ClassVar[str] = "s7"

    def __init__(self, options: S7Options) -> None:
        self.options = options
        self._client: Any = None
        self._executor: concurrent.futures.ThreadPoolExecutor | None = None
        self._pdu = 0
        self._connect_lock: asyncio.Lock | None = None

    @property
    def endpoint(self) -> str:
        """``host:port`` of the PLC."""
        return self.options.endpoint

    @property
    def connected(self) -> bool:
        """Whether the client's connection is up (as of its last request)."""
        client = self._client
        # Only the cached flag: snap7's get_connected() peeks at the socket, which would
        # race with a request in flight on the worker thread.
        return bool(client is not None and client.connected)

    @property
    def pdu_size(self) -> int:
        """PDU size negotiated with the PLC (0 before the first connect)."""
        return self._pdu

    # -- the worker thread ----------------------------------------------------------------
    def _worker(self) -> concurrent.futures.ThreadPoolExecutor:
        if self._executor is None:
            name = f"bifrost-s7-{self.options.host}:{self.options.port}"
            self._executor = concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix=name)
        return self._executor

    async def _run(self, fn: Callable[..., _T], *args: Any) -> _T:
        """Run a blocking snap7 call on the worker; translate what it raises."""
        loop = asyncio.get_running_loop()
        try:
            return await loop.run_in_executor(self._worker(), fn, *args)
        except BifrostError:
            raise
        except Exception as exc:
            raise await self._translate(exc) from None

    async def _translate(self, exc: Exception) -> BifrostError:
        from snap7.error import S7ConnectionError, S7ProtocolError, S7TimeoutError

        text = str(exc) or type(exc).__name__
        what = f"the S7 PLC at {self.endpoint}"
        # The connection's state is unknown after any of these: start afresh next time.
        await self.close()
        if isinstance(exc, S7TimeoutError | socket.timeout | builtins.TimeoutError):
            return TimeoutError(f"no answer from {what} within {self.options.timeout:g} s")
        if isinstance(exc, S7ConnectionError | OSError):
            return ConnectionError(f"lost the connection to {what}: {text}")
        if isinstance(exc, S7ProtocolError):
            return ProtocolError(f"{what} answered with an error: {text}", code=_code(text))
        return ConnectionError(f"unexpected failure talking to {what}: {text}")

    # -- transport ------------------------------------------------------------------------
    def _connect_blocking(self) -> tuple[Any, int]:
        import snap7

        client = snap7.Client()
        client.connect(self.options.host, self.options.rack, self.options.slot, self.options.port)
        connection = client.connection
        if connection is not None and connection.socket is not None:
            # snap7 waits 5 s per receive by default; the user's timeout applies instead.
            connection.timeout = self.options.timeout
            connection.socket.settimeout(self.options.timeout)
        # One exact multi-item request per packet: our planner merged and packed already,
        # and the PLC negotiated one request in flight, so no pipelining either.
        client.multi_read_max_gap = -1
        client.max_parallel = 1
        return client, int(client.pdu_length)

    async def connect(self) -> None:
        """Connect to the PLC (ISO-on-TCP, then S7 setup communication)."""
        if self._connect_lock is None:
            self._connect_lock = asyncio.Lock()
        async with self._connect_lock:
            if self.connected:
                return
            await self.close()
            loop = asyncio.get_running_loop()
            what = (
                f"the S7 PLC at {self.endpoint} (rack {self.options.rack}, "
                f"slot {self.options.slot})"
            )
            future = loop.run_in_executor(self._worker(), self._connect_blocking)
            try:
                self._client, self._pdu = await asyncio.wait_for(future, self.options.timeout)
            except builtins.TimeoutError:
                # The worker may stay blocked in snap7's own connect timeout: abandon it
                # (it ends by itself) so the next attempt gets a fresh thread.
                self._abandon_worker()
                raise TimeoutError(
                    f"could not connect to {what} within {self.options.timeout:g} s"
                ) from None
            except Exception as exc:
                await self.close()
                text = str(exc) or type(exc).__name__
                raise ConnectionError(
                    f"could not connect to {what}: {text}; is the PLC on, the port right and "
                    "PUT/GET access enabled?"
                ) from None

    def _abandon_worker(self) -> None:
        executor, self._executor = self._executor, None
        self._client = None
        if executor is not None:
            executor.shutdown(wait=False, cancel_futures=True)

    async def close(self) -> None:
        """Disconnect and stop the worker thread (idempotent)."""
        client, self._client = self._client, None
        executor = self._executor
        if executor is None:
            return
        if client is not None:
            future = asyncio.get_running_loop().run_in_executor(executor, _disconnect, client)
            try:
                await asyncio.wait_for(future, self.options.timeout)
            except builtins.TimeoutError:
                self._abandon_worker()
                return
        self._executor = None
        # The worker is idle now, so this returns at once and no thread is left behind.
        executor.shutdown(wait=True)

    async def _ensure_connected(self) -> None:
        if not self.connected:
            await self.connect()

    # -- addresses ------------------------------------------------------------------------
    def is_address(self, text: str) -> bool:
        """Whether ``text`` starts like an S7 address (``DB1.DBD4``, ``MW10``, ``I0.0``...)."""
        return _ADDRESS_START.match(text) is not None

    def _address(self, tag: Tag) -> S7Address:
        try:
            return parse_s7_address(tag.address)
        except AddressError as exc:
            if tag.name != tag.address:
                raise AddressError(
                    exc.address, exc.position, f"{exc.reason} (tag {tag.name!r})", "S7"
                ) from None
            raise

    def describe(self, tag: Tag) -> dict[str, Any]:
        """Data type, S7 type, area, data block, byte offset and bit of a tag."""
        address = self._address(tag)
        dtype = (
            f"string[{address.chars}]" if address.dtype is DataType.STRING else address.dtype.value
        )
        s7type = f"STRING[{address.length}]" if address.s7type == "STRING" else address.s7type
        return {
            "dtype": dtype,
            "s7type": s7type,
            "area": address.area,
            "db": address.db if address.area == "DB" else None,
            "offset": address.offset,
            "bit": address.bit if address.is_bit else None,
            "bytes": address.size,
        }

    # -- reading --------------------------------------------------------------------------
    def compile_read(self, tags: Sequence[Tag]) -> _ReadPlan:
        """Validate the addresses and prepare the vectorised decoding (no I/O).

        The requests themselves depend on the PDU size the PLC negotiates; they are laid
        out on first use for each PDU size and kept with the plan.
        """
        addresses = tuple(self._address(tag) for tag in tags)
        items = tuple(Item((a.area, a.db), a.offset, a.end) for a in addresses)
        buckets: dict[tuple[str, int], list[int]] = defaultdict(list)
        for i, a in enumerate(addresses):
            buckets[(a.s7type, a.length)].append(i)
        groups = []
        for (s7type, length), members in buckets.items():
            first = addresses[members[0]]
            dtype = first.dtype
            scaled = (dtype.is_integer or dtype.is_float) and any(
                tags[i].is_scaled for i in members
            )
            groups.append(
                _Group(
                    s7type,
                    dtype,
                    first.size,
                    length,
                    np.asarray(members, dtype=np.intp),
                    np.array([tags[i].scale for i in members]) if scaled else None,
                    np.array([tags[i].offset for i in members]) if scaled else None,
                )
            )
        bits = np.array([a.bit for a in addresses], dtype=np.uint8)
        return _ReadPlan(tuple(tags), addresses, items, tuple(groups), bits)

    def _limits(self, pdu: int) -> dict[str, int]:
        return {
            "max_span": pdu - _REPLY_HEADER - _ITEM_HEADER,
            "budget": pdu - _REPLY_HEADER,
            "max_items": (
                min(MAX_ITEMS, (pdu - _REPLY_HEADER) // _ADDRESS_SPEC)
                if self.options.multi_item
                else 1
            ),
        }

    def explain(self, plan: _ReadPlan) -> list[dict[str, Any]]:
        """One row per S7 request at the negotiated PDU size (480 before connecting)."""
        rows = []
        for packet in self.layout(plan, self._pdu or 480).packets:
            rows.append(
                {
                    "request": "read_multi_vars" if len(packet.spans) > 1 else "read_area",
                    "items": len(packet.spans),
                    "ranges": ", ".join(
                        f"{_area_name(span.key)}@{span.start}+{span.count}" for span in packet.spans
                    ),
                    "bytes": sum(span.count for span in packet.spans),
                    "tags": sum(len(span.members) for span in packet.spans),
                }
            )
        return rows

    def layout(self, plan: _ReadPlan, pdu: int) -> _Layout:
        """The requests of ``plan`` for a PDU size (cached in the plan)."""
        cached = plan.layouts.get(pdu)
        if cached is not None:
            return cached
        packets = pack(
            plan.items,
            **self._limits(pdu),
            item_overhead=_ITEM_HEADER,
            align=2,
            cost=self.options.cost,
        )
        span_base: dict[Span, int] = {}
        starts = np.zeros(len(plan.items), dtype=np.intp)
        size = 0
        for packet in packets:
            for span in packet.spans:
                span_base[span] = size
                for m in span.members:
                    starts[m] = size + plan.items[m].start - span.start
                size += span.count
        layout = _Layout(tuple(packets), span_base, size, starts)
        plan.layouts[pdu] = layout
        return layout

    async def execute_read(self, plan: _ReadPlan) -> ReadResult:
        """Send the planned requests (in one call onto the worker) and decode the replies."""
        return await self._execute(plan, None)

    async def execute_read_at(self, plan: _ReadPlan, due: float) -> ReadResult:
        """Like :meth:`execute_read`; the worker itself waits until monotonic ``due``."""
        return await self._execute(plan, due)

    async def _execute(self, plan: _ReadPlan, due: float | None) -> ReadResult:
        await self._ensure_connected()
        layout = self.layout(plan, self._pdu)
        image = np.zeros(layout.size, dtype=np.uint8)
        failures, started = await self._run(
            self._read_blocking_at, self._client, plan, layout, image, due
        )
        timestamp = time.time_ns()
        quality = np.zeros(len(plan.tags), dtype=np.uint8)
        errors = []
        for failure in failures:
            quality[list(failure.members)] = Quality.BAD_PROTOCOL
            names = [plan.tags[m].name for m in failure.members]
            shown = ", ".join(repr(n) for n in names[:5]) + (" …" if len(names) > 5 else "")
            errors.append(
                ProtocolError(
                    f"the S7 PLC at {self.endpoint} refused reading "
                    f"{plan.addresses[failure.members[0]]} for tag"
                    f"{'s' if len(names) > 1 else ''} {shown}: {failure.message}",
                    code=failure.code,
                    tags=names,
                )
            )
        columns = [(g.positions, _decode(g, image, layout.starts, plan.bits)) for g in plan.groups]
        return ReadResult(
            plan.tags,
            columns,
            quality,
            np.full(len(plan.tags), timestamp, dtype=np.int64),
            errors,
            started=started,
        )

    def _read_blocking_at(
        self,
        client: Any,
        plan: _ReadPlan,
        layout: _Layout,
        image: npt.NDArray[np.uint8],
        due: float | None,
    ) -> tuple[list[_Failure], float]:
        if due is not None and (delay := due - time.monotonic()) > 0:
            time.sleep(delay)
        started = time.monotonic()
        return self._read_blocking(client, plan, layout, image), started

    def _read_blocking(
        self, client: Any, plan: _ReadPlan, layout: _Layout, image: npt.NDArray[np.uint8]
    ) -> list[_Failure]:
        """Runs on the worker: every request of the layout, filling ``image``."""
        failures: list[_Failure] = []
        packets = layout.packets
        i = 0
        while i < len(packets):
            run = _adjacent_run(packets, i)
            i += len(run)
            if len(run) > 1:
                # Back-to-back full requests over one range: one area read, which snap7
                # splits at the PDU itself, saves its per-call overhead on every request.
                first, last = run[0].spans[0], run[-1].spans[0]
                whole = Span(first.key, first.start, last.end - first.start, ())
                refused = _try_read(client, (whole,), {whole: layout.span_base[first]}, image)
                if refused is None:
                    continue
            for packet in run:
                refused = _try_read(client, packet.spans, layout.span_base, image)
                if refused is not None:
                    self._read_apart(client, plan, packet.spans, layout, image, failures, refused)
        return failures

    def _read_apart(
        self,
        client: Any,
        plan: _ReadPlan,
        spans: tuple[Span, ...],
        layout: _Layout,
        image: npt.NDArray[np.uint8],
        failures: list[_Failure],
        error: Exception,
    ) -> None:
        """A refused request: read its spans, then their tags, alone to find the bad ones.

        A merged span may cover bytes past the end of a data block, or one item may name
        a block that does not exist; the other tags must still read.
        """
        for span in spans:
            if len(spans) > 1:
                refused = _try_read(client, (span,), layout.span_base, image)
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
                    else _try_read(client, (part,), {part: base + run.start - span.start}, image)
                )
                if refused is None:
                    continue
                if len(members) == 1:
                    failures.append(_Failure(members, str(refused), _code(str(refused))))
                    continue
                for m in members:
                    own = self._own(plan, m)
                    bad = _try_read(client, (own,), {own: base + own.start - span.start}, image)
                    if bad is not None:
                        failures.append(_Failure((m,), str(bad), _code(str(bad))))

    @staticmethod
    def _own(plan: _ReadPlan, member: int) -> Span:
        item = plan.items[member]
        return Span(item.key, item.start, item.end - item.start, (member,))

    # -- writing --------------------------------------------------------------------------
    def compile_write(self, items: Sequence[tuple[Tag, Any]]) -> list[_Write]:
        """Check every value against its tag's type and encode it; no I/O."""
        writes = []
        for tag, value in items:
            address = self._address(tag)
            if address.area == "I":
                raise WriteNotAllowed(
                    f"tag {tag.name!r} ({tag.address}) is a process input: the PLC overwrites "
                    "the input image every scan, so bifrost does not write it"
                )
            raw = codec.to_raw(
                tag.name,
                value,
                address.dtype,
                scale=tag.scale,
                offset=tag.offset,
                length=address.chars,
            )
            writes.append(_Write(tag, address, _encode(address, raw)))
        return writes

    async def execute_write(self, plan: list[_Write]) -> None:
        """Send the writes in order (one call onto the worker); stop at the first refusal."""
        if not plan:
            return
        await self._ensure_connected()
        failure = await self._run(_write_blocking, self._client, plan)
        if failure is not None:
            write, text = failure
            raise ProtocolError(
                f"the S7 PLC at {self.endpoint} refused writing tag {write.tag.name!r} "
                f"({write.address}): {text}",
                code=_code(text),
                tags=[write.tag.name],
            )

    # -- identification -------------------------------------------------------------------
    async def info(self) -> dict[str, Any]:
        """CPU identification, order code, firmware and data blocks, as far as offered."""
        await self._ensure_connected()
        result: dict[str, Any] = {
            "protocol": "s7",
            "endpoint": self.endpoint,
            "rack": self.options.rack,
            "slot": self.options.slot,
            "pdu_size": self._pdu,
            "vendor": "Siemens",
        }
        result.update(await self._run(_info_blocking, self._client))
        return result


# -- blocking helpers, run on the worker thread ----------------------------------------------
def _disconnect(client: Any) -> None:
    try:
        client.disconnect()
    except Exception:  # closing a broken connection must not fail the close
        logging.getLogger("bifrost.s7").debug("disconnect failed", exc_info=True)


def _area(name: str) -> Any:
    from snap7.type import Area

    return Area[_AREA_NAMES[name]]


def _key(span: Span) -> tuple[str, int]:
    area, db = cast(tuple[str, int], span.key)
    return area, db


def _read_packet(
    client: Any, spans: tuple[Span, ...], bases: dict[Span, int], image: npt.NDArray[np.uint8]
) -> None:
    if len(spans) == 1:
        span = spans[0]
        area, db = _key(span)
        data = client.read_area(_area(area), db, span.start, span.count)
        replies = [data]
    else:
        requests = []
        for span in spans:
            area, db = _key(span)
            requests.append(
                {"area": _area(area), "db_number": db, "start": span.start, "size": span.count}
            )
        _, replies = client.read_multi_vars(requests)
    for span, data in zip(spans, replies, strict=True):
        if len(data) != span.count:
            from snap7.error import S7ProtocolError

            raise S7ProtocolError(f"short reply: {len(data)} of {span.count} bytes")
        base = bases[span]
        image[base : base + span.count] = np.frombuffer(bytes(data), dtype=np.uint8)


def _adjacent_run(packets: tuple[Packet, ...], first: int) -> tuple[Packet, ...]:
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


def _try_read(
    client: Any, spans: tuple[Span, ...], bases: dict[Span, int], image: npt.NDArray[np.uint8]
) -> Exception | None:
    """Read; return the device's refusal instead of raising it (link failures still raise)."""
    from snap7.error import S7ProtocolError

    try:
        _read_packet(client, spans, bases, image)
    except S7ProtocolError as exc:
        if _is_link_failure(exc):
            raise
        return exc
    return None


def _write_blocking(client: Any, plan: list[_Write]) -> tuple[_Write, str] | None:
    from snap7.error import S7ProtocolError
    from snap7.type import WordLen

    for write in plan:
        address = write.address
        area = _area(address.area)
        try:
            if address.is_bit:
                # A bit-level write: the PLC changes only this bit, not its neighbours.
                start = address.offset * 8 + address.bit
                client.write_area(area, address.db, start, bytearray(write.data), WordLen.Bit)
            else:
                client.write_area(area, address.db, address.offset, bytearray(write.data))
        except S7ProtocolError as exc:
            if _is_link_failure(exc):
                raise
            return write, str(exc)
    return None


def _info_blocking(client: Any) -> dict[str, Any]:
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
        if _is_link_failure(exc):
            raise
    try:
        order = client.get_order_code()
        out.update(order_code=text(order.OrderCode), firmware=f"{order.V1}.{order.V2}.{order.V3}")
    except S7Error as exc:
        if _is_link_failure(exc):
            raise
    try:
        blocks = client.list_blocks()
        out["blocks"] = {
            name: int(getattr(blocks, f"{name}Count"))
            for name in ("OB", "FB", "FC", "SFB", "SFC", "DB", "SDB")
        }
        out["data_blocks"] = sorted(int(n) for n in client.list_blocks_of_type(Block.DB, 4096))
    except S7Error as exc:
        if _is_link_failure(exc):
            raise
    try:
        out["cpu_state"] = str(client.get_cpu_state())
    except S7Error as exc:
        if _is_link_failure(exc):
            raise
    return out


def _is_link_failure(exc: Exception) -> bool:
    """Whether an error means the connection is gone rather than a refused request."""
    from snap7.error import S7ConnectionError, S7PacketLostError, S7StalePacketError, S7TimeoutError

    return isinstance(
        exc, S7ConnectionError | S7TimeoutError | S7PacketLostError | S7StalePacketError
    )


def _code(text: str) -> int | None:
    match = _RETURN_CODE.search(text)
    return int(match.group(1), 16) if match else None


# -- encoding and decoding ---------------------------------------------------------------------
def _encode(address: S7Address, raw: Any) -> bytes:
    if address.is_bit:
        return b"\x01" if raw else b"\x00"
    if address.s7type == "CHAR":
        return str(raw).encode("latin-1").ljust(1, b"\x00")
    if address.s7type == "STRING":
        data = str(raw).encode("latin-1")
        return bytes((address.length, len(data))) + data.ljust(address.length, b"\x00")
    big_endian = np.array([raw], dtype=address.dtype.numpy_dtype.newbyteorder(">"))
    return big_endian.tobytes()


def _decode(
    group: _Group,
    image: npt.NDArray[np.uint8],
    starts: npt.NDArray[np.intp],
    bits: npt.NDArray[np.uint8],
) -> npt.NDArray[Any]:
    first = starts[group.positions]
    if group.dtype is DataType.BOOL:
        return ((image[first] >> bits[group.positions]) & 1).astype(np.bool_)
    if group.dtype is DataType.STRING:
        out = np.empty(len(first), dtype=object)
        for i, start in enumerate(first.tolist()):
            if group.s7type == "CHAR":
                out[i] = bytes(image[start : start + 1]).decode("latin-1")
                continue
            # Header: maximum length, current length; a PLC may report a current length
            # beyond the maximum while a string is half-initialised: trust the maximum.
            current = min(int(image[start + 1]), int(image[start]), group.length)
            out[i] = bytes(image[start + 2 : start + 2 + current]).decode("latin-1")
        return out
    index = first[:, None] + np.arange(group.size, dtype=np.intp)[None, :]
    raw = np.ascontiguousarray(image[index])
    target = group.dtype.numpy_dtype
    values = raw.view(target.newbyteorder(">")).reshape(len(first)).astype(target)
    if group.scale is not None and group.offset is not None:
        return values * group.scale + group.offset
    return values


def _area_name(key: Any) -> str:
    # Span keys are (area, db number); shown the way S7 engineers write areas.
    area, number = cast(tuple[str, int], key)
    return f"DB{number}" if area == "DB" else area

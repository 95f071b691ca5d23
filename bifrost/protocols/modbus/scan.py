"""The register scanner: which addresses a Modbus device answers, found with few reads.

``plc.scan(table="hr", start=0, stop=65535)`` reads (never writes) to find, per table,

- the **readable ranges**, exact to the address at each boundary;
- the **largest batch** the device accepts in one read (below the protocol's 125
  registers / 2000 bits, some devices answer exception 3, ILLEGAL DATA VALUE, or nothing
  to larger requests);
- over TCP, whether the device answers **pipelined** requests (several in flight) right.

How it keeps the request count low: one read tests every address it covers, so a
readable stretch costs one request per batch, and a read that fails with exception 2
(ILLEGAL DATA ADDRESS) is halved until the first unreadable address is found
(``log2(batch)`` reads). That address is then read alone: if it answers, the device
refused the *size* of the read, not its addresses (some answer exception 2 for that),
which bounds the batch instead. Inside an unreadable stretch only single addresses tell
anything, so the scanner steps over it with reads of one address at distances doubling
up to ``resolution`` (at addresses on a ``resolution`` grid, where devices tend to start
their blocks), then halves back to the first readable address. Readable islands
narrower than ``resolution`` inside a hole may be missed; every boundary reported is
exact. The batch is searched by halving the count the same way, in place, while the
walk goes on; if no read over a stretch known to be readable proved the limit, one last
read on the longest readable range does.

A reply is interpreted as the Modbus specification says (exception 2: an address the
device does not have; exception 3 to a read: a quantity it does not accept), with the
two deviations seen in the field handled as above: exception 2 for a too-large read, and
silence (a timeout) for one. Exception 3 or silence to a read of one address, or of a
count the device answered before, marks an unreadable address.

The pipelining probe sends bursts of reads whose counts all differ, so that a reply
carried under another request's transaction id fails the byte-count check instead of
passing for the right answer; a burst must come back whole, each reply under its own
id, with no duplicate and no drop.
"""

from __future__ import annotations

import builtins
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bifrost.exceptions import ConfigurationError, ConnectionError, ProtocolError, TimeoutError
from bifrost.protocols.modbus.options import MAX_BITS, MAX_REGISTERS
from bifrost.protocols.modbus.pdu import Reply, ReplyMismatch, Request, read_request

if TYPE_CHECKING:
    import os

    import pandas as pd

    from bifrost.protocols.modbus.quirks import Quirks

__all__ = [
    "LIMITS",
    "TABLES",
    "PipelineProbe",
    "ScanResult",
    "TableScan",
    "check_scan_arguments",
    "probe_pipelining",
    "scan_device",
    "scan_table",
]

TABLES = ("hr", "ir", "co", "di")
LIMITS = {"hr": MAX_REGISTERS, "ir": MAX_REGISTERS, "co": MAX_BITS, "di": MAX_BITS}
MAX_ADDRESS = 65535

# What a probe's reply says about the addresses it covered.
_OK, _ADDRESS, _VALUE, _SILENT, _FUNCTION = "ok", "address", "value", "silent", "function"

Ask = Callable[[Request], Awaitable[Reply]]
"""Send one request and return its checked reply (raises TimeoutError on silence)."""

Burst = Callable[[list[Request]], Awaitable[list[Reply | BaseException]]]
"""Send requests together (all in flight) and return each one's reply or error."""


@dataclass(slots=True)
class TableScan:
    """What the scan found in one table (addresses inclusive)."""

    table: str
    first: int
    last: int
    readable: list[tuple[int, int]] = field(default_factory=list)
    unreadable: list[tuple[int, int]] = field(default_factory=list)
    max_batch: int = 0  # the largest count read in one request (0: nothing readable)
    batch_limit_proven: bool = False  # a larger read was refused over readable addresses
    requests: int = 0
    supported: bool = True  # False when the device answered ILLEGAL FUNCTION
    exceptions: dict[str, int] = field(default_factory=dict)  # what refusals looked like


@dataclass(frozen=True, slots=True)
class PipelineProbe:
    """How a device answered bursts of requests in flight at once."""

    depth: int  # requests in flight per burst
    rounds: int
    ok: bool
    reason: str = ""  # what went wrong, when not ok
    requests: int = 0


def check_scan_arguments(
    table: str | Sequence[str], start: int, stop: int, resolution: int, pipeline: int
) -> tuple[str, ...]:
    """The tables to scan, after checking every argument (before any I/O)."""
    tables = (table,) if isinstance(table, str) else tuple(table)
    if not tables:
        raise ConfigurationError("scan(table=...) needs at least one of hr, ir, co, di")
    for name in tables:
        if name not in TABLES:
            raise ConfigurationError(
                f"scan: unknown Modbus table {name!r}; use one of hr, ir, co, di "
                "(holding and input registers, coils, discrete inputs)"
            )
    for name, value in (("start", start), ("stop", stop)):
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_ADDRESS:
            raise ConfigurationError(
                f"scan: {name}={value!r} is not a Modbus address 0-{MAX_ADDRESS}"
            )
    if stop < start:
        raise ConfigurationError(f"scan: stop={stop} is below start={start} (stop is inclusive)")
    if isinstance(resolution, bool) or not isinstance(resolution, int) or resolution < 1:
        raise ConfigurationError(f"scan: resolution={resolution!r} must be a whole number >= 1")
    if isinstance(pipeline, bool) or not isinstance(pipeline, int) or not 0 <= pipeline <= 64:
        raise ConfigurationError(
            f"scan: pipeline={pipeline!r} must be 0 (no probe) or 2-64 requests in flight"
        )
    return tables


class _TableScanner:
    """The walk over one table; every read goes through :meth:`probe`."""

    def __init__(self, ask: Ask, unit: int, table: str, first: int, last: int, resolution: int):
        self.ask = ask
        self.unit = unit
        self.result = TableScan(table, first, last)
        self.limit = LIMITS[table]
        self.resolution = resolution
        self.lo = 0  # the largest count answered
        self.hi = self.limit  # the largest count not known to be refused
        self.refused: list[tuple[int, int]] = []  # (address, count) refused for size

    async def probe(self, address: int, count: int) -> str:
        result = self.result
        result.requests += 1
        request = read_request(self.unit, result.table, address, count)
        try:
            reply = await self.ask(request)
        except ReplyMismatch as exc:
            raise ProtocolError(
                f"scan stopped: bad Modbus reply from unit {self.unit} "
                f"{request.describe()}: {exc.reason}"
            ) from None
        except TimeoutError:
            # Only the connection (closed on a timeout, reopened by the next read) is
            # lost: silence is an answer here.
            self._count("timeout")
            return _SILENT
        code = reply.exception
        if code is None:
            self.lo = max(self.lo, count)
            return _OK
        self._count(f"exception {code}")
        if code == 1:
            return _FUNCTION
        return {2: _ADDRESS, 3: _VALUE}.get(code, _ADDRESS)

    def _count(self, what: str) -> None:
        exceptions = self.result.exceptions
        exceptions[what] = exceptions.get(what, 0) + 1

    def too_large(self, outcome: str, address: int, count: int) -> bool:
        """Whether a refusal says the count, not an address, was wrong (and note it)."""
        if outcome in (_VALUE, _SILENT) and count > max(self.lo, 1):
            self.hi = min(self.hi, count - 1)
            self.refused.append((address, count))
            return True
        return False

    def next_count(self, room: int) -> int:
        # Halving between the largest count answered and the smallest refused, so that
        # the batch is found in log2(limit) reads that also move the walk on.
        hi = self.hi
        count = hi if self.lo >= hi or hi == self.limit else (self.lo + hi + 1) // 2
        return max(1, min(count, room))

    async def run(self) -> TableScan:
        result = self.result
        p, last = result.first, result.last
        readable_from: int | None = None
        while p <= last:
            count = self.next_count(last + 1 - p)
            outcome = await self.probe(p, count)
            if outcome == _FUNCTION:
                result.supported = False
                return self._finish(None)
            if outcome == _OK:
                readable_from = p if readable_from is None else readable_from
                p += count
                continue
            if self.too_large(outcome, p, count):
                continue
            hole, until = await self._first_unreadable(p, p + count)
            if hole is None:  # the window answered piecewise: it was its size
                readable_from = p if readable_from is None else readable_from
                p = until
                continue
            if hole > p:
                readable_from = p if readable_from is None else readable_from
            if readable_from is not None:
                result.readable.append((readable_from, hole - 1))
                readable_from = None
            after = await self._next_readable(hole)
            result.unreadable.append((hole, after - 1))
            p = after
        return self._finish(readable_from)

    def _finish(self, readable_from: int | None) -> TableScan:
        result = self.result
        if readable_from is not None:
            result.readable.append((readable_from, result.last))
        result.max_batch = self.lo
        return result

    async def _first_unreadable(self, start: int, end: int) -> tuple[int | None, int]:
        """The first address of ``[start, end)`` the device refuses (that window failed).

        Returns ``(hole, until)``: ``[start, until)`` answered, and ``hole`` (``until``)
        did not. ``hole`` is None when every part of the window answered on its own,
        its last address alone too: the device refused the read's size (with exception
        2), so the batch is below the smallest window it refused.
        """
        q = start  # [start, q) answered
        smallest = (start, end - start)  # the smallest window refused
        single = False  # whether q was refused when read alone
        while end - q > 1:
            count = min((end - q + 1) // 2, self.hi)
            outcome = await self.probe(q, count)
            if outcome == _OK:
                q += count
            elif outcome == _FUNCTION or not self.too_large(outcome, q, count):
                end = q + count
                smallest = (q, count)
                single = count == 1
        if not single and await self.probe(q, 1) == _OK:
            address, count = smallest
            if count > 1:
                self.hi = min(self.hi, count - 1)
                self.refused.append((address, count))
            return None, q + 1
        return q, q

    async def _next_readable(self, hole: int) -> int:
        """The first readable address after ``hole`` (``last + 1`` if none was found)."""
        last = self.result.last
        bad, step = hole, 1
        while True:
            if bad >= last:
                return last + 1
            x = bad + step
            if step >= self.resolution:
                x -= x % self.resolution  # the grid: blocks tend to start on round addresses
                if x <= bad:
                    x += self.resolution
            x = min(x, last)
            if await self.probe(x, 1) == _OK:
                break
            bad, step = x, min(2 * step, self.resolution)
        good = x
        while good - bad > 1:
            mid = (bad + good) // 2
            if await self.probe(mid, 1) == _OK:
                good = mid
            else:
                bad = mid
        return good

    async def prove_batch(self) -> None:
        """Make sure the batch found is the device's, not an artefact of a hole."""
        result = self.result
        if self.lo >= self.limit or not result.readable:
            result.batch_limit_proven = self.lo >= self.limit
            return
        # A refusal proves the limit if every address it covered is readable.
        for address, count in self.refused:
            if count == self.lo + 1 and _inside(result.readable, address, address + count - 1):
                result.batch_limit_proven = True
                return
        first, last = max(result.readable, key=lambda r: r[1] - r[0])
        length = last - first + 1
        self.hi = min(self.limit, length)
        while self.lo < self.hi:
            count = (self.lo + self.hi + 1) // 2
            outcome = await self.probe(first, count)
            if outcome != _OK:
                self.hi = count - 1
        result.max_batch = self.lo
        result.batch_limit_proven = self.lo < min(self.limit, length)


def _inside(ranges: list[tuple[int, int]], first: int, last: int) -> bool:
    return any(a <= first and last <= b for a, b in ranges)


async def scan_table(
    ask: Ask, unit: int, table: str, first: int, last: int, resolution: int
) -> TableScan:
    """Scan ``table`` from ``first`` to ``last`` (inclusive) through ``ask``; never writes."""
    scanner = _TableScanner(ask, unit, table, first, last, resolution)
    result = await scanner.run()
    if result.supported:
        await scanner.prove_batch()
    return result


async def probe_pipelining(
    burst: Burst, unit: int, scans: Sequence[TableScan], depth: int, rounds: int = 3
) -> PipelineProbe | None:
    """Send ``rounds`` bursts of ``depth`` reads, each a different count, and check them.

    The reads go to the longest readable range found (registers preferred: their byte
    counts differ for every count). None when no range is long enough for two reads of
    different sizes.
    """
    best: tuple[int, str, int] | None = None  # (distinct requests, table, first)
    for scan in scans:
        bits = scan.table in ("co", "di")
        for first, last in scan.readable:
            length = min(last - first + 1, scan.max_batch)
            distinct = (length + 7) // 8 if bits else length
            if best is None or distinct > best[0]:
                best = (distinct, scan.table, first)
    if best is None or best[0] < 2:
        return None
    distinct, table, first = best
    depth = min(depth, distinct)
    step = 8 if table in ("co", "di") else 1
    requests = [read_request(unit, table, first, 1 + step * k) for k in range(depth)]
    sent = 0
    for _ in range(rounds):
        sent += depth
        outcomes = await burst(requests)
        for request, outcome in zip(requests, outcomes, strict=True):
            reason = _burst_fault(request, outcome)
            if reason:
                return PipelineProbe(depth, rounds, False, reason, sent)
    return PipelineProbe(depth, rounds, True, "", sent)


def _burst_fault(request: Request, outcome: Reply | BaseException) -> str:
    what = request.describe()
    if isinstance(outcome, ReplyMismatch):
        return f"a reply that did not answer its request ({what}: {outcome.reason})"
    if isinstance(outcome, builtins.TimeoutError | TimeoutError):
        return f"a request of the burst went unanswered ({what})"
    if isinstance(outcome, ConnectionError):
        return f"the connection was lost during a burst ({what})"
    if isinstance(outcome, BaseException):
        return f"{outcome or type(outcome).__name__} ({what})"
    if outcome.exception is not None:
        return f"exception {outcome.exception} to a read it answered alone ({what})"
    return ""


@dataclass(slots=True)
class ScanResult:
    """What :meth:`bifrost.Connection.scan` found on one Modbus device (unit).

    Attributes
    ----------
    endpoint, unit
        The device scanned.
    tables
        One :class:`TableScan` per table scanned.
    pipelining
        The pipelining probe (TCP only; None when not probed).
    resolution
        Readable islands narrower than this inside a hole may have been missed.
    """

    endpoint: str
    unit: int
    tables: dict[str, TableScan]
    pipelining: PipelineProbe | None = None
    resolution: int = 64

    @property
    def requests(self) -> int:
        """Requests sent by the scan, the pipelining probe included."""
        probe = self.pipelining.requests if self.pipelining else 0
        return sum(t.requests for t in self.tables.values()) + probe

    @property
    def max_batch(self) -> dict[str, int]:
        """The largest count read in one request, per table (0: nothing readable)."""
        return {name: t.max_batch for name, t in self.tables.items() if t.supported}

    @property
    def pipeline_ok(self) -> bool | None:
        """Whether pipelined requests came back right (None: not probed)."""
        return None if self.pipelining is None else self.pipelining.ok

    @property
    def ranges(self) -> pd.DataFrame:
        """Readable ranges: one row each, ``table, first, last, count`` (inclusive)."""
        return self._frame("readable")

    @property
    def holes(self) -> pd.DataFrame:
        """Unreadable ranges inside the scanned window, in the same columns."""
        return self._frame("unreadable")

    def _frame(self, kind: str) -> pd.DataFrame:
        import pandas as pd

        rows = [
            {"table": name, "first": a, "last": b, "count": b - a + 1}
            for name, scan in self.tables.items()
            for a, b in getattr(scan, kind)
        ]
        frame = pd.DataFrame(rows, columns=["table", "first", "last", "count"])
        return frame.astype({"first": "int64", "last": "int64", "count": "int64"})

    def quirks(self, base: Quirks | None = None) -> Quirks:
        """The device quirks this scan found, on top of ``base`` (e.g. a file's).

        Sets the unreadable ranges, ``max_registers_per_request`` /
        ``max_bits_per_request`` where the device refused reads below the protocol's
        limit over addresses it has, and
        ``pipeline: 1`` when pipelined requests came back wrong.
        """
        from bifrost.protocols.modbus.quirks import Quirks

        data: dict[str, Any] = {} if base is None else base.model_dump(exclude_none=True)
        holes = {**data.get("unreadable", {})}
        for name, scan in self.tables.items():
            ranges = scan.unreadable if scan.supported else [(scan.first, scan.last)]
            if ranges:
                holes[name] = [list(r) for r in ranges]
        if holes:
            data["unreadable"] = holes
        for tables, key, limit in (
            (("hr", "ir"), "max_registers_per_request", MAX_REGISTERS),
            (("co", "di"), "max_bits_per_request", MAX_BITS),
        ):
            # Only a limit the device showed: a batch no larger than the longest readable
            # range says nothing about the device (no request can be longer anyway).
            found = [
                self.tables[t].max_batch
                for t in tables
                if t in self.tables and self.tables[t].batch_limit_proven
            ]
            if found and min(found) < limit:
                data[key] = min(found)
        if self.pipelining is not None and not self.pipelining.ok:
            data["pipeline"] = 1
        return Quirks.from_mapping(data, "scan result")

    def to_quirks(self, path: str | os.PathLike[str], base: Quirks | None = None) -> Quirks:
        """Save :meth:`quirks` as a YAML file for ``bf.connect(url, quirks=path)``."""
        quirks = self.quirks(base)
        quirks.to_yaml(path)
        return quirks

    def _repr_html_(self) -> str:
        import html

        from bifrost._html import table_html

        rows = sorted(
            (name, a, b, b - a + 1, kind)
            for name, scan in self.tables.items()
            for kind, ranges in (("readable", scan.readable), ("unreadable", scan.unreadable))
            for a, b in ranges
        )
        batches = ", ".join(f"{name} {batch}" for name, batch in self.max_batch.items())
        pipeline = {None: "not probed", True: "ok", False: "refused"}[self.pipeline_ok]
        caption = html.escape(
            f"Scan of {self.endpoint}, unit {self.unit}: batch {batches or '-'}; "
            f"pipelining {pipeline}; {self.requests} requests"
        )
        header = ["table", "first", "last", "count", ""]
        return table_html(header, rows, caption=caption, numeric=[False, True, True, True])

    def __repr__(self) -> str:
        parts = []
        for name, scan in self.tables.items():
            if not scan.supported:
                parts.append(f"{name}: not supported")
                continue
            spans = ", ".join(f"{a}-{b}" for a, b in scan.readable[:4])
            more = " …" if len(scan.readable) > 4 else ""
            parts.append(f"{name}: {spans or 'nothing readable'}{more} (batch {scan.max_batch})")
        pipeline = {None: "not probed", True: "ok", False: "refused"}[self.pipeline_ok]
        return (
            f"<ScanResult {self.endpoint} unit {self.unit}: {'; '.join(parts)}; "
            f"pipelining {pipeline}; {self.requests} requests>"
        )


async def scan_device(
    endpoint: str,
    unit: int,
    tables: Sequence[str],
    start: int,
    stop: int,
    *,
    ask: Ask,
    burst: Burst | None,
    resolution: int,
    pipeline: int,
) -> ScanResult:
    """Scan ``tables`` of one unit, then probe pipelining if ``burst`` is given."""
    scans = {t: await scan_table(ask, unit, t, start, stop, resolution) for t in tables}
    probe = None
    if burst is not None and pipeline >= 2:
        probe = await probe_pipelining(burst, unit, list(scans.values()), pipeline)
    return ScanResult(endpoint, unit, scans, probe, resolution)

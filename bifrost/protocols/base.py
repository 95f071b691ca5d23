"""The small async interface every protocol driver implements, and its read result."""

from __future__ import annotations

import abc
import asyncio
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, Literal, Protocol, TypeVar

from bifrost.exceptions import AddressError, ConfigurationError
from bifrost.model import Tag
from bifrost.results import ReadResult

if TYPE_CHECKING:
    import numpy as np
    import numpy.typing as npt
    import pandas as pd

__all__ = [
    "Driver",
    "NativeSubscription",
    "ReadResult",
    "RowRead",
    "TimestampKind",
    "parse_tag_address",
]

TimestampKind = Literal["source", "server", "received"]

A = TypeVar("A")

RowRead = Callable[[float, "npt.NDArray[np.float64]", "npt.NDArray[np.uint8]"], Awaitable[float]]
"""``await read_row(due, values, quality)``: one cycle decoded into a recording's row.

It fills ``values`` (one float64 per tag of the plan, in order; NaN where the quality is
bad or the tag not numeric) and ``quality`` (one code per tag), exactly what
``execute_read_at(plan, due)`` would have given as ``as_float()`` and ``quality``, and
returns the monotonic time its first request went out. It fails as ``execute_read_at``
does; the row's contents are then undefined.
"""


def parse_tag_address(tag: Tag, parse: Callable[[str], A], protocol: str) -> A:
    """Parse a tag's address; an error names the tag as well when it has a name of its own."""
    try:
        return parse(tag.address)
    except AddressError as exc:
        if tag.name != tag.address:
            raise AddressError(
                exc.address, exc.position, f"{exc.reason} (tag {tag.name!r})", protocol
            ) from None
        raise


class NativeSubscription(Protocol):
    """A driver's own data-change subscription (OPC UA); polled protocols have none."""

    async def close(self) -> None:
        """Delete the subscription on the server."""


class Driver(abc.ABC):
    """A protocol adapter. All I/O is async and runs on one event loop.

    ``compile_read``/``compile_write`` validate and plan without any I/O, so bad input
    fails before anything goes on the wire; the ``execute_*`` coroutines do the I/O.
    """

    protocol: ClassVar[str]
    timestamps: ClassVar[tuple[str, ...]] = ("source", "received")
    """The kinds of timestamp this protocol's reads can be indexed by (``read(timestamp=)``)."""
    library: str = ""
    """The protocol library and its version, for recordings' metadata."""

    @property
    @abc.abstractmethod
    def endpoint(self) -> str:
        """Human-readable endpoint (host:port or serial port) for messages."""

    @property
    @abc.abstractmethod
    def connected(self) -> bool:
        """Whether the transport is currently up."""

    @abc.abstractmethod
    async def connect(self) -> None:
        """Open the transport; raise :class:`bifrost.ConnectionError` on failure."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Close the transport (idempotent)."""

    @abc.abstractmethod
    def is_address(self, text: str) -> bool:
        """Whether ``text`` looks like an address of this protocol (not a tag name)."""

    @abc.abstractmethod
    def compile_read(self, tags: Sequence[Tag]) -> Any:
        """Validate addresses and build a read plan (no I/O)."""

    @abc.abstractmethod
    async def execute_read(self, plan: Any) -> ReadResult:
        """Run a plan from :meth:`compile_read`."""

    def explain(self, plan: Any) -> list[dict[str, Any]]:
        """The requests a plan sends, one dict per request (no I/O)."""
        return [{"request": "read", "tags": len(getattr(plan, "tags", ()))}]

    @property
    def cycle_lead(self) -> float:
        """Seconds before a cycle is due that a recorder hands it to :meth:`execute_read_at`.

        A driver that waits on a worker thread needs the cycle early, so that the thread
        hand-over does not delay the request; one whose requests go out from the loop
        (the default, 0) is handed each cycle at its due time: no second timer and loop
        wake-up per cycle for it.
        """
        return 0.0

    def row_reader(self, plan: Any) -> RowRead | None:
        """A cheaper cycle for recorders of ``plan``: decoded into their row, no ReadResult.

        None (the default) when the driver has none; recorders then take the
        :meth:`execute_read_at` result. Raw values only: a connection uses it for
        tags without scale, offset or limits.
        """
        return None

    async def execute_read_at(self, plan: Any, due: float) -> ReadResult:
        """Run a plan with its first request going out at monotonic time ``due``.

        Recorders call this :attr:`cycle_lead` before ``due``; drivers with a worker
        thread override it to wait on that thread, so that no thread hand-over sits
        between the due time and the request.
        """
        delay = due - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        started = time.monotonic()
        result = await self.execute_read(plan)
        if result.started is None:
            result.started = started
        return result

    @abc.abstractmethod
    def compile_write(self, items: Sequence[tuple[Tag, Any]]) -> Any:
        """Validate and encode values to write (no I/O)."""

    @abc.abstractmethod
    async def execute_write(self, plan: Any) -> None:
        """Run a plan from :meth:`compile_write`."""

    @abc.abstractmethod
    async def info(self) -> dict[str, Any]:
        """Device identification."""

    @abc.abstractmethod
    def describe(self, tag: Tag) -> dict[str, Any]:
        """Static facts about a tag for :meth:`browse` (data type, table, ...)."""

    async def browse(self, path: str | None, depth: int) -> pd.DataFrame | None:
        """The device's own address space below ``path``, ``depth`` levels deep.

        Returns None when the protocol has no browsable address space (Modbus, classic
        S7): the connection then shows its tag table instead.
        """
        return None

    async def subscribe(
        self,
        plan: Any,
        interval_s: float,
        on_data: Callable[[ReadResult], None],
        *,
        queue_size: int | None = None,
        deadband: float = 0.0,
    ) -> NativeSubscription | None:
        """Start a native data-change subscription for a read plan.

        ``on_data`` is called on the event loop with a :class:`ReadResult` whose
        ``indices`` say which of the plan's tags changed. Returns None when the protocol
        has no native subscriptions; the connection then polls.
        """
        return None

    # -- services only some protocols have (OPC UA); the defaults refuse, before any I/O --
    def unsupported(self, service: str) -> ConfigurationError:
        """The error for a service this protocol does not have (nothing is sent)."""
        return ConfigurationError(
            f"{service} is an OPC UA service; this is a {self.protocol} connection to "
            f"{self.endpoint} (connect to an opc.tcp:// URL)"
        )

    def restamp(self, result: ReadResult, timestamp: TimestampKind) -> ReadResult:
        """``result`` with the timestamps of kind ``timestamp`` as its ``timestamp_ns``.

        Drivers stamp reads when the reply arrives, which is also the source time of a
        device without a clock of its own (the kinds it has: :attr:`timestamps`).
        """
        return result

    async def read_history(
        self,
        plan: Any,
        start_ns: int,
        end_ns: int,
        *,
        max_values: int | None,
        aggregate: str | None,
        interval_s: float | None,
    ) -> Any:
        """The stored history of a read plan's tags between two UTC times (ns)."""
        raise self.unsupported("read_history (HistoryRead)")

    async def subscribe_events(
        self, source: str, on_events: Callable[[list[dict[str, Any]]], None]
    ) -> NativeSubscription:
        """Deliver the events (alarms) a node emits, as dicts, to ``on_events``."""
        raise self.unsupported("subscribe_events (event monitored items)")

    async def acknowledge(self, event_id: bytes, comment: str) -> None:
        """Acknowledge the condition that sent event ``event_id``."""
        raise self.unsupported("acknowledge (Alarms & Conditions)")

    async def call(self, object_path: str, method: str, args: Sequence[Any]) -> Any:
        """Call a method of an object, its arguments checked before anything is sent."""
        raise self.unsupported("call (method calls)")

    async def scan(
        self,
        table: str | Sequence[str],
        start: int,
        stop: int,
        unit: int | None,
        *,
        resolution: int,
        pipeline: int,
        timeout: float | None,
    ) -> Any:
        """Find the readable address ranges and request limits of a register device."""
        raise ConfigurationError(
            f"scan() is the Modbus register scanner (modbus://, modbus+tcp://, modbus+rtu:// "
            f"connections); this is a {self.protocol} connection to {self.endpoint}, "
            "which has nothing to scan"
        )

"""The async API: :class:`AsyncConnection` and :func:`connect`.

Usage::

    async with bifrost.aio.connect("modbus://127.0.0.1:5020", tags="plant.yaml") as plc:
        df = await plc.read(["tank.level", "hr:2:int16"])

Every public method here has a sync twin with the same signature on
:class:`bifrost.Connection` (a test checks it).
"""

from __future__ import annotations

import asyncio
import builtins
import contextlib
import json
import os
from collections.abc import Awaitable, Callable, Generator, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, TypeVar

import numpy as np
import pandas as pd

from bifrost._portal import Handover
from bifrost.clock import wall_ns
from bifrost.exceptions import (
    ArgumentTypeError,
    BifrostError,
    ConfigurationError,
    WriteNotAllowed,
    value_repr,
)
from bifrost.frames import ReadLayout, read_frame
from bifrost.model import Tag
from bifrost.planning import gc_paused
from bifrost.protocols.base import Driver, RowRead, TimestampKind
from bifrost.protocols.options import TABLE_QUIRKS
from bifrost.protocols.registry import driver_for_url
from bifrost.recording import (
    Recording,
    seconds,
    start_recording,
    start_subscribed_recording,
)
from bifrost.recording.recorder import RowSink
from bifrost.recording.timing import Span
from bifrost.results import ReadResult
from bifrost.scaling import Scaling
from bifrost.secrets import redact_url
from bifrost.subscriptions import Subscription
from bifrost.tags import TagLike, TagTable
from bifrost.values import exact_writes, unscale

if TYPE_CHECKING:
    import numpy.typing as npt

    from bifrost.protocols.modbus.scan import ScanResult

__all__ = ["AsyncConnection", "connect"]

TagSource = TagTable | Iterable[Tag] | str | os.PathLike[str] | None
Errors = Literal["raise", "quality"]
RecordMode = Literal["poll", "subscribe"]
_PLAN_CACHE_SIZE = 256
T = TypeVar("T")


class _CompiledRead:
    """A read plan plus the per-tag columns of its DataFrame, built once per tag list."""

    __slots__ = ("layout", "plan", "scaling", "tags")

    def __init__(self, plan: Any, tags: Sequence[Tag]) -> None:
        self.plan = plan
        self.tags = tuple(tags)
        self.layout = ReadLayout(tags)
        self.scaling = Scaling(tags)


class AsyncConnection:
    """A connection to one device, used from async code.

    Parameters
    ----------
    url
        ``modbus://host:port``, ``modbus+rtu:///dev/ttyUSB0?baudrate=19200`` ...
    tags
        Tag table: a :class:`TagTable`, Tags, or the path of a CSV or YAML file.
    writable
        Allow :meth:`write`; connections are read-only by default.
    timeout
        Seconds for connecting and for each request.
    **options
        Protocol options (Modbus: ``unit``, ``max_gap_registers``, ``baudrate``...).
    """

    def __init__(
        self,
        url: str,
        *,
        tags: TagSource = None,
        writable: bool = False,
        timeout: float = 3.0,
        **options: Any,
    ) -> None:
        # Only the redacted form is kept: the url is shown (repr, HTML, errors) and stored
        # (recording metadata, files); the driver took the credentials out as Secrets.
        self._url = redact_url(url)
        self._writable = bool(writable)
        self._tags = TagTable() if tags is None else TagTable.load(tags)
        if self._tags.quirks is not None:
            # The table's device workarounds: options below the explicit ones.
            options = {TABLE_QUIRKS: self._tags.quirks, **options}
        self._driver: Driver = driver_for_url(url, timeout=timeout, **options)
        self._timeout = float(timeout)
        self._plans: dict[tuple[TagLike, ...], _CompiledRead] = {}
        # The last list of tags compiled, a copy of it (the caller's may change).
        self._last_read: tuple[list[Any], _CompiledRead] | None = None
        self._recordings: list[Recording] = []
        self._subscriptions: list[Subscription] = []
        self._closed = False
        self._device: str | None = None  # identification, once asked (recordings' metadata)
        self._background: set[asyncio.Task[None]] = set()
        # Modbus TCP: a sync read with the connection to itself runs on the caller's
        # thread (bifrost.connection); every use on the loop goes through this, which
        # keeps the two apart. Other drivers: nothing to keep apart.
        self._handover = _handover_for(self._driver)
        self._use: contextlib.AbstractAsyncContextManager[Any] = (
            contextlib.nullcontext() if self._handover is None else self._handover
        )

    # -- lifecycle ------------------------------------------------------------------------
    async def open(self) -> None:
        """Connect to the device (done by ``await connect(...)`` and ``async with``)."""
        self._closed = False
        await self._on_loop(self._driver.connect())

    async def close(self) -> None:
        """Stop this connection's recordings (keeping their samples) and close it."""
        self._closed = True
        for task in list(self._background):
            task.cancel()
        for recording in list(self._recordings):
            recording.stop()
            await recording._join()
        for subscription in self._subscriptions:
            await subscription._close()
        self._subscriptions.clear()
        await self._on_loop(self._driver.close())

    async def __aenter__(self) -> AsyncConnection:
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    def __await__(self) -> Generator[Any, None, AsyncConnection]:
        return self.__aenter__().__await__()

    # -- properties -----------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The device URL, with any password or token in it replaced by ``***``."""
        return self._url

    @property
    def protocol(self) -> str:
        """``modbus``, ``s7`` or ``opcua``."""
        return self._driver.protocol

    @property
    def endpoint(self) -> str:
        """Host and port (or serial device) of the device."""
        return self._driver.endpoint

    @property
    def writable(self) -> bool:
        """Whether writes are allowed on this connection."""
        return self._writable

    @property
    def connected(self) -> bool:
        """Whether the transport is up."""
        return self._driver.connected

    @property
    def timeout(self) -> float:
        """Seconds allowed for connecting and for each request."""
        return self._timeout

    @property
    def tags(self) -> TagTable:
        """The connection's tag table."""
        return self._tags

    @tags.setter
    def tags(self, value: TagSource) -> None:
        table = TagTable() if value is None else TagTable.load(value)
        if table.quirks is not None and table.quirks != self._tags.quirks:
            raise ConfigurationError(
                f"{table.quirks.where} the device quirks of a tag table apply when connecting: "
                "pass the table as connect(url, tags=...)"
            )
        self._tags = table
        self._plans.clear()
        self._last_read = None

    # -- helpers --------------------------------------------------------------------------
    async def _on_loop(self, work: Awaitable[T]) -> T:
        # A use of the driver on the loop: waits for a read on a caller's thread to end
        # (and takes the socket back); a read that is itself on that thread goes on.
        handover = self._handover
        if handover is None:
            return await work  # nothing to keep apart (self._use does nothing)
        if handover.enter_now():
            # Nothing off the loop holds the socket: the bracket without two coroutines
            # per call (every recording cycle comes through here).
            try:
                return await work
            finally:
                handover.exit_now()
        async with self._use:
            return await work

    def _alone(self) -> bool:
        """Whether nothing but sync calls uses the connection (no recording, subscription)."""
        return not (self._closed or self._recordings or self._subscriptions)

    def resolve(self, tags: TagLike | Sequence[TagLike]) -> list[Tag]:
        """Turn names, Tags and raw addresses into Tags (no I/O).

        Raises
        ------
        ArgumentTypeError
            For ``tags`` that are not a name, a Tag, an address or a list of them.
        TagNotFound
            For a string that is neither a tag name nor an address of the protocol.
        """
        return self._tags.resolve_all(_tag_items(tags), self._driver.is_address)

    def _compile(self, tags: TagLike | Sequence[TagLike]) -> _CompiledRead:
        last = self._last_read
        if last is not None and type(tags) is list:
            # The same list read again (the usual loop): equal items in order, so the
            # same key; comparing item by item (the very same strings, mostly) costs a
            # fraction of hashing a fresh tuple of them.
            try:
                same = tags == last[0]
            except Exception:  # an item whose == raises (an array): resolve() names it
                same = False
            if same:
                return last[1]
        key = tuple(_tag_items(tags))
        try:
            compiled = self._plans.get(key)
        except TypeError:  # an unhashable item, e.g. a list in the list: resolve() names it
            compiled = None
        if compiled is None:
            with gc_paused():
                resolved = self.resolve(list(key))
                if not resolved:
                    raise ConfigurationError("read() needs at least one tag")
                compiled = _CompiledRead(self._driver.compile_read(resolved), resolved)
            if len(self._plans) >= _PLAN_CACHE_SIZE:
                self._plans.clear()
            self._plans[key] = compiled
        if type(tags) is list:
            self._last_read = (list(key), compiled)
        return compiled

    def explain(self, tags: TagLike | Sequence[TagLike]) -> pd.DataFrame:
        """The requests a read of ``tags`` sends, one row each (no I/O).

        Shows what the planner made of the tags: how they were grouped, merged and
        split at the protocol's limits.
        """
        compiled = self._compile(tags)
        return pd.DataFrame.from_records(self._driver.explain(compiled.plan))

    async def read_result(self, tags: TagLike | Sequence[TagLike]) -> ReadResult:
        """Read ``tags`` and return the columnar :class:`ReadResult` (for recorders)."""
        compiled = self._compile(tags)
        return compiled.scaling.apply(await self._on_loop(self._driver.execute_read(compiled.plan)))

    # -- the public verbs -----------------------------------------------------------------
    async def read(
        self,
        tags: TagLike | Sequence[TagLike],
        *,
        errors: Errors = "raise",
        timestamp: TimestampKind = "source",
    ) -> pd.DataFrame:
        """Read tags in one planned batch.

        Parameters
        ----------
        tags
            Names from the tag table, Tags, or raw addresses.
        errors
            ``"raise"`` raises :class:`bifrost.ProtocolError` if the device refused any
            part of the batch; ``"quality"`` returns those rows with bad quality.
        timestamp
            What the ``timestamp`` column holds: ``"source"`` (the device's own time
            where the protocol has one, else when the reply arrived), ``"server"``
            (OPC UA's server timestamps) or ``"received"`` (when the reply arrived).
            :meth:`read_result` keeps every kind the protocol has.

        Returns
        -------
        pandas.DataFrame
            Indexed by tag name; columns value, quality, timestamp (UTC), unit, address.
        """
        result, layout = await self._read_columns(tags, errors, timestamp)
        return read_frame(result, layout)

    async def _read_columns(
        self, tags: TagLike | Sequence[TagLike], errors: Errors, timestamp: TimestampKind = "source"
    ) -> tuple[ReadResult, ReadLayout]:
        # The sync facade builds the DataFrame on the caller's thread from these
        # columns: pandas work stays where its caches are warm, off the loop thread.
        if errors not in ("raise", "quality"):
            raise ConfigurationError(f"errors must be 'raise' or 'quality', got {errors!r}")
        if timestamp != "source":
            self._check_timestamp(timestamp)
        compiled = self._compile(tags)
        result = compiled.scaling.apply(
            await self._on_loop(self._driver.execute_read(compiled.plan))
        )
        if timestamp != "source":
            result = self._driver.restamp(result, timestamp)
        if errors == "raise" and result.errors:
            first = result.errors[0]
            if len(result.errors) > 1:
                first.args = (f"{first.args[0]} (and {len(result.errors) - 1} more errors)",)
            raise first
        return result, compiled.layout

    async def read_value(self, tag: TagLike) -> Any:
        """Read one tag and return its value as a plain Python object."""
        compiled = self._compile([tag])
        result = compiled.scaling.apply(
            await self._on_loop(self._driver.execute_read(compiled.plan))
        )
        if result.errors:
            raise result.errors[0]
        return result.values()[0]

    async def write(
        self, values: Mapping[TagLike, Any], *, exact: bool = False, dry_run: bool = False
    ) -> pd.DataFrame | None:
        """Write values; every value is checked before anything is sent.

        Parameters
        ----------
        values
            Tag (name, Tag or address) -> value, in engineering units.
        exact
            Refuse a float the tag's type would round (``16777217`` in a float32) with
            :class:`ValueOutOfRange`; by default it is written rounded, with a
            :class:`bifrost.PrecisionWarning`.
        dry_run
            Check and encode everything, send nothing, and return the requests a write
            would send (a DataFrame, one row each). A dry run works on a read-only
            connection too: it shows what ``writable=True`` would write. Checks made by
            the device itself (OPC UA data types) are not part of it.

        Returns
        -------
        DataFrame or None
            The requests of a dry run; None after a real write.

        Raises
        ------
        ArgumentTypeError
            ``values`` is not a mapping, or a key is not a name, a Tag or an address.
        WriteNotAllowed
            The connection was not opened with ``writable=True`` (except in a dry run) or
            a tag is read-only.
        ValueOutOfRange
            A value does not fit its tag's type.
        """
        if not isinstance(values, Mapping):
            raise ArgumentTypeError(
                f"write() takes a mapping of tag -> value, e.g. {{'tank.level': 1.0}}; got "
                f"{value_repr(values)} ({type(values).__name__})"
            )
        if not isinstance(exact, bool):
            raise ArgumentTypeError(f"exact must be True or False, got {value_repr(exact)}")
        if not isinstance(dry_run, bool):
            raise ArgumentTypeError(f"dry_run must be True or False, got {value_repr(dry_run)}")
        if not self._writable and not dry_run:
            raise WriteNotAllowed(
                f"the connection to {self._url} is read-only; open it with writable=True to write"
            )
        items = []
        for key, value in values.items():
            if not isinstance(key, str | Tag):
                raise ArgumentTypeError(
                    f"write() keys are tag names, Tags or addresses; got {value_repr(key)} "
                    f"({type(key).__name__})"
                )
            (tag,) = self.resolve([key])
            if tag in self._tags and not tag.writable:
                raise WriteNotAllowed(
                    f"tag {tag.name!r} is read-only in the tag table (writable: false)"
                )
            items.append((tag, unscale(tag, value)))
        with exact_writes(exact):
            plan = self._driver.compile_write(items)
            if dry_run:
                return pd.DataFrame.from_records(_write_requests(plan))
            await self._on_loop(self._driver.execute_write(plan))
        return None

    async def record(
        self,
        tags: TagLike | Sequence[TagLike],
        *,
        interval: Span = "1s",
        duration: Span | None = None,
        background: bool = False,
        path: str | os.PathLike[str] | None = None,
        progress: bool = True,
        mode: RecordMode = "poll",
        flush_interval: Span = "1s",
        sinks: Sequence[RowSink] = (),
    ) -> Recording:
        """Sample ``tags`` every ``interval`` into a :class:`~bifrost.recording.Recording`.

        Parameters
        ----------
        tags
            Names, Tags or addresses; read as one planned batch per cycle.
        interval
            Sampling period: ``"100ms"``, ``"1s"``, or seconds.
        duration
            How long to record; required unless ``background=True``.
        background
            Return at once while sampling continues on the loop; end with ``stop()``.
        path
            Stream the samples there while recording (``.parquet``, ``.zarr`` or ``.nc``).
            Crash-safe: rows are appended every ``flush_interval`` to a spool segment
            in ``<path>.parts/`` (each flush synced to disk); the final file appears,
            complete, when the recording ends. :func:`bifrost.open_recording` recovers
            the spool after a crash.
        progress
            Show a progress bar while a blocking recording runs (sync API only).
        mode
            ``"poll"``: read every tag on a fixed grid. ``"subscribe"``: record data
            changes as they are notified (native for OPC UA, polled on change
            otherwise); each notification becomes a row holding every tag's last value.
        flush_interval
            How often streamed samples are written to disk (with ``path``).
        sinks
            Forward every row, as it is recorded, to these sinks (e.g.
            :class:`bifrost.cloud.MqttSink`; they spool and publish on their own thread).
        """
        interval_s, duration_s = _record_spans(interval, duration, background)
        flush_s = seconds(flush_interval, "flush_interval")
        if mode not in ("poll", "subscribe"):
            raise ConfigurationError(f"mode must be 'poll' or 'subscribe', got {mode!r}")
        # Started as a use on the loop: a read on a caller's thread ends first, and
        # once the recording is listed no other starts (bifrost._portal.Handover).
        async with self._use:
            compiled = self._compile(tags)
            dtypes = [str(self._driver.describe(t)["dtype"]) for t in compiled.tags]
            if "object" in dtypes:
                # The protocol only knows types at run time (OPC UA): ask the device once so
                # numbers get numeric columns.
                dtypes = _dtypes_from(
                    await self._on_loop(self._driver.execute_read(compiled.plan)), dtypes
                )
            dtypes = [_engineering_dtype(t, d) for t, d in zip(compiled.tags, dtypes, strict=True)]
            recording = Recording(
                compiled.tags,
                dtypes,
                interval_s,
                {
                    "protocol": self.protocol,
                    "url": self._url,
                    "endpoint": self.endpoint,
                    "interval_s": interval_s,
                    "mode": mode,
                    "cycles": _cycles(mode, interval_s, duration_s),
                    "bifrost_version": _version(),
                    "driver": self._driver.library,
                    "tags": ", ".join(t.name for t in compiled.tags),
                    "started": pd.Timestamp.now(tz="UTC").isoformat(),
                    "device": self._device or "",
                },
            )
            plan, scaling = compiled.plan, compiled.scaling

            async def read(due: float) -> ReadResult:
                return scaling.apply(await self._on_loop(self._driver.execute_read_at(plan, due)))

            # Cycles decoded straight into the recording's row where the driver can (the
            # recorder takes it only for numeric, unscaled tags); the same bracket as a
            # read, so a sync read off the loop never shares the socket with it.
            row_reader = self._driver.row_reader(plan)
            rows: RowRead | None = None
            if row_reader is not None:
                reader = row_reader
                handover = self._handover

                async def read_row(
                    due: float, values: npt.NDArray[np.float64], quality: npt.NDArray[np.uint8]
                ) -> float:
                    # _on_loop inlined: one coroutine less per cycle.
                    if handover is None:
                        return await reader(due, values, quality)
                    if handover.enter_now():
                        try:
                            return await reader(due, values, quality)
                        finally:
                            handover.exit_now()
                    return await self._on_loop(reader(due, values, quality))

                rows = read_row

            def done() -> None:
                if recording in self._recordings:
                    self._recordings.remove(recording)

            target = None if path is None else os.fspath(path)

            if mode == "subscribe":

                async def subscribe(on_data: Any) -> Subscription:
                    subscription = Subscription(recording.names, interval_s)
                    async with self._use:
                        await subscription._start(self._driver, plan, scaling, on_data, None, 0.0)
                    return subscription

                start_subscribed_recording(
                    recording,
                    subscribe,
                    duration_s,
                    done,
                    path=target,
                    flush_interval=flush_s,
                    sinks=sinks,
                )
            else:
                start_recording(
                    recording,
                    read,
                    duration_s,
                    done,
                    path=target,
                    flush_interval=flush_s,
                    sinks=sinks,
                    lead=self._driver.cycle_lead,
                    rows=rows,
                )
            self._recordings.append(recording)
            if self._device is None:
                self._identify_later(recording)
        if not background:
            await recording
        return recording

    def _identify_later(self, recording: Recording) -> None:
        # Identification goes into the metadata when it comes: a recording never waits
        # for it (a hundred of them started in a row would wait 100 round trips or
        # timeouts), and the final file carries it.
        async def identify() -> None:
            if self._device is None:
                self._device = await self._device_summary()
            recording.metadata["device"] = self._device

        task = asyncio.get_running_loop().create_task(identify(), name="bifrost-identify")
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    @property
    def recordings(self) -> list[Recording]:
        """Recordings running on this connection."""
        return list(self._recordings)

    async def _device_summary(self) -> str:
        # Identification for a recording's metadata; a device that does not answer
        # quickly must not delay the start.
        try:
            async with asyncio.timeout(min(1.0, self._timeout)):
                info = await self._on_loop(self._driver.info())
        except (BifrostError, builtins.TimeoutError):
            return ""
        return json.dumps(info, default=str, sort_keys=True)

    async def subscribe(
        self,
        tags: TagLike | Sequence[TagLike],
        callback: Callable[[pd.DataFrame], Any],
        *,
        interval: Span = "100ms",
        queue_size: int | None = None,
        deadband: float = 0.0,
        sinks: Sequence[RowSink] = (),
    ) -> Subscription:
        """Call ``callback`` with a DataFrame of the tags whose value or quality changed.

        Native data-change subscriptions for OPC UA; for Modbus and S7 the tags are
        polled every ``interval`` and only changes are delivered. The callback runs on
        bifrost's event-loop thread: keep it short. End with ``subscription.cancel()``.

        Parameters
        ----------
        tags
            Names, Tags or addresses.
        callback
            Receives a DataFrame shaped like :meth:`read`'s, with the changed tags only.
        interval
            Sampling (OPC UA) or polling interval.
        queue_size
            Server-side queue per item (OPC UA); None for the driver's default.
        deadband
            Absolute change below which a numeric value counts as unchanged.
        sinks
            Also forward each change (the changed tags only) to these sinks.
        """
        interval_s = seconds(interval, "interval")
        compiled = self._compile(tags)
        dtypes = {t.name: str(self._driver.describe(t)["dtype"]) for t in compiled.tags}
        endpoint = self.endpoint

        def deliver(result: ReadResult) -> None:
            if sinks:
                _forward(sinks, endpoint, result, dtypes)
            callback(read_frame(result, ReadLayout(result.tags)))

        subscription = Subscription([t.name for t in compiled.tags], interval_s)
        # Its polls use the driver on their own: listed before the bracket ends, the
        # subscription keeps every later read on the loop (bifrost._portal.Handover).
        async with self._use:
            await subscription._start(
                self._driver, compiled.plan, compiled.scaling, deliver, queue_size, deadband
            )
            self._subscriptions = [s for s in self._subscriptions if s.active]
            self._subscriptions.append(subscription)
        return subscription

    async def browse(self, path: str | None = None, depth: int = 1) -> pd.DataFrame:
        """List what the device offers.

        Protocols with an address space (OPC UA) return the nodes below ``path``,
        ``depth`` levels deep. Modbus and classic S7 expose no symbols: their answer is
        the connection's tag table, with each tag's data type and protocol details.
        """
        native = await self._on_loop(self._driver.browse(path, depth))
        if native is not None:
            return native
        rows = []
        for tag in self._tags:
            rows.append(
                {
                    "name": tag.name,
                    "address": tag.address,
                    **self._driver.describe(tag),
                    "unit": tag.unit,
                    # Engineering limits (NaN: none), as TagBrowser shows them.
                    "min": tag.min,
                    "max": tag.max,
                    "step": tag.step,
                    "writable": tag.writable,
                    "description": tag.description,
                }
            )
        frame = pd.DataFrame.from_records(rows)
        if frame.empty:
            columns = "name address dtype unit min max step writable description"
            frame = pd.DataFrame(columns=columns.split())
        return frame.set_index("name")

    async def info(self) -> dict[str, Any]:
        """Device identification (vendor, model, firmware where the protocol has them)."""
        return await self._on_loop(self._driver.info())

    def _check_timestamp(self, timestamp: Any) -> None:
        if timestamp not in ("source", "server", "received"):
            raise ConfigurationError(
                f"timestamp must be 'source', 'server' or 'received', got {value_repr(timestamp)}"
            )
        if timestamp not in self._driver.timestamps:
            raise ConfigurationError(
                f"timestamp={timestamp!r}: {self.protocol} replies carry no {timestamp} "
                f"timestamp (OPC UA's do); use one of {', '.join(self._driver.timestamps)}"
            )

    # -- OPC UA services (other protocols refuse them before any I/O) ---------------------
    async def read_history(
        self,
        tags: TagLike | Sequence[TagLike],
        start: Any,
        end: Any = None,
        *,
        max_values: int | None = None,
        aggregate: str | None = None,
        interval: Span | None = None,
        errors: Errors = "raise",
    ) -> pd.DataFrame:
        """The values the server stored for ``tags`` between ``start`` and ``end``.

        Raw values (HistoryRead with ReadRawModifiedDetails), or with ``aggregate``
        (``"average"``, ``"minimum"``, ``"maximum"``, ``"count"``, ``"start"``, ``"end"``,
        ...) one processed value per ``interval`` (ReadProcessedDetails). Continuation
        points are followed to the end.

        Parameters
        ----------
        tags
            Names, Tags or addresses of historized variables.
        start, end
            UTC times (anything ``pandas.Timestamp`` takes; naive times are UTC); ``end``
            defaults to now.
        max_values
            Raw reads: at most this many values per tag in all (None: every value).
        aggregate, interval
            Processed reads: the aggregate and the length of each interval.
        errors
            ``"raise"``: a tag the server keeps no history of raises
            :class:`bifrost.ProtocolError` naming it; ``"quality"``: it gets one row
            with bad quality at ``start`` instead.

        Returns
        -------
        pandas.DataFrame
            UTC ``DatetimeIndex`` ``time`` (the values' source timestamps); columns
            tag, value, quality; sorted by time then tag. ``df.pivot(columns="tag",
            values="value")`` gives one column per tag.
        """
        from bifrost.frames import history_frame

        if errors not in ("raise", "quality"):
            raise ConfigurationError(f"errors must be 'raise' or 'quality', got {errors!r}")
        start_ns = _utc_ns(start, "start")
        end_ns = wall_ns() if end is None else _utc_ns(end, "end")
        if end_ns <= start_ns:
            raise ConfigurationError(f"end ({end!r}) must be after start ({start!r})")
        if max_values is not None and (
            isinstance(max_values, bool) or not isinstance(max_values, int) or max_values < 1
        ):
            raise ConfigurationError(f"max_values must be an integer >= 1, got {max_values!r}")
        if (aggregate is None) != (interval is None):
            raise ConfigurationError(
                "a processed history read needs both aggregate= and interval= "
                f"(got aggregate={aggregate!r}, interval={interval!r})"
            )
        interval_s = None if interval is None else seconds(interval, "interval")
        compiled = self._compile(tags)
        result = await self._on_loop(
            self._driver.read_history(
                compiled.plan,
                start_ns,
                end_ns,
                max_values=max_values,
                aggregate=aggregate,
                interval_s=interval_s,
            )
        )
        if errors == "raise" and result.errors:
            raise result.errors[0]
        if aggregate is None or str(aggregate).lower() != "count":
            result = compiled.scaling.apply(result)
        return history_frame(result)

    async def subscribe_events(
        self, source: str, callback: Callable[[pd.DataFrame], Any]
    ) -> Subscription:
        """Call ``callback`` with a DataFrame of the events (alarms) ``source`` emits.

        The frame has one row per event: time, source, severity, message, event_type,
        condition, active, acked, confirmed, retain, event_id (see
        :meth:`record_events`). The callback runs on bifrost's event-loop thread: keep
        it short. End with ``subscription.cancel()``.
        """
        from bifrost.frames import events_frame

        if not isinstance(source, str):
            raise ArgumentTypeError(
                f"source is a browse path or NodeId string, got {value_repr(source)}"
            )
        if not callable(callback):
            raise ArgumentTypeError(f"callback must be callable, got {value_repr(callback)}")
        subscription = Subscription([source], 0.0)

        def on_events(rows: list[dict[str, Any]]) -> None:
            subscription._deliver(callback, events_frame(rows))

        handle = await self._on_loop(self._driver.subscribe_events(source, on_events))
        subscription._attach(handle)
        self._subscriptions = [s for s in self._subscriptions if s.active]
        self._subscriptions.append(subscription)
        return subscription

    async def record_events(self, source: str, *, duration: Span = "10s") -> pd.DataFrame:
        """Collect the events ``source`` emits for ``duration``; one row per event.

        Columns: time (UTC, the event's Time), source (SourceName), severity (1-1000),
        message, event_type, condition (ConditionName), active, acked, confirmed,
        retain (the condition's states, None for plain events) and event_id (bytes, for
        :meth:`acknowledge`). Conditions already active are reported first
        (ConditionRefresh).
        """
        from bifrost.frames import events_frame

        duration_s = seconds(duration, "duration")
        if not isinstance(source, str):
            raise ArgumentTypeError(
                f"source is a browse path or NodeId string, got {value_repr(source)}"
            )
        rows: list[dict[str, Any]] = []
        handle = await self._on_loop(self._driver.subscribe_events(source, rows.extend))
        try:
            await asyncio.sleep(duration_s)
        finally:
            await handle.close()
        return events_frame(rows)

    async def acknowledge(self, event_id: bytes, comment: str = "") -> None:
        """Acknowledge the alarm that sent the event ``event_id`` (needs ``writable=True``).

        ``event_id`` is a value of the ``event_id`` column of :meth:`record_events`.
        """
        if not isinstance(event_id, bytes | bytearray) or not event_id:
            raise ArgumentTypeError(
                f"event_id is the bytes of an event's event_id column, got {value_repr(event_id)}"
            )
        if not isinstance(comment, str):
            raise ArgumentTypeError(f"comment must be a string, got {value_repr(comment)}")
        if not self._writable:
            raise WriteNotAllowed(
                f"the connection to {self._url} is read-only; open it with writable=True "
                "to acknowledge alarms"
            )
        await self._on_loop(self._driver.acknowledge(bytes(event_id), comment))

    async def call(self, object_path: str, method: str, *args: Any) -> Any:
        """Call ``method`` of the object at ``object_path`` (OPC UA), e.g. ``"2:Reset"``.

        The arguments are checked against the method's InputArguments (count and
        type) before the call is sent. Returns None, the one output argument, or a
        tuple of them. A method changes the process like a write does, so it needs a
        connection opened with ``writable=True``.
        """
        for what, value in (("object_path", object_path), ("method", method)):
            if not isinstance(value, str) or not value:
                raise ArgumentTypeError(
                    f"{what} is a browse path or NodeId string, got {value_repr(value)}"
                )
        if not self._writable:
            raise WriteNotAllowed(
                f"the connection to {self._url} is read-only; open it with writable=True "
                f"to call methods ({method})"
            )
        return await self._on_loop(self._driver.call(object_path, method, args))

    # -- Modbus device helpers -------------------------------------------------------------
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
        """Find which addresses a Modbus device answers, with as few reads as halving allows.

        Reads only, never writes. Per table (``"hr"``, ``"ir"``, ``"co"``, ``"di"`` or a
        list of them) from ``start`` to ``stop`` (inclusive): the readable ranges, exact
        at every boundary (exception 2 outside them), and the largest batch the device
        accepts in one read (exception 3 or silence above it); over TCP also whether
        ``pipeline`` requests in flight come back right. Readable islands narrower than
        ``resolution`` addresses inside an unreadable stretch may be missed. Each read
        waits at most ``timeout`` (default: the connection's). The scan holds the
        connection for its whole run. ``result.to_quirks("device.yaml")`` saves what it
        found for ``bifrost.connect(url, quirks="device.yaml")``.
        """
        return await self._on_loop(
            self._driver.scan(
                table,
                start,
                stop,
                unit,
                resolution=resolution,
                pipeline=pipeline,
                timeout=timeout,
            )
        )

    def __repr__(self) -> str:
        state = "connected" if self.connected else ("closed" if self._closed else "not connected")
        mode = ", writable" if self._writable else ""
        return f"<AsyncConnection {self._url} {state}{mode}, {len(self._tags)} tags>"


def _utc_ns(value: Any, what: str) -> int:
    # Times for history reads: anything pandas.Timestamp takes; naive means UTC.
    if isinstance(value, bool) or value is None:
        raise ConfigurationError(f"{what} must be a time, got {value_repr(value)}")
    try:
        stamp = pd.Timestamp(value)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(f"{what} is not a time: {value_repr(value)} ({exc})") from None
    if pd.isna(stamp):
        raise ConfigurationError(f"{what} must be a time, got {value_repr(value)}")
    stamp = stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")
    return int(stamp.value)


def _tag_items(tags: Any) -> list[Any]:
    # What resolve() and the plan cache take: one tag or an iterable of them. The items
    # themselves are checked by TagTable.resolve, which names a bad one.
    if isinstance(tags, str | Tag):
        return [tags]
    if isinstance(tags, bytes | bytearray):
        raise ArgumentTypeError(
            f"tags are names, Tags or address strings (str), not bytes: got {value_repr(tags)}"
        )
    try:
        return list(tags)
    except TypeError:
        raise ArgumentTypeError(
            "tags are a name, a Tag, an address string or a list of them; got "
            f"{value_repr(tags)} ({type(tags).__name__})"
        ) from None


def _forward(
    sinks: Sequence[RowSink], source: str, result: ReadResult, dtypes: Mapping[str, str]
) -> None:
    # A notification is one row of the tags that changed, stamped on arrival as the
    # recorder stamps its rows.
    names = [t.name for t in result.tags]
    times = np.array([wall_ns()], dtype=np.int64)
    columns = [np.array([value], dtype=object) for value in result.values()]
    quality = np.asarray(result.quality, dtype=np.uint8).reshape(1, -1)
    kinds = [dtypes.get(name, "object") for name in names]
    for sink in sinks:
        sink.feed(source, names, kinds).rows(times, columns, quality)


def _record_spans(
    interval: Span, duration: Span | None, background: bool
) -> tuple[float, float | None]:
    interval_s = seconds(interval, "interval")
    duration_s = None if duration is None else seconds(duration, "duration")
    if duration_s is None and not background:
        raise ConfigurationError(
            "a blocking record() needs a duration (e.g. duration='10s'); "
            "or pass background=True and call stop() when done"
        )
    if duration_s is not None and duration_s < interval_s:
        raise ConfigurationError(f"duration {duration!r} is shorter than the interval {interval!r}")
    return interval_s, duration_s


def _engineering_dtype(tag: Tag, raw_dtype: str) -> str:
    # Drivers describe the raw type; a scaled integer (raw 125, scale 0.1) records 12.5.
    if tag.is_scaled and raw_dtype.startswith(("int", "uint")):
        return "float64"
    return raw_dtype


def _dtypes_from(result: ReadResult, declared: list[str]) -> list[str]:
    found = list(declared)
    for positions, values in result.columns:
        if values.dtype.kind in "biuf":
            for position in positions:
                if found[position] == "object":
                    found[position] = values.dtype.name
    return found


def _cycles(mode: str, interval_s: float, duration_s: float | None) -> int | None:
    if mode == "subscribe" or duration_s is None:
        return None
    return max(1, round(duration_s / interval_s))


def _version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        # bifrost-core's: every distribution has the same version (docs/versioning.md);
        # `bifrost` on PyPI is another project.
        return version("bifrost-core")
    except PackageNotFoundError:
        return "0+unknown"


def connect(
    url: str,
    *,
    tags: TagSource = None,
    writable: bool = False,
    timeout: float = 3.0,
    **options: Any,
) -> AsyncConnection:
    """Create an :class:`AsyncConnection`; use ``async with`` or ``await`` to open it."""
    return AsyncConnection(url, tags=tags, writable=writable, timeout=timeout, **options)


def _write_requests(plan: Iterable[Any]) -> list[dict[str, Any]]:
    """One row per encoded write of a driver's plan (each a dataclass with a ``tag``)."""
    import dataclasses

    rows = []
    for write in plan:
        fields = {f.name: getattr(write, f.name) for f in dataclasses.fields(write)}
        tag = fields.pop("tag")
        row: dict[str, Any] = {"tag": tag.name, "address": str(fields.pop("address", tag.address))}
        for name, value in fields.items():
            # Bytes on the wire read best as hex, the way protocol analysers show them.
            row[name] = value.hex(" ") if isinstance(value, bytes | bytearray) else value
        rows.append(row)
    return rows


def _handover_for(driver: Driver) -> Handover | None:
    # Only Modbus TCP reads run off the loop; imported here, as only Modbus needs it.
    if driver.protocol != "modbus":
        return None
    from bifrost.protocols.modbus.transport import off_loop_transport

    transport = off_loop_transport(driver)
    return None if transport is None else Handover(transport)

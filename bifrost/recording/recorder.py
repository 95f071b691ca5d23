"""The sampling loops: tasks on the event loop.

Polling: cycle ``k`` is due at ``start + k * interval`` on the monotonic clock. A cycle
that cannot start before the next one is due is counted as missed and skipped, never
run late in a burst; so a stall shows up in ``stats.missed_cycles`` and the grid never
drifts. When the device fails, every cycle still gets a row (a gap row with a bad
quality code) while reconnection attempts back off exponentially with jitter, so a dead
device is neither hammered nor hidden by silence.

Subscribing: each data-change notification becomes a row holding every tag's last value.

Rows are stamped by the recorder, on completion, from the clock of :mod:`bifrost.clock`
(a wall-clock anchor advanced by the monotonic clock), never from the device or the
system clock directly: a recording's index is strictly increasing whatever the system
clock does. A clock step seen while recording is kept in ``metadata["clock_steps"]``
and the row stamped right after it gets ``Quality.UNCERTAIN_CLOCK`` (bad codes stay).

Both stream to disk through a :class:`~bifrost.recording.journal.Journal` when the
recording has a path.
"""

from __future__ import annotations

import asyncio
import math
import time
import warnings
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
import pandas as pd

from bifrost.backoff import Backoff
from bifrost.clock import Clock, default_clock
from bifrost.exceptions import BifrostError, TimeoutError
from bifrost.model import Quality, Tag
from bifrost.protocols.base import RowRead
from bifrost.recording.formats import format_of, header, save
from bifrost.recording.journal import Journal, RecoveryWarning, StorageError
from bifrost.recording.session import Recording
from bifrost.recording.switching import switching
from bifrost.recording.timing import Wakeup
from bifrost.results import ReadResult
from bifrost.subscriptions import Subscription

__all__ = [
    "RecordingStorageWarning",
    "RowFeed",
    "RowSink",
    "start_recording",
    "start_subscribed_recording",
]

ReadFn = Callable[[float], Awaitable[ReadResult]]
"""Reads the recording's tags, the first request going out at the given monotonic time."""

SubscribeFn = Callable[[Callable[[ReadResult], None]], Awaitable[Subscription]]


class RecordingStorageWarning(UserWarning):
    """A streamed recording could not be fully written; its samples are kept in memory."""


class RowFeed(Protocol):
    """Where a recording forwards its rows (see :mod:`bifrost.cloud.sinks`)."""

    def rows(
        self,
        times: npt.NDArray[np.int64],
        columns: list[npt.NDArray[Any]],
        quality: npt.NDArray[np.uint8],
    ) -> None:
        """Take rows: times, one value column per tag, a rows-by-tags quality matrix."""


class RowSink(Protocol):
    """A sink recordings and subscriptions forward to (``sinks=[...]``); never blocks."""

    def feed(
        self,
        source: str,
        names: list[str],
        dtypes: list[str],
        *,
        historical: bool = False,
    ) -> RowFeed:
        """A feed for rows of ``names`` from ``source`` (the device's endpoint)."""


async def _sleep_until(recording: Recording, deadline: float) -> None:
    wakeup = recording._wakeup
    assert wakeup is not None
    await wakeup.sleep_until(deadline)


class _Stamper:
    """Row times of one recording: its clock, made strictly increasing, steps noted.

    The clock never goes back, but two rows can get the same ns (a coarse clock, two
    notifications at once); the later row is then put 1 ns after the earlier one, so
    the index stays unique.
    """

    def __init__(self, recording: Recording, clock: Clock) -> None:
        self.recording = recording
        self.clock = clock
        self.seen = len(clock.steps)
        self.last = -1
        self.changed = False  # a step was added to the metadata since the last flush

    def now(self) -> int:
        """A recording-wide time; for stamps that are not rows (start, stop)."""
        return max(self.clock.wall_ns(), self.last)

    def row(self, quality: npt.NDArray[np.uint8] | None = None) -> int:
        """The time of the next row; downgrades ``quality`` when the clock stepped."""
        stamp = max(self.clock.wall_ns(), self.last + 1)
        self.last = stamp
        # A step another thread saw after this stamp was taken belongs to the next row.
        seen = self.clock.steps_since(self.seen)
        steps = [s for s in seen if s.at_ns <= stamp] if seen else seen
        if steps:
            self.seen += len(steps)
            events = self.recording.metadata.setdefault("clock_steps", [])
            for step in steps:
                event = step.as_dict()
                event["row_time"] = pd.Timestamp(stamp, tz="UTC").isoformat()
                events.append(event)
            self.changed = True
            if quality is not None:
                quality[quality < Quality.UNCERTAIN] = Quality.UNCERTAIN_CLOCK
        return stamp


class _Sink:
    """Flushes new rows of a recording to its journal every ``flush_interval``."""

    def __init__(
        self,
        recording: Recording,
        journal: Journal | None,
        flush_interval: float,
        stamper: _Stamper,
    ):
        self.recording = recording
        self.journal = journal
        self.flush_interval = flush_interval
        self.stamper = stamper
        self.flushed = 0
        self.last_flush = time.monotonic()
        self.feeds: list[RowFeed] = []  # sinks=: every row goes on to them as it comes
        self.forwarded = 0

    def forward(self) -> None:
        """Hand the rows not yet forwarded to the feeds (cheap: sinks only queue them)."""
        if not self.feeds or len(self.recording) <= self.forwarded:
            return
        times, columns, quality = self.recording.buffer.arrays(since=self.forwarded)
        self.forwarded += len(times)
        for feed in self.feeds:
            feed.rows(times, columns, quality)

    def maybe_flush(self) -> None:
        self.forward()
        if self.journal is not None and time.monotonic() - self.last_flush >= self.flush_interval:
            self.flush()

    def _warn_notices(self) -> None:
        journal = self.journal
        while journal is not None and journal.notices:
            warnings.warn(journal.notices.pop(0), RecoveryWarning, stacklevel=1)

    def flush(self) -> None:
        self.last_flush = time.monotonic()
        journal = self.journal
        if journal is None:
            return
        self._warn_notices()
        if journal.error is not None and self.recording.storage_error is None:
            # Surface it while recording (e.g. in a status panel), not only at the end.
            self.recording.storage_error = journal.error
            self.recording._stats.last_error = str(journal.error)
        if len(self.recording) == self.flushed:
            return
        if self.stamper.changed:
            # The parts must carry the clock steps too: after a crash they are all there is.
            self.stamper.changed = False
            journal.update_header(header(self.recording))
        buffer = self.recording.buffer
        times, numbers, objects, quality = buffer.matrix(since=self.flushed)
        self.flushed += len(times)
        # The blocks are fresh copies: the writer thread encodes them as they are.
        journal.append(times, numbers, objects if objects.shape[1] else None, quality)

    async def finalize(self) -> None:
        """Write the remaining rows, then the final file; keep the parts on failure."""
        self.forward()
        journal = self.journal
        if journal is None:
            return
        self.flush()
        recording = self.recording

        def consolidate() -> None:
            if journal.error is not None:
                raise journal.error
            save(recording, journal.path)
            journal.discard()

        try:
            # The journal's writer is FIFO: the parts queued above land first.
            await asyncio.wrap_future(journal._executor.submit(consolidate))
        except (StorageError, OSError) as exc:
            recording.storage_error = exc
            recording._stats.last_error = str(exc)
            warnings.warn(str(exc), RecordingStorageWarning, stacklevel=1)
        finally:
            journal.close()  # the writer is idle now: this joins its thread at once
            self._warn_notices()


async def _end(
    recording: Recording, sink: _Sink, error: BaseException | None, on_done: Callable[[], Any]
) -> None:
    try:
        await sink.finalize()
    except Exception as exc:
        # A warning turned into an error, say: the recording must still end, or wait()
        # would never return.
        error = error or exc
    recording._finish(error)
    on_done()


def _raw(tags: Sequence[Tag]) -> bool:
    # A row reader gives the device's values as they are: only for tags that a read's
    # scaling would leave alone.
    return not any(t.is_scaled or t.min is not None or t.max is not None for t in tags)


GRID_S = 0.1
"""Cycles start on multiples of ``min(interval, GRID_S)`` of the loop's clock."""


def grid_start(now: float, interval: float) -> float:
    """The first cycle's time: ``now`` rounded up to the recordings' shared grid.

    Recordings started one after another (a hundred devices take a fraction of a
    second) would otherwise each keep a phase of their own: one loop wake-up per
    recording per cycle, and each reply in a loop iteration of its own. On the shared
    grid the cycles due together are served in one wake-up and their replies come back
    in the same few iterations (most of the CPU a hundred recordings spent above a
    hand-written loop went to those extra wake-ups: benchmarks/bench_many_devices.py). It costs
    the first sample at most ``GRID_S`` (or one interval, if shorter) of waiting.
    """
    step = min(interval, GRID_S)
    return math.ceil(now / step) * step


async def _run(
    recording: Recording,
    read: ReadFn,
    duration_s: float | None,
    sink: _Sink,
    on_done: Callable[[], Any],
    lead: float,
    rows: RowRead | None = None,
) -> None:
    loop = asyncio.get_running_loop()
    interval = recording.interval_s
    cycles = math.inf if duration_s is None else max(1, round(duration_s / interval))
    if duration_s is not None:
        recording.buffer.expect(int(cycles))
    stamper = sink.stamper
    switching.recording_started()
    start = grid_start(loop.time(), interval)
    recording.started_ns = stamper.now()
    backoff = Backoff(first=max(0.1, interval))
    retry_at = 0.0
    failing = False
    k = 0
    error: BaseException | None = None
    stats = recording._stats
    buffer = recording.buffer
    # Fixed by the tags for the recording's life: looked at once, not every cycle.
    all_numeric = bool(buffer.numeric.all())
    lateness_log = recording._timing.lateness
    if not all_numeric or not _raw(recording.tags):
        rows = None
    wakeup = recording._wakeup
    assert wakeup is not None
    early = min(lead, interval / 4)
    try:
        while k < cycles and not recording._stop_requested.is_set():
            due = start + k * interval
            await wakeup.sleep_until(due - early)
            if recording._stop_requested.is_set():
                break
            now = loop.time()
            lateness = now - due
            if lateness >= interval:
                # Cycles past the end of the duration were never due: not missed.
                skipped = int(min(lateness // interval, cycles - k))
                stats.missed_cycles += skipped
                k += skipped
                continue
            k += 1
            if failing and now < retry_at:
                # Still backing off: the row says so, and the device is left alone.
                buffer.append_gap(stamper.row(), Quality.BAD_COMM_LOST)
                stats.gaps += 1
                sink.maybe_flush()
                continue
            try:
                if rows is not None:
                    # Decoded straight into the buffer's next row, committed once stamped.
                    values, quality = buffer.reserve()
                    started = await rows(due, values, quality)
                else:
                    result = await read(due)
            except BifrostError as exc:
                timed_out = isinstance(exc, TimeoutError)
                buffer.append_gap(
                    stamper.row(), Quality.BAD_TIMEOUT if timed_out else Quality.BAD_COMM_LOST
                )
                stats.gaps += 1
                stats.last_error = str(exc)
                failing = True
                retry_at = loop.time() + backoff.failed()
            else:
                # Stamped here, not by the driver: one clock for every row, whatever the
                # device's timestamps (OPC UA's come from the server's clock).
                if rows is None:
                    quality = np.array(result.quality, dtype=np.uint8)
                    started = result.started if result.started is not None else now
                stamp = stamper.row(quality)
                lateness_log.append(max(0.0, started - due))
                if failing:
                    stats.reconnects += 1
                    failing = False
                    backoff.succeeded()
                if rows is not None:
                    buffer.commit(stamp)
                else:
                    objects = None if all_numeric else result.values()
                    buffer.append(stamp, result.as_float(), objects, quality)
            sink.maybe_flush()
    except asyncio.CancelledError:
        pass
    except BaseException as exc:  # keep what was recorded; report the cause on wait()
        error = exc
    finally:
        switching.recording_stopped()
        await _end(recording, sink, error, on_done)


def _prepare(
    recording: Recording, path: str | None, flush_interval: float, sinks: Sequence[RowSink] = ()
) -> _Sink:
    journal = None
    if path is not None:
        target = Path(path)
        format_of(target)  # an unknown suffix fails before sampling starts
        journal = Journal(target, header(recording))  # so does a path in use
        recording.path = str(target)
    recording.clock = default_clock()
    recording._wakeup = Wakeup()
    sink = _Sink(recording, journal, flush_interval, _Stamper(recording, recording.clock))
    source = str(recording.metadata.get("endpoint", ""))
    sink.feeds = [s.feed(source, recording.names, recording.dtypes) for s in sinks]
    return sink


def _launch(recording: Recording, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
    loop = asyncio.get_running_loop()
    task = loop.create_task(work, name="bifrost-record")
    recording._attach(loop, task)
    return task


def start_recording(
    recording: Recording,
    read: ReadFn,
    duration_s: float | None,
    on_done: Callable[[], Any] = lambda: None,
    *,
    path: str | None = None,
    flush_interval: float = 1.0,
    sinks: Sequence[RowSink] = (),
    lead: float = 0.0,
    rows: RowRead | None = None,
) -> asyncio.Task[None]:
    """Start polling on the running loop; returns the task.

    ``read(due)`` is called ``lead`` seconds before each cycle is due (the driver's
    :attr:`~bifrost.protocols.base.Driver.cycle_lead`). ``rows``, the driver's
    :meth:`~bifrost.protocols.base.Driver.row_reader` of the same plan, replaces it
    when every tag is numeric and raw (no scale, offset or limits): each cycle is then
    decoded straight into the buffer's next row.
    """
    sink = _prepare(recording, path, flush_interval, sinks)
    return _launch(recording, _run(recording, read, duration_s, sink, on_done, lead, rows))


class _CarryForward:
    """Turns notifications about some tags into full rows (last value held per tag)."""

    def __init__(self, recording: Recording, sink: _Sink) -> None:
        width = len(recording.names)
        self.recording = recording
        self.sink = sink
        self.values = np.full(width, np.nan)
        self.objects = np.full(width, None, dtype=object)
        self.quality = np.full(width, Quality.BAD_NO_DATA, dtype=np.uint8)
        self.failing = False

    def __call__(self, result: ReadResult) -> None:
        # The subscription says it lost the device with a result for every tag, all bad
        # and without values; that row is a gap, and the next real value a reconnect, as
        # when polling.
        stats = self.recording._stats
        if _is_loss(result):
            stats.gaps += 1
            stats.last_error = f"subscription lost ({Quality(int(result.quality[0])).name.lower()})"
            self.failing = True
        elif self.failing and bool(np.any(result.quality < Quality.BAD)):
            stats.reconnects += 1
            self.failing = False
        where = np.arange(len(result.tags)) if result.indices is None else result.indices
        self.values[where] = result.as_float()
        if not self.recording.buffer.numeric.all():
            self.objects[where] = result.values()
        self.quality[where] = result.quality
        # The row is stamped on arrival: notifications carry the server's clock, which
        # may differ from ours or repeat a time, and the index must keep increasing.
        quality = self.quality.copy()
        stamp = self.sink.stamper.row(quality)
        self.recording.buffer.append(stamp, self.values, self.objects, quality)
        self.sink.maybe_flush()


def _is_loss(result: ReadResult) -> bool:
    return (
        result.indices is None
        and len(result.quality) > 0
        and not result.columns
        and bool(np.all(result.quality >= Quality.BAD))
    )


async def _run_subscribed(
    recording: Recording,
    subscribe: SubscribeFn,
    duration_s: float | None,
    sink: _Sink,
    on_done: Callable[[], Any],
) -> None:
    loop = asyncio.get_running_loop()
    recording.started_ns = sink.stamper.now()
    error: BaseException | None = None
    subscription: Subscription | None = None
    try:
        subscription = await subscribe(_CarryForward(recording, sink))
        deadline = math.inf if duration_s is None else loop.time() + duration_s
        while not recording._stop_requested.is_set() and loop.time() < deadline:
            await _sleep_until(recording, min(deadline, loop.time() + sink.flush_interval))
            sink.maybe_flush()
    except asyncio.CancelledError:
        pass
    except BaseException as exc:  # keep what was recorded; report the cause on wait()
        error = exc
    finally:
        if subscription is not None:
            await subscription._close()
            if subscription.errors:
                recording._stats.last_error = str(subscription.last_error)
        await _end(recording, sink, error, on_done)


def start_subscribed_recording(
    recording: Recording,
    subscribe: SubscribeFn,
    duration_s: float | None,
    on_done: Callable[[], Any] = lambda: None,
    *,
    path: str | None = None,
    flush_interval: float = 1.0,
    sinks: Sequence[RowSink] = (),
) -> asyncio.Task[None]:
    """Record from data-change notifications; each notification becomes a full row."""
    sink = _prepare(recording, path, flush_interval, sinks)
    return _launch(recording, _run_subscribed(recording, subscribe, duration_s, sink, on_done))

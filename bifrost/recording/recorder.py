"""The sampling loops: tasks on the event loop.

Polling: cycle ``k`` is due at ``start + k * interval`` on the monotonic clock. A cycle
that cannot start before the next one is due is counted as missed and skipped, never
run late in a burst; so a stall shows up in ``stats.missed_cycles`` and the grid never
drifts. When the device fails, every cycle still gets a row (a gap row with a bad
quality code) while reconnection attempts back off exponentially with jitter, so a dead
device is neither hammered nor hidden by silence.

Subscribing: each data-change notification becomes a row holding every tag's last value.

Both stream to disk through a :class:`~bifrost.recording.journal.Journal` when the
recording has a path.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
import warnings
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

import numpy as np

from bifrost.backoff import Backoff
from bifrost.exceptions import BifrostError, TimeoutError
from bifrost.model import Quality
from bifrost.recording.journal import Journal, StorageError, rows_table
from bifrost.recording.session import QUALITY_SUFFIX, Recording
from bifrost.recording.switching import switching
from bifrost.results import ReadResult
from bifrost.subscriptions import Subscription

__all__ = ["RecordingStorageWarning", "start_recording", "start_subscribed_recording"]

ReadFn = Callable[[float], Awaitable[ReadResult]]
"""Reads the recording's tags, the first request going out at the given monotonic time."""

_LEAD = 0.002  # s: hand the cycle to the driver this early, so no hop delays the request
SubscribeFn = Callable[[Callable[[ReadResult], None]], Awaitable[Subscription]]


class RecordingStorageWarning(UserWarning):
    """A streamed recording could not be fully written; its samples are kept in memory."""


async def _sleep_until(recording: Recording, deadline: float) -> None:
    loop = asyncio.get_running_loop()
    delay = deadline - loop.time()
    if delay <= 0:
        return
    wakeup = recording._wakeup
    assert wakeup is not None
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(wakeup.wait(), delay)


class _Sink:
    """Flushes new rows of a recording to its journal every ``flush_interval``."""

    def __init__(self, recording: Recording, journal: Journal | None, flush_interval: float):
        self.recording = recording
        self.journal = journal
        self.flush_interval = flush_interval
        self.flushed = 0
        self.last_flush = time.monotonic()

    def maybe_flush(self) -> None:
        if self.journal is not None and time.monotonic() - self.last_flush >= self.flush_interval:
            self.flush()

    def flush(self) -> None:
        self.last_flush = time.monotonic()
        if self.journal is None or len(self.recording) == self.flushed:
            return
        if self.journal.error is not None and self.recording.storage_error is None:
            # Surface it while recording (e.g. in a status panel), not only at the end.
            self.recording.storage_error = self.journal.error
            self.recording._stats.last_error = str(self.journal.error)
        times, columns, quality = self.recording.buffer.arrays(since=self.flushed)
        self.flushed += len(times)
        self.journal.submit(
            rows_table(self.recording.names, times, columns, quality, QUALITY_SUFFIX)
        )

    async def finalize(self) -> None:
        """Write the remaining rows, then the final file; keep the parts on failure."""
        journal = self.journal
        if journal is None:
            return
        self.flush()
        recording = self.recording

        def consolidate() -> None:
            from bifrost.recording.store import save_recording

            if journal.error is not None:
                raise journal.error
            save_recording(recording, journal.path)
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


async def _run(
    recording: Recording,
    read: ReadFn,
    duration_s: float | None,
    sink: _Sink,
    on_done: Callable[[], Any],
) -> None:
    loop = asyncio.get_running_loop()
    interval = recording.interval_s
    cycles = math.inf if duration_s is None else max(1, round(duration_s / interval))
    switching.recording_started()
    start = loop.time()
    recording.started_ns = time.time_ns()
    backoff = Backoff(first=max(0.1, interval))
    retry_at = 0.0
    failing = False
    k = 0
    error: BaseException | None = None
    stats = recording._stats
    try:
        while k < cycles and not recording._stop_requested.is_set():
            due = start + k * interval
            await _sleep_until(recording, due - min(_LEAD, interval / 4))
            if recording._stop_requested.is_set():
                break
            now = loop.time()
            lateness = now - due
            if lateness >= interval:
                skipped = int(lateness // interval)
                stats.missed_cycles += skipped
                k += skipped
                continue
            k += 1
            if failing and now < retry_at:
                # Still backing off: the row says so, and the device is left alone.
                recording.buffer.append_gap(time.time_ns(), Quality.BAD_COMM_LOST)
                stats.gaps += 1
                sink.maybe_flush()
                continue
            try:
                result = await read(due)
            except BifrostError as exc:
                timed_out = isinstance(exc, TimeoutError)
                recording.buffer.append_gap(
                    time.time_ns(), Quality.BAD_TIMEOUT if timed_out else Quality.BAD_COMM_LOST
                )
                stats.gaps += 1
                stats.last_error = str(exc)
                failing = True
                retry_at = loop.time() + backoff.failed()
            else:
                started = result.started if result.started is not None else now
                recording._timing.lateness.append(max(0.0, started - due))
                if failing:
                    stats.reconnects += 1
                    failing = False
                    backoff.succeeded()
                objects = result.values() if not recording.buffer.numeric.all() else None
                recording.buffer.append(
                    int(result.timestamp_ns[0]) if len(result.timestamp_ns) else time.time_ns(),
                    result.as_float(),
                    objects,
                    result.quality,
                )
            sink.maybe_flush()
    except asyncio.CancelledError:
        pass
    except BaseException as exc:  # keep what was recorded; report the cause on wait()
        error = exc
    finally:
        switching.recording_stopped()
        await sink.finalize()
        recording._finish(error)
        on_done()


def _prepare(recording: Recording, path: str | None, flush_interval: float) -> _Sink:
    journal = None
    if path is not None:
        from pathlib import Path

        from bifrost.recording.store import format_of, header

        target = Path(path)
        format_of(target)  # an unknown suffix fails before sampling starts
        journal = Journal(target, header(recording))
        recording.path = str(target)
    recording._wakeup = asyncio.Event()
    return _Sink(recording, journal, flush_interval)


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
) -> asyncio.Task[None]:
    """Start polling on the running loop; returns the task."""
    sink = _prepare(recording, path, flush_interval)
    return _launch(recording, _run(recording, read, duration_s, sink, on_done))


class _CarryForward:
    """Turns notifications about some tags into full rows (last value held per tag)."""

    def __init__(self, recording: Recording, sink: _Sink) -> None:
        width = len(recording.names)
        self.recording = recording
        self.sink = sink
        self.values = np.full(width, np.nan)
        self.objects = np.full(width, None, dtype=object)
        self.quality = np.full(width, Quality.BAD_NO_DATA, dtype=np.uint8)

    def __call__(self, result: ReadResult) -> None:
        where = np.arange(len(result.tags)) if result.indices is None else result.indices
        self.values[where] = result.as_float()
        if not self.recording.buffer.numeric.all():
            self.objects[where] = result.values()
        self.quality[where] = result.quality
        stamp = int(result.timestamp_ns.max()) if len(result.timestamp_ns) else time.time_ns()
        self.recording.buffer.append(stamp, self.values, self.objects, self.quality)
        self.sink.maybe_flush()


async def _run_subscribed(
    recording: Recording,
    subscribe: SubscribeFn,
    duration_s: float | None,
    sink: _Sink,
    on_done: Callable[[], Any],
) -> None:
    loop = asyncio.get_running_loop()
    recording.started_ns = time.time_ns()
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
        await sink.finalize()
        recording._finish(error)
        on_done()


def start_subscribed_recording(
    recording: Recording,
    subscribe: SubscribeFn,
    duration_s: float | None,
    on_done: Callable[[], Any] = lambda: None,
    *,
    path: str | None = None,
    flush_interval: float = 1.0,
) -> asyncio.Task[None]:
    """Record from data-change notifications; each notification becomes a full row."""
    sink = _prepare(recording, path, flush_interval)
    return _launch(recording, _run_subscribed(recording, subscribe, duration_s, sink, on_done))

"""The sampling loop: a task on the event loop, on a fixed grid of the monotonic clock.

Cycle ``k`` is due at ``start + k * interval``. A cycle that cannot start before the next
one is due is counted as missed and skipped, never run late in a burst; so a stall (a
slow device, a busy machine) shows up in ``stats.missed_cycles`` and the grid never
drifts. Failures become gap rows with a bad quality code; the recording goes on.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections.abc import Awaitable, Callable
from typing import Any

import numpy as np

from bifrost.exceptions import BifrostError, TimeoutError
from bifrost.model import Quality
from bifrost.recording.session import Recording
from bifrost.results import ReadResult
from bifrost.subscriptions import Subscription

__all__ = ["start_recording", "start_subscribed_recording"]

ReadFn = Callable[[], Awaitable[ReadResult]]


async def _sleep_until(recording: Recording, deadline: float) -> None:
    loop = asyncio.get_running_loop()
    delay = deadline - loop.time()
    if delay <= 0:
        return
    wakeup = recording._wakeup
    assert wakeup is not None
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(wakeup.wait(), delay)


async def _run(
    recording: Recording, read: ReadFn, duration_s: float | None, on_done: Callable[[], Any]
) -> None:
    loop = asyncio.get_running_loop()
    interval = recording.interval_s
    cycles = math.inf if duration_s is None else max(1, round(duration_s / interval))
    start = loop.time()
    recording.started_ns = time.time_ns()
    failing = False
    k = 0
    error: BaseException | None = None
    stats = recording._stats
    try:
        while k < cycles and not recording._stop_requested.is_set():
            due = start + k * interval
            await _sleep_until(recording, due)
            if recording._stop_requested.is_set():
                break
            lateness = loop.time() - due
            if lateness >= interval:
                skipped = int(lateness // interval)
                stats.missed_cycles += skipped
                k += skipped
                continue
            recording._timing.lateness.append(max(0.0, lateness))
            try:
                result = await read()
            except BifrostError as exc:
                quality = (
                    Quality.BAD_TIMEOUT
                    if isinstance(exc, TimeoutError)
                    else (Quality.BAD_COMM_LOST)
                )
                recording.buffer.append_gap(time.time_ns(), quality)
                stats.gaps += 1
                stats.last_error = str(exc)
                failing = True
            else:
                if failing:
                    stats.reconnects += 1
                    failing = False
                objects = result.values() if not recording.buffer.numeric.all() else None
                recording.buffer.append(
                    int(result.timestamp_ns[0]) if len(result.timestamp_ns) else time.time_ns(),
                    result.as_float(),
                    objects,
                    result.quality,
                )
            k += 1
    except asyncio.CancelledError:
        pass
    except BaseException as exc:  # keep what was recorded; report the cause on wait()
        error = exc
    finally:
        recording._finish(error)
        on_done()


def start_recording(
    recording: Recording,
    read: ReadFn,
    duration_s: float | None,
    on_done: Callable[[], Any] = lambda: None,
) -> asyncio.Task[None]:
    """Start sampling on the running loop; returns the task."""
    loop = asyncio.get_running_loop()
    recording._wakeup = asyncio.Event()
    task = loop.create_task(_run(recording, read, duration_s, on_done), name="bifrost-record")
    recording._attach(loop, task)
    return task


class _CarryForward:
    """Turns notifications about some tags into full rows (last value held per tag)."""

    def __init__(self, recording: Recording) -> None:
        width = len(recording.names)
        self.recording = recording
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


async def _run_subscribed(
    recording: Recording,
    subscribe: Callable[[Callable[[ReadResult], None]], Awaitable[Subscription]],
    duration_s: float | None,
    on_done: Callable[[], Any],
) -> None:
    loop = asyncio.get_running_loop()
    recording.started_ns = time.time_ns()
    error: BaseException | None = None
    subscription: Subscription | None = None
    try:
        subscription = await subscribe(_CarryForward(recording))
        deadline = math.inf if duration_s is None else loop.time() + duration_s
        while not recording._stop_requested.is_set() and loop.time() < deadline:
            await _sleep_until(recording, min(deadline, loop.time() + 1.0))
    except asyncio.CancelledError:
        pass
    except BaseException as exc:  # keep what was recorded; report the cause on wait()
        error = exc
    finally:
        if subscription is not None:
            await subscription._close()
            if subscription.errors:
                recording._stats.last_error = str(subscription.last_error)
        recording._finish(error)
        on_done()


def start_subscribed_recording(
    recording: Recording,
    subscribe: Callable[[Callable[[ReadResult], None]], Awaitable[Subscription]],
    duration_s: float | None,
    on_done: Callable[[], Any] = lambda: None,
) -> asyncio.Task[None]:
    """Record from data-change notifications; each notification becomes a full row."""
    loop = asyncio.get_running_loop()
    recording._wakeup = asyncio.Event()
    task = loop.create_task(
        _run_subscribed(recording, subscribe, duration_s, on_done), name="bifrost-record"
    )
    recording._attach(loop, task)
    return task

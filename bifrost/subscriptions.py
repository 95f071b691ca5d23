"""Subscriptions: the driver's native data-change notifications, or polling on change.

Callbacks run on bifrost's event-loop thread; keep them short (append to a list, put on
a queue). A callback that raises is counted in ``errors`` and does not end the
subscription.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import Callable
from typing import Any, TypeVar

import numpy as np
import numpy.typing as npt

from bifrost.backoff import Backoff
from bifrost.exceptions import BifrostError
from bifrost.model import Quality
from bifrost.protocols.base import Driver, NativeSubscription
from bifrost.results import ReadResult
from bifrost.scaling import Scaling

__all__ = ["Reported", "Subscription"]

_log = logging.getLogger("bifrost.subscriptions")
_T = TypeVar("_T")  # what a callback receives: a ReadResult, or a frame of events


class Reported:
    """The last value and quality delivered per tag, which a polled deadband compares with.

    Comparing with the last value *read* would never deliver a slow drift whose every
    step stays inside the deadband; OPC UA's deadband compares with the last value
    reported, and polled subscriptions behave the same.
    """

    def __init__(self) -> None:
        self._floats: npt.NDArray[np.float64] | None = None
        self._objects: npt.NDArray[np.object_] | None = None
        self._quality: npt.NDArray[np.uint8] | None = None

    def forget(self) -> None:
        """After an outage: the next read is delivered whole."""
        self._floats = self._objects = self._quality = None

    def changed(self, current: ReadResult, deadband: float) -> npt.NDArray[np.bool_]:
        """Which tags of ``current`` moved beyond ``deadband`` since last delivered.

        A change of quality counts too; the tags found are remembered as delivered.
        """
        floats = current.as_float()
        # Python objects only for the rows floats cannot hold (strings, bad values): a
        # poll of numeric tags builds none.
        objects = current.values() if np.isnan(floats).any() else None
        if self._floats is None or self._quality is None:
            self._floats, self._objects = floats.copy(), objects
            self._quality = current.quality.copy()
            return np.ones(len(current.tags), dtype=bool)
        old = self._floats
        with np.errstate(invalid="ignore"):
            moved = np.abs(floats - old) > deadband
        nan_flip = np.isnan(old) != np.isnan(floats)
        mask: npt.NDArray[np.bool_] = moved | nan_flip | (self._quality != current.quality)
        # Non-numeric values (strings) compare as objects.
        other = np.isnan(old) & np.isnan(floats)
        if other.any() and objects is not None and self._objects is not None:
            mask[other] |= self._objects[other] != objects[other]
        self._floats[mask] = floats[mask]
        if objects is not None:
            if self._objects is None:
                self._objects = np.full(len(current.tags), None, dtype=object)
            self._objects[mask] = objects[mask]
        self._quality[mask] = current.quality[mask]
        return mask


class Subscription:
    """A running subscription; :meth:`cancel` ends it (from any thread)."""

    def __init__(self, tag_names: list[str], interval_s: float) -> None:
        self.tags = list(tag_names)
        self.interval_s = interval_s
        self.notifications = 0
        self.errors = 0
        self.last_error: BaseException | None = None
        self.native = False
        self._loop: asyncio.AbstractEventLoop | None = None
        self._task: asyncio.Task[None] | None = None
        self._handle: NativeSubscription | None = None
        self._resubscriber: asyncio.Task[None] | None = None
        self.resubscriptions = 0
        self._done = threading.Event()

    @property
    def active(self) -> bool:
        """Whether notifications can still arrive."""
        return not self._done.is_set()

    def _deliver(self, callback: Callable[[_T], Any], result: _T) -> None:
        self.notifications += 1
        try:
            callback(result)
        except Exception as exc:  # a user callback must not end the subscription
            self.errors += 1
            self.last_error = exc
            _log.warning("subscription callback failed: %s", exc)

    async def _start(
        self,
        driver: Driver,
        plan: Any,
        scaling: Scaling,
        callback: Callable[[ReadResult], Any],
        queue_size: int | None,
        deadband: float,
    ) -> None:
        self._loop = asyncio.get_running_loop()

        def on_data(result: ReadResult) -> None:
            self._deliver(callback, scaling.apply(result))
            if self.native and _connection_lost(result) and self._resubscriber is None:
                self._resubscriber = asyncio.get_running_loop().create_task(
                    self._resubscribe(driver, plan, on_data, queue_size, deadband),
                    name="bifrost-resubscribe",
                )

        handle = await driver.subscribe(
            plan, self.interval_s, on_data, queue_size=queue_size, deadband=deadband
        )
        if handle is not None:
            self._handle = handle
            self.native = True
            return
        self._task = self._loop.create_task(
            self._poll(driver, plan, scaling, callback, deadband), name="bifrost-subscription"
        )

    async def _resubscribe(
        self,
        driver: Driver,
        plan: Any,
        on_data: Callable[[ReadResult], None],
        queue_size: int | None,
        deadband: float,
    ) -> None:
        """Reconnect with backoff and subscribe again, after the driver said it was lost.

        Goes on until it works or the subscription is cancelled.
        """
        backoff = Backoff(first=max(0.1, self.interval_s))
        try:
            while not self._done.is_set():
                await asyncio.sleep(backoff.failed())
                try:
                    if self._handle is not None:
                        with contextlib.suppress(BifrostError):
                            await self._handle.close()
                    await driver.connect()
                    handle = await driver.subscribe(
                        plan, self.interval_s, on_data, queue_size=queue_size, deadband=deadband
                    )
                except BifrostError as exc:
                    self.last_error = exc
                    continue
                self._handle = handle
                self.resubscriptions += 1
                return
        finally:
            self._resubscriber = None

    async def _poll(
        self,
        driver: Driver,
        plan: Any,
        scaling: Scaling,
        callback: Callable[[ReadResult], Any],
        deadband: float,
    ) -> None:
        loop = asyncio.get_running_loop()
        previous: ReadResult | None = None
        reported = Reported()
        start = loop.time()
        cycle = 0
        backoff = Backoff(first=max(0.1, self.interval_s))
        retry_at = 0.0
        while True:
            cycle += 1
            if loop.time() < retry_at:
                await asyncio.sleep(retry_at - loop.time())
            try:
                result = scaling.apply(await driver.execute_read(plan))
            except BifrostError as exc:
                self.last_error = exc
                self.errors += 1
                retry_at = loop.time() + backoff.failed()
                if previous is not None:
                    # Tell the callback once that the values are no longer current.
                    lost = ReadResult(
                        previous.tags,
                        [],
                        np.full(len(previous.tags), Quality.BAD_COMM_LOST, dtype=np.uint8),
                        previous.timestamp_ns,
                    )
                    self._deliver(callback, lost)
                    previous = None
                    reported.forget()
            else:
                backoff.succeeded()
                mask = reported.changed(result, deadband)
                if mask.any():
                    self._deliver(callback, _subset(result, mask))
                previous = result
            # Stay on the interval grid; skip cycles that are already late.
            next_due = start + cycle * self.interval_s
            now = loop.time()
            if now > next_due:
                cycle += int((now - next_due) // self.interval_s) + 1
                next_due = start + cycle * self.interval_s
            await asyncio.sleep(max(0.0, next_due - loop.time()))

    def _attach(self, handle: NativeSubscription) -> None:
        """Make this the handle of a driver's own subscription (events) already running.

        A handle that makes itself again after a lost session (OPC UA events) has an
        ``on_restore`` hook: it reports here as :meth:`_resubscribe` does for data.
        """
        self._loop = asyncio.get_running_loop()
        self._handle = handle
        self.native = True
        if hasattr(handle, "on_restore"):
            handle.on_restore = self._restored

    def _restored(self, error: BifrostError | None, final: bool) -> None:
        """A self-restoring handle was made again (``error`` None) or failed to be.

        ``final``: it cannot be made again (the server refuses it now); the
        subscription ends.
        """
        if error is None:
            self.resubscriptions += 1
            return
        self.last_error = error
        if final:
            self.errors += 1
            self._done.set()

    async def _close(self) -> None:
        if self._resubscriber is not None:
            self._resubscriber.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._resubscriber
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._handle is not None:
            with contextlib.suppress(BifrostError):
                await self._handle.close()
        self._done.set()

    def cancel(self, timeout: float = 5.0) -> None:
        """End the subscription.

        From another thread (a script, a notebook cell) it waits up to ``timeout``
        seconds until the server side is cleaned up; from a callback or a coroutine on
        bifrost's loop it returns at once and the cleanup follows.
        """
        loop = self._loop
        if loop is None or loop.is_closed() or self._done.is_set():
            self._done.set()
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            loop.create_task(self._close())
            return
        future = asyncio.run_coroutine_threadsafe(self._close(), loop)
        with contextlib.suppress(concurrent.futures.TimeoutError):
            future.result(timeout)

    def __repr__(self) -> str:
        kind = "native" if self.native else "polled"
        state = "active" if self.active else "cancelled"
        return (
            f"<Subscription {state} ({kind}): {len(self.tags)} tags, "
            f"{self.notifications} notifications>"
        )


def _connection_lost(result: ReadResult) -> bool:
    """Whether a notification says the subscription is gone.

    Drivers say so with a result for every tag, all bad, carrying no values.
    """
    return (
        result.indices is None
        and len(result.quality) > 0
        and bool(np.all(result.quality >= Quality.BAD))
        and not result.columns
    )


def _subset(result: ReadResult, mask: npt.NDArray[np.bool_]) -> ReadResult:
    if mask.all():
        return result
    keep = np.flatnonzero(mask)
    position = np.full(len(result.tags), -1, dtype=np.intp)
    position[keep] = np.arange(len(keep))
    columns = []
    for positions, values in result.columns:
        selected = mask[positions]
        if selected.any():
            columns.append((position[positions[selected]], values[selected]))
    return ReadResult(
        tuple(result.tags[i] for i in keep),
        columns,
        result.quality[keep],
        result.timestamp_ns[keep],
        result.errors,
        keep if result.indices is None else result.indices[keep],
    )

"""Intervals and durations given as ``"100ms"``, ``"10s"``, numbers or timedeltas; sleeps.

:class:`Wakeup` is how a recorder waits for its next cycle, cut short by
:meth:`Wakeup.set` (a stop). The sleeps of every recorder on a loop share one timetable
with one loop timer at its earliest deadline: recordings due at the same tick wake in
one pass, and no timer handle is made and cancelled per recording per cycle (asyncio
orders its timers with a comparison written in Python, the timetable with tuples).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import heapq
import itertools
import time
import weakref

import pandas as pd

from bifrost.exceptions import ConfigurationError

__all__ = ["Span", "Wakeup", "seconds"]

Span = str | float | int | dt.timedelta | pd.Timedelta


def seconds(value: Span, what: str) -> float:
    """Convert a user-given interval or duration to positive seconds.

    Numbers are seconds; strings use pandas' notation (``"100ms"``, ``"2min"``, ``"1h"``).
    """
    if isinstance(value, bool):
        raise ConfigurationError(f"{what} must be a duration like '100ms' or 0.1, got {value!r}")
    try:
        if isinstance(value, int | float):
            result = float(value)
        else:
            result = pd.Timedelta(value).total_seconds()
    except (TypeError, ValueError):
        raise ConfigurationError(
            f"{what} {value!r} is not a duration; use e.g. '100ms', '10s', '5min' or seconds"
        ) from None
    if not result > 0:
        raise ConfigurationError(f"{what} must be positive, got {value!r}")
    return result


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


# asyncio runs a timer once it is due within the clock's resolution; so does the
# timetable, so a sleep ends exactly when a timer of its own would have ended it.
_RESOLUTION = time.get_clock_info("monotonic").resolution


class _Timetable:
    """The pending sleeps of one loop, earliest first, behind a single loop timer.

    It holds its loop only weakly (and through its timer while one is armed), so a
    loop that ran recordings is freed with its timetable once it is gone.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = weakref.ref(loop)
        self._heap: list[tuple[float, int, asyncio.Future[None]]] = []
        self._order = itertools.count()  # ties keep the order the sleeps began in
        self._timer: asyncio.TimerHandle | None = None
        self._at = 0.0  # the timer's deadline
        self._live = 0  # sleeps added and not yet over

    def add(
        self, loop: asyncio.AbstractEventLoop, deadline: float, waiter: asyncio.Future[None]
    ) -> None:
        """Wake ``waiter`` (set its result) at ``deadline`` on the loop's clock."""
        self._live += 1
        heapq.heappush(self._heap, (deadline, next(self._order), waiter))
        timer = self._timer
        if timer is None or deadline < self._at:
            if timer is not None:
                timer.cancel()
            self._arm(loop, deadline)

    def _arm(self, loop: asyncio.AbstractEventLoop, deadline: float) -> None:
        self._at = deadline
        self._timer = loop.call_at(deadline, self._fire, loop)

    def _fire(self, loop: asyncio.AbstractEventLoop) -> None:
        self._timer = None
        heap = self._heap
        end = loop.time() + _RESOLUTION
        while heap and heap[0][0] < end:
            waiter = heapq.heappop(heap)[2]
            if not waiter.done():  # not already woken by a stop, nor cancelled
                waiter.set_result(None)
        if heap:
            self._arm(loop, heap[0][0])

    def done(self, loop: asyncio.AbstractEventLoop) -> None:
        """One sleep is over (woken, stopped early or cancelled)."""
        self._live -= 1
        heap = self._heap
        if not self._live:
            # Every sleep left is over: no entry, and no timer, outlives them.
            heap.clear()
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            return
        if heap and heap[0][2].done():
            # A stopped sleep at the head: the timer moves on to the next live one.
            while heap and heap[0][2].done():
                heapq.heappop(heap)
            timer = self._timer
            if timer is not None and (not heap or heap[0][0] > self._at):
                timer.cancel()
                self._timer = None
                if heap:
                    self._arm(loop, heap[0][0])


_timetables: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _Timetable] = (
    weakref.WeakKeyDictionary()
)


def _timetable(loop: asyncio.AbstractEventLoop) -> _Timetable:
    table = _timetables.get(loop)
    if table is None:
        table = _timetables[loop] = _Timetable(loop)
    return table


class Wakeup:
    """Sleeps on the event loop that end at their deadline or once :meth:`set` is called.

    One future per sleep, woken by the loop's timetable: ``asyncio.wait_for`` on an
    event would start a task per sleep, a cost every cycle of every recording pays. Use
    it from the loop's thread only (``loop.call_soon_threadsafe(wakeup.set)`` from
    others).
    """

    def __init__(self) -> None:
        self._set = False
        self._waiter: asyncio.Future[None] | None = None
        self._table: _Timetable | None = None  # the timetable of the loop last slept on

    def is_set(self) -> bool:
        """Whether :meth:`set` was called (sleeps return at once from then on)."""
        return self._set

    def set(self) -> None:
        """End the current sleep and every later one at once."""
        self._set = True
        if self._waiter is not None:
            _wake(self._waiter)

    async def sleep_until(self, deadline: float) -> None:
        """Sleep until ``deadline`` on the loop's clock (``loop.time()``), or until set."""
        loop = asyncio.get_running_loop()
        if self._set or deadline <= loop.time():
            return
        waiter: asyncio.Future[None] = loop.create_future()
        self._waiter = waiter
        table = self._table
        if table is None or table.loop() is not loop:
            table = self._table = _timetable(loop)
        table.add(loop, deadline, waiter)
        try:
            await waiter
        finally:
            self._waiter = None
            table.done(loop)

"""Intervals and durations given as ``"100ms"``, ``"10s"``, numbers or timedeltas; sleeps.

:class:`Wakeup` is how a recorder waits for its next cycle: a timer on the loop that
:meth:`Wakeup.set` (a stop) cuts short.
"""

from __future__ import annotations

import asyncio
import datetime as dt

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


class Wakeup:
    """Sleeps on the event loop that end at their deadline or once :meth:`set` is called.

    One future and one timer per sleep: ``asyncio.wait_for`` on an event would start a
    task per sleep, a cost every cycle of every recording pays. Use it from the loop's
    thread only (``loop.call_soon_threadsafe(wakeup.set)`` from others).
    """

    def __init__(self) -> None:
        self._set = False
        self._waiter: asyncio.Future[None] | None = None

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
        timer = loop.call_at(deadline, _wake, waiter)
        try:
            await waiter
        finally:
            timer.cancel()
            self._waiter = None

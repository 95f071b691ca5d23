"""The time axis of live trends: wall-clock tick labels in one timezone.

Imported when the first :class:`~bifrost.jupyter.LiveTrend` is made (it imports
matplotlib). The x values are matplotlib date numbers computed here, set with a date
locator and :class:`WallClockFormatter`, instead of datetimes left to matplotlib's unit
machinery: a line created from empty float data keeps a number formatter, which printed
ticks such as ``0.00022`` under an offset ``+2.0788891e4``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
from matplotlib import dates as mdates

from bifrost.jupyter.widgets._common import Timezone, resolve_timezone, timezone_name

__all__ = ["TimeAxis", "WallClockFormatter", "date_numbers"]

_NS_PER_DAY = 86_400 * 10**9
_MAX_DECIMALS = 3  # recordings sample at 1 ms at best
_SLACK_US = 50  # date numbers are floats: a round tick may sit a few microseconds off


def date_numbers(times: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """UTC nanoseconds -> matplotlib date numbers (float days since its epoch)."""
    epoch_text: str = mdates.get_epoch()  # type: ignore[no-untyped-call]
    epoch = int(np.datetime64(epoch_text, "ns").astype(np.int64))
    whole, rest = np.divmod(np.asarray(times, dtype=np.int64) - epoch, _NS_PER_DAY)
    # Days and the fraction apart, so no int64 -> float64 step loses the microseconds.
    return whole.astype(np.float64) + rest.astype(np.float64) / _NS_PER_DAY


def _rounded(moment: dt.datetime, decimals: int) -> dt.datetime:
    quantum = 10 ** (6 - decimals)
    micros = round(moment.microsecond / quantum) * quantum
    return moment.replace(microsecond=0) + dt.timedelta(microseconds=micros)


def _decimals(moments: Sequence[dt.datetime]) -> int:
    """The fewest decimals of a second that show every tick exactly (0.2 s ticks: 1)."""
    for decimals in range(_MAX_DECIMALS + 1):
        quantum = 10 ** (6 - decimals)
        if all(
            min(m.microsecond % quantum, quantum - m.microsecond % quantum) <= _SLACK_US
            for m in moments
        ):
            return decimals
    return _MAX_DECIMALS


class WallClockFormatter(mdates.DateFormatter):
    """Tick labels in wall-clock time: ``HH:MM:SS``, and the date when the view spans days.

    Ticks closer than a second get the decimals they need (``10:49:01.2``). When the view
    crosses midnight in ``tz``, the first tick and the first tick of each new day carry
    the date on a second line (``00:00:00`` over ``2026-11-30``).

    Parameters
    ----------
    tz
        The timezone the labels are in (the data stay UTC).
    """

    def __init__(self, tz: dt.tzinfo) -> None:
        super().__init__("%H:%M:%S", tz=tz)  # type: ignore[no-untyped-call]
        self.zone = tz

    def _moments(self, values: Sequence[float]) -> list[dt.datetime]:
        return [mdates.num2date(v, tz=self.zone) for v in values]  # type: ignore[no-untyped-call]

    def _spans_days(self, moments: list[dt.datetime]) -> bool:
        days = {m.date() for m in moments}
        axis = getattr(self, "axis", None)
        if axis is not None:
            low, high = axis.get_view_interval()
            days |= {m.date() for m in self._moments([low, high])}
        return len(days) > 1

    def format_ticks(self, values: Sequence[float]) -> list[str]:
        """Labels for all ticks at once (the decimals and dates depend on all of them)."""
        raw = self._moments(values)
        decimals = _decimals(raw)
        moments = [_rounded(m, decimals) for m in raw]
        with_date = self._spans_days(moments)
        labels: list[str] = []
        last_day: dt.date | None = None
        for moment in moments:
            text = moment.strftime("%H:%M:%S")
            if decimals:
                text += f".{moment.microsecond:06d}"[: decimals + 1]
            if with_date and moment.date() != last_day:
                text += "\n" + moment.strftime("%Y-%m-%d")
                last_day = moment.date()
            labels.append(text)
        return labels

    def __call__(self, x: float, pos: int | None = 0) -> str:
        """One value alone (e.g. a cursor readout): date and time to the millisecond."""
        moment = _rounded(mdates.num2date(x, tz=self.zone), 3)  # type: ignore[no-untyped-call]
        return moment.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]


class TimeAxis:
    """The time axis of one trend: its timezone, locator, formatter and conversions.

    Parameters
    ----------
    tz
        See :data:`Timezone`.
    """

    def __init__(self, tz: Timezone) -> None:
        self.tz = resolve_timezone(tz)

    def name(self, at_ns: int | None = None) -> str:
        """The zone's name (its abbreviation at ``at_ns`` for zones without one)."""
        at = None if at_ns is None else self.moment(at_ns)
        return timezone_name(self.tz, at)

    def moment(self, ns: int) -> dt.datetime:
        """UTC nanoseconds as an aware datetime in the axis' zone (to the microsecond)."""
        seconds, nanos = divmod(int(ns), 10**9)
        utc = dt.datetime.fromtimestamp(seconds, tz=dt.UTC) + dt.timedelta(
            microseconds=nanos // 1000
        )
        return utc.astimezone(self.tz)

    numbers = staticmethod(date_numbers)

    def install(self, ax: Any) -> None:
        """Give ``ax`` (the bottom of axes sharing x) the date locator, formatter and label."""
        locator = mdates.AutoDateLocator(tz=self.tz, minticks=3, maxticks=7)  # type: ignore[no-untyped-call]
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(WallClockFormatter(self.tz))
        ax.set_xlabel(f"time ({self.name()})", fontsize=8)

    def span(self, first_ns: int, last_ns: int) -> str:
        """``10:49:01 → 10:49:05 UTC``, with dates when the span crosses midnight."""
        first, last = self.moment(first_ns), self.moment(last_ns)
        pattern = "%H:%M:%S" if first.date() == last.date() else "%Y-%m-%d %H:%M:%S"
        return f"{first:{pattern}} → {last:{pattern}} {self.name(last_ns)}"

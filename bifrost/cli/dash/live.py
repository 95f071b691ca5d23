"""What the dashboard shows, kept apart from Textual: the last reading and a trend per tag.

The poller feeds :class:`LiveValues` one :class:`~bifrost.results.ReadResult` (or one
error) per cycle; the widgets only draw what it holds.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from bifrost._html import format_value
from bifrost.exceptions import TimeoutError as BifrostTimeoutError
from bifrost.model import Quality
from bifrost.results import ReadResult

__all__ = ["LiveValues", "Reading", "format_cell", "quality_style"]

_MAX_CELL = 40  # characters of a value shown in a cell


@dataclass(frozen=True, slots=True)
class Reading:
    """The last value of one tag: None where the quality is bad."""

    value: Any
    quality: Quality
    timestamp_ns: int

    def age_s(self, now_ns: int | None = None) -> float:
        """Seconds since the value was taken."""
        return ((now_ns if now_ns is not None else time.time_ns()) - self.timestamp_ns) / 1e9


def quality_style(quality: Quality) -> str:
    """The Rich style of a quality: green good, yellow uncertain, red bad."""
    if quality.is_bad:
        return "bold red"
    return "green" if quality.is_good else "yellow"


def format_cell(value: Any) -> str:
    """A value as one short cell: arrays (OPC UA waveforms) as their size and first values."""
    if isinstance(value, np.ndarray | list | tuple):
        items = np.asarray(value).ravel()
        head = ", ".join(format_value(v) for v in items[:3].tolist())
        return f"[{len(items)}: {head}{', …' if len(items) > 3 else ''}]"
    text = "—" if value is None else format_value(value)
    return text if len(text) <= _MAX_CELL else text[: _MAX_CELL - 1] + "…"


class LiveValues:
    """The last reading of every polled tag and a bounded trend of the numeric ones.

    Parameters
    ----------
    history
        Points kept per tag for the trend (the oldest are dropped).
    """

    def __init__(self, history: int = 600) -> None:
        self._history = history
        self.latest: dict[str, Reading] = {}
        self._trend: dict[str, deque[tuple[int, float]]] = {}
        self.cycles = 0
        self.error: str | None = None

    def update(self, result: ReadResult) -> None:
        """Take one cycle's result; a bad value goes into the trend as a gap (NaN)."""
        values = result.values()
        numbers = result.as_float()
        for i, tag in enumerate(result.tags):
            quality = Quality(int(result.quality[i]))
            stamp = int(result.timestamp_ns[i])
            self.latest[tag.name] = Reading(values[i], quality, stamp)
            self._points(tag.name).append((stamp, float(numbers[i])))
        self.cycles += 1
        self.error = None

    def fail(self, names: Sequence[str], error: BaseException) -> None:
        """A cycle's read failed: its tags show bad quality, never their old value as good."""
        quality = (
            Quality.BAD_TIMEOUT if isinstance(error, BifrostTimeoutError) else Quality.BAD_COMM_LOST
        )
        now = time.time_ns()
        for name in names:
            self.latest[name] = Reading(None, quality, now)
            self._points(name).append((now, float("nan")))
        self.cycles += 1
        self.error = f"{type(error).__name__}: {error}"

    def _points(self, name: str) -> deque[tuple[int, float]]:
        points = self._trend.get(name)
        if points is None:
            points = self._trend[name] = deque(maxlen=self._history)
        return points

    def trend(
        self, name: str, now_ns: int | None = None
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
        """Seconds before ``now_ns`` (negative) and the values of ``name``'s trend."""
        points = self._trend.get(name)
        if not points:
            return np.empty(0), np.empty(0)
        stamps, values = zip(*points, strict=True)
        now = now_ns if now_ns is not None else time.time_ns()
        seconds = (np.asarray(stamps, dtype=np.int64) - now) / 1e9
        return seconds, np.asarray(values, dtype=np.float64)

    def numeric(self, name: str) -> bool:
        """Whether ``name`` has at least one finite point to draw."""
        points = self._trend.get(name)
        return points is not None and any(np.isfinite(v) for _, v in points)

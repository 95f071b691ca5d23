"""The timestamps of samples: one wall-clock anchor advanced by the monotonic clock.

``time.time_ns()`` follows every step of the system clock (an NTP correction, someone
setting the time, a virtual machine resumed), so stamping samples with it can make a
recording's index jump backwards, and pandas' time-based windows then refuse it. A
:class:`Clock` stamps ``anchor_wall + (monotonic - anchor_monotonic)`` instead: stamps
advance exactly as the monotonic clock does and never go back.

Each reading also compares the system clock with that. A disagreement that changed by
more than ``threshold_s`` since the last reading is a *step*, kept as a
:class:`ClockStep` in :attr:`Clock.steps`:

- forwards: the clock re-anchors on the system clock, so stamps jump forwards with it;
- backwards: the anchor stays (stamps keep increasing) and the clock runs slow by at
  most ``slew_ppm`` (500 ppm, what NTP itself allows) until it agrees with the system
  clock again; meanwhile stamps are ahead of the system clock by
  :attr:`ClockStep.ahead_ns` at most.

Recordings put each step they live through in their metadata (``clock_steps``) and
flag the row stamped right after it ``Quality.UNCERTAIN_CLOCK``. Drift between the two
clocks is left alone until it adds up to more than the threshold (on Linux the
monotonic clock is slewed with the system clock, so only real steps get there).

Drivers stamp samples with :func:`wall_ns`, which reads the process-wide clock;
:func:`use_clock` swaps it, e.g. for a clock on fake sources in tests.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from bifrost.exceptions import ConfigurationError

__all__ = ["Clock", "ClockStep", "default_clock", "use_clock", "wall_ns"]

_NS = 1_000_000_000


@dataclass(frozen=True, slots=True)
class ClockStep:
    """A step of the system clock, as one :class:`Clock` saw it.

    Attributes
    ----------
    at_ns
        The clock's own stamp of the reading that saw the step.
    step_ns
        How far the system clock moved against the monotonic clock (negative: back).
    shift_ns
        How far the clock's stamps jumped forwards because of it (0 for backward steps).
    ahead_ns
        How far the clock's stamps are ahead of the system clock right after the step
        (0 for forward steps; slewed away afterwards).
    """

    at_ns: int
    step_ns: int
    shift_ns: int
    ahead_ns: int

    def as_dict(self) -> dict[str, Any]:
        """The step as JSON-able recording metadata."""
        return {
            "event": "clock_step",
            "at_ns": self.at_ns,
            "step_ns": self.step_ns,
            "shift_ns": self.shift_ns,
            "ahead_ns": self.ahead_ns,
        }


class Clock:
    """Sample timestamps (ns since the epoch, UTC) that never go backwards.

    Parameters
    ----------
    wall, monotonic
        Sources of ns readings; ``time.time_ns`` and ``time.monotonic_ns`` unless given
        (tests inject fake ones to step the wall clock).
    threshold_s
        A change of the disagreement between the two sources beyond this is a step.
    slew_ppm
        Rate at which a backward step is caught up: the clock runs this much slow.

    Thread-safe: drivers read it on their worker threads, recorders on the loop.
    """

    def __init__(
        self,
        wall: Callable[[], int] = time.time_ns,
        monotonic: Callable[[], int] = time.monotonic_ns,
        *,
        threshold_s: float = 1.0,
        slew_ppm: int = 500,
    ) -> None:
        if not threshold_s > 0:
            raise ConfigurationError(f"threshold_s must be positive seconds, got {threshold_s!r}")
        if not 0 < slew_ppm < 1_000_000:
            raise ConfigurationError(
                f"slew_ppm must be between 1 and 999999 (parts per million), got {slew_ppm!r}"
            )
        self._wall = wall
        self._monotonic = monotonic
        self.threshold_ns = int(threshold_s * _NS)
        self.slew_ppm = slew_ppm
        self._lock = threading.Lock()
        mono = monotonic()
        self._anchor_wall = wall()
        self._anchor_mono = mono
        self._debt = 0  # ns still to catch up after a backward step
        self._slew_from = mono
        self._last = self._anchor_wall
        self._steps: list[ClockStep] = []

    def _estimate(self, mono: int) -> tuple[int, int]:
        """The stamp at ``mono`` and how far it is still ahead of the system clock."""
        paid = min(self._debt, (mono - self._slew_from) * self.slew_ppm // 1_000_000)
        return self._anchor_wall + (mono - self._anchor_mono) - paid, self._debt - paid

    def _read(self) -> tuple[int, int]:
        # A pause between the two readings (preemption, a suspended VM) would look like a
        # step: read again until both readings are close together.
        for _ in range(3):
            before = self._monotonic()
            wall = self._wall()
            mono = self._monotonic()
            if mono - before < self.threshold_ns // 4:
                break
        return mono, wall

    def wall_ns(self) -> int:
        """Now, in ns since the epoch: never less than any earlier reading."""
        with self._lock:
            mono, wall = self._read()
            stamp, ahead = self._estimate(mono)
            disagreement = wall - stamp  # -ahead while nothing stepped
            step = disagreement + ahead
            if abs(step) > self.threshold_ns:
                if disagreement > 0:
                    shift, ahead = disagreement, 0
                    stamp = wall
                else:
                    shift, ahead = 0, -disagreement
                self._anchor_wall, self._anchor_mono = stamp, mono
                self._debt, self._slew_from = ahead, mono
                stamp = max(stamp, self._last)
                self._steps.append(ClockStep(stamp, step, shift, ahead))
            elif self._debt and ahead == 0:
                # Caught up: fold the slewed amount into the anchor, so the arithmetic
                # stays on small numbers.
                self._anchor_wall, self._anchor_mono = stamp, mono
                self._debt, self._slew_from = 0, mono
            # The monotonic source never goes back, but floor division while slewing can
            # land one ns short of the previous reading.
            stamp = max(stamp, self._last)
            self._last = stamp
            return stamp

    @property
    def steps(self) -> tuple[ClockStep, ...]:
        """Every step seen so far, oldest first."""
        with self._lock:
            return tuple(self._steps)

    def steps_since(self, count: int) -> tuple[ClockStep, ...]:
        """The steps after the first ``count`` (a reader's cursor into :attr:`steps`)."""
        with self._lock:
            return tuple(self._steps[count:])

    @property
    def ahead_ns(self) -> int:
        """How far stamps are ahead of the system clock now (a backward step not caught up)."""
        with self._lock:
            return self._estimate(self._monotonic())[1]

    def __repr__(self) -> str:
        return (
            f"<Clock: {len(self._steps)} steps seen, threshold "
            f"{self.threshold_ns / _NS:g} s, ahead {self.ahead_ns / _NS:g} s>"
        )


class _Current:
    clock = Clock()


def default_clock() -> Clock:
    """The process-wide clock behind :func:`wall_ns`."""
    return _Current.clock


def wall_ns() -> int:
    """A sample timestamp from the process-wide clock (ns since the epoch, UTC)."""
    return _Current.clock.wall_ns()


@contextlib.contextmanager
def use_clock(clock: Clock) -> Iterator[Clock]:
    """Make ``clock`` the process-wide clock inside the ``with`` block.

    Every thread sees the swap; a recording keeps the clock it started with.
    """
    previous, _Current.clock = _Current.clock, clock
    try:
        yield clock
    finally:
        _Current.clock = previous

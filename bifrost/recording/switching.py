"""Keep the GIL moving while recordings run.

A pure-Python loop in a notebook cell holds the GIL for CPython's switch interval (5 ms
by default) each time the sampling thread asks for it; at 100 Hz that alone skips
cycles. While any recording runs, bifrost lowers the interval to
``switching.realtime_interval`` and restores the user's value when the last recording
ends. Set ``bifrost.recording.switching.realtime_interval = None`` to opt out.
"""

from __future__ import annotations

import sys
import threading

__all__ = ["SwitchInterval", "switching"]


class SwitchInterval:
    """Reference-counted lowering of ``sys.setswitchinterval``.

    Measured on 2 cores with a busy Python loop on the main thread and 500 tags at
    100 Hz (benchmarks/bench_recording.py): 5 ms (CPython's default) missed ~48 % of the
    cycles, 1 ms ~8 %, 0.2 ms ~2.5 %.
    """

    def __init__(self, realtime_interval: float | None = 0.0002) -> None:
        self.realtime_interval = realtime_interval
        self._lock = threading.Lock()
        self._active = 0
        self._saved: float | None = None

    def recording_started(self) -> None:
        """Count a running recording; the first one lowers the switch interval."""
        with self._lock:
            self._active += 1
            target = self.realtime_interval
            if self._active == 1 and target is not None and sys.getswitchinterval() > target:
                self._saved = sys.getswitchinterval()
                sys.setswitchinterval(target)

    def recording_stopped(self) -> None:
        """Uncount a recording; the last one restores the user's switch interval."""
        with self._lock:
            self._active = max(0, self._active - 1)
            if self._active == 0 and self._saved is not None:
                sys.setswitchinterval(self._saved)
                self._saved = None


switching = SwitchInterval()

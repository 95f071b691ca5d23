"""Bounded polling for tests: wait for a condition, never assert on elapsed time."""

from __future__ import annotations

import time
from collections.abc import Callable


def wait_for(predicate: Callable[[], object], timeout: float = 15.0, step: float = 0.01) -> bool:
    """Poll ``predicate`` until it is true (returns True) or ``timeout`` s pass (False)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return bool(predicate())

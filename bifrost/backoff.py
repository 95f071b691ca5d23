"""Exponential backoff with jitter for reconnection attempts."""

from __future__ import annotations

import random

__all__ = ["Backoff"]


class Backoff:
    """Delays that double after each failure, up to a ceiling, with jitter.

    Parameters
    ----------
    first
        Seconds after the first failure (before jitter).
    ceiling
        The longest delay.
    """

    def __init__(self, first: float = 0.1, ceiling: float = 5.0) -> None:
        self.first = first
        self.ceiling = ceiling
        self.delay = 0.0

    def failed(self) -> float:
        """Record a failure; returns seconds to wait before the next attempt."""
        self.delay = self.first if self.delay == 0 else min(self.ceiling, self.delay * 2)
        # Jitter keeps many connections from reconnecting in lockstep after an outage.
        return self.delay * (0.5 + random.random() / 2)

    def succeeded(self) -> None:
        """Reset after a successful call."""
        self.delay = 0.0

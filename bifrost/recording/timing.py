"""Parsing of intervals and durations given as ``"100ms"``, ``"10s"``, numbers or timedeltas."""

from __future__ import annotations

import datetime as dt

import pandas as pd

from bifrost.exceptions import ConfigurationError

__all__ = ["Span", "seconds"]

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

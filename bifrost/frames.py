"""Conversion of read results to pandas objects (tz-aware UTC, units and addresses kept)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from bifrost.model import Quality
from bifrost.results import ReadResult

__all__ = ["QUALITY_NAMES", "quality_names", "read_frame"]

QUALITY_NAMES = np.array(
    [
        Quality(code).name.lower() if code in Quality._value2member_map_ else "bad"
        for code in range(256)
    ],
    dtype=object,
)


def quality_names(codes: np.ndarray[Any, np.dtype[np.uint8]]) -> np.ndarray[Any, Any]:
    """Readable names (``good``, ``bad_timeout``...) for an array of quality codes."""
    return QUALITY_NAMES[codes]


def read_frame(result: ReadResult, units: Sequence[str], addresses: Sequence[str]) -> pd.DataFrame:
    """One row per tag: value, quality, timestamp (UTC), unit, address; indexed by tag."""
    index = pd.Index([t.name for t in result.tags], name="tag")
    timestamps = pd.DatetimeIndex(result.timestamp_ns.view("datetime64[ns]")).tz_localize("UTC")
    return pd.DataFrame(
        {
            "value": result.values(),
            "quality": quality_names(result.quality),
            "timestamp": timestamps,
            "unit": list(units),
            "address": list(addresses),
        },
        index=index,
    )

"""Conversion of read results to pandas objects (tz-aware UTC, units and addresses kept)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from bifrost.model import Quality, Tag
from bifrost.results import ReadResult

__all__ = ["QUALITY_CATEGORIES", "ReadLayout", "quality_categorical", "read_frame"]

QUALITY_CATEGORIES = [q.name.lower() for q in Quality]
# Maps every uint8 code to its category index; unknown codes count as plain "bad".
_CODE_TO_CATEGORY = np.full(256, QUALITY_CATEGORIES.index("bad"), dtype=np.int8)
_QUALITY_DTYPE = pd.CategoricalDtype(QUALITY_CATEGORIES)
for _i, _q in enumerate(Quality):
    _CODE_TO_CATEGORY[_q.value] = _i


def quality_categorical(codes: npt.NDArray[np.uint8]) -> pd.Categorical:
    """Readable quality names (``good``, ``bad_timeout``...) for an array of codes."""
    return pd.Categorical.from_codes(_CODE_TO_CATEGORY[codes], dtype=_QUALITY_DTYPE)


class ReadLayout:
    """The per-tag columns of a read's DataFrame, built once per tag list and reused."""

    __slots__ = ("addresses", "index", "units")

    def __init__(self, tags: Sequence[Tag]) -> None:
        self.index = pd.Index([t.name for t in tags], name="tag", dtype="str")
        self.units = pd.array([t.unit for t in tags], dtype="str")
        self.addresses = pd.array([t.address for t in tags], dtype="str")


def read_frame(result: ReadResult, layout: ReadLayout) -> pd.DataFrame:
    """One row per tag: value, quality, timestamp (UTC), unit, address; indexed by tag."""
    columns: dict[str, Any] = {
        "value": result.values(),
        "quality": quality_categorical(result.quality),
        "timestamp": pd.DatetimeIndex(result.timestamp_ns.view("datetime64[ns]"), tz="UTC"),
        "unit": layout.units,
        "address": layout.addresses,
    }
    return pd.DataFrame(columns, index=layout.index, copy=False)

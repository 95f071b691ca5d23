"""Engineering units on reads: ``value = raw * scale + offset``, applied once per result.

Drivers return raw values; the connection applies each tag's scale and offset here, on
the columnar :class:`~bifrost.results.ReadResult`, so every protocol scales alike and a
driver never needs to know about engineering units. (Writes go the other way once, in
:func:`bifrost.values.unscale`.) A value outside its tag's engineering limits (``min``,
``max``) is marked here too: its good quality becomes ``UNCERTAIN``.
"""

from __future__ import annotations

from collections.abc import Sequence
from operator import attrgetter
from typing import Any

import numpy as np

from bifrost.model import Quality, Tag
from bifrost.results import ReadResult

__all__ = ["Scaling"]


_scale, _offset = attrgetter("scale"), attrgetter("offset")
_min, _max = attrgetter("min"), attrgetter("max")


class Scaling:
    """The scale, offset and limits of each tag of a tag list, or nothing when none has any.

    Built once per compiled tag list, so a read of plain tags costs two attribute tests.
    """

    __slots__ = ("high", "low", "offset", "scale")

    def __init__(self, tags: Sequence[Tag]) -> None:
        # Sets of the fields (built at C speed) in place of a test per tag: a cold plan
        # of many thousand plain tags asks this once. Same outcome as Tag.is_scaled.
        scales, offsets = list(map(_scale, tags)), list(map(_offset, tags))
        scaled = bool(set(scales) - {1.0} or set(offsets) - {0.0})
        self.scale = np.array(scales, dtype=np.float64) if scaled else None
        self.offset = np.array(offsets, dtype=np.float64) if scaled else None
        limited = bool(set(map(_min, tags)) - {None} or set(map(_max, tags)) - {None})
        self.low = (
            np.array([-np.inf if t.min is None else t.min for t in tags]) if limited else None
        )
        self.high = (
            np.array([np.inf if t.max is None else t.max for t in tags]) if limited else None
        )

    def apply(self, result: ReadResult) -> ReadResult:
        """Scale the numeric columns of ``result`` in place of their raw values.

        ``result.indices`` (notifications carrying some tags only) maps the result's rows
        to the tag list this scaling was built for. Bool, string and array columns stay
        as they are: a scale has no meaning for them.
        """
        if self.scale is not None and self.offset is not None:
            for k, (positions, values) in enumerate(result.columns):
                if values.dtype.kind not in "iuf" or len(positions) == 0:
                    continue
                rows = positions if result.indices is None else result.indices[positions]
                scale, offset = self.scale[rows], self.offset[rows]
                if (scale != 1.0).any() or (offset != 0.0).any():
                    result.columns[k] = (positions, values * scale + offset)
        if self.low is not None and self.high is not None:
            self._mark_outside(result, self.low, self.high)
        return result

    @staticmethod
    def _mark_outside(
        result: ReadResult, low: np.ndarray[Any, Any], high: np.ndarray[Any, Any]
    ) -> None:
        """Good values outside their tag's limits become UNCERTAIN (worse ones stay)."""
        for positions, values in result.columns:
            if values.dtype.kind not in "iuf" or len(positions) == 0:
                continue
            rows = positions if result.indices is None else result.indices[positions]
            outside = positions[(values < low[rows]) | (values > high[rows])]
            if len(outside):
                quality = result.quality[outside]
                result.quality[outside] = np.where(
                    quality < Quality.UNCERTAIN, Quality.UNCERTAIN, quality
                )

"""Engineering units on reads: ``value = raw * scale + offset``, applied once per result.

Drivers return raw values; the connection applies each tag's scale and offset here, on
the columnar :class:`~bifrost.results.ReadResult`, so every protocol scales alike and a
driver never needs to know about engineering units. (Writes go the other way once, in
:func:`bifrost.values.unscale`.)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from bifrost.model import Tag
from bifrost.results import ReadResult

__all__ = ["Scaling"]


class Scaling:
    """The scale and offset of each tag of a tag list, or nothing when none is scaled.

    Built once per compiled tag list, so a read of unscaled tags costs one attribute test.
    """

    __slots__ = ("offset", "scale")

    def __init__(self, tags: Sequence[Tag]) -> None:
        scaled = any(tag.is_scaled for tag in tags)
        self.scale = np.array([t.scale for t in tags], dtype=np.float64) if scaled else None
        self.offset = np.array([t.offset for t in tags], dtype=np.float64) if scaled else None

    def apply(self, result: ReadResult) -> ReadResult:
        """Scale the numeric columns of ``result`` in place of their raw values.

        ``result.indices`` (notifications carrying some tags only) maps the result's rows
        to the tag list this scaling was built for. Bool, string and array columns stay
        as they are: a scale has no meaning for them.
        """
        if self.scale is None or self.offset is None:
            return result
        for k, (positions, values) in enumerate(result.columns):
            if values.dtype.kind not in "iuf" or len(positions) == 0:
                continue
            rows = positions if result.indices is None else result.indices[positions]
            scale, offset = self.scale[rows], self.offset[rows]
            if (scale != 1.0).any() or (offset != 0.0).any():
                result.columns[k] = (positions, values * scale + offset)
        return result

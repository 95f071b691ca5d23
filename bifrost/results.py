"""The columnar result of one batch read, shared by drivers, frames and recorders."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from bifrost.exceptions import ProtocolError
from bifrost.model import Quality, Tag

if TYPE_CHECKING:
    # bifrost-core defines the driver interface without NumPy; the drivers that make
    # results (bifrost-iot and after) bring it.
    import numpy as np
    import numpy.typing as npt

__all__ = ["ReadResult"]

_BAD = int(Quality.BAD)  # compared with every result's qualities: the enum looked up once


@dataclass(slots=True)
class ReadResult:
    """Values of one batch read, kept columnar.

    Attributes
    ----------
    tags
        The tags in request order.
    columns
        ``(positions, values)`` pairs: ``values[k]`` belongs to ``tags[positions[k]]``.
        Each ``values`` array has one dtype (decoded in one vectorised step).
    quality
        One :class:`~bifrost.model.Quality` code per tag (uint8).
    timestamp_ns
        One UTC timestamp (ns since the epoch) per tag (int64).
    errors
        Errors the device answered for parts of the batch; those tags have bad quality.
    indices
        For subscription notifications that carry only some tags: the position of each
        of ``tags`` in the subscription's tag list. None means all, in order.
    started
        Monotonic time (``time.monotonic()``) when the first request went out, if the
        driver knows it; recorders measure their cadence with it.
    """

    tags: tuple[Tag, ...]
    columns: list[tuple[npt.NDArray[np.intp], npt.NDArray[Any]]]
    quality: npt.NDArray[np.uint8]
    timestamp_ns: npt.NDArray[np.int64]
    errors: list[ProtocolError] = field(default_factory=list)
    indices: npt.NDArray[np.intp] | None = None
    # Keyword-only, so that subclasses (OPC UA adds server timestamps) keep their
    # positional fields.
    started: float | None = field(default=None, kw_only=True)

    def values(self) -> npt.NDArray[np.object_]:
        """One Python value per tag (None where quality is bad)."""
        import numpy as np

        out = np.full(len(self.tags), None, dtype=object)
        for positions, values in self.columns:
            out[positions] = values.tolist() if values.dtype != object else values
        bad = self.quality >= _BAD
        if bad.any():
            out[bad] = None
        return out

    def as_float(self) -> npt.NDArray[np.float64]:
        """One float64 per tag (NaN where bad or not numeric)."""
        import numpy as np

        out = np.full(len(self.tags), np.nan)
        for positions, values in self.columns:
            if values.dtype.kind in "biuf":
                out[positions] = values
        bad = self.quality >= _BAD
        if bad.any():
            out[bad] = np.nan
        return out

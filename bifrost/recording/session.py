"""A recording session: samples, statistics, metadata and conversions."""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Generator, Hashable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from bifrost import frames
from bifrost._extras import require
from bifrost.clock import Clock, default_clock
from bifrost.model import Quality, Tag
from bifrost.recording import formats
from bifrost.recording.buffers import SampleBuffer, is_numeric
from bifrost.recording.journal import QUALITY_SUFFIX
from bifrost.recording.timing import Wakeup

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["QUALITY_SUFFIX", "Recording", "RecordingStats", "is_numeric"]


@dataclass(repr=False)
class RecordingStats:
    """How a recording went.

    Attributes
    ----------
    samples
        Rows recorded (including gap rows).
    missed_cycles
        Cycles of the fixed grid that could not run on time and were skipped.
    gaps
        Rows where the device could not be read (timeouts, connection lost).
    reconnects
        Times the connection came back after a failure.
    jitter_p50_ms, jitter_p99_ms, jitter_max_ms
        Lateness of the cycles that ran, against the grid, in milliseconds.
    """

    samples: int = 0
    missed_cycles: int = 0
    gaps: int = 0
    reconnects: int = 0
    jitter_p50_ms: float = 0.0
    jitter_p99_ms: float = 0.0
    jitter_max_ms: float = 0.0
    last_error: str = ""

    def as_dict(self) -> dict[str, Any]:
        """Plain dict (for metadata and JSON)."""
        return asdict(self)

    def __repr__(self) -> str:
        # Jitter to the microsecond: 0.4169710000496707 ms says nothing more than 0.417.
        fields = ", ".join(
            f"{name}={round(value, 3)!r}" if isinstance(value, float) else f"{name}={value!r}"
            for name, value in asdict(self).items()
        )
        return f"RecordingStats({fields})"


@dataclass
class _Timing:
    lateness: list[float] = field(default_factory=list)


class Recording:
    """Samples of a list of tags on a fixed interval.

    Returned by ``Connection.record``; also by :func:`bifrost.open_recording`. While it
    runs in the background, :meth:`stop` ends it and :meth:`wait` blocks until it ended.
    """

    def __init__(
        self,
        tags: Sequence[Tag],
        dtypes: Sequence[str],
        interval_s: float,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self.tags = tuple(tags)
        self.names = [t.name for t in self.tags]
        self.dtypes = list(dtypes)
        self.interval_s = interval_s
        self.metadata: dict[str, Any] = dict(metadata or {})
        numeric = [is_numeric(d) for d in self.dtypes]
        self._buffer = SampleBuffer(self.names, numeric)
        self._stats = RecordingStats()
        self._timing = _Timing()
        self._stop_requested = threading.Event()
        self._finished = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wakeup: Wakeup | None = None
        self._task: asyncio.Task[None] | None = None
        self.error: BaseException | None = None
        self.storage_error: BaseException | None = None
        self.path: str | None = None
        self.started_ns: int | None = None
        self.stopped_ns: int | None = None
        self.clock: Clock | None = None  # the recorder's: every stamp of the session

    # -- state ----------------------------------------------------------------------------
    @property
    def running(self) -> bool:
        """Whether sampling is still going on."""
        return self._task is not None and not self._finished.is_set()

    @property
    def interrupted(self) -> bool:
        """Whether a user's interrupt (Ctrl-C) ended the recording before its duration.

        Kept as ``metadata["interrupted"]``, the UTC time of the interrupt (a string,
        which every file format stores), so a saved recording remembers it; shown in the
        ``repr`` and the HTML summary.
        """
        return bool(self.metadata.get("interrupted"))

    @interrupted.setter
    def interrupted(self, value: bool) -> None:
        if not value:
            self.metadata.pop("interrupted", None)
        elif not self.interrupted:
            now = (self.clock or default_clock()).wall_ns()
            self.metadata["interrupted"] = pd.Timestamp(now, tz="UTC").isoformat()

    @property
    def buffer(self) -> SampleBuffer:
        """The columnar sample buffer."""
        return self._buffer

    @property
    def stats(self) -> RecordingStats:
        """Samples, missed cycles, gaps, reconnects and jitter percentiles so far."""
        lateness = self._timing.lateness
        if lateness:
            ms = np.asarray(lateness) * 1e3
            self._stats.jitter_p50_ms = float(np.percentile(ms, 50))
            self._stats.jitter_p99_ms = float(np.percentile(ms, 99))
            self._stats.jitter_max_ms = float(ms.max())
        self._stats.samples = len(self._buffer)
        return self._stats

    def __len__(self) -> int:
        return len(self._buffer)

    # -- control (thread-safe) ------------------------------------------------------------
    def stop(self) -> None:
        """Ask the recording to end after the current cycle (returns at once)."""
        self._stop_requested.set()
        loop, wakeup = self._loop, self._wakeup
        if loop is not None and wakeup is not None and not loop.is_closed():
            loop.call_soon_threadsafe(wakeup.set)

    def wait(self, timeout: float | None = None) -> Recording:
        """Block until the recording has ended (from any thread but the loop's)."""
        if not self._finished.wait(timeout):
            from bifrost.exceptions import TimeoutError

            raise TimeoutError(f"the recording did not end within {timeout:g} s")
        if self.error is not None:
            raise self.error
        return self

    def __await__(self) -> Generator[Any, None, Recording]:
        return self._join().__await__()

    async def _join(self) -> Recording:
        if self._task is not None:
            await asyncio.shield(self._task)
        if self.error is not None:
            raise self.error
        return self

    # -- conversions ----------------------------------------------------------------------
    def to_pandas(self, long: bool = False) -> pd.DataFrame:
        """The samples as a DataFrame.

        Parameters
        ----------
        long
            False (default): wide, a UTC DatetimeIndex and one column per tag (bool and
            integer tags nullable: ``boolean``, ``Int64``).
            True: tidy, one row per (time, tag) with value and quality columns; values
            are Python objects (``True``, ``7``, ``2.5``, ``None`` where missing), as
            in the frame of a read.

        The index is strictly increasing, whatever the system clock did while recording
        (see :mod:`bifrost.clock` and ``metadata["clock_steps"]``).
        """
        if long:
            times, columns, quality = self._buffer.arrays()
            return frames.long_frame(times, self.names, columns, quality, self.dtypes)
        numeric = self._buffer.numeric_index
        if any(self.dtypes[i].startswith("float") for i in numeric):
            # The float block becomes the frame's: it must be the frame's own copy.
            times, numbers, objects, _ = self._buffer.matrix()
        else:
            # Bool and integer values are converted to new arrays anyway: read in place.
            times, numbers, objects, _ = self._buffer.matrix(copy=False)
            times, objects = times.copy(), objects.copy()
        attrs: dict[Hashable, Any] = {"units": {t.name: t.unit for t in self.tags}}
        attrs.update(self.metadata)
        return frames.wide_frame(
            times,
            self.names,
            self.dtypes,
            numbers,
            self._buffer.numeric_index,
            objects,
            np.flatnonzero(~self._buffer.numeric),
            attrs,
        )

    def quality_frame(self) -> pd.DataFrame:
        """Quality codes as a wide DataFrame of categories (same index as to_pandas)."""
        times, _, quality = self._buffer.arrays()
        return frames.quality_frame(times, self.names, quality)

    def to_xarray(self) -> xr.Dataset:
        """The samples as an xarray Dataset.

        Dim ``time``; a variable per tag with units, address and description attributes;
        a ``<tag>.quality`` variable per tag; the session metadata in ``attrs``.
        """
        # xarray is bifrost-iot's `xarray` extra: without it, this names the pip command.
        require("xarray", "Recording.to_xarray()")
        import xarray as xr

        times, columns, quality = self._buffer.arrays()
        coords = {"time": times.view("datetime64[ns]")}
        variables: dict[str, Any] = {}
        for j, (tag, column, dtype) in enumerate(zip(self.tags, columns, self.dtypes, strict=True)):
            dims: tuple[str, ...] = ("time",)
            data: npt.NDArray[Any] = column
            if column.dtype == object and _is_array_column(column):
                data = _stack(column)
                dims = ("time", f"{tag.name}.sample")
            variables[tag.name] = xr.Variable(
                dims,
                data,
                attrs={
                    "units": tag.unit,
                    "address": tag.address,
                    "description": tag.description,
                    "source_dtype": dtype,
                },
            )
            variables[tag.name + QUALITY_SUFFIX] = xr.Variable(
                "time",
                quality[:, j],
                attrs={
                    "flag_values": [int(q) for q in Quality],
                    "flag_meanings": " ".join(frames.QUALITY_CATEGORIES),
                },
            )
        attrs = {k: v for k, v in self.metadata.items() if isinstance(v, str | int | float)}
        attrs["timezone"] = "UTC"
        return xr.Dataset(variables, coords=coords, attrs=attrs)

    def publish(self, sink: Any, *, device: str | None = None) -> int:
        """Send every sample to ``sink`` (e.g. a :class:`bifrost.cloud.MqttSink`), historical.

        The rows are queued at once and sent in order, marked historical, through the
        sink's spool. ``device`` names the device in topics (default: the sink's own
        device name, or the recording's endpoint). Returns the number of rows queued.
        """
        source = device or str(self.metadata.get("endpoint", ""))
        feed = sink.feed(source, self.names, self.dtypes, historical=True)
        if device is not None and hasattr(feed, "device"):
            feed.device = device
        times, columns, quality = self._buffer.arrays()
        feed.rows(times, columns, quality)
        return len(times)

    def save(self, path: str | os.PathLike[str]) -> str:
        """Write the recording to ``path``; the format follows the suffix.

        ``.parquet`` (default), ``.zarr`` or ``.nc``; see :mod:`bifrost.recording.formats`.
        """
        return formats.save(self, path)

    def __repr__(self) -> str:
        state = "running" if self.running else "interrupted" if self.interrupted else "stopped"
        tags, samples = len(self.names), len(self)
        return (
            f"<Recording {state}: {tags} tag{'' if tags == 1 else 's'}, "
            f"{samples} sample{'' if samples == 1 else 's'} every {self.interval_s:g} s>"
        )

    def _repr_html_(self) -> str:
        from bifrost._html import recording_html

        card = recording_html(self)
        if not self.interrupted:
            return card
        seconds = ((self.stopped_ns or 0) - (self.started_ns or 0)) / 1e9
        note = (
            '<p class="bf-bad" style="font-size:12px;margin:2px 0">interrupted by the user '
            f"after {max(0.0, seconds):.1f} s: the samples up to then are kept</p>"
        )
        return note + card

    # -- used by the recorder --------------------------------------------------------------
    def _attach(self, loop: asyncio.AbstractEventLoop, task: asyncio.Task[None]) -> None:
        self._loop = loop
        self._task = task

    def _finish(self, error: BaseException | None = None) -> None:
        self.error = error
        self.stopped_ns = (self.clock or default_clock()).wall_ns()
        self.metadata["stopped"] = pd.Timestamp(self.stopped_ns, tz="UTC").isoformat()
        self._finished.set()


def _is_array_column(column: npt.NDArray[Any]) -> bool:
    shapes = {np.shape(v) for v in column if v is not None}
    return len(shapes) == 1 and len(next(iter(shapes))) == 1


def _stack(column: npt.NDArray[Any]) -> npt.NDArray[np.float64]:
    """Array samples (waveforms) as a 2-D block; rows without a sample are NaN."""
    width = next(len(v) for v in column if v is not None)
    out = np.full((len(column), width), np.nan)
    for i, value in enumerate(column):
        if value is not None:
            out[i] = value
    return out

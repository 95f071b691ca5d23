"""LiveTrend: a recording plotted live, downsampled to a fixed number of points per tag."""

from __future__ import annotations

import datetime as dt
import html
import io
import threading
from collections.abc import Sequence

import ipywidgets as widgets
import numpy as np
import numpy.typing as npt

from bifrost._extras import require
from bifrost._html import format_seconds
from bifrost.clock import default_clock
from bifrost.exceptions import ConfigurationError
from bifrost.jupyter._text import plural
from bifrost.jupyter.widgets._common import _Ticker, error_html
from bifrost.recording import Recording

__all__ = ["LiveTrend", "downsample_indices"]


def _minmax_indices(y: npt.NDArray[np.float64], n_out: int) -> npt.NDArray[np.intp]:
    """Indices of the min and max of ``n_out // 2`` equal buckets (keeps every spike)."""
    n = len(y)
    if n <= n_out:
        return np.arange(n, dtype=np.intp)
    buckets = max(1, n_out // 2)
    edges = np.linspace(0, n, buckets + 1).astype(np.intp)
    filled = np.where(np.isnan(y), np.inf, y)
    lows = np.minimum.reduceat(filled, edges[:-1])
    highs = np.maximum.reduceat(np.where(np.isnan(y), -np.inf, y), edges[:-1])
    # reduceat gives values; recover positions bucket by bucket without a Python loop
    bucket_of = np.repeat(np.arange(buckets), np.diff(edges))
    is_low = filled == lows[bucket_of]
    is_high = np.where(np.isnan(y), -np.inf, y) == highs[bucket_of]
    first_low = np.full(buckets, -1, dtype=np.intp)
    first_high = np.full(buckets, -1, dtype=np.intp)
    positions = np.arange(n, dtype=np.intp)
    # reverse assignment leaves the first index of each bucket
    first_low[bucket_of[is_low][::-1]] = positions[is_low][::-1]
    first_high[bucket_of[is_high][::-1]] = positions[is_high][::-1]
    picked = np.concatenate([first_low, first_high, [0, n - 1]])
    return np.unique(picked[picked >= 0])


def downsample_indices(
    x: npt.NDArray[np.int64], y: npt.NDArray[np.float64], n_out: int
) -> npt.NDArray[np.intp]:
    """Indices of at most about ``n_out`` points that keep the shape of ``y``.

    Uses ``bifrost.analytics.downsample(method="minmaxlttb")`` when that kernel exists,
    else a NumPy min/max per bucket; either way the plot costs O(n_out), not O(n).
    """
    if len(y) <= n_out:
        return np.arange(len(y), dtype=np.intp)
    from bifrost import analytics

    kernel = getattr(analytics, "downsample", None)
    if kernel is not None and not np.isnan(y).any():
        # Positions 0..n-1 make the kept positions the kept indices; the grid is even.
        positions = np.arange(len(y), dtype=np.int64)
        try:
            kept = kernel(positions, y, n_out=n_out - n_out % 2, method="minmaxlttb")
        except (TypeError, ValueError):
            kept = None
        picked = np.asarray(kept[0] if isinstance(kept, tuple) else [])
        if picked.ndim == 1 and len(picked) and picked.dtype.kind in "iu":
            return picked.astype(np.intp)
    return _minmax_indices(y, n_out)


class LiveTrend(widgets.VBox):  # type: ignore[misc]
    """A live plot of a recording, redrawn every ``refresh`` seconds while it runs.

    Parameters
    ----------
    recording
        A running (or finished) :class:`~bifrost.Recording`.
    refresh
        Seconds between redraws.
    points
        Points drawn per tag; long recordings are downsampled to this many.
    tags
        Tags to plot (default: every numeric tag, at most ``max_panels``).
    max_panels
        Most panels (one per tag, sharing the time axis) to draw.
    start
        Start redrawing at once (False: call :meth:`refresh` yourself).
    tz
        Timezone of the time axis: an IANA name (``"Europe/Berlin"``, ``"UTC"``) or a
        tzinfo; default the kernel's local zone. Only the axis changes: the recording's
        timestamps stay UTC.

    Attributes
    ----------
    tz
        The axis' timezone (a tzinfo).
    """

    # Class defaults: Widget.__del__ calls close() even when __init__ failed early.
    _ticker: _Ticker | None = None

    def __init__(
        self,
        recording: Recording,
        *,
        refresh: float = 1.0,
        points: int = 2000,
        tags: Sequence[str] | None = None,
        max_panels: int = 6,
        start: bool = True,
        tz: str | dt.tzinfo | None = None,
    ) -> None:
        require("matplotlib", "live trends")
        from matplotlib.figure import Figure
        from matplotlib.ticker import ScalarFormatter

        from bifrost.jupyter.widgets._timeaxis import TimeAxis

        self.recording = recording
        self.points = int(points)
        numeric = [n for n in recording.names if not _is_string_dtype(recording, n)]
        chosen = list(tags) if tags is not None else numeric[:max_panels]
        unknown = [t for t in chosen if t not in recording.names]
        if unknown:
            raise ConfigurationError(
                f"LiveTrend: {', '.join(map(repr, unknown))} not in the recording "
                f"(it has {', '.join(recording.names)})"
            )
        self.tags = chosen
        self._time = TimeAxis(tz)
        self.tz = self._time.tz
        self._columns = [recording.names.index(t) for t in chosen]
        units = {t.name: t.unit for t in recording.tags}
        panels = max(1, len(chosen))
        self._figure = Figure(figsize=(8, 0.4 + 1.5 * panels), dpi=80, layout="constrained")
        axes = self._figure.subplots(panels, 1, sharex=True, squeeze=False)[:, 0]
        self._lines = []
        for ax, name in zip(axes, chosen, strict=False):
            (line,) = ax.plot([], [], lw=1.0)
            ax.set_ylabel(f"{name}\n[{units[name]}]" if units.get(name) else name, fontsize=8)
            ax.tick_params(labelsize=7)
            ax.grid(alpha=0.3)
            # Plain numbers: an offset (+2.0788891e4) or a 1e6 multiplier hides the values.
            numbers = ScalarFormatter(useOffset=False)
            numbers.set_scientific(False)
            ax.yaxis.set_major_formatter(numbers)
            self._lines.append(line)
        self._axes = list(axes)
        # The axes share x: the bottom one's locator and formatter serve all of them.
        self._time.install(self._axes[-1])
        self.title = widgets.HTML()
        self.image = widgets.Image(format="png", layout=widgets.Layout(max_width="100%"))
        self.error = widgets.HTML()
        super().__init__([self.title, self.image, self.error])
        self.add_class("bifrost-livetrend")
        self.redraws = 0
        self._lock = threading.Lock()
        self.refresh()
        if start and recording.running:
            self._ticker = _Ticker(self._tick, refresh, "bifrost-livetrend")

    @property
    def live(self) -> bool:
        """Whether the trend is still redrawing by itself."""
        return self._ticker is not None and self._ticker.alive

    def _tick(self) -> bool:
        running = self.recording.running
        self.refresh()  # one last frame after the recording ended
        return running

    def refresh(self) -> None:
        """Redraw from the samples recorded so far."""
        with self._lock:
            times, columns, _ = self.recording.buffer.arrays()
            # Date numbers (days since matplotlib's epoch, 1970 UTC) computed here, so the
            # axis never depends on which data the line was created with.
            days = self._time.numbers(times)
            for line, ax, j in zip(self._lines, self._axes, self._columns, strict=True):
                y = np.asarray(columns[j], dtype=np.float64)
                keep = downsample_indices(times, y, self.points)
                line.set_data(days[keep], y[keep])
                ax.relim()
                ax.autoscale_view()
            if len(times) < 2:
                # auto=None: the axis autoscales again once there is a span.
                self._axes[-1].set_xlim(*self._empty_span(times), auto=None)
            buffer = io.BytesIO()
            self._figure.savefig(buffer, format="png")
            self.image.value = buffer.getvalue()
            self.redraws += 1
            state = "live" if self.recording.running else "ended"
            shown = min(len(times), self.points)
            self.title.value = (
                f"<b>{state}</b> · {plural(len(times), 'sample')} of "
                f"{plural(len(self.tags), 'tag')} · "
                f"every {format_seconds(self.recording.interval_s)}"
                + (f" · {self._time.span(int(times[0]), int(times[-1]))}" if len(times) else "")
                + (f" · drawing {shown:,} points per tag" if len(times) > self.points else "")
                + self._ticks_html()
            )

    def _ticks_html(self) -> str:
        # The plot is a PNG: the time axis' labels as drawn, as text in the page too (for
        # the browser test, and for whoever reads the page rather than the picture).
        labels = "  ".join(t.replace("\n", " ") for t in self.tick_labels())
        text = html.escape(f"time ({self._time.name()}): {labels}", quote=True)
        return f'<span class="bifrost-trend-ticks" data-ticks="{text}" hidden></span>'

    def tick_labels(self) -> list[str]:
        """The time axis' tick labels inside the view, as last drawn (the date on a 2nd line)."""
        axis = self._axes[-1].xaxis
        low, high = sorted(axis.get_view_interval())
        # The locator also places ticks just outside the view; they are not drawn.
        pairs = zip(axis.get_majorticklocs(), axis.get_majorticklabels(), strict=False)
        return [label.get_text() for loc, label in pairs if low <= loc <= high and label.get_text()]

    def _empty_span(self, times: npt.NDArray[np.int64]) -> tuple[float, float]:
        # Before two samples exist there is no span to autoscale to: show the next few
        # intervals from the start, so the axis reads the right time from the first frame.
        start = int(times[0]) if len(times) else self.recording.started_ns
        if start is None:
            start = default_clock().wall_ns()
        width = max(1.0, 10 * float(self.recording.interval_s)) * 1e9
        low, high = self._time.numbers(np.array([start, start + int(width)], dtype=np.int64))
        return float(low), float(high)

    def close(self) -> None:
        """Stop redrawing and close the widget."""
        self.stop()
        super().close()

    def stop(self) -> None:
        """Stop redrawing (the plot stays)."""
        if self._ticker is not None:
            self._ticker.stop()
            if self._ticker.error is not None:
                self.error.value = error_html(self._ticker.error)


def _is_string_dtype(recording: Recording, name: str) -> bool:
    dtype = recording.dtypes[recording.names.index(name)]
    return dtype.startswith("string") or dtype in ("str", "object")

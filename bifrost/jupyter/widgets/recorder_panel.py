"""RecorderPanel: start and stop a connection's background recordings from a notebook."""

from __future__ import annotations

import datetime as dt
import html
from collections.abc import Sequence

import ipywidgets as widgets

from bifrost.connection import Connection
from bifrost.exceptions import BifrostError
from bifrost.jupyter._text import plural
from bifrost.jupyter.widgets._common import _Ticker, error_html
from bifrost.jupyter.widgets.live_trend import LiveTrend
from bifrost.model import Tag
from bifrost.recording import Recording

__all__ = ["RecorderPanel"]


class RecorderPanel(widgets.VBox):  # type: ignore[misc]
    """Start and stop recordings of ``tags``: interval, duration, status, live trend.

    Parameters
    ----------
    plc
        A :class:`~bifrost.Connection`.
    tags
        Tag names, Tags or addresses to record (default: the whole tag table).
    interval, duration
        Initial values of the fields (``duration`` empty: until Stop).
    live
        Show a :class:`LiveTrend` of the running recording.
    refresh
        Seconds between updates of the status and redraws of the trend.
    tz
        Timezone of the trend's time axis (default: the kernel's local zone).
    """

    _ticker: _Ticker | None = None
    trend: LiveTrend | None = None

    def __init__(
        self,
        plc: Connection,
        tags: Sequence[str | Tag] | None = None,
        *,
        interval: str = "100ms",
        duration: str = "",
        live: bool = True,
        refresh: float = 1.0,
        tz: str | dt.tzinfo | None = None,
    ) -> None:
        self.plc = plc
        self.tz = tz
        self.tags = list(tags) if tags is not None else list(plc.tags.names)
        self.recording: Recording | None = None
        self._refresh = refresh
        self.interval = widgets.Text(
            value=interval, description="interval", continuous_update=False
        )
        self.duration = widgets.Text(
            value=duration, description="duration", placeholder="until Stop"
        )
        self.live = widgets.Checkbox(value=live, description="live trend", indent=False)
        self.start_button = widgets.Button(
            description="Start", icon="circle", button_style="danger"
        )
        self.stop_button = widgets.Button(description="Stop", icon="stop", disabled=True)
        self.status = widgets.HTML(value=f"ready to record {plural(len(self.tags), 'tag')}")
        self.status.add_class("bifrost-recorder-status")
        self.trend_box = widgets.VBox()
        self.start_button.on_click(lambda _: self.start())
        self.stop_button.on_click(lambda _: self.stop())
        controls = widgets.HBox([self.interval, self.duration, self.live])
        buttons = widgets.HBox([self.start_button, self.stop_button])
        super().__init__([controls, buttons, self.status, self.trend_box])
        self.add_class("bifrost-recorder")

    def start(self) -> Recording | None:
        """Start a background recording with the fields' values (Start button)."""
        if self.recording is not None and self.recording.running:
            return self.recording
        try:
            duration = self.duration.value.strip() or None
            recording = self.plc.record(
                self.tags, interval=self.interval.value.strip(), duration=duration, background=True
            )
        except BifrostError as exc:
            self.status.value = error_html(exc)
            return None
        self.recording = recording
        self.start_button.disabled = True
        self.stop_button.disabled = False
        if self.live.value:
            self.trend = LiveTrend(recording, refresh=self._refresh, tz=self.tz)
            self.trend_box.children = [self.trend]
        self._show()
        self._ticker = _Ticker(self._tick, self._refresh, "bifrost-recorder")
        return recording

    def _tick(self) -> bool:
        self._show()
        return self.recording is not None and self.recording.running

    def _show(self) -> None:
        recording = self.recording
        if recording is None:
            return
        stats = recording.stats
        running = recording.running
        if not running:
            self.start_button.disabled = False
            self.stop_button.disabled = True
        state = "recording" if running else "stopped"
        self.status.value = (
            f"<b>{state}</b> · {plural(stats.samples, 'sample')} · "
            f"{plural(stats.missed_cycles, 'missed cycle')} · {plural(stats.gaps, 'gap')} · "
            f"{plural(stats.reconnects, 'reconnect')}"
            + (f" · last error: {html.escape(stats.last_error)}" if stats.last_error else "")
        )

    def stop(self) -> Recording | None:
        """Stop the recording (Stop button) and wait for its last cycle."""
        recording = self.recording
        if recording is None:
            return None
        recording.stop()
        try:
            recording.wait(10.0)
        except BifrostError as exc:
            self.status.value = error_html(exc)
        if self._ticker is not None:
            self._ticker.stop()
        if self.trend is not None:
            self.trend.stop()
            self.trend.refresh()
        self._show()
        return recording

    def close(self) -> None:
        """Stop the status thread and the trend; the recording keeps running."""
        if self._ticker is not None:
            self._ticker.stop()
        if self.trend is not None:
            self.trend.close()
        super().close()

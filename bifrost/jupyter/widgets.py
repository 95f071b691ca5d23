"""ipywidgets for notebooks: browse tags, watch recordings, find a register's decoding.

Every widget works headless (set ``.value``, call ``Button.click()``), which is how the
tests drive them. Periodic updates (live trend, recorder status) run on a daemon thread
per widget: ipykernel sends widget updates from any thread, so a trend keeps moving
while other cells compute. Each widget's ``close()`` stops its thread.
"""

from __future__ import annotations

import dataclasses
import html
import io
import math
import threading
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd

from bifrost._extras import require
from bifrost._html import format_seconds, format_value, recording_html, table_html
from bifrost.addresses.modbus import parse_modbus_address
from bifrost.codec import decode_registers
from bifrost.connection import Connection
from bifrost.exceptions import BifrostError, ConfigurationError, ConnectionError, ProtocolError
from bifrost.model import ByteOrder, DataType, Tag
from bifrost.recording import Recording

require("ipywidgets", "bifrost's notebook widgets")
import ipywidgets as widgets  # noqa: E402  (after the check that names the extra to install)

__all__ = ["DecodeProbe", "LiveTrend", "RecorderPanel", "TagBrowser", "error_html"]

_ORDERS_16 = (ByteOrder.ABCD, ByteOrder.BADC)
_ORDERS_32 = (ByteOrder.ABCD, ByteOrder.CDAB, ByteOrder.BADC, ByteOrder.DCBA)
_PROBE_TYPES: tuple[tuple[DataType, tuple[ByteOrder, ...]], ...] = (
    (DataType.UINT16, _ORDERS_16),
    (DataType.INT16, _ORDERS_16),
    (DataType.FLOAT32, _ORDERS_32),
    (DataType.INT32, _ORDERS_32),
    (DataType.UINT32, _ORDERS_32),
    (DataType.FLOAT64, _ORDERS_32),
    (DataType.INT64, _ORDERS_32),
    (DataType.UINT64, _ORDERS_32),
)
_SCALES = (1.0, 0.1, 0.01, 0.001)
_MAX_PROBE = 120  # registers; one Modbus read carries at most 125


def error_html(error: BaseException) -> str:
    """A one-line red message for an error shown inside a widget."""
    text = html.escape(f"{type(error).__name__}: {error}")
    return f'<pre style="color:#cf222e;margin:2px 0;white-space:pre-wrap">{text}</pre>'


class _Ticker:
    """Calls ``tick`` every ``period`` seconds on a daemon thread until stopped.

    ``tick`` returns False to end the loop; exceptions end it too (and are kept in
    ``error``) so a broken display never spins.
    """

    def __init__(self, tick: Callable[[], bool], period: float, name: str) -> None:
        self._tick = tick
        self._period = max(0.05, float(period))
        self._stop = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            while not self._stop.wait(self._period):
                if not self._tick():
                    return
        except Exception as exc:  # keep the kernel quiet; the widget shows the error
            self.error = exc

    @property
    def alive(self) -> bool:
        """Whether the thread is still running."""
        return self._thread.is_alive()

    def stop(self, timeout: float = 5.0) -> None:
        """End the loop and wait for the thread (never from the thread itself)."""
        self._stop.set()
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)


# -- LiveTrend ------------------------------------------------------------------------------
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
    ) -> None:
        require("matplotlib", "live trends")
        from matplotlib.figure import Figure

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
            self._lines.append(line)
        self._axes = list(axes)
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
            stamps = times.view("datetime64[ns]")
            for line, ax, j in zip(self._lines, self._axes, self._columns, strict=True):
                y = np.asarray(columns[j], dtype=np.float64)
                keep = downsample_indices(times, y, self.points)
                line.set_data(stamps[keep], y[keep])
                ax.relim()
                ax.autoscale_view()
            buffer = io.BytesIO()
            self._figure.savefig(buffer, format="png")
            self.image.value = buffer.getvalue()
            self.redraws += 1
            state = "live" if self.recording.running else "ended"
            shown = min(len(times), self.points)
            self.title.value = (
                f"<b>{state}</b> · {len(times):,} samples of {len(self.tags)} tags · "
                f"every {format_seconds(self.recording.interval_s)}"
                + (f" · drawing {shown:,} points per tag" if len(times) > self.points else "")
            )

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


# -- RecorderPanel ---------------------------------------------------------------------------
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
    ) -> None:
        self.plc = plc
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
        self.status = widgets.HTML(value=f"ready to record {len(self.tags)} tags")
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
            self.trend = LiveTrend(recording, refresh=self._refresh)
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
            f"<b>{state}</b> · {stats.samples:,} samples · {stats.missed_cycles} missed cycles"
            f" · {stats.gaps} gaps · {stats.reconnects} reconnects"
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


# -- TagBrowser ------------------------------------------------------------------------------
@dataclasses.dataclass(eq=False)
class _TreeNode:
    """One node of the OPC UA tree: its row, and for folders its (lazily filled) children."""

    path: str  # browse path, as plc.browse() returns it
    node_id: str
    name: str  # what Read and Record use: the tag name, else the NodeId
    label: str
    variable: bool
    parent: _TreeNode | None
    widget: Any  # the row (variables) or VBox([row, box]) (folders)
    row: Any
    text: str  # what the search matches, lower case
    toggle: Any = None
    box: Any = None
    children: list[_TreeNode] | None = None  # None: not browsed yet


_MAX_CHILDREN = 500  # rows drawn per folder; a bigger folder is cut (search narrows it)
_TREE_CLASSES = ("Object", "View", "Folder")  # node classes that have children worth browsing
_MAX_CELL = 80  # characters of a value shown in a cell


def _short(value: Any) -> str:
    """A cell's text: arrays (OPC UA waveforms) as their size and first values."""
    if isinstance(value, np.ndarray | list | tuple):
        items = list(np.asarray(value).ravel()[:3])
        head = ", ".join(format_value(v) for v in items)
        return f"[{len(value)} values: {head}{', …' if len(value) > 3 else ''}]"
    text = format_value(value)
    # Structures (e.g. OPC UA ServerStatus) print long; the cell shows their start.
    return text if len(text) <= _MAX_CELL else text[: _MAX_CELL - 1] + "…"


class TagBrowser(widgets.VBox):  # type: ignore[misc]
    """A searchable table or tree of a connection's tags with checkboxes, Read and Record.

    Modbus and S7 have no address space to browse: the connection's tag table is shown
    as a table. OPC UA shows its address space as a tree that is browsed lazily: a
    folder's children are fetched with ``plc.browse(path, depth=1)`` when it is first
    expanded, so opening a browser on a server with 100,000 nodes costs one Browse call.
    Variables have checkboxes; a variable that is in the connection's tag table is read
    and recorded under its tag name (unit, scale), any other under its NodeId.

    Parameters
    ----------
    plc
        A :class:`~bifrost.Connection`.
    interval
        Initial sampling interval of "Record selected".
    live
        Show a live trend of the recording started by "Record selected".
    refresh
        Seconds between redraws of the live trend.
    root
        OPC UA only: the browse path or NodeId the tree starts at (default ``/Objects``).

    Attributes
    ----------
    mode
        ``"tree"`` (OPC UA) or ``"table"``.
    frame
        What was browsed: the tag table (table mode), or every node loaded so far (tree).
    recording
        The recording started by "Record selected" (None before).
    values
        The last "Read" as a DataFrame (None before).
    """

    trend: LiveTrend | None = None

    def __init__(
        self,
        plc: Connection,
        *,
        interval: str = "100ms",
        live: bool = True,
        refresh: float = 1.0,
        root: str | None = None,
    ) -> None:
        self.plc = plc
        self.mode = "tree" if plc.protocol == "opcua" else "table"
        self.root = (root or "/Objects") if self.mode == "tree" else None
        self.frame = plc.browse(self.root, depth=1) if self.mode == "tree" else plc.browse()
        self.recording: Recording | None = None
        self.values: pd.DataFrame | None = None
        self._live = live
        self._refresh = refresh
        hint = (
            "filter loaded nodes: name, node id, type, description"
            if self.mode == "tree"
            else "filter: name, address, unit, description"
        )
        self.search = widgets.Text(placeholder=hint)
        self.search.observe(lambda _: self._filter(), names="value")
        self.select_all = widgets.Button(description="Select shown", icon="check-square")
        self.clear = widgets.Button(description="Clear", icon="square")
        self.read_button = widgets.Button(description="Read", icon="download")
        self.record_button = widgets.Button(
            description="Record selected", icon="circle", button_style="danger"
        )
        self.stop_button = widgets.Button(description="Stop", icon="stop", disabled=True)
        self.interval = widgets.Text(value=interval, description="every", layout={"width": "160px"})
        what = "nodes below " + html.escape(str(self.root)) + " of" if self.root else "tags on"
        self.status = widgets.HTML(value=f"{len(self.frame)} {what} {html.escape(plc.url)}")
        self.status.add_class("bifrost-browser-status")
        self.output = widgets.VBox()
        self.checks: dict[str, Any] = {}
        self._cells: dict[str, Any] = {}
        self._rows: dict[str, list[Any]] = {}
        self._search_text: dict[str, str] = {}
        self._top: list[_TreeNode] = []
        grid = self._build_tree() if self.mode == "tree" else self._build_grid()
        self.select_all.on_click(lambda _: self._select(True))
        self.clear.on_click(lambda _: self._select(False))
        self.read_button.on_click(lambda _: self.read())
        self.record_button.on_click(lambda _: self.record())
        self.stop_button.on_click(lambda _: self.stop())
        toolbar = widgets.HBox(
            [self.search, self.select_all, self.clear, self.read_button],
            layout={"flex_flow": "row wrap"},
        )
        recorder = widgets.HBox([self.record_button, self.interval, self.stop_button])
        super().__init__([toolbar, grid, recorder, self.status, self.output])
        self.add_class("bifrost-tagbrowser")

    def _build_grid(self) -> Any:
        columns = ["", "name", "address", "dtype", "unit", "value", "description"]
        header = [widgets.HTML(f"<b>{c}</b>") for c in columns]
        cells: list[Any] = list(header)
        for name, row in self.frame.iterrows():
            tag = str(name)
            check = widgets.Checkbox(value=False, indent=False, layout={"width": "24px"})
            check.description_allow_html = False
            value = widgets.HTML("")
            row_cells = [
                check,
                widgets.HTML(f"<code>{html.escape(tag)}</code>"),
                widgets.HTML(html.escape(str(row.get("address", "")))),
                widgets.HTML(html.escape(str(row.get("dtype", "")))),
                widgets.HTML(html.escape(str(row.get("unit", "") or ""))),
                value,
                widgets.HTML(
                    f"<small>{html.escape(str(row.get('description', '') or ''))}</small>"
                ),
            ]
            self.checks[tag] = check
            self._cells[tag] = value
            self._rows[tag] = row_cells
            self._search_text[tag] = " ".join(
                str(x) for x in (tag, *row.to_dict().values())
            ).lower()
            cells.extend(row_cells)
        return widgets.GridBox(
            cells,
            layout=widgets.Layout(
                grid_template_columns="28px max-content max-content max-content "
                "max-content minmax(80px, max-content) auto",
                grid_gap="0px 12px",
                max_height="420px",
                overflow="auto",
            ),
        )

    # -- tree mode (OPC UA) ------------------------------------------------------------------
    def _build_tree(self) -> Any:
        # Tag table addresses -> names, so known variables are read under their tag name.
        self._tag_of: dict[str, str] = {}
        for tag in self.plc.tags:
            self._tag_of.setdefault(tag.address, tag.name)
        self._top = self._add_nodes(None, self.frame)
        self._tree = widgets.VBox(
            self._widgets_of(self._top, len(self.frame)),
            layout=widgets.Layout(max_height="420px", overflow="auto"),
        )
        self._tree.add_class("bifrost-tagtree")
        return self._tree

    def _add_nodes(self, parent: _TreeNode | None, frame: pd.DataFrame) -> list[_TreeNode]:
        nodes = []
        for row in frame.head(_MAX_CHILDREN).itertuples(index=False):
            node_id, path = str(row.node_id), str(row.browse_path)
            label, node_class = str(row.display_name), str(row.node_class)
            variable = node_class == "Variable"
            name = self._tag_of.get(node_id) or self._tag_of.get(path) or node_id
            detail = " · ".join(html.escape(str(x)) for x in (row.data_type, row.access_level) if x)
            text = " ".join(
                str(x) for x in (name, label, node_id, path, row.data_type, row.description)
            ).lower()
            description = html.escape(str(row.description or ""))
            if variable:
                node = self._variable_node(parent, path, node_id, name, label, detail, description)
            else:
                node = self._folder_node(parent, path, node_id, label, node_class, description)
            node.text = text
            nodes.append(node)
        return nodes

    def _variable_node(
        self,
        parent: _TreeNode | None,
        path: str,
        node_id: str,
        name: str,
        label: str,
        detail: str,
        description: str,
    ) -> _TreeNode:
        if name in self.checks:
            # The same node reached on a second path: share its checkbox and value cell
            # so that ticking either ticks both and Read fills both.
            check, value = self.checks[name], self._cells[name]
        else:
            check = widgets.Checkbox(value=False, indent=False, layout={"width": "24px"})
            check.description_allow_html = False
            value = widgets.HTML("")
            self.checks[name] = check
            self._cells[name] = value
        shown_name = "" if name == node_id else f" <code>{html.escape(name)}</code>"
        caption = widgets.HTML(
            f"{html.escape(label)}{shown_name} "
            f'<small class="bf-dim" style="color:#777">{detail} · {html.escape(node_id)}</small>'
        )
        note = widgets.HTML(f'<small style="color:#777">{description}</small>')
        # 28px of indent where a folder has its toggle, so labels line up.
        row = widgets.HBox(
            [check, caption, value, note],
            layout={"margin": "0 0 0 28px", "grid_gap": "0 12px", "align_items": "center"},
        )
        return _TreeNode(path, node_id, name, label, True, parent, row, row, "")

    def _folder_node(
        self,
        parent: _TreeNode | None,
        path: str,
        node_id: str,
        label: str,
        node_class: str,
        description: str,
    ) -> _TreeNode:
        expandable = node_class in _TREE_CLASSES
        toggle = widgets.ToggleButton(
            value=False,
            description=label,
            icon="caret-right" if expandable else "",
            tooltip=f"{node_class} {node_id}",
            disabled=not expandable,
            layout={"width": "auto"},
        )
        note = widgets.HTML(f'<small style="color:#777">{description}</small>')
        row = widgets.HBox([toggle, note], layout={"align_items": "center", "grid_gap": "0 12px"})
        box = widgets.VBox(layout={"display": "none", "margin": "0 0 0 20px"})
        widget = widgets.VBox([row, box])
        node = _TreeNode(path, node_id, node_id, label, False, parent, widget, row, "", toggle, box)
        toggle.observe(lambda change: self._on_toggle(node, bool(change["new"])), names="value")
        return node

    @staticmethod
    def _widgets_of(nodes: list[_TreeNode], total: int) -> list[Any]:
        out = [n.widget for n in nodes]
        if total > len(nodes):
            out.append(widgets.HTML(f"<small>… {total - len(nodes):,} more not shown</small>"))
        return out

    def _load(self, node: _TreeNode) -> list[_TreeNode]:
        """Browse ``node``'s children once (raises what ``plc.browse`` raises)."""
        if node.children is None:
            frame = self.plc.browse(node.path, depth=1)
            node.children = self._add_nodes(node, frame)
            node.box.children = self._widgets_of(node.children, len(frame))
            self.frame = pd.concat([self.frame, frame], ignore_index=True)
            self.status.value = (
                f"{len(frame)} nodes below {html.escape(node.path)} · {len(self.frame)} loaded"
            )
        return node.children

    def _on_toggle(self, node: _TreeNode, expanded: bool) -> None:
        if expanded:
            try:
                self._load(node)
            except BifrostError as exc:
                self.status.value = error_html(exc)
                node.toggle.value = False  # collapses again through this handler
                return
        node.toggle.icon = "caret-down" if expanded else "caret-right"
        node.box.layout.display = None if expanded else "none"
        if self.search.value.strip():
            self._filter_tree()  # newly loaded children obey the filter too

    def expand(self, path: str) -> list[str]:
        """Expand the folders from the root down to ``path`` (a browse path or NodeId).

        Returns the browse paths of the expanded folder's children. Raises
        :class:`~bifrost.ConfigurationError` if ``path`` is not in the tree, and what
        ``plc.browse`` raises if the server refuses.
        """
        if self.mode != "tree":
            raise ConfigurationError("expand() is for OPC UA trees; this browser is a table")
        target = path.rstrip("/")
        level = self._top
        while True:
            node = next(
                (
                    n
                    for n in level
                    if target in (n.path, n.node_id) or target.startswith(n.path + "/")
                ),
                None,
            )
            if node is None or node.toggle is None or node.toggle.disabled:
                raise ConfigurationError(
                    f"{path!r} is no folder in the tree below {self.root}; "
                    "give a browse path as plc.browse() shows it"
                )
            children = self._load(node)
            node.toggle.value = True
            if target in (node.path, node.node_id):
                return [c.path for c in children]
            level = children

    def collapse(self) -> None:
        """Collapse every folder (what was browsed stays loaded)."""
        for node in self._walk():
            if node.toggle is not None:
                node.toggle.value = False

    def _walk(self, expanded_only: bool = False) -> Iterator[_TreeNode]:
        """Loaded nodes depth first, in tree order (only expanded folders' children)."""
        stack = list(reversed(self._top))
        while stack:
            node = stack.pop()
            yield node
            if node.children and (not expanded_only or node.toggle.value):
                stack.extend(reversed(node.children))

    def _filter_tree(self) -> None:
        words = self.search.value.strip().lower().split()
        nodes = list(self._walk())
        if not words:
            for node in nodes:
                node.row.layout.display = None
                if node.box is not None:
                    node.box.layout.display = None if node.toggle.value else "none"
            return
        keep: set[int] = set()
        matches = 0
        for node in nodes:
            if all(w in node.text for w in words):
                matches += 1
                walker: _TreeNode | None = node
                while walker is not None and id(walker) not in keep:
                    keep.add(id(walker))
                    walker = walker.parent
        for node in nodes:
            kept = id(node) in keep
            node.row.layout.display = None if kept else "none"
            if node.box is not None:
                # A folder on the way to a match opens while filtering; its toggle keeps
                # its state, so clearing the filter restores the tree as it was.
                opened = kept and any(id(c) in keep for c in node.children or ())
                node.box.layout.display = None if opened else "none"
        self.status.value = (
            f"{matches} of {len(nodes)} loaded nodes match; expand folders to search deeper"
        )

    @property
    def selected(self) -> list[str]:
        """Names of the ticked tags, in table (tree) order."""
        if self.mode == "tree":
            names = [n.name for n in self._walk() if n.variable]
            return [name for name in dict.fromkeys(names) if self.checks[name].value]
        return [name for name, check in self.checks.items() if check.value]

    @property
    def shown(self) -> list[str]:
        """Names of the tags the filter shows (tree: the variables one can see)."""
        text = self.search.value.strip().lower()
        if self.mode == "tree":
            words = text.split()
            # Without a filter only expanded folders' variables are visible.
            nodes = self._walk(expanded_only=not words)
            names = [n.name for n in nodes if n.variable and all(w in n.text for w in words)]
            return list(dict.fromkeys(names))
        return [
            name for name, hay in self._search_text.items() if all(w in hay for w in text.split())
        ]

    def _filter(self) -> None:
        if self.mode == "tree":
            self._filter_tree()
            return
        visible = set(self.shown)
        for name, row in self._rows.items():
            display = None if name in visible else "none"
            for cell in row:
                cell.layout.display = display

    def _select(self, value: bool) -> None:
        for name in self.shown:
            self.checks[name].value = value

    def read(self) -> pd.DataFrame | None:
        """Read the selected tags (all shown ones if none is ticked) into the value column."""
        names = self.selected or self.shown
        if not names:
            self.status.value = "nothing to read: no tag matches the filter"
            return None
        try:
            frame = self.plc.read(names, errors="quality")
        except BifrostError as exc:
            self.status.value = error_html(exc)
            return None
        for name, row in frame.iterrows():
            good = str(row["quality"]) == "good"
            text = html.escape(_short(row["value"]))
            colour = "" if good else ' style="color:#cf222e"'
            self._cells[str(name)].value = f"<span{colour}>{text}</span>"
        stamp = frame["timestamp"].max()
        self.status.value = f"read {len(frame)} tags at {stamp:%H:%M:%S} UTC"
        self.values = frame
        return frame

    def record(self) -> Recording | None:
        """Start a background recording of the selected tags ("Record selected")."""
        names = self.selected
        if not names:
            self.status.value = "tick the tags to record first"
            return None
        if self.recording is not None and self.recording.running:
            self.status.value = "a recording is running: Stop it first"
            return self.recording
        try:
            recording = self.plc.record(names, interval=self.interval.value, background=True)
        except BifrostError as exc:
            self.status.value = error_html(exc)
            return None
        self.recording = recording
        self.record_button.disabled = True
        self.stop_button.disabled = False
        self.status.value = (
            f'<span class="bifrost-recording">recording {len(names)} tags every '
            f"{format_seconds(recording.interval_s)}</span>: <code>browser.recording</code>"
        )
        if self._live:
            self.trend = LiveTrend(recording, refresh=self._refresh)
            self.output.children = [self.trend]
        return recording

    def stop(self) -> Recording | None:
        """Stop the recording started here and show its summary."""
        recording = self.recording
        if recording is None:
            return None
        recording.stop()
        try:
            recording.wait(10.0)
        except BifrostError as exc:
            self.status.value = error_html(exc)
            return recording
        if self.trend is not None:
            self.trend.stop()
            self.trend.refresh()
        self.record_button.disabled = False
        self.stop_button.disabled = True
        summary = widgets.HTML(recording_html(recording))
        summary.add_class("bifrost-recording-summary")
        self.output.children = [*([self.trend] if self.trend is not None else []), summary]
        self.status.value = f"recorded {len(recording):,} samples of {len(recording.names)} tags"
        return recording

    def close(self) -> None:
        """Stop the live trend (a running recording keeps running) and close."""
        if self.trend is not None:
            self.trend.close()
        super().close()


# -- DecodeProbe -----------------------------------------------------------------------------
def _plausible(values: npt.NDArray[Any], dtype: DataType) -> npt.NDArray[np.bool_]:
    """Whether each value looks like a real measurement (floats: finite, sane magnitude)."""
    if not dtype.is_float:
        return np.ones(len(values), dtype=bool)
    x = values.astype(np.float64)
    with np.errstate(invalid="ignore", over="ignore"):
        magnitude = np.abs(x)
        sane: npt.NDArray[np.bool_] = np.isfinite(x) & (
            (x == 0) | ((magnitude >= 1e-4) & (magnitude < 1e9))
        )
    return sane


class DecodeProbe(widgets.VBox):  # type: ignore[misc]
    """Raw registers decoded under every type and byte/word order, side by side.

    The probe reads ``count`` registers from ``address`` plus one before and one after
    (the classic off-by-one of 0- and 1-based documentation) and decodes a value starting
    at *every* register of that window under each type and byte/word order. Values that
    look like real measurements are bold, impossible floats are greyed; with
    ``expected`` (what the HMI or the nameplate shows) the matching cells light up and
    :attr:`matches` lists the addresses to put in a tag table, scale included.

    Parameters
    ----------
    plc
        A Modbus :class:`~bifrost.Connection`.
    address
        Where to look: ``"hr:100"``, ``"ir:0"``, ``"40101"`` (a type in the address is
        ignored; its row is marked).
    count
        Registers to probe from ``address`` (1-120).
    expected
        The value you expect to find, or None.
    tolerance
        Relative tolerance of a match (also at least 1e-6 absolute).
    read
        Read at once (False: call :meth:`read` or click "Read").

    Attributes
    ----------
    registers
        The registers read (uint16; masked where the device refused the address).
    matrix
        DataFrame of decoded values: one row per ``"type order"``, one column per start
        address.
    matches
        ``[(address, value, scale), ...]`` of the cells matching ``expected``.
    """

    def __init__(
        self,
        plc: Connection,
        address: str = "hr:0",
        count: int = 4,
        *,
        expected: float | None = None,
        tolerance: float = 0.005,
        read: bool = True,
    ) -> None:
        if plc.protocol != "modbus":
            raise ConfigurationError(
                f"DecodeProbe reads Modbus registers; {plc.url} is {plc.protocol}"
            )
        self.plc = plc
        self.tolerance = tolerance
        self.registers: np.ma.MaskedArray[Any, np.dtype[np.uint16]] = np.ma.MaskedArray(
            np.zeros(0, dtype=np.uint16), mask=np.zeros(0, dtype=bool)
        )
        self.first = 0
        self.matrix = pd.DataFrame()
        self.matches: list[tuple[str, float, float]] = []
        self.address = widgets.Text(value=address, description="address", layout={"width": "220px"})
        self.count = widgets.BoundedIntText(
            value=count, min=1, max=_MAX_PROBE, description="registers", layout={"width": "180px"}
        )
        self.expected = widgets.Text(
            value="" if expected is None else repr(expected),
            description="expect",
            placeholder="value on the HMI",
            layout={"width": "220px"},
        )
        self.show_all = widgets.Checkbox(value=True, description="show implausible", indent=False)
        self.read_button = widgets.Button(description="Read", icon="refresh")
        self.read_button.on_click(lambda _: self.read())
        self.expected.observe(lambda _: self._render(), names="value")
        self.show_all.observe(lambda _: self._render(), names="value")
        self.view = widgets.HTML()
        self.view.add_class("bifrost-decodeprobe-view")
        controls = widgets.HBox(
            [self.address, self.count, self.expected, self.show_all, self.read_button],
            layout={"flex_flow": "row wrap"},
        )
        super().__init__([controls, self.view])
        self.add_class("bifrost-decodeprobe")
        if read:
            self.read()

    # -- reading ----------------------------------------------------------------------------
    def _window(self) -> tuple[str, int, int, DataType | None, ByteOrder | None]:
        parsed = parse_modbus_address(self.address.value.strip())
        if parsed.is_bit:
            raise ConfigurationError(
                f"{self.address.value!r} is a single bit ({parsed.table}); DecodeProbe decodes "
                "registers: use hr:N or ir:N"
            )
        count = int(self.count.value)
        if not 1 <= count <= _MAX_PROBE:
            raise ConfigurationError(f"count must be 1-{_MAX_PROBE}, got {count}")
        first = max(0, parsed.offset - 1)
        end = min(65536, parsed.offset + count + 1)
        # A bare "hr:100" parses as uint16 ABCD; only a type the user wrote gets marked.
        explicit = "uint16" in self.address.value.lower() or (
            parsed.dtype is not DataType.UINT16 or parsed.order is not ByteOrder.ABCD
        )
        dtype = parsed.dtype if explicit and parsed.dtype is not DataType.STRING else None
        order = parsed.order if dtype is not None else None
        return parsed.table, first, end, dtype, order

    def read(self) -> pd.DataFrame:
        """Read the window and redraw; returns :attr:`matrix`."""
        try:
            table, first, end, dtype, order = self._window()
            addresses = [f"{table}:{i}:uint16" for i in range(first, end)]
            try:
                frame = self.plc.read(addresses, errors="quality")
                good = (frame["quality"] == "good").to_numpy()
                raw = [int(v) if ok else 0 for v, ok in zip(frame["value"], good, strict=True)]
            except (ProtocolError, ConnectionError):
                # Some drivers give up on a block that runs past the device's last
                # register; the one-by-one pass below sorts out which ones exist.
                good = np.zeros(len(addresses), dtype=bool)
                raw = [0] * len(addresses)
            if not good.all():
                # The device refused the block: find the registers that do exist, one by one.
                for k, addr in enumerate(addresses):
                    if not good[k]:
                        single = self.plc.read([addr], errors="quality")
                        if str(single["quality"].iloc[0]) == "good":
                            raw[k] = int(single["value"].iloc[0])
                            good[k] = True
            values = np.array(raw, dtype=np.uint16)
        except BifrostError as exc:
            self.view.value = error_html(exc)
            raise
        self.table, self.first = table, first
        self.marked = (dtype, order)
        self.registers = np.ma.MaskedArray(values, mask=~good)
        self.matrix = self._decode()
        self._render()
        return self.matrix

    def _decode(self) -> pd.DataFrame:
        image = self.registers.filled(0).astype(np.uint16)
        missing = np.ma.getmaskarray(self.registers)
        n = len(image)
        columns = [f"{self.table}:{self.first + i}" for i in range(n)]
        rows: dict[str, list[Any]] = {}
        self._plausible: dict[str, npt.NDArray[np.bool_]] = {}
        for dtype, orders in _PROBE_TYPES:
            width = max(1, dtype.size // 2)
            starts = np.arange(0, max(0, n - width + 1), dtype=np.intp)
            for order in orders:
                key = f"{dtype.value} {order.value}"
                out: list[Any] = [None] * n
                ok = np.zeros(n, dtype=bool)
                if len(starts):
                    decoded = decode_registers(image, starts, dtype, order)
                    hole = np.array([missing[s : s + width].any() for s in starts], dtype=bool)
                    sane = _plausible(decoded, dtype) & ~hole
                    for s, value, bad in zip(starts, decoded.tolist(), hole, strict=True):
                        out[s] = None if bad else value
                    ok[starts] = sane
                rows[key] = out
                self._plausible[key] = ok
        text: list[Any] = []
        for i in range(n):
            if missing[i]:
                text.append(None)
                continue
            pair = int(image[i]).to_bytes(2, "big")
            text.append("".join(chr(b) if 32 <= b < 127 else "·" for b in pair))
        rows["ascii AB"] = text
        self._plausible["ascii AB"] = np.array([t is not None for t in text], dtype=bool)
        return pd.DataFrame.from_dict(rows, orient="index", columns=columns)

    # -- matching ---------------------------------------------------------------------------
    def _expected_value(self) -> float | None:
        text = self.expected.value.strip()
        if not text:
            return None
        try:
            return float(text)
        except ValueError:
            return None

    def _find_matches(self, expected: float) -> set[tuple[str, str]]:
        hits: set[tuple[str, str]] = set()
        self.matches = []
        tol = max(1e-6, abs(expected) * self.tolerance)
        for key, row in self.matrix.iterrows():
            if str(key).startswith("ascii"):
                continue
            dtype_name, order = str(key).split()
            dtype = DataType(dtype_name)
            for column, value in row.items():
                if value is None or (isinstance(value, float) and not math.isfinite(value)):
                    continue
                scales = (1.0,) if dtype.is_float else _SCALES
                for scale in scales:
                    if abs(float(value) * scale - expected) <= tol:
                        hits.add((str(key), str(column)))
                        suffix = "" if order == "ABCD" else f":{order}"
                        address = f"{column}:{dtype_name}{suffix}"
                        self.matches.append((address, float(value) * scale, scale))
                        break
        # Closest first (a float's high word alone comes near its value, so near misses
        # exist), then unscaled before scaled, then fewer swaps.
        self.matches.sort(
            key=lambda m: (
                round(abs(m[1] - expected) / tol, 1),
                m[2] != 1.0,
                m[0].count(":") == 3,
                m[0],
            )
        )
        return hits

    # -- rendering --------------------------------------------------------------------------
    def _render(self) -> None:
        if self.matrix.empty:
            return
        expected = self._expected_value()
        hits = self._find_matches(expected) if expected is not None else set()
        if expected is None:
            self.matches = []
        self.view.value = self._raw_html() + self._matrix_html(hits) + self._matches_html(expected)

    def _raw_html(self) -> str:
        rows: list[tuple[Any, ...]] = []
        for i, (value, missing) in enumerate(
            zip(self.registers.filled(0), np.ma.getmaskarray(self.registers), strict=True)
        ):
            address = f"{self.table}:{self.first + i}"
            if missing:
                rows.append((address, "refused", "", "", ""))
                continue
            v = int(value)
            signed = v - 65536 if v >= 32768 else v
            rows.append((address, f"0x{v:04X}", v, signed, f"{v >> 8:08b} {v & 0xFF:08b}"))
        return table_html(
            ["register", "hex", "uint16", "int16", "bits"],
            rows,
            caption="Raw registers",
            numeric=[False, True, True, True, False],
        )

    def _matrix_html(self, hits: set[tuple[str, str]]) -> str:
        dtype_mark, order_mark = self.marked
        marked_key = (
            f"{dtype_mark.value} {(order_mark or ByteOrder.ABCD).value}" if dtype_mark else None
        )
        header = ["decoded as", *self.matrix.columns]
        rows = []
        for key, row in self.matrix.iterrows():
            ok = self._plausible[str(key)]
            if not self.show_all.value and not ok.any() and not any(h[0] == key for h in hits):
                continue
            label = html.escape(str(key))
            if key == marked_key:
                label = f"<b>▶ {label}</b>"
            cells = [label]
            for j, (column, value) in enumerate(row.items()):
                if value is None:
                    cells.append("")
                    continue
                text = html.escape(format_value(value))
                if (str(key), str(column)) in hits:
                    style = "background:#2da44e;color:white;font-weight:bold"
                elif ok[j]:
                    style = "font-weight:bold"
                else:
                    style = "color:#999"
                cells.append(f'<span style="{style}">{text}</span>')
            rows.append(cells)
        return table_html(
            header,
            rows,
            caption="A value starting at each register (bold: plausible; grey: implausible)",
            numeric=[False] + [True] * len(self.matrix.columns),
            raw=True,
        )

    def _matches_html(self, expected: float | None) -> str:
        if expected is None:
            return (
                '<p class="bf-dim" style="font-size:12px">Type the value the HMI shows in '
                "<i>expect</i> to highlight the decodings that give it.</p>"
            )
        if not self.matches:
            return (
                f'<p style="font-size:12px">No decoding gives {format_value(expected)} '
                f"(±{self.tolerance:.1%}); widen the window or check the unit id.</p>"
            )
        items = "".join(
            f"<li><code>{html.escape(address)}</code>"
            + (f", scale {scale:g}" if scale != 1.0 else "")
            + f" → {format_value(value)}</li>"
            for address, value, scale in self.matches[:8]
        )
        intro = f"Addresses that give {format_value(expected)}:"
        return f'<p style="font-size:12px">{intro}</p><ul>{items}</ul>'

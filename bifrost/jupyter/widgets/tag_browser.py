"""TagBrowser: a connection's tags as a searchable table, or OPC UA's lazily browsed tree."""

from __future__ import annotations

import dataclasses
import datetime as dt
import html
import math
from collections.abc import Iterator
from typing import Any

import ipywidgets as widgets
import numpy as np
import pandas as pd

from bifrost._html import format_seconds, format_value, recording_html
from bifrost.connection import Connection
from bifrost.exceptions import BifrostError, ConfigurationError
from bifrost.jupyter._text import plural
from bifrost.jupyter.widgets._common import error_html, resolve_timezone, timezone_name
from bifrost.jupyter.widgets.live_trend import LiveTrend
from bifrost.recording import Recording

__all__ = ["TagBrowser"]


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
    tz
        Timezone of the live trend's time axis and of the read time (default: the
        kernel's local zone).

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
        tz: str | dt.tzinfo | None = None,
    ) -> None:
        self.plc = plc
        self.tz = tz
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
        self.search = widgets.Text(placeholder=hint, layout={"width": "280px"})
        self.search.observe(lambda _: self._filter(), names="value")
        self.selected_count = widgets.HTML("none selected")
        self.selected_count.add_class("bifrost-browser-selected")
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
        for check in self.checks.values():
            check.observe(lambda _: self._count_selected(), names="value")
        # Every control above the table: what to pick, then what to do with it.
        picking = widgets.HBox(
            [self.search, self.select_all, self.clear, self.selected_count],
            layout={"flex_flow": "row wrap", "align_items": "center", "grid_gap": "0 8px"},
        )
        acting = widgets.HBox(
            [self.read_button, self.record_button, self.interval, self.stop_button],
            layout={"flex_flow": "row wrap", "align_items": "center"},
        )
        super().__init__([picking, acting, grid, self.status, self.output])
        self.add_class("bifrost-tagbrowser")

    def _build_grid(self) -> Any:
        columns = ["", "name", "address", "dtype", "unit", "range", "value", "description"]
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
                widgets.HTML(f"<small>{html.escape(self._range_of(tag))}</small>"),
                value,
                widgets.HTML(
                    f"<small>{html.escape(str(row.get('description', '') or ''))}</small>"
                ),
            ]
            self.checks[tag] = check
            self._cells[tag] = value
            self._rows[tag] = row_cells
            self._search_text[tag] = " ".join(
                # A missing cell (NaN: no limit) is no text "nan" to match.
                str(x)
                for x in (tag, *row.to_dict().values())
                if not (x is None or (isinstance(x, float) and math.isnan(x)))
            ).lower()
            cells.extend(row_cells)
        return widgets.GridBox(
            cells,
            layout=widgets.Layout(
                grid_template_columns="28px max-content max-content max-content "
                "max-content max-content minmax(80px, max-content) auto",
                grid_gap="0px 12px",
                # Room for a plant's worth of tags (15 rows and the header) unscrolled.
                max_height="620px",
                overflow="auto",
            ),
        )

    def _range_of(self, name: str) -> str:
        """The tag's engineering limits, as the table states them (empty: none)."""
        tag = self.plc.tags.get(name)
        return tag.limits_text if tag is not None else ""

    # -- tree mode (OPC UA) ------------------------------------------------------------------
    def _build_tree(self) -> Any:
        # Tag table addresses -> names, so known variables are read under their tag name.
        self._tag_of: dict[str, str] = {}
        for tag in self.plc.tags:
            self._tag_of.setdefault(tag.address, tag.name)
        self._top = self._add_nodes(None, self.frame)
        self._tree = widgets.VBox(
            self._widgets_of(self._top, len(self.frame)),
            layout=widgets.Layout(max_height="620px", overflow="auto"),
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
            limits = self._range_of(name)
            detail = " · ".join(
                html.escape(str(x)) for x in (row.data_type, row.access_level, limits) if x
            )
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
            matching = all(w in node.text for w in words)
            matches += matching
            # A ticked variable stays in sight too: it is part of what Read and Record do.
            if matching or (node.variable and self.checks[node.name].value):
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
        # A ticked tag stays in sight while filtering: it is part of what Read and Record do.
        visible = set(self.shown) | set(self.selected)
        for name, row in self._rows.items():
            display = None if name in visible else "none"
            for cell in row:
                cell.layout.display = display

    def _select(self, value: bool) -> None:
        for name in self.shown:
            self.checks[name].value = value

    def _count_selected(self) -> None:
        count = len(self.selected)
        self.selected_count.value = f"<b>{count}</b> selected" if count else "none selected"

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
        zone = resolve_timezone(self.tz)
        stamp = frame["timestamp"].max().floor("us").tz_convert(zone).to_pydatetime()
        self.status.value = (
            f"read {plural(len(frame), 'tag')} at {stamp:%H:%M:%S} {timezone_name(zone, stamp)}"
        )
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
            f'<span class="bifrost-recording">recording {plural(len(names), "tag")} every '
            f"{format_seconds(recording.interval_s)}</span>: <code>browser.recording</code>"
        )
        if self._live:
            self.trend = LiveTrend(recording, refresh=self._refresh, tz=self.tz)
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
        self.status.value = (
            f"recorded {plural(len(recording), 'sample')} of {plural(len(recording.names), 'tag')}"
        )
        return recording

    def close(self) -> None:
        """Stop the live trend (a running recording keeps running) and close."""
        if self.trend is not None:
            self.trend.close()
        super().close()

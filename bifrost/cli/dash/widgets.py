"""The dashboard's panels: the tag list with search, the live values and the trend."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.message import Message
from textual.widgets import DataTable, Input
from textual_plot import HiResMode, PlotWidget

from bifrost.cli.dash.live import LiveValues, format_cell, quality_style

__all__ = [
    "TagEntry",
    "TagList",
    "TrendChart",
    "ValuesTable",
    "decimated",
    "scaled",
    "trend_colour",
]

# Distinct on dark and light themes; a tag keeps its colour while it stays selected.
_COLOURS = ("cyan", "magenta", "yellow", "green", "bright_blue", "red", "white", "bright_magenta")


def trend_colour(names: Sequence[str], name: str) -> str:
    """The colour of ``name``'s line: by its place in the selection, so it stays put."""
    return _COLOURS[list(names).index(name) % len(_COLOURS)]


@dataclass(frozen=True, slots=True)
class TagEntry:
    """One row of the tag list."""

    name: str
    address: str
    unit: str = ""
    writable: bool = False
    description: str = ""

    @property
    def text(self) -> str:
        """What the search matches, lower case."""
        return f"{self.name} {self.address} {self.unit} {self.description}".lower()


class TagList(Vertical):
    """A search field over a table of tags; space (or Enter) selects and deselects a tag."""

    DEFAULT_CSS = """
    TagList { width: 2fr; min-width: 30; }
    TagList DataTable { height: 1fr; }
    """

    class Toggled(Message):
        """A tag was selected or deselected."""

        def __init__(self, name: str) -> None:
            super().__init__()
            self.name = name

    def __init__(
        self, entries: Sequence[TagEntry], selected: Sequence[str], *, id: str | None = None
    ) -> None:
        super().__init__(id=id)
        self.entries = list(entries)
        self.selected: list[str] = list(selected)
        self.shown: list[TagEntry] = list(entries)

    def compose(self) -> ComposeResult:
        """The search field over the table."""
        yield Input(placeholder="search tags ( / )", id="search")
        table: DataTable[str | Text] = DataTable(id="tags", cursor_type="row", zebra_stripes=True)
        table.border_title = "tags"
        yield table

    def on_mount(self) -> None:
        """Fill the table."""
        table = self.table
        table.add_column("", key="mark", width=1)
        table.add_column("tag", key="name")
        table.add_column("address", key="address")
        table.add_column("unit", key="unit")
        self.filter("")

    @property
    def table(self) -> DataTable[str | Text]:
        """The table of (matching) tags."""
        return self.query_one("#tags", DataTable)

    def add_entries(self, entries: Sequence[TagEntry]) -> None:
        """Add tags found after start (an OPC UA server's variables), keeping the search."""
        known = {e.name for e in self.entries}
        self.entries += [e for e in entries if e.name not in known]
        self.filter(self.query_one("#search", Input).value)

    def filter(self, query: str) -> None:
        """Show the tags whose name, address, unit or description contain every word."""
        words = query.lower().split()
        self.shown = [e for e in self.entries if all(w in e.text for w in words)]
        table = self.table
        table.clear()
        for entry in self.shown:
            table.add_row(
                self._mark(entry.name),
                entry.name + (" ✎" if entry.writable else ""),
                entry.address,
                entry.unit,
                key=entry.name,
            )
        table.border_subtitle = f"{len(self.shown)} of {len(self.entries)}"

    def _mark(self, name: str) -> Text:
        return Text("●", style="bold green") if name in self.selected else Text("·", style="dim")

    def on_input_changed(self, event: Input.Changed) -> None:
        """Narrow the table as the user types."""
        event.stop()
        self.filter(event.value)

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Enter in the search field goes to the table."""
        event.stop()
        self.table.focus()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter on a row toggles it, like space."""
        event.stop()
        if event.row_key.value is not None:
            self.toggle(event.row_key.value)

    def highlighted(self) -> str | None:
        """The tag under the cursor."""
        table = self.table
        if not self.shown or table.cursor_row >= len(self.shown):
            return None
        return self.shown[table.cursor_row].name

    def toggle(self, name: str) -> None:
        """Select or deselect ``name``."""
        if name in self.selected:
            self.selected.remove(name)
        else:
            self.selected.append(name)
        if any(e.name == name for e in self.shown):
            self.table.update_cell(name, "mark", self._mark(name))
        self.post_message(self.Toggled(name))


class ValuesTable(DataTable[str | Text]):
    """The selected tags' last values, quality coloured (green good, yellow uncertain, red bad).

    The first column is the tag's line colour in the trend (the chart has no legend that
    could hide its lines).
    """

    DEFAULT_CSS = "ValuesTable { height: 1fr; }"

    def on_mount(self) -> None:
        """Add the columns."""
        self.cursor_type = "row"
        self.border_title = "live values"
        self.add_column("", key="line", width=2)
        for label, key in (
            ("tag", "name"),
            ("value", "value"),
            ("unit", "unit"),
            ("quality", "quality"),
            ("age", "age"),
        ):
            self.add_column(label, key=key)

    def show(self, names: Sequence[str], live: LiveValues, units: dict[str, str]) -> None:
        """Redraw the rows of ``names`` from ``live`` (rows keep their order and cursor)."""
        wanted = list(names)
        if [str(key.value) for key in self.rows] != wanted:
            row = self.cursor_row
            self.clear()
            for name in wanted:
                self.add_row("", name, "", units.get(name, ""), "", "", key=name)
            if wanted:
                self.move_cursor(row=min(row, len(wanted) - 1))
        now = time.time_ns()
        for name in wanted:
            reading = live.latest.get(name)
            if reading is None:
                cells = (Text("…", style="dim"), Text("waiting", style="dim"), Text(""))
            else:
                style = quality_style(reading.quality)
                cells = (
                    Text(format_cell(reading.value), style=style),
                    Text(reading.quality.name.lower(), style=style),
                    Text(f"{reading.age_s(now):.1f} s"),
                )
            for key, cell in zip(("value", "quality", "age"), cells, strict=True):
                self.update_cell(name, key, cell, update_width=True)
            line = Text("━━", style=trend_colour(wanted, name)) if live.numeric(name) else Text("")
            self.update_cell(name, "line", line)

    def highlighted(self) -> str | None:
        """The tag under the cursor."""
        if not self.row_count:
            return None
        return str(self.coordinate_to_cell_key(self.cursor_coordinate).row_key.value)


def _runs(values: npt.NDArray[np.float64]) -> list[slice]:
    """The stretches of finite values: a bad sample is a gap, not a line across it."""
    finite = np.concatenate(([False], np.isfinite(values), [False]))
    edges = np.flatnonzero(np.diff(finite.astype(np.int8)))
    starts, stops = edges[::2].tolist(), edges[1::2].tolist()
    return [slice(start, stop) for start, stop in zip(starts, stops, strict=True)]


def decimated(
    x: npt.NDArray[np.float64], y: npt.NDArray[np.float64], budget: int
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """At most about ``budget`` points of a line: the min and max of each bucket, in order.

    Drawing costs per point, and a chart shows no more points than it has pixels
    across; keeping each bucket's extremes keeps the spikes a plain stride would drop.
    """
    buckets = budget // 2
    if len(y) <= budget or buckets < 2:
        return x, y
    size = len(y) // buckets
    body = y[: size * buckets].reshape(buckets, size)
    offsets = np.arange(buckets) * size
    picks = np.sort(np.concatenate((offsets + body.argmin(axis=1), offsets + body.argmax(axis=1))))
    picks = np.unique(np.append(picks, len(y) - 1))  # the newest point is always drawn
    return x[picks], y[picks]


def scaled(values: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """``values`` mapped to 0-1 by their own min and max (a flat line sits at 0.5)."""
    finite = values[np.isfinite(values)]
    if not finite.size:
        return values
    low, high = float(finite.min()), float(finite.max())
    if high == low:
        return np.where(np.isfinite(values), 0.5, np.nan)
    return (values - low) / (high - low)


class TrendChart(PlotWidget):
    """A braille line chart of the selected numeric tags over the last minutes.

    ``scaled`` draws each line over its own min-max as 0-1, so a level in metres and a
    speed in rpm can be read on one chart (the values table keeps the real numbers).

    textual-plot's PlotWidget draws it: a maintained native Textual widget with axes,
    ticks and a legend (a Sparkline has neither axes nor more than one series).
    """

    DEFAULT_CSS = "TrendChart { height: 2fr; border: round $primary; }"

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, allow_pan_and_zoom=False)
        self.border_title = "trend"
        self.scaled = False

    def on_mount(self) -> None:
        """Label the time axis."""
        self.set_xlabel("seconds")
        self.show_legend(is_visible=False)

    def show(self, names: Sequence[str], live: LiveValues) -> None:
        """Redraw the trend of every numeric tag among ``names``."""
        self.clear()
        now = time.time_ns()
        budget = max(64, 2 * self.size.width)  # braille: two dots per cell across
        drawn = 0
        for name in names:
            if not live.numeric(name):
                continue
            seconds, values = live.trend(name, now)
            colour = trend_colour(names, name)
            if self.scaled:
                values = scaled(values)
            for segment in _runs(values):
                share = budget * (segment.stop - segment.start) // len(values) + 2
                x, y = decimated(seconds[segment], values[segment], share)
                self.plot(x, y, line_style=colour, hires_mode=HiResMode.BRAILLE, label=name)
            drawn += 1
        if not drawn:
            self.border_subtitle = "select numeric tags to draw their trend"
        else:
            self.border_subtitle = "each line scaled to its min-max (s)" if self.scaled else ""

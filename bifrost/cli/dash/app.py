"""The dashboard App: tag list, live values, trend, recording and (opt-in) writes."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

from textual import on, work
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.widgets import Footer, Header, Input, Static

from bifrost.cli.dash.live import LiveValues
from bifrost.cli.dash.record import RecordControl
from bifrost.cli.dash.widgets import TagEntry, TagList, TrendChart, ValuesTable
from bifrost.cli.dash.write import WriteDialog
from bifrost.exceptions import BifrostError

if TYPE_CHECKING:
    from bifrost.connection import Connection

__all__ = ["DashApp", "tag_entries"]

_FIRST_SELECTED = 4  # tags selected at start when none were named
_TREND_EVERY = 0.5  # seconds between redraws of the chart: the costliest part of a redraw
# Without a tag table, an address space (OPC UA) is browsed this deep for variables, and
# at most this many are listed: a bounded first look, not a crawl of a big server.
_DISCOVER_ROOT = "/Objects"
_DISCOVER_DEPTH = 4
_DISCOVER_MAX = 1000


def browsed_entries(frame: Any) -> list[TagEntry]:
    """The variables of a browse answer (OPC UA) as tag list rows; [] for a tag table.

    A variable is listed under its NodeId (what a read of it is named) with its browse
    path as the address.
    """
    if "node_class" not in getattr(frame, "columns", ()):
        return []
    variables = frame[frame["node_class"] == "Variable"].head(_DISCOVER_MAX)
    return [
        TagEntry(
            str(row.node_id),
            str(row.browse_path),
            writable=bool(row.writable),
            description=str(row.description or ""),
        )
        for row in variables.itertuples()
    ]


def tag_entries(connection: Connection, tags: Sequence[str]) -> list[TagEntry]:
    """The connection's tag table, then the named tags it lacks (raw addresses).

    Resolving happens here, before the app starts: a bad address is an
    :class:`~bifrost.AddressError` for the caller, not a broken screen.
    """
    entries = [
        TagEntry(t.name, t.address, t.unit or "", bool(t.writable), t.description or "")
        for t in connection.tags
    ]
    known = {entry.name for entry in entries}
    if tags:
        connection.explain(list(tags))  # plans the read (no I/O): bad addresses raise here
    for tag in connection.resolve(list(tags)):
        if tag.name not in known:
            known.add(tag.name)
            entries.append(TagEntry(tag.name, tag.address, tag.unit or "", bool(tag.writable)))
    return entries


class DashApp(App[int]):
    """A live dashboard of one connection; quitting closes the connection.

    Parameters
    ----------
    connection
        An open :class:`~bifrost.Connection`; the app owns it from now on.
    tags
        Tags to select at start (default: the first few of the tag table).
    writable
        Offer the write dialog; needs a connection opened with ``writable=True`` too.
    record_dir
        Folder for recordings (default: the working directory).
    interval
        Seconds between polls (also the recording's interval).
    """

    TITLE = "bifrost dash"
    CSS = """
    #right { width: 3fr; }
    #status { height: 1; padding: 0 1; background: $panel; }
    #status.error { color: $error; text-style: bold; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit", "Quit"),
        Binding("slash", "search", "Search"),
        Binding("space", "select_tag", "Select"),
        Binding("r", "record", "Record"),
        Binding("w", "write", "Write"),
        Binding("s", "scale", "Scale"),
        Binding("escape", "focus_tags", "Tags", show=False),
    ]

    def __init__(
        self,
        connection: Connection,
        tags: Sequence[str] | None = None,
        *,
        writable: bool = False,
        record_dir: Path | None = None,
        interval: float = 0.5,
    ) -> None:
        super().__init__()
        self.connection = connection
        self.entries = tag_entries(connection, tags or [])
        if tags:
            self._initial = list(dict.fromkeys(self._name_of(t) for t in tags))
        else:
            self._initial = [e.name for e in self.entries[:_FIRST_SELECTED]]
        self.writable = writable and connection.writable
        self.interval = interval
        self.live = LiveValues()
        self.recorder = RecordControl(connection, record_dir or Path.cwd())
        self._units = {e.name: e.unit for e in self.entries}
        self._trend_drawn = 0.0
        self._wake = threading.Event()
        self._stopping = threading.Event()
        self._poll_done = threading.Event()
        self.sub_title = f"{connection.url}  ({'writable' if self.writable else 'read-only'})"

    def _name_of(self, tag: str) -> str:
        # A raw address given on the command line is listed under its tag's name.
        return self.connection.resolve([tag])[0].name

    # -- layout -----------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        """Tag list left; live values over the trend right; status and keys below."""
        yield Header(icon="≋")
        with Horizontal():
            yield TagList(self.entries, self._initial, id="taglist")
            with Vertical(id="right"):
                yield ValuesTable(id="values")
                yield TrendChart(id="trend")
        yield Static("connecting…", id="status")
        yield Footer()

    def on_mount(self) -> None:
        """Start polling."""
        self.tag_list.table.focus()
        self._redraw()
        self._poll()
        self.set_interval(1.0, self._refresh_status)
        if not len(self.connection.tags):
            self._discover()

    @work(thread=True, exclusive=True, group="discover")
    def _discover(self) -> None:
        """No tag table: list the device's variables if it has an address space."""
        try:
            frame = self.connection.browse(_DISCOVER_ROOT, _DISCOVER_DEPTH)
        except BifrostError as exc:
            self._from_thread(self.notify, f"browse: {exc}", severity="error")
            return
        entries = browsed_entries(frame)
        if entries:
            self._from_thread(self.tag_list.add_entries, entries)
        elif not self.entries:
            hint = "no tag table: name tags (addresses) on the command line, or give one"
            self._from_thread(self.notify, hint, severity="warning", timeout=10)

    @property
    def tag_list(self) -> TagList:
        """The tag list panel."""
        return self.query_one(TagList)

    @property
    def selected(self) -> list[str]:
        """The selected tags, in the order they were selected."""
        return list(self.tag_list.selected)

    # -- polling (a thread: a slow or dead device never blocks the screen) ------------------
    @work(thread=True, exclusive=True, group="poll", name="bifrost-dash-poll")
    def _poll(self) -> None:
        try:
            while not self._stopping.is_set():
                names = self.selected
                if names:
                    try:
                        result = self.connection.read_result(names)
                    except BifrostError as exc:
                        self.live.fail(names, exc)
                    except Exception:
                        if self._stopping.is_set():
                            return  # a read cut short by quitting: nothing to show
                        raise
                    else:
                        self.live.update(result)
                    self._from_thread(self._redraw)
                self._wake.wait(self.interval)
                self._wake.clear()
        finally:
            self._poll_done.set()

    def _from_thread(self, callback: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """Run ``callback`` on the UI from a worker thread, unless the app is ending."""
        if self._stopping.is_set():
            return
        with contextlib.suppress(RuntimeError):  # the app ended between check and call
            self.call_from_thread(callback, *args, **kwargs)

    def _redraw(self, *, trend: bool = False) -> None:
        names = self.selected
        self.query_one(ValuesTable).show(names, self.live, self._units)
        now = time.monotonic()
        if trend or now - self._trend_drawn >= _TREND_EVERY:
            self._trend_drawn = now
            self.query_one(TrendChart).show(names, self.live)
        self._refresh_status()

    def _refresh_status(self) -> None:
        status = self.query_one("#status", Static)
        error = self.live.error
        status.set_class(error is not None, "error")
        parts = [f"read error: {error}"] if error else [f"{self.live.cycles} reads"]
        parts.append(self.recorder.status())
        status.update("  ·  ".join(parts))

    @on(TagList.Toggled)
    def _selection_changed(self) -> None:
        self._redraw(trend=True)
        self._wake.set()  # read the new selection now, not at the next tick

    # -- actions ----------------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """Offer Write only on a writable connection (its key leaves the footer otherwise)."""
        if action == "write":
            return self.writable
        return True

    def action_scale(self) -> None:
        """Trend on one shared axis, or each line over its own min-max."""
        chart = self.query_one(TrendChart)
        chart.scaled = not chart.scaled
        self._redraw(trend=True)

    def action_search(self) -> None:
        """Focus the search field."""
        self.query_one("#search", Input).focus()

    def action_focus_tags(self) -> None:
        """Back to the tag table."""
        self.tag_list.table.focus()

    def action_select_tag(self) -> None:
        """Select or deselect the tag under the cursor."""
        name = self.tag_list.highlighted()
        if name is not None:
            self.tag_list.toggle(name)

    def action_record(self) -> None:
        """Start a recording of the selected tags, or stop the running one."""
        if self.recorder.running:
            self.notify("stopping the recording…")
            self._stop_recording()
            return
        try:
            path = self.recorder.start(self.selected, self.interval)
        except BifrostError as exc:
            self.notify(str(exc), severity="error")
        else:
            self.notify(f"recording {len(self.selected)} tags to {path}")
        self._refresh_status()

    @work(thread=True, exclusive=True, group="record")
    def _stop_recording(self) -> None:
        try:
            self.recorder.stop()
        except BifrostError as exc:
            self._from_thread(self.notify, f"recording: {exc}", severity="error")
        else:
            self._from_thread(self.notify, f"recorded to {self.recorder.path}")
        self._from_thread(self._refresh_status)

    def action_write(self) -> None:
        """Open the write dialog for the tag under the cursor."""
        focused = self.focused
        values = self.query_one(ValuesTable)
        name = values.highlighted() if focused is values else self.tag_list.highlighted()
        if name is None:
            self.notify("no tag under the cursor", severity="warning")
            return

        def write(value: Any) -> None:
            self.connection.write({name: value})

        def done(message: str | None) -> None:
            if message:
                self.notify(message)
                self._wake.set()

        dialog = WriteDialog(name, lambda: self.connection.read_value(name), write)
        self.push_screen(dialog, done)

    async def action_quit(self) -> None:
        """Stop polling and recording, close the connection, quit."""
        self._stopping.set()
        self._wake.set()
        self.query_one("#status", Static).update("closing the connection…")
        # Off the UI loop: the poller may still be handing its last cycle to the screen.
        await asyncio.to_thread(self.shutdown)
        self.exit(0)

    def shutdown(self) -> None:
        """Stop the poller, finish a running recording's file, close the connection.

        Blocks (up to a request timeout for the poller's last read): call it off the UI.
        """
        self._stopping.set()
        self._wake.set()
        self._poll_done.wait(self.connection.timeout + 1.0)
        try:
            if self.recorder.running:
                self.recorder.stop()
        except BifrostError as exc:
            self.log.error(f"recording: {exc}")
        finally:
            self.connection.close()

"""The write dialog: type a value, see old → new, confirm, then one write goes out."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import numpy as np
from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static

from bifrost.cli.dash.live import format_cell
from bifrost.exceptions import BifrostError, ConfigurationError

__all__ = ["WriteDialog", "parse_value"]

_TRUE = ("true", "1", "on", "yes")
_FALSE = ("false", "0", "off", "no")


def parse_value(tag: str, text: str, old: Any) -> Any:
    """``text`` as a value of the current value's type (bool, int, float or text).

    Without a current value (unread, bad quality) numbers and booleans are recognised and
    anything else stays text; the connection checks type and limits before sending.
    """
    text = text.strip()
    if not text:
        raise ConfigurationError(f"{tag}: type the new value first")
    if isinstance(old, np.ndarray | list | tuple):
        raise ConfigurationError(f"{tag}: arrays cannot be written from the dashboard")
    kinds: tuple[type, ...]
    if isinstance(old, bool | np.bool_):
        kinds = (bool,)
    elif isinstance(old, int | np.integer):
        kinds = (int,)
    elif isinstance(old, float | np.floating):
        kinds = (float,)
    elif isinstance(old, str):
        return text
    else:
        kinds = (bool, int, float)
    for kind in kinds:
        value = _as(kind, text)
        if value is not None:
            return value
    if old is None:
        return text
    raise ConfigurationError(f"{tag}: {text!r} is not a {kinds[0].__name__} like {old!r}")


def _as(kind: type, text: str) -> Any:
    if kind is bool:
        lowered = text.lower()
        return True if lowered in _TRUE else False if lowered in _FALSE else None
    try:
        return kind(text)
    except ValueError:
        return None


class WriteDialog(ModalScreen[str | None]):
    """Ask for a new value of ``tag``, show old → new, write only after confirmation.

    ``read_old`` and ``write`` do the I/O (they block: they run in a worker thread). The
    dialog dismisses with a line saying what was written, or None when cancelled.
    """

    BINDINGS: ClassVar[list[BindingType]] = [Binding("escape", "cancel", "Cancel")]

    DEFAULT_CSS = """
    WriteDialog { align: center middle; }
    WriteDialog > Vertical {
        width: 64; height: auto; padding: 1 2; border: thick $warning; background: $surface;
    }
    WriteDialog #write-change { margin: 1 0; text-style: bold; }
    WriteDialog #write-error { color: $error; }
    WriteDialog Horizontal { height: auto; }
    WriteDialog Button { margin-right: 2; }
    """

    def __init__(self, tag: str, read_old: Callable[[], Any], write: Callable[[Any], None]) -> None:
        super().__init__()
        self.tag = tag
        self._read_old = read_old
        self._write = write
        self.old: Any = None
        self.new: Any = None

    def compose(self) -> ComposeResult:
        """Current value, the new value's field, old → new, Write and Cancel."""
        with Vertical():
            yield Label(f"Write [b]{self.tag}[/b]")
            yield Static("reading the current value…", id="write-old")
            yield Input(placeholder="new value, then Enter", id="write-value")
            yield Static("", id="write-change")
            yield Static("", id="write-error")
            with Horizontal():
                yield Button("Write", variant="warning", id="write-confirm", disabled=True)
                yield Button("Cancel", id="write-cancel")

    def on_mount(self) -> None:
        """Read the current value in the background."""
        self.query_one("#write-value", Input).focus()
        self._load_old()

    @work(thread=True, exclusive=True, group="write-read")
    def _load_old(self) -> None:
        try:
            old = self._read_old()
        except BifrostError as exc:
            self.app.call_from_thread(self._show_error, f"cannot read {self.tag}: {exc}")
        else:
            self.app.call_from_thread(self._show_old, old)

    def _show_old(self, old: Any) -> None:
        self.old = old
        self.query_one("#write-old", Static).update(f"current value: {format_cell(old)}")

    def _show_error(self, text: str) -> None:
        self.query_one("#write-error", Static).update(text)

    @on(Input.Submitted, "#write-value")
    def _propose(self, event: Input.Submitted) -> None:
        """Enter in the field: parse, show old → new and enable Write (nothing sent yet)."""
        confirm = self.query_one("#write-confirm", Button)
        try:
            self.new = parse_value(self.tag, event.value, self.old)
        except ConfigurationError as exc:
            confirm.disabled = True
            self._show_error(str(exc))
            return
        self._show_error("")
        self.query_one("#write-change", Static).update(
            f"{self.tag}: {format_cell(self.old)} → {format_cell(self.new)}"
        )
        confirm.disabled = False
        confirm.focus()

    @on(Input.Changed, "#write-value")
    def _edited(self) -> None:
        # A confirmation covers exactly the value shown: editing takes it back.
        self.query_one("#write-confirm", Button).disabled = True
        self.query_one("#write-change", Static).update("")

    @on(Button.Pressed, "#write-confirm")
    def _confirm(self) -> None:
        self.query_one("#write-confirm", Button).disabled = True
        self._send(self.new)

    @work(thread=True, exclusive=True, group="write-send")
    def _send(self, value: Any) -> None:
        try:
            self._write(value)
        except BifrostError as exc:
            self.app.call_from_thread(self._show_error, f"not written: {exc}")
        else:
            message = f"wrote {self.tag}: {format_cell(self.old)} → {format_cell(value)}"
            self.app.call_from_thread(self.dismiss, message)

    @on(Button.Pressed, "#write-cancel")
    def action_cancel(self) -> None:
        """Close without writing."""
        self.dismiss(None)

"""DecodeProbe: raw Modbus registers decoded under every type and byte/word order."""

from __future__ import annotations

import contextlib
import html
import math
import threading
import time
from typing import Any

import ipywidgets as widgets
import numpy as np
import numpy.typing as npt
import pandas as pd

from bifrost._html import format_value, table_html
from bifrost.connection import Connection
from bifrost.exceptions import BifrostError, ConfigurationError
from bifrost.jupyter._text import plural
from bifrost.jupyter.widgets._common import _Ticker, error_html
from bifrost.model import ByteOrder
from bifrost.protocols.modbus import probe
from bifrost.protocols.modbus.probe import (
    MAX_PROBE,
    Match,
    Tolerance,
    decode_window,
    plausible,
    probe_address,
    rank_matches,
    typed_decimals,
)

__all__ = ["DecodeProbe", "Match", "Tolerance", "decode_window", "plausible", "rank_matches"]

_LIVE_HISTORY = 120  # readings kept in live mode


class DecodeProbe(widgets.VBox):  # type: ignore[misc]
    """Raw registers decoded under every type and byte/word order, side by side.

    The probe reads ``count`` registers from ``address`` plus one before and one after
    (the classic off-by-one of 0- and 1-based documentation) and decodes a value starting
    at *every* register of that window under each type and byte/word order. Values that
    look like real measurements are bold, implausible ones (huge 64-bit integers,
    denormal floats) grey. With ``expected`` (what the HMI or the nameplate shows) the
    decodings that give it light up, exact ones (to every digit typed) before those
    within the tolerance, and :attr:`matches` lists the addresses to put in a tag table,
    scale included.

    A value that drifts (a level, a temperature) has moved by the time it is typed:
    tick *live* and the probe re-reads every ``refresh`` seconds, keeps its readings, and
    matches each value typed (a *sighting*) against the readings of the ``lag`` seconds
    around it. Type the HMI's value again as it changes: only the decodings that gave
    every sighting stay, which are those following the value's trend.

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
        How close counts as a match: ``"0.5%"`` (relative, the default) or a number
        (absolute, in the value's unit, e.g. ``0.01``).
    read
        Read at once (False: call :meth:`read` or click "Read").
    live
        Start in live mode.
    refresh
        Seconds between readings in live mode.
    lag
        Seconds around a sighting whose readings it is matched against (live mode).

    Attributes
    ----------
    registers
        The registers read (uint16; masked where the device refused the address).
    matrix
        DataFrame of decoded values: one row per ``"type order"``, one column per start
        address.
    matches
        :class:`Match` ``(address, value, scale, exact)`` per decoding that gives
        ``expected``, best first.
    readings
        ``(time, matrix)`` of the readings kept (the last one unless live).
    sightings
        ``(time, value, decimals)`` of the values typed while live (else the current one).
    """

    _ticker: _Ticker | None = None

    def __init__(
        self,
        plc: Connection,
        address: str = "hr:0",
        count: int = 4,
        *,
        expected: float | None = None,
        tolerance: str | float = "0.5%",
        read: bool = True,
        live: bool = False,
        refresh: float = 1.0,
        lag: float = 5.0,
    ) -> None:
        if plc.protocol != "modbus":
            raise ConfigurationError(
                f"DecodeProbe reads Modbus registers; {plc.url} is {plc.protocol}"
            )
        self.plc = plc
        self.tolerance = Tolerance.parse(tolerance)
        self.refresh_period = float(refresh)
        self.lag = float(lag)
        self.registers: np.ma.MaskedArray[Any, np.dtype[np.uint16]] = np.ma.MaskedArray(
            np.zeros(0, dtype=np.uint16), mask=np.zeros(0, dtype=bool)
        )
        self.first = 0
        self.matrix = pd.DataFrame()
        self.matches: list[Match] = []
        self.readings: list[tuple[float, pd.DataFrame]] = []
        self.sightings: list[tuple[float, float, int | None]] = []
        self._plausible: dict[str, npt.NDArray[np.bool_]] = {}
        self._now = time.monotonic  # the clock of readings and sightings
        self._lock = threading.RLock()
        self.address = widgets.Text(value=address, description="address", layout={"width": "200px"})
        self.count = widgets.BoundedIntText(
            value=count, min=1, max=MAX_PROBE, description="registers", layout={"width": "170px"}
        )
        self.expected = widgets.Text(
            value="" if expected is None else repr(expected),
            description="expect",
            placeholder="value on the HMI",
            layout={"width": "200px"},
        )
        self.tolerance_field = widgets.Text(
            value=str(tolerance),
            description="±",
            placeholder="0.5% or 0.01",
            continuous_update=False,
            layout={"width": "130px"},
        )
        self.tolerance_field.tooltip = "0.5% (relative) or 0.01 (absolute)"
        self.show_all = widgets.Checkbox(value=True, description="show implausible", indent=False)
        self.live = widgets.Checkbox(value=False, description="live", indent=False)
        self.live.tooltip = (
            f"re-read every {refresh:g} s; each value typed must be met within {lag:g} s"
        )
        self.read_button = widgets.Button(description="Read", icon="refresh")
        self.read_button.on_click(lambda _: self._read_shown())
        self.expected.observe(lambda _: self._on_expected(), names="value")
        self.tolerance_field.observe(lambda _: self._on_tolerance(), names="value")
        self.show_all.observe(lambda _: self._render(), names="value")
        self.live.observe(lambda change: self._on_live(bool(change["new"])), names="value")
        self.status = widgets.HTML()
        self.view = widgets.HTML()
        self.view.add_class("bifrost-decodeprobe-view")
        controls = widgets.HBox(
            [
                self.address,
                self.count,
                self.expected,
                self.tolerance_field,
                self.show_all,
                self.live,
                self.read_button,
            ],
            layout={"flex_flow": "row wrap"},
        )
        super().__init__([controls, self.status, self.view])
        self.add_class("bifrost-decodeprobe")
        if read:
            self.read()
        if live:
            self.live.value = True

    # -- reading ----------------------------------------------------------------------------
    def _window(self) -> probe.Window:
        return probe.window(self.address.value, int(self.count.value))

    def _read_registers(self, table: str, first: int, end: int) -> np.ma.MaskedArray[Any, Any]:
        return probe.read_window(self.plc, table, first, end)

    def read(self) -> pd.DataFrame:
        """Read the window and redraw; returns :attr:`matrix`.

        In live mode the reading joins the others; otherwise it replaces them.
        """
        try:
            table, first, end, dtype, order = self._window()
            registers = self._read_registers(table, first, end)
        except BifrostError as exc:
            self.view.value = error_html(exc)
            raise
        with self._lock:
            moved = (table, first) != (getattr(self, "table", None), self.first)
            self.table, self.first = table, first
            self.marked = (dtype, order)
            self.registers = registers
            self.matrix, self._plausible = decode_window(registers, table, first)
            now = self._now()
            if not self.live.value or moved:
                # Another window (or a single reading): earlier readings do not compare.
                self.readings = []
                if moved:
                    self.sightings = []
            self.readings.append((now, self.matrix))
            del self.readings[:-_LIVE_HISTORY]
            if not self.live.value:
                self._sight_current(now)
            self._render()
        return self.matrix

    def _read_shown(self) -> None:
        # The button's handler: the error is already in the view.
        with contextlib.suppress(BifrostError):
            self.read()

    # -- live mode --------------------------------------------------------------------------
    def _on_live(self, on: bool) -> None:
        if on:
            with self._lock:
                # What was typed before counts as seen now, the first sighting.
                self.sightings = []
                self._sight_current(self._now())
            if self._ticker is None or not self._ticker.alive:
                self._ticker = _Ticker(self._tick, self.refresh_period, "bifrost-decodeprobe")
        else:
            self._stop_ticker()
            with self._lock:
                self.readings = self.readings[-1:]
                self._sight_current(self.readings[-1][0] if self.readings else self._now())
                self._render()

    def _tick(self) -> bool:
        if not self.live.value:
            return False
        try:
            self.read()
        except BifrostError:
            return False  # the view shows the error; ticking again would repeat it
        return True

    def _stop_ticker(self) -> None:
        if self._ticker is not None:
            self._ticker.stop()
            self._ticker = None

    def _sight_current(self, when: float) -> None:
        """Make the expected value as typed the only sighting (static mode)."""
        sighting = self._typed()
        self.sightings = [] if sighting is None else [(when, *sighting)]

    def _on_expected(self) -> None:
        with self._lock:
            if self.live.value:
                sighting = self._typed()
                if sighting is not None:
                    self.sightings.append((self._now(), *sighting))
            else:
                self._sight_current(self.readings[-1][0] if self.readings else self._now())
            self._render()

    def _on_tolerance(self) -> None:
        try:
            self.tolerance = Tolerance.parse(self.tolerance_field.value)
        except ConfigurationError as exc:
            self.status.value = error_html(exc)
            return
        self._render()

    def _typed(self) -> tuple[float, int | None] | None:
        text = self.expected.value.strip()
        if not text:
            return None
        try:
            value = float(text)
        except ValueError:
            return None
        return (value, typed_decimals(text)) if math.isfinite(value) else None

    # -- rendering --------------------------------------------------------------------------
    def _render(self) -> None:
        with self._lock:
            if self.matrix.empty:
                return
            self.matches = rank_matches(
                self.readings,
                self.sightings,
                self.tolerance,
                self._plausible,
                lag=self.lag if self.live.value else math.inf,
            )
            hits: dict[str, bool] = {}
            for match in self.matches:  # best first: an address keeps its best scale
                hits.setdefault(match.address, match.exact)
            self.status.value = self._status_html()
            self.view.value = self._raw_html() + self._matrix_html(hits) + self._matches_html()

    def _status_html(self) -> str:
        if not self.live.value:
            return ""
        typed = ", ".join(format_value(v) for _, v, _ in self.sightings) or "nothing yet"
        return (
            f'<p style="font-size:12px;margin:2px 0"><b>live</b> · '
            f"{plural(len(self.readings), 'reading')} every {self.refresh_period:g} s · "
            f"seen: {html.escape(typed)} · "
            f"{plural(len(self.matches), 'decoding')} gave every value seen</p>"
        )

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

    def _matrix_html(self, hits: dict[str, bool]) -> str:
        dtype_mark, order_mark = self.marked
        marked_key = (
            f"{dtype_mark.value} {(order_mark or ByteOrder.ABCD).value}" if dtype_mark else None
        )
        header = ["decoded as", *self.matrix.columns]
        rows = []
        for key, row in self.matrix.iterrows():
            name = str(key)
            ok = self._plausible[name]
            cells_hit: dict[str, bool | None] = (
                {}
                if name.startswith("ascii")
                else {
                    column: hits.get(probe_address(column, *name.split()))
                    for column in map(str, self.matrix.columns)
                }
            )
            if (
                not self.show_all.value
                and not ok.any()
                and all(v is None for v in cells_hit.values())
            ):
                continue
            label = html.escape(name)
            if key == marked_key:
                label = f"<b>▶ {label}</b>"
            cells = [label]
            for j, (column, value) in enumerate(row.items()):
                if value is None:
                    cells.append("")
                    continue
                text = html.escape(format_value(value))
                hit = cells_hit.get(str(column))  # True: exact, False: close
                if hit is True:
                    style = _EXACT_STYLE
                elif hit is False:
                    style = _CLOSE_STYLE
                elif ok[j]:
                    style = "font-weight:bold"
                else:
                    style = "color:#999"
                cells.append(f'<span style="{style}">{text}</span>')
            rows.append(cells)
        return table_html(
            header,
            rows,
            caption=(
                "A value starting at each register (bold: plausible; grey: implausible; "
                f'<span style="{_EXACT_STYLE}">exact</span>, '
                f'<span style="{_CLOSE_STYLE}">within {html.escape(str(self.tolerance))}</span>)'
            ),
            numeric=[False] + [True] * len(self.matrix.columns),
            raw=True,
        )

    def _matches_html(self) -> str:
        if not self.sightings:
            return (
                '<p class="bf-dim" style="font-size:12px">Type the value the HMI shows in '
                "<i>expect</i> to highlight the decodings that give it; tick <i>live</i> "
                "if it drifts.</p>"
            )
        expected = self.sightings[-1][1]
        shown = format_value(expected)
        if not self.matches:
            if self.live.value and len(self.sightings) > 1:
                seen = ", ".join(format_value(v) for _, v, _ in self.sightings)
                return (
                    f'<p style="font-size:12px">No decoding gave every value seen ({seen}, '
                    f"{self.tolerance}, {self.lag:g} s around each); untick and tick "
                    "<i>live</i> to start over.</p>"
                )
            advice = (
                "tick <i>live</i> if the value drifts, widen the tolerance or the window, "
                "or check the unit id"
            )
            return (
                f'<p style="font-size:12px">No decoding gives {shown} '
                f"({self.tolerance}); {advice}.</p>"
            )
        parts = []
        titles = {
            True: f"Exact: addresses that give {shown}",
            False: f"Within {self.tolerance} of {shown}",
        }
        for exact, title in titles.items():
            group = [m for m in self.matches if m.exact is exact][:8]
            if not group:
                continue
            items = "".join(
                f"<li><code>{html.escape(m.address)}</code>"
                + (f", scale {m.scale:g}" if m.scale != 1.0 else "")
                + f" → {format_value(m.value)}</li>"
                for m in group
            )
            parts.append(f'<p style="font-size:12px;margin:4px 0">{title}:</p><ul>{items}</ul>')
        return "".join(parts)

    def close(self) -> None:
        """Stop live reading and close the widget."""
        self._stop_ticker()
        super().close()


_EXACT_STYLE = "background:#2da44e;color:white;font-weight:bold"
_CLOSE_STYLE = "background:#fff8c5;color:#7d4e00;font-weight:bold;outline:1px solid #d4a72c"

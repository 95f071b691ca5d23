"""DecodeProbe: raw Modbus registers decoded under every type and byte/word order."""

from __future__ import annotations

import html
import math
from typing import Any

import ipywidgets as widgets
import numpy as np
import numpy.typing as npt
import pandas as pd

from bifrost._html import format_value, table_html
from bifrost.connection import Connection
from bifrost.exceptions import BifrostError, ConfigurationError, ConnectionError, ProtocolError
from bifrost.jupyter.widgets._common import error_html
from bifrost.model import ByteOrder, DataType
from bifrost.protocols.modbus.address import parse_modbus_address
from bifrost.protocols.modbus.codec import decode_registers

__all__ = ["DecodeProbe"]

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

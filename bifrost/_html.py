"""Compact HTML tables for notebooks: the ``_repr_html_`` of connections, tags, recordings.

This module is the lowest layer (it imports only the standard library and NumPy), so
:class:`~bifrost.Connection`, :class:`~bifrost.TagTable` and :class:`~bifrost.Recording`
can render themselves in any notebook front end without
``%load_ext bifrost``: the objects are passed in duck-typed, never imported from here,
which keeps the import-linter layers intact.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np

__all__ = [
    "GOOD_BELOW",
    "MAX_ROWS",
    "connection_html",
    "format_seconds",
    "format_value",
    "recording_html",
    "table_html",
    "tags_html",
]

GOOD_BELOW = 64
"""Quality codes below this are good (``bifrost.model.Quality.UNCERTAIN``; a test checks)."""

MAX_ROWS = 20
"""Rows shown before a table is cut with a "… N more" line."""

_STYLE = (
    "<style>"
    ".bf-t{border-collapse:collapse;font-size:12px;margin:2px 0}"
    ".bf-t th,.bf-t td{padding:1px 8px;text-align:left;border-bottom:1px solid #8883}"
    ".bf-t caption{text-align:left;font-weight:bold;padding:2px 0}"
    ".bf-t .bf-n{text-align:right;font-variant-numeric:tabular-nums}"
    ".bf-ok{color:#1a7f37}.bf-bad{color:#cf222e}.bf-dim{color:#888}"
    "</style>"
)


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def format_value(value: Any) -> str:
    """A short, stable text for one sample value (floats to 6 significant digits)."""
    if value is None:
        return ""
    if isinstance(value, bool | np.bool_):
        return str(bool(value))
    if isinstance(value, float | np.floating):
        number = float(value)
        return "NaN" if math.isnan(number) else f"{number:.6g}"
    return str(value)


def format_seconds(seconds: float) -> str:
    """``0.1`` -> ``"100 ms"``, ``75`` -> ``"1 min 15 s"``."""
    if seconds < 1:
        return f"{seconds * 1e3:.4g} ms"
    if seconds < 60:
        return f"{seconds:.4g} s"
    minutes, rest = divmod(round(seconds), 60)
    if minutes < 60:
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min"


def table_html(
    header: Sequence[str],
    rows: Iterable[Sequence[Any]],
    *,
    caption: str = "",
    numeric: Sequence[bool] = (),
    total: int | None = None,
    raw: bool = False,
) -> str:
    """A small HTML table; cells are escaped unless ``raw`` (already HTML).

    Parameters
    ----------
    header
        Column titles.
    rows
        Cell values, one sequence per row.
    caption
        Title above the table.
    numeric
        Per column, whether to right-align it.
    total
        Number of rows there are, when ``rows`` holds only the first ones.
    raw
        Cells are trusted HTML fragments (the caller escaped them).
    """
    cls = [' class="bf-n"' if i < len(numeric) and numeric[i] else "" for i in range(len(header))]
    parts = [_STYLE, '<table class="bf-t">']
    if caption:
        parts.append(f"<caption>{caption}</caption>")
    parts.append("<thead><tr>" + "".join(f"<th>{_e(h)}</th>" for h in header) + "</tr></thead>")
    parts.append("<tbody>")
    shown = 0
    for row in rows:
        shown += 1
        cells = (v if raw else _e(v) for v in row)
        parts.append(
            "<tr>" + "".join(f"<td{c}>{v}</td>" for c, v in zip(cls, cells, strict=False)) + "</tr>"
        )
    if total is not None and total > shown:
        parts.append(
            f'<tr><td colspan="{len(header)}" class="bf-dim">… {total - shown} more</td></tr>'
        )
    parts.append("</tbody></table>")
    return "".join(parts)


def _fields(caption: str, fields: Sequence[tuple[str, Any]]) -> str:
    return table_html(["", ""], fields, caption=caption)


def connection_html(connection: Any) -> str:
    """The HTML card of a :class:`bifrost.Connection`: endpoint, state, tags, recordings."""
    connected = bool(connection.connected)
    state = "connected" if connected else "closed"
    colour = "bf-ok" if connected else "bf-bad"
    running = connection.recordings
    fields = [
        ("url", connection.url),
        ("protocol", connection.protocol),
        ("endpoint", connection.endpoint),
        ("writable", "yes" if connection.writable else "no (read-only)"),
        ("tags", len(connection.tags)),
        ("recordings running", len(running)),
    ]
    caption = f'Connection <span class="{colour}">{state}</span>'
    return _fields(caption, fields)


def tags_html(table: Any, limit: int = MAX_ROWS) -> str:
    """The HTML table of a :class:`bifrost.TagTable` (first ``limit`` tags)."""
    rows = [
        (
            t.name,
            t.address,
            t.unit,
            "" if not t.is_scaled else f"x{t.scale:g} {t.offset:+g}",
            "yes" if t.writable else "",
            t.description,
        )
        for t in list(table)[:limit]
    ]
    return table_html(
        ["name", "address", "unit", "scale", "writable", "description"],
        rows,
        caption=f"TagTable: {len(table)} tags",
        total=len(table),
    )


def _span_text(times: np.ndarray[Any, np.dtype[np.int64]]) -> str:
    if len(times) == 0:
        return "no samples yet"
    start = np.datetime64(int(times[0]), "ns").astype("datetime64[ms]")
    end = np.datetime64(int(times[-1]), "ns").astype("datetime64[ms]")
    seconds = (int(times[-1]) - int(times[0])) / 1e9
    return f"{start} → {end} UTC ({format_seconds(seconds)})"


def recording_html(recording: Any, limit: int = MAX_ROWS) -> str:
    """The HTML card of a :class:`bifrost.Recording`: state, span, stats, per-tag summary."""
    times, columns, quality = recording.buffer.arrays()
    stats = recording.stats
    running = bool(recording.running)
    state = "running" if running else "stopped"
    colour = "bf-ok" if running else "bf-dim"
    meta = recording.metadata
    fields: list[tuple[str, Any]] = [
        ("source", meta.get("endpoint") or meta.get("url") or "—"),
        ("interval", format_seconds(float(recording.interval_s))),
        ("samples", f"{len(times):,}"),
        ("time span", _span_text(times)),
        (
            "missed cycles / gaps / reconnects",
            f"{stats.missed_cycles} / {stats.gaps} / {stats.reconnects}",
        ),
    ]
    if stats.last_error:
        fields.append(("last error", stats.last_error))
    card = _fields(
        f'Recording <span class="{colour}">{state}</span>: {len(recording.names)} tags', fields
    )
    good = quality < GOOD_BELOW
    rows = []
    for j, tag in enumerate(list(recording.tags)[:limit]):
        column = columns[j]
        numeric = column.dtype.kind == "f"
        valid = column[~np.isnan(column)] if numeric and len(column) else column
        share = f"{100.0 * float(good[:, j].mean()):.1f} %" if len(times) else "—"
        rows.append(
            (
                tag.name,
                tag.unit,
                format_value(column[-1]) if len(column) else "",
                format_value(valid.min()) if numeric and len(valid) else "",
                format_value(valid.max()) if numeric and len(valid) else "",
                share,
            )
        )
    per_tag = table_html(
        ["tag", "unit", "last", "min", "max", "good"],
        rows,
        numeric=[False, False, True, True, True, True],
        total=len(recording.tags),
    )
    return card + per_tag

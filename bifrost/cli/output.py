"""What commands print: a Rich table on a terminal, plain text elsewhere, JSON or CSV.

``--json`` prints a list with one object per row (per tag for reads), timestamps as
ISO-8601 in UTC; ``--csv`` a header and one line per row. Without a terminal on stdout,
or with ``NO_COLOR`` set, tables are plain aligned text without colours or box lines, so
that they paste into a ticket and diff cleanly.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import sys
from collections.abc import Iterable, Mapping
from enum import Enum
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    import pandas as pd
    from rich.console import Console
    from rich.table import Table

    # Created on first use (module __getattr__): rich loads only when a command prints,
    # not for `bifrost --help`.
    out: Console
    errors: Console

__all__ = [
    "Format",
    "choose_format",
    "emit_frame",
    "emit_records",
    "errors",
    "is_plain",
    "is_terminal",
    "jsonable",
    "out",
    "records",
    "table",
]

Format = Literal["table", "json", "csv"]


def is_terminal() -> bool:
    """Whether stdout is a terminal (live displays redraw only there).

    Asked of the stream itself, not of Rich, which takes ``FORCE_COLOR`` (set in some
    notebook kernels' environments) for a terminal.
    """
    return sys.stdout.isatty()


def is_plain() -> bool:
    """Whether to print without colours and box lines (no terminal, or ``NO_COLOR``)."""
    return bool(os.environ.get("NO_COLOR")) or not sys.stdout.isatty()


def _console(stderr: bool = False) -> Console:
    from rich.console import Console

    stream = sys.stderr if stderr else sys.stdout
    terminal = stream.isatty()
    # Off a terminal Rich would wrap at 80 columns; a table then breaks mid-row.
    width = None if terminal or os.environ.get("COLUMNS") else 160
    plain = bool(os.environ.get("NO_COLOR")) or not terminal
    return Console(
        stderr=stderr,
        width=width,
        # No colour system: no escape codes at all (bold and italic included).
        color_system=None if plain else "auto",
        highlight=False,
        soft_wrap=not terminal,
    )


_consoles: dict[str, Console] = {}


def __getattr__(name: str) -> Any:
    if name in ("out", "errors"):
        if name not in _consoles:
            _consoles[name] = _console(stderr=name == "errors")
        return _consoles[name]
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def choose_format(as_json: bool, as_csv: bool) -> Format:
    """``--json`` / ``--csv`` / neither, refusing both at once."""
    if as_json and as_csv:
        from bifrost.exceptions import ConfigurationError

        raise ConfigurationError("choose one of --json and --csv")
    return "json" if as_json else "csv" if as_csv else "table"


def jsonable(value: Any) -> Any:
    """``value`` as JSON-ready Python: UTC ISO-8601 times, plain numbers, NaN as null."""
    if value is None or isinstance(value, bool | str | int):
        return value
    if isinstance(value, float):
        return None if math.isnan(value) else value
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(dt.UTC)
        return value.isoformat()
    if isinstance(value, Enum):
        return jsonable(value.value)
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, bytes | bytearray):
        return value.hex(" ")
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    tolist = getattr(value, "tolist", None)  # NumPy arrays and scalars
    if callable(tolist):
        return jsonable(tolist())
    if type(value).__name__ in ("NaTType", "NAType"):
        return None
    return str(value)


def records(frame: pd.DataFrame) -> list[dict[str, Any]]:
    """One dict per row, the index (when named) as the first field."""
    flat = frame.reset_index() if frame.index.name else frame
    return [{str(k): jsonable(v) for k, v in row.items()} for row in flat.to_dict(orient="records")]


def _text(value: Any) -> str:
    value = jsonable(value)
    if value is None:
        return ""
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, list):
        shown = ", ".join(_text(v) for v in value[:6])
        return f"[{shown}{', …' if len(value) > 6 else ''}]"
    return str(value)


def table(rows: Iterable[Mapping[str, Any]], columns: list[str], title: str = "") -> Table:
    """A Rich table of ``rows``; plain (no box, no colour) off a terminal."""
    from rich import box
    from rich.table import Table
    from rich.text import Text

    plain = is_plain()
    grid = Table(
        title=title or None,
        box=None if plain else box.SIMPLE_HEAVY,
        header_style="" if plain else "bold",
        pad_edge=False,
    )
    for column in columns:
        grid.add_column(column)
    for row in rows:
        cells: list[Any] = [_text(row.get(c)) for c in columns]
        if not plain and "quality" in columns:
            i = columns.index("quality")
            cells[i] = Text(cells[i], style=_quality_style(cells[i]))
        grid.add_row(*cells)
    return grid


def _quality_style(quality: str) -> str:
    if quality == "good":
        return "green"
    return "yellow" if quality.startswith("uncertain") else "red"


def emit_records(rows: list[dict[str, Any]], fmt: Format, title: str = "") -> None:
    """Print ``rows`` (dicts sharing keys) as a table, JSON or CSV."""
    if fmt == "json":
        print(json.dumps([{k: jsonable(v) for k, v in r.items()} for r in rows]))
        return
    columns: list[str] = []
    for row in rows:
        columns += [k for k in row if k not in columns]
    if fmt == "csv":
        import csv

        writer = csv.DictWriter(sys.stdout, fieldnames=columns, lineterminator="\n")
        writer.writeheader()
        for row in rows:
            writer.writerow({k: _csv_cell(row.get(k)) for k in columns})
        return
    __getattr__("out").print(table(rows, columns, title))


def _csv_cell(value: Any) -> Any:
    value = jsonable(value)
    return json.dumps(value) if isinstance(value, list | dict) else value


def emit_frame(frame: pd.DataFrame, fmt: Format, title: str = "") -> None:
    """Print a DataFrame (its named index first) as a table, JSON or CSV."""
    emit_records(records(frame), fmt, title)

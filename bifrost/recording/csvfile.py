"""Recordings as CSV: the wide table ``bifrost convert`` writes, and reading it back.

The file is one header line, ``time``, then per tag ``<tag>`` and ``<tag>.quality``,
and one line per row: the time in ISO-8601 with its UTC offset (ns as written), the
value as pandas writes it (floats exactly, ``True``/``False``, integers, strings as they
are, array samples as JSON lists) and the quality's name (``good``, ``bad_timeout``...).
An empty cell is a missing value.

A CSV carries no header of its own (Parquet, Zarr and NetCDF carry the tag table,
dtypes and session metadata), so reading one back gets less than was written:
:data:`LOST_IN_CSV` says what. The type of each column follows from the cells: all
``True``/``False`` is ``bool``, all integers ``int64``, numbers ``float64``, JSON lists
``float64[]``, anything else ``string`` (an empty string where the sample is good,
``None`` where it is bad). A column that mixes these is refused rather than guessed;
``dtypes=`` (the CLI's ``--dtype``) names its type instead, as it must for a string tag
whose every value looks like a number (it would come back as one). Numbers count as
numbers only as pandas writes them, so text such as ``007`` or ``+5`` stays text.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from bifrost._extras import lazy
from bifrost.exceptions import ConfigurationError
from bifrost.model import Quality, Tag
from bifrost.recording.buffers import is_numeric
from bifrost.recording.journal import (
    QUALITY_SUFFIX,
    StorageError,
    UnreadableRecording,
    describe_write_error,
)
from bifrost.recording.session import Recording

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.csv as pacsv
else:
    # pyarrow is bifrost-iot's `parquet` extra: imported when a CSV is read.
    pa = lazy("pyarrow", "CSV recordings")
    pc = lazy("pyarrow.compute", "CSV recordings")
    pacsv = lazy("pyarrow.csv", "CSV recordings")

__all__ = ["LOST_IN_CSV", "TIME_COLUMN", "CsvRecordingError", "read_csv", "write_csv"]

TIME_COLUMN = "time"

LOST_IN_CSV = (
    "a CSV holds times, values and qualities only: tag addresses, units, exact data types "
    "(read back as bool, int64, float64, float64[] or string), the interval, session "
    "metadata and stats are not in it"
)

_QUALITY_NAMES = [q.name.lower() for q in Quality]
_QUALITY_CODES = np.array([q.value for q in Quality], dtype=np.uint8)

# Numbers as pandas writes them, and text otherwise, so that a string tag holding "007"
# is not taken for the number 7: no leading zeros, no "+". A number without ".", "e" or
# "n" (inf, nan) is an integer.
_NUMBER = r"^-?((0|[1-9][0-9]*)(\.[0-9]+)?(e[+-][0-9]+)?|inf|nan)$"
_BOOL = ["True", "False"]
_FAMILY_DTYPE = {"bool": "bool", "array": "float64[]", "text": "string"}
_FAMILY_NAME = {
    "bool": "a bool",
    "number": "a number",
    "array": "an array sample",
    "text": "text (not a number, bool or array as bifrost writes them)",
}


class CsvRecordingError(UnreadableRecording, ConfigurationError):
    """A CSV file is not a recording as bifrost writes it; the message names the cell.

    An :class:`UnreadableRecording` like every unreadable file, and a
    :class:`~bifrost.exceptions.ConfigurationError` since the fix is in the input (the
    command line exits 2).
    """


def read_csv(path: str | os.PathLike[str], dtypes: Mapping[str, str] | None = None) -> Recording:
    """Read a CSV written by ``bifrost convert`` (or laid out the same way) as a recording.

    Parameters
    ----------
    path
        The ``.csv`` file.
    dtypes
        Data types of columns whose type the cells do not tell (``{"recipe": "string"}``);
        any other column's type follows from its cells.

    Raises
    ------
    CsvRecordingError
        The file is not laid out as bifrost writes it, or a cell cannot be read; the
        message names the file, the line, the column and the value.
    """
    source = Path(path)
    table = _read_text(source)
    reader = _Cells(source, table)
    names = _tag_names(reader, table.column_names)
    declared = dict(dtypes or {})
    tags = set(names)
    for name, dtype in declared.items():
        if name not in tags:
            raise CsvRecordingError(
                f"{source}: dtype given for {name!r}, which is not a tag column of the file "
                f"(its tags: {', '.join(names) or 'none'})"
            )
        _check_dtype(source, name, dtype)
    times = reader.times()
    rows = len(times)
    quality = np.empty((rows, len(names)), dtype=np.uint8, order="F")
    for j, name in enumerate(names):
        quality[:, j] = reader.quality(name + QUALITY_SUFFIX)
    kinds = [declared.get(name) or reader.dtype_of(name) for name in names]
    numeric = np.array([is_numeric(d) for d in kinds], dtype=bool)
    numbers = np.empty((rows, int(numeric.sum())), order="F")
    objects = np.empty((rows, int((~numeric).sum())), dtype=object)
    for j, i in enumerate(np.flatnonzero(numeric)):
        numbers[:, j] = reader.numbers(names[i], kinds[i])
    for j, i in enumerate(np.flatnonzero(~numeric)):
        column = reader.objects(names[i], kinds[i])
        # Bad rows have no value, whatever the cell holds (as in every format).
        column[quality[:, i] >= Quality.BAD] = None
        objects[:, j] = column
    spacing = np.diff(times)
    interval = float(np.median(spacing)) / 1e9 if len(spacing) else 0.0
    recording = Recording(_tags(source, names), kinds, interval, {"imported_from": str(source)})
    recording.buffer.extend_blocks(times, numbers, objects, quality)
    recording._finished.set()
    return recording


def write_csv(recording: Recording, path: str | os.PathLike[str]) -> str:
    """Write the wide CSV :func:`read_csv` reads, via a temporary name and a rename."""
    import pandas as pd

    target = Path(path)
    frame = recording.to_pandas()
    quality = recording.quality_frame()
    columns: dict[str, Any] = {}
    for name, dtype in zip(recording.names, recording.dtypes, strict=True):
        values = frame[name]
        if not is_numeric(dtype) and any(isinstance(v, np.ndarray) for v in values):
            # NumPy's str() rounds to 8 digits and elides long arrays: JSON keeps every value.
            values = values.map(lambda v: None if v is None else json.dumps(np.asarray(v).tolist()))
        columns[name] = values
        columns[name + QUALITY_SUFFIX] = quality[name].astype(str)
    wide = pd.DataFrame(columns, index=frame.index)
    wide.index = wide.index.map(lambda t: t.isoformat())
    wide.index.name = TIME_COLUMN
    temporary = target.with_name(f".{target.name}.tmp")
    try:
        wide.to_csv(temporary)
        os.replace(temporary, target)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise StorageError(describe_write_error(exc, target)) from exc
    return str(target)


def _read_text(source: Path) -> pa.Table:
    """Every cell as text (types come later, per column), or an error naming the file."""
    if not source.is_file():
        raise ConfigurationError(f"no recording at {str(source)!r}")
    bad_rows: list[Any] = []

    def keep_bad_row(row: Any) -> str:
        bad_rows.append(row)
        return "skip"

    parse = pacsv.ParseOptions(newlines_in_values=True, invalid_row_handler=keep_bad_row)
    try:
        with pacsv.open_csv(source, parse_options=parse) as head:
            names = head.schema.names
        if len(set(names)) != len(names):
            twice = sorted({n for n in names if names.count(n) > 1})
            raise CsvRecordingError(
                f"{source}, line 1: the column(s) {', '.join(map(repr, twice))} appear more "
                "than once; every column needs a name of its own"
            )
        convert = pacsv.ConvertOptions(
            column_types={n: pa.string() for n in names},
            strings_can_be_null=False,
            quoted_strings_can_be_null=False,
        )
        table = pacsv.read_csv(source, parse_options=parse, convert_options=convert)
    except (pa.ArrowException, UnicodeDecodeError) as exc:
        raise CsvRecordingError(
            f"{source}: cannot read it as CSV ({_clip(exc, 200)}); a recording's CSV has a "
            "header line and one line per row, comma-separated, UTF-8"
        ) from exc
    except OSError as exc:
        raise CsvRecordingError(f"{source}: cannot read it ({exc})") from exc
    if bad_rows:
        row = bad_rows[0]
        raise CsvRecordingError(
            f"{source}, line {_line_of(source, row.text)}: {row.actual_columns} fields where "
            f"the header names {row.expected_columns} ({_clip(row.text)}); every line needs "
            "one field per column (an empty field for a missing value)"
        )
    return table.combine_chunks()


def _tag_names(reader: _Cells, columns: list[str]) -> list[str]:
    """The tags, in file order: every column but time is a tag or a tag's quality."""
    present = set(columns)
    if TIME_COLUMN not in present:
        raise CsvRecordingError(
            f"{reader.source}, line 1: no {TIME_COLUMN!r} column (columns: "
            f"{_clip(', '.join(columns))}); a recording's CSV starts with a 'time' column "
            "of ISO-8601 UTC times, e.g. 2024-05-01T12:00:00.250000+00:00"
        )
    names = []
    for column in columns:
        if column == TIME_COLUMN:
            continue
        if column + QUALITY_SUFFIX in present:
            names.append(column)
        elif not (column.endswith(QUALITY_SUFFIX) and column[: -len(QUALITY_SUFFIX)] in present):
            raise CsvRecordingError(
                f"{reader.source}, line 1: column {column!r} has no "
                f"{column + QUALITY_SUFFIX!r} column beside it; every tag needs one "
                f"(quality names: {', '.join(_QUALITY_NAMES)})"
            )
    if not names:
        raise CsvRecordingError(
            f"{reader.source}, line 1: no tag columns; after 'time' come '<tag>' and "
            "'<tag>.quality' for each tag"
        )
    return names


def _tags(source: Path, names: list[str]) -> list[Tag]:
    # A CSV names its tags and nothing else: each is its own address, as a raw read's is.
    try:
        return [Tag(name, name) for name in names]
    except ConfigurationError as exc:
        raise CsvRecordingError(f"{source}, line 1: {exc}") from None


def _check_dtype(source: Path, name: str, dtype: str) -> None:
    if is_numeric(dtype) or dtype.startswith("string") or dtype == "float64[]":
        return
    raise CsvRecordingError(
        f"{source}: dtype {dtype!r} for {name!r} is not one bifrost records; use bool, "
        "int8...int64, uint8...uint64, float32, float64, float64[] or string"
    )


class _Cells:
    """The text columns of one CSV, turned into samples, with errors naming the cell."""

    def __init__(self, source: Path, table: pa.Table) -> None:
        self.source = source
        self._table = table

    def _column(self, name: str) -> pa.Array:
        return self._table.column(name).combine_chunks()

    def times(self) -> npt.NDArray[np.int64]:
        text = self._column(TIME_COLUMN)
        try:
            stamps = pc.cast(text, pa.timestamp("ns", tz="UTC"))
        except pa.ArrowException:
            row = _first_failing(text, pa.timestamp("ns", tz="UTC"))
            raise self._error(
                row,
                TIME_COLUMN,
                "is not an ISO-8601 time with its UTC offset (bifrost writes "
                "2024-05-01T12:00:00.250000+00:00)",
            ) from None
        times = np.asarray(stamps.cast(pa.int64()).to_numpy(zero_copy_only=False), dtype=np.int64)
        back = np.flatnonzero(np.diff(times) <= 0)
        if len(back):
            row = int(back[0]) + 1
            raise self._error(
                row,
                TIME_COLUMN,
                f"is not after the time before it ({text[row - 1].as_py()}); a recording's "
                "rows are in time order, one per time",
            )
        return times

    def quality(self, column: str) -> npt.NDArray[np.uint8]:
        text = self._column(column)
        index = pc.index_in(text, value_set=pa.array(_QUALITY_NAMES))
        if index.null_count:
            row = int(np.flatnonzero(pc.is_null(index).to_numpy(zero_copy_only=False))[0])
            raise self._error(
                row, column, f"is not a quality name; use one of {', '.join(_QUALITY_NAMES)}"
            )
        return _QUALITY_CODES[np.asarray(index.to_numpy(zero_copy_only=False), dtype=np.intp)]

    def dtype_of(self, name: str) -> str:
        """The data type the cells of ``name`` tell, or an error naming a cell that differs."""
        text = self._column(name)
        filled = pc.not_equal(text, "")
        families = {
            "bool": pc.is_in(text, value_set=pa.array(_BOOL)),
            "number": pc.match_substring_regex(text, _NUMBER),
            "array": pc.and_(pc.starts_with(text, "["), pc.ends_with(text, "]")),
        }
        known = pc.or_(pc.or_(families["bool"], families["number"]), families["array"])
        families["text"] = pc.and_(filled, pc.invert(known))
        present = [f for f, cells in families.items() if pc.any(cells).as_py()]
        if not present:
            return "float64"  # no value at all: NaN says so in every type's column
        if len(present) == 1:
            family = present[0]
            if family == "number":
                fractional = (pc.any(pc.match_substring(text, c)).as_py() for c in ".en")
                return "float64" if any(fractional) else "int64"
            return _FAMILY_DTYPE[family]
        first, second = sorted((_first(families[f]), f) for f in present)[:2]
        earlier = self._table.column(name)[first[0]].as_py()
        raise self._error(
            second[0],
            name,
            f"is {_FAMILY_NAME[second[1]]} but {_clip(earlier)!r} on line "
            f"{self._line(first[0])} is {_FAMILY_NAME[first[1]]}; fix the cell, or give "
            f"the column's type: --dtype {name}=string (or float64, int64, bool; in "
            f"Python read_csv(path, dtypes={{{name!r}: 'string'}}))",
        )

    def numbers(self, name: str, dtype: str) -> npt.NDArray[np.float64]:
        text = self._column(name)
        cells = pc.if_else(pc.equal(text, ""), pa.scalar(None, pa.string()), text)
        kind = pa.bool_() if dtype == "bool" else pa.float64()
        if dtype.startswith(("int", "uint")):
            kind = pa.type_for_alias(dtype)
        try:
            parsed = pc.cast(cells, kind)
        except pa.ArrowException:
            row = _first_failing(cells, kind)
            raise self._error(row, name, f"is not a {dtype} value") from None
        try:
            values = pc.cast(parsed, pa.float64())
        except pa.ArrowException:
            # Samples are float64: an integer beyond 2**53 would come back another number.
            row = _first_failing(parsed, pa.float64())
            raise self._error(
                row, name, "is an integer a float64 sample cannot hold exactly"
            ) from None
        return np.asarray(values.to_numpy(zero_copy_only=False), dtype=np.float64)

    def objects(self, name: str, dtype: str) -> npt.NDArray[np.object_]:
        text = self._column(name)
        cells = np.asarray(text.to_numpy(zero_copy_only=False), dtype=object)
        if dtype != "float64[]":
            return cells
        out = np.empty(len(cells), dtype=object)
        for row, cell in enumerate(cells):
            if cell == "":
                out[row] = None
                continue
            try:
                values = json.loads(cell)
                if not isinstance(values, list):
                    raise TypeError("not a list")
                out[row] = np.asarray(values, dtype=np.float64)
            except (ValueError, TypeError):
                raise self._error(
                    row, name, "is not an array sample (a JSON list of numbers)"
                ) from None
        return out

    def _line(self, row: int) -> int:
        """The line of data row ``row`` (header on line 1; quoted line breaks counted)."""
        breaks = sum(
            pc.sum(pc.count_substring(column.slice(0, row), "\n")).as_py() or 0
            for column in self._table.columns
        )
        return row + 2 + breaks

    def _error(self, row: int, column: str, problem: str) -> CsvRecordingError:
        value = self._table.column(column)[row].as_py()
        return CsvRecordingError(
            f"{self.source}, line {self._line(row)}, column {column!r}: {_clip(value)!r} {problem}"
        )


def _first(mask: pa.Array) -> int:
    return int(np.flatnonzero(mask.to_numpy(zero_copy_only=False))[0])


def _first_failing(cells: pa.Array, kind: pa.DataType) -> int:
    # Arrow tells that a cast failed, not where: the error path looks cell by cell.
    for row in range(len(cells)):
        try:
            pc.cast(cells.slice(row, 1), kind)
        except pa.ArrowException:
            return row
    return 0  # pragma: no cover - the cast of the whole column failed


def _line_of(source: Path, text: str) -> str:
    """The line a row the parser refused starts on (it reports the text, not the line)."""
    try:
        data = source.read_bytes()
    except OSError:
        return "?"
    at = data.find(text.encode("utf-8", "replace"))
    return "?" if at < 0 else str(data.count(b"\n", 0, at) + 1)


def _clip(value: Any, limit: int = 80) -> str:
    """A cell for a one-line message: line breaks escaped, long text cut."""
    text = str(value).replace("\n", "\\n").replace("\r", "\\r")
    return text if len(text) <= limit else text[: limit - 3] + "..."

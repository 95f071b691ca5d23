"""Reopening recordings (and saving them; the formats are in :mod:`.formats`).

A recording that was streaming when its process died is recovered from its parts (see
:mod:`.journal`). Whatever goes wrong reading a file is an
:class:`~bifrost.recording.journal.UnreadableRecording` naming it, never an exception
of pyarrow, xarray or h5py.
"""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bifrost._extras import lazy
from bifrost.exceptions import ConfigurationError
from bifrost.model import Quality, Tag
from bifrost.recording.csvfile import read_csv
from bifrost.recording.formats import format_of, header, save
from bifrost.recording.journal import (
    META_KEY,
    PARTS_SUFFIX,
    QUALITY_SUFFIX,
    RecoveryWarning,
    UnreadableRecording,
    has_runs,
    is_locked,
    parts_dir,
    read_run,
    read_table,
    scan_runs,
)
from bifrost.recording.session import Recording, is_numeric
from bifrost.tags import TagTable

if TYPE_CHECKING:
    import pyarrow as pa
else:
    # Parquet is bifrost-iot's `parquet` extra: imported when a recording is read.
    pa = lazy("pyarrow", "Parquet recordings")

__all__ = ["format_of", "header", "open_recording", "save_recording"]


def save_recording(recording: Recording, path: str | os.PathLike[str]) -> str:
    """Write ``recording`` to ``path``; the format follows the suffix."""
    return save(recording, path)


def open_recording(path: str | os.PathLike[str]) -> Recording:
    """Read a recording written by :meth:`Recording.save` or streamed with ``path=``.

    A ``.csv`` file (as ``bifrost convert`` writes one) is read by
    :func:`bifrost.recording.csvfile.read_csv`, with what a CSV cannot carry left out.

    When the final file is missing but its parts are there (the recording process died
    while streaming), the recording is recovered from the parts; ``path`` may also name
    the parts folder (``<path>.parts``) itself.

    Raises
    ------
    ConfigurationError
        Nothing is there, or the parts folder holds several recordings (write each to a
        file of its own with :func:`bifrost.recording.recover`).
    UnreadableRecording
        The file is damaged or not a bifrost recording.
    """
    source = Path(path)
    if source.name.endswith(PARTS_SUFFIX) and source.is_dir():
        return _from_parts(source)
    parts = parts_dir(source)
    if not source.exists():
        if has_runs(parts):
            return _from_parts(parts)
        raise ConfigurationError(f"no recording at {str(source)!r}")
    if has_runs(parts) and not is_locked(parts):
        warnings.warn(
            f"next to {str(source)!r}, {str(parts)!r} holds parts of a recording that did "
            f"not end; open them with bf.open_recording({str(parts)!r}) or write them to "
            f"files of their own with bifrost.recording.recover({str(source)!r})",
            RecoveryWarning,
            stacklevel=2,
        )
    if source.suffix.lower() == ".csv":
        return read_csv(source)
    kind = format_of(source)
    if kind == "parquet":
        return _from_table(read_table(source), str(source))
    try:
        return _from_dataset(source, kind)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise UnreadableRecording(
            f"cannot read {str(source)!r} as a {kind} recording ({type(exc).__name__}: "
            f"{exc}); was it written by bifrost (rec.save)?"
        ) from exc


def _from_parts(parts: Path) -> Recording:
    runs = scan_runs(parts)
    if not runs:
        raise ConfigurationError(f"no recording at {str(parts)!r}: the folder holds no parts")
    if len(runs) > 1:
        started = ", ".join(str(r.header.get("metadata", {}).get("started", "?")) for r in runs)
        final = parts.with_name(parts.name[: -len(PARTS_SUFFIX)])
        raise ConfigurationError(
            f"{str(parts)!r} holds the parts of {len(runs)} recordings (started {started}); "
            f"write each to a file of its own with bifrost.recording.recover({str(final)!r}) "
            "and open those with bf.open_recording"
        )
    recording = _from_table(read_run(runs[0]), str(parts))
    recording.metadata["recovered_from"] = str(parts)
    if runs[0].dropped:
        recording.metadata["spool_dropped_bytes"] = runs[0].dropped
    return recording


def _from_dataset(source: Path, kind: str) -> Recording:
    import xarray as xr

    dataset = (
        xr.open_zarr(source, consolidated=False)
        if kind == "zarr"
        else xr.open_dataset(source, engine="h5netcdf")
    )
    with dataset:
        raw = dataset.attrs.get("bifrost")
        if raw is None:
            raise UnreadableRecording(
                f"{str(source)!r} is a {kind} file but not a bifrost recording"
            )
        head = json.loads(raw)
        names = [t["name"] for t in head["tags"]]
        times = dataset["time"].values.astype("datetime64[ns]").view(np.int64)
        columns = [_from_xarray(dataset[n].values) for n in names]
        quality = [dataset[n + QUALITY_SUFFIX].values for n in names]
    return _build(head, times, columns, quality)


def _from_xarray(values: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    if values.ndim == 2:  # an array tag: one row of samples per time
        out = np.empty(len(values), dtype=object)
        for i, row in enumerate(values):
            out[i] = None if np.isnan(row).all() else row
        return out
    return values


def _from_table(table: pa.Table, where: str) -> Recording:
    raw = (table.schema.metadata or {}).get(META_KEY)
    if raw is None:
        raise UnreadableRecording(f"{where!r} is a Parquet file but not a bifrost recording")
    try:
        head = json.loads(raw)
        names = [t["name"] for t in head["tags"]]
        numeric = np.array([is_numeric(d) for d in head["dtypes"]], dtype=bool)
        if len(numeric) != len(names):
            raise ValueError(f"{len(names)} tags but {len(numeric)} dtypes")
        times = table.column("time").cast(pa.int64()).to_numpy()
        numbers = _block(table, [n for n, v in zip(names, numeric, strict=True) if v], pa.float64())
        quality = _block(table, [n + QUALITY_SUFFIX for n in names], pa.uint8())
        objects = np.empty((len(times), int((~numeric).sum())), dtype=object)
        for j, name in enumerate(n for n, v in zip(names, numeric, strict=True) if not v):
            objects[:, j] = _objects(table.column(name))
        return _build_blocks(head, times, numbers, objects, quality)
    except (pa.ArrowException, KeyError, ValueError, TypeError) as exc:
        raise UnreadableRecording(
            f"{where!r} is damaged: its columns do not match its bifrost metadata "
            f"({type(exc).__name__}: {exc})"
        ) from exc


def _block(table: pa.Table, names: list[str], kind: pa.DataType) -> np.ndarray[Any, Any]:
    """Columns of one type as a (rows, columns) block, column-major, in one Arrow call."""
    selected = table.select(names)
    if not names or selected.num_rows == 0:
        return np.empty((table.num_rows, len(names)), dtype=kind.to_pandas_dtype(), order="F")
    if any(field.type != kind for field in selected.schema):
        selected = selected.cast(pa.schema([(n, kind) for n in names]))
    block = np.asarray(selected.to_tensor(null_to_nan=pa.types.is_floating(kind), row_major=False))
    return block if block.flags.writeable else block.copy(order="F")


def _objects(column: pa.ChunkedArray) -> np.ndarray[Any, Any]:
    if pa.types.is_list(column.type):
        values = np.empty(len(column), dtype=object)
        for i, item in enumerate(column.to_pylist()):
            values[i] = None if item is None else np.asarray(item, dtype=np.float64)
        return values
    return np.asarray(column.to_numpy(zero_copy_only=False), dtype=object)


def _tags(records: list[dict[str, Any]]) -> list[Tag]:
    # Most recorded tags are raw addresses with nothing else set: those are built the way
    # a read builds them (without re-running checks that hold by construction), the
    # others through Tag's checks (a file's header is input like any other).
    addresses = TagTable()
    tags = []
    for record in records:
        name = record.get("name")
        plain = (
            isinstance(name, str)
            and len(record) == 7
            and (
                record.get("address"),
                record.get("unit"),
                record.get("scale"),
                record.get("offset"),
                record.get("description"),
                record.get("writable"),
            )
            == (name, "", 1.0, 0.0, "", False)
        )
        tags.append(addresses.resolve(str(name)) if plain else Tag(**record))
    return tags


def _build(
    head: dict[str, Any],
    times: np.ndarray[Any, Any],
    columns: list[Any],
    quality: list[Any],
) -> Recording:
    numeric = [is_numeric(d) for d in head["dtypes"]]
    n = len(times)
    numbers = np.empty((n, sum(numeric)), order="F")
    objects = np.empty((n, len(numeric) - sum(numeric)), dtype=object)
    values = [c for c, v in zip(columns, numeric, strict=True) if v]
    for j, column in enumerate(values):
        numbers[:, j] = np.asarray(column, dtype=np.float64)
    for j, column in enumerate(c for c, v in zip(columns, numeric, strict=True) if not v):
        objects[:, j] = column
    qualities = np.empty((n, len(quality)), dtype=np.uint8, order="F")
    for j, codes in enumerate(quality):
        qualities[:, j] = codes
    return _build_blocks(head, times, numbers, objects, qualities)


def _build_blocks(
    head: dict[str, Any],
    times: np.ndarray[Any, Any],
    numbers: np.ndarray[Any, Any],
    objects: np.ndarray[Any, Any],
    quality: np.ndarray[Any, Any],
) -> Recording:
    """A finished recording holding the blocks as :meth:`SampleBuffer.matrix` gives them."""
    tags = _tags(head["tags"])
    recording = Recording(tags, head["dtypes"], float(head["interval_s"]), head["metadata"])
    buffer = recording.buffer
    object_index = np.flatnonzero(~buffer.numeric)
    # Formats without a null for strings (Zarr, NetCDF) store "" in bad rows: a bad
    # sample has no value, whatever the file holds.
    for j, i in enumerate(object_index):
        objects[quality[:, i] >= Quality.BAD, j] = None
    buffer.extend_blocks(np.asarray(times, dtype=np.int64), numbers, objects, quality)
    for key, value in head.get("stats", {}).items():
        if hasattr(recording._stats, key) and key != "samples":
            setattr(recording._stats, key, value)
    recording._finished.set()
    return recording

"""Saving and reopening recordings.

Parquet (default): a ``time`` column (UTC, ns), one value column per tag and one
``<tag>.quality`` column (uint8) per tag; tags, data types and session metadata travel in
the file's key-value metadata under ``bifrost``. Zarr (``.zarr``) and NetCDF (``.nc``)
store :meth:`Recording.to_xarray`. Every format is written under a temporary name and
renamed, so a file under its final name is never half-written. A recording that was
streaming when its process died is recovered from its parts (see :mod:`.journal`).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bifrost._extras import require
from bifrost.exceptions import ConfigurationError
from bifrost.model import Quality, Tag
from bifrost.recording.journal import parts_dir, read_parts, rows_table, write_atomic
from bifrost.recording.session import QUALITY_SUFFIX, Recording

__all__ = ["format_of", "header", "open_recording", "save_recording"]

_META_KEY = b"bifrost"
_FORMAT_VERSION = 1


def format_of(path: Path) -> str:
    """``parquet``, ``zarr`` or ``netcdf`` from the file suffix."""
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix == ".zarr":
        return "zarr"
    if suffix in (".nc", ".netcdf", ".nc4"):
        return "netcdf"
    raise ConfigurationError(f"cannot tell the format of {str(path)!r}: use .parquet, .zarr or .nc")


def header(recording: Recording) -> dict[str, Any]:
    """Everything but the samples: tags, dtypes, interval, session metadata, stats."""
    return {
        "format_version": _FORMAT_VERSION,
        "tags": [
            {
                "name": t.name,
                "address": t.address,
                "unit": t.unit,
                "scale": t.scale,
                "offset": t.offset,
                "description": t.description,
                "writable": t.writable,
            }
            for t in recording.tags
        ],
        "dtypes": recording.dtypes,
        "interval_s": recording.interval_s,
        "metadata": recording.metadata,
        "stats": recording.stats.as_dict(),
    }


def save_recording(recording: Recording, path: str | os.PathLike[str]) -> str:
    """Write ``recording`` to ``path``; the format follows the suffix."""
    target = Path(path)
    kind = format_of(target)
    if kind == "parquet":
        times, columns, quality = recording.buffer.arrays()
        table = rows_table(recording.names, times, columns, quality, QUALITY_SUFFIX)
        meta = {_META_KEY: json.dumps(header(recording), default=str).encode()}
        write_atomic(
            table.replace_schema_metadata({**(table.schema.metadata or {}), **meta}), target
        )
        return str(target)
    for module in ("zarr",) if kind == "zarr" else ("h5netcdf", "h5py"):
        require(module, f"{kind.title()} recordings")
    dataset = recording.to_xarray()
    dataset.attrs["bifrost"] = json.dumps(header(recording), default=str)
    temporary = target.with_name(f".{target.name}.tmp")
    if temporary.exists():
        shutil.rmtree(temporary) if temporary.is_dir() else temporary.unlink()
    if kind == "zarr":
        dataset.to_zarr(temporary, mode="w", consolidated=False)
        if target.exists():
            shutil.rmtree(target)
    else:
        dataset.to_netcdf(temporary, engine="h5netcdf")
    os.replace(temporary, target)
    return str(target)


def open_recording(path: str | os.PathLike[str]) -> Recording:
    """Read a recording written by :meth:`Recording.save` or streamed with ``path=``.

    When the final file is missing but its parts are there (the recording process died
    while streaming), the recording is recovered from the parts.
    """
    source = Path(path)
    parts = parts_dir(source)
    if source.name.endswith(".parts") and source.is_dir():
        parts, source = source, source.with_name(source.name[: -len(".parts")])
    if not source.exists():
        if parts.is_dir():
            table = read_parts(parts)
            if table is not None:
                recording = _from_table(table, str(parts))
                recording.metadata["recovered_from"] = str(parts)
                return recording
        raise ConfigurationError(f"no recording at {str(source)!r}")
    kind = format_of(source)
    if kind == "parquet":
        return _from_table(pq.read_table(source), str(source))
    import xarray as xr

    dataset = (
        xr.open_zarr(source, consolidated=False)
        if kind == "zarr"
        else xr.open_dataset(source, engine="h5netcdf")
    )
    with dataset:
        head = json.loads(dataset.attrs["bifrost"])
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
    raw = (table.schema.metadata or {}).get(_META_KEY)
    if raw is None:
        raise ConfigurationError(f"{where!r} is a Parquet file but not a bifrost recording")
    head = json.loads(raw)
    names = [t["name"] for t in head["tags"]]
    times = table.column("time").cast(pa.int64()).to_numpy()
    columns = []
    for name in names:
        column = table.column(name)
        if pa.types.is_list(column.type):
            values = np.empty(len(column), dtype=object)
            for i, item in enumerate(column.to_pylist()):
                values[i] = None if item is None else np.asarray(item, dtype=np.float64)
            columns.append(values)
        else:
            columns.append(column.to_numpy(zero_copy_only=False))
    quality = [table.column(n + QUALITY_SUFFIX).to_numpy() for n in names]
    return _build(head, times, columns, quality)


def _build(
    head: dict[str, Any],
    times: np.ndarray[Any, Any],
    columns: list[Any],
    quality: list[Any],
) -> Recording:
    tags = [Tag(**t) for t in head["tags"]]
    recording = Recording(tags, head["dtypes"], float(head["interval_s"]), head["metadata"])
    numeric = recording.buffer.numeric
    n, width = len(times), len(tags)
    values = np.full((n, width), np.nan)
    objects = np.empty((n, width), dtype=object)
    for j, column in enumerate(columns):
        if numeric[j]:
            values[:, j] = np.asarray(column, dtype=np.float64)
        else:
            objects[:, j] = column
    qualities = np.stack(quality, axis=1).astype(np.uint8) if width else np.empty((n, 0), np.uint8)
    # Formats without a null for strings (Zarr, NetCDF) store "" in bad rows: a bad
    # sample has no value, whatever the file holds.
    objects[(qualities >= Quality.BAD) & ~numeric[None, :]] = None
    recording.buffer.extend(np.asarray(times, dtype=np.int64), values, objects, qualities)
    for key, value in head.get("stats", {}).items():
        if hasattr(recording._stats, key) and key != "samples":
            setattr(recording._stats, key, value)
    recording._finished.set()
    return recording

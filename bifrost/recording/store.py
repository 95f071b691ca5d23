"""Saving and reopening recordings.

Parquet (default): a ``time`` column (UTC, ns), one value column per tag and one
``<tag>.quality`` column (uint8) per tag; tags, data types and session metadata travel in
the file's key-value metadata under ``bifrost``. Zarr (``.zarr``) and NetCDF (``.nc``)
store :meth:`Recording.to_xarray`. Files are written under a temporary name and renamed,
so a file under its final name is never half-written.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bifrost._extras import require
from bifrost.exceptions import ConfigurationError
from bifrost.model import Tag
from bifrost.recording.session import QUALITY_SUFFIX, Recording

__all__ = ["open_recording", "save_recording"]

_META_KEY = b"bifrost"
_FORMAT_VERSION = 1


def _format_of(path: Path) -> str:
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix == ".zarr":
        return "zarr"
    if suffix in (".nc", ".netcdf", ".nc4"):
        return "netcdf"
    raise ConfigurationError(f"cannot tell the format of {str(path)!r}: use .parquet, .zarr or .nc")


def _header(recording: Recording) -> dict[str, Any]:
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
    kind = _format_of(target)
    temporary = target.with_name(f".{target.name}.partial")
    if kind == "parquet":
        times, columns, quality = recording.buffer.arrays()
        arrays: dict[str, Any] = {
            "time": pa.array(times.view("datetime64[ns]"), type=pa.timestamp("ns", tz="UTC"))
        }
        for j, (name, column) in enumerate(zip(recording.names, columns, strict=True)):
            arrays[name] = pa.array(column, from_pandas=True)
            arrays[name + QUALITY_SUFFIX] = pa.array(quality[:, j])
        table = pa.table(arrays)
        meta = {_META_KEY: json.dumps(_header(recording), default=str).encode()}
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), **meta})
        pq.write_table(table, temporary)
    else:
        require("zarr" if kind == "zarr" else "h5netcdf", f"{kind.title()} recordings")
        dataset = recording.to_xarray()
        dataset.attrs["bifrost"] = json.dumps(_header(recording), default=str)
        if kind == "zarr":
            dataset.to_zarr(temporary, mode="w", consolidated=False)
        else:
            dataset.to_netcdf(temporary, engine="h5netcdf")
    os.replace(temporary, target)
    return str(target)


def open_recording(path: str | os.PathLike[str]) -> Recording:
    """Read a recording written by :meth:`Recording.save`."""
    source = Path(path)
    if not source.exists():
        raise ConfigurationError(f"no recording at {str(source)!r}")
    kind = _format_of(source)
    if kind == "parquet":
        table = pq.read_table(source)
        raw = (table.schema.metadata or {}).get(_META_KEY)
        if raw is None:
            raise ConfigurationError(
                f"{str(source)!r} is a Parquet file but not a bifrost recording"
            )
        header = json.loads(raw)
        times = table.column("time").cast(pa.int64()).to_numpy()
        names = [t["name"] for t in header["tags"]]
        columns = [table.column(n).to_numpy(zero_copy_only=False) for n in names]
        quality = [table.column(n + QUALITY_SUFFIX).to_numpy() for n in names]
    else:
        import xarray as xr

        dataset = (
            xr.open_zarr(source, consolidated=False) if kind == "zarr" else xr.open_dataset(source)
        )
        with dataset:
            header = json.loads(dataset.attrs["bifrost"])
            names = [t["name"] for t in header["tags"]]
            times = dataset["time"].values.astype("datetime64[ns]").view(np.int64)
            columns = [dataset[n].values for n in names]
            quality = [dataset[n + QUALITY_SUFFIX].values for n in names]
    tags = [Tag(**t) for t in header["tags"]]
    recording = Recording(tags, header["dtypes"], float(header["interval_s"]), header["metadata"])
    _refill(recording, times, columns, quality)
    for key, value in header.get("stats", {}).items():
        if hasattr(recording._stats, key) and key != "samples":
            setattr(recording._stats, key, value)
    recording._finished.set()
    return recording


def _refill(
    recording: Recording, times: np.ndarray[Any, Any], columns: list[Any], quality: list[Any]
) -> None:
    numeric = recording.buffer.numeric
    n = len(times)
    width = len(recording.names)
    values = np.full((n, width), np.nan)
    objects = np.empty((n, width), dtype=object)
    for j, column in enumerate(columns):
        if numeric[j]:
            values[:, j] = np.asarray(column, dtype=np.float64)
        else:
            objects[:, j] = column
    qualities = np.stack(quality, axis=1).astype(np.uint8) if width else np.empty((n, 0), np.uint8)
    recording.buffer.extend(np.asarray(times, dtype=np.int64), values, objects, qualities)

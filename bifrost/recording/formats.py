"""Writing recordings: the file formats and the header every one of them carries.

Parquet (default): a ``time`` column (UTC, ns), one value column per tag and one
``<tag>.quality`` column (uint8) per tag; tags, data types and session metadata travel in
the file's key-value metadata under ``bifrost``. Zarr (``.zarr``) and NetCDF (``.nc``)
store :meth:`Recording.to_xarray` with the same header in the ``bifrost`` attribute.
Every format is written under a temporary name and renamed, so a file under its final
name is never half-written.

This module knows recordings only through :class:`Savable`, so that the session can
save itself without the store (which builds sessions from files) being imported by it.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from bifrost._extras import require
from bifrost.exceptions import ConfigurationError
from bifrost.model import Tag
from bifrost.recording.buffers import SampleBuffer
from bifrost.recording.journal import (
    META_KEY,
    StorageError,
    describe_write_error,
    rows_table,
    write_atomic,
)

if TYPE_CHECKING:
    import xarray as xr

__all__ = ["FORMAT_VERSION", "Savable", "format_of", "header", "save"]

FORMAT_VERSION = 1


class _Stats(Protocol):
    def as_dict(self) -> dict[str, Any]: ...


class Savable(Protocol):
    """What saving needs of a recording (:class:`~bifrost.recording.Recording` has it)."""

    tags: tuple[Tag, ...]
    names: list[str]
    dtypes: list[str]
    interval_s: float
    metadata: dict[str, Any]

    @property
    def stats(self) -> _Stats:
        """How the recording went (stored with the samples)."""

    @property
    def buffer(self) -> SampleBuffer:
        """The samples."""

    def to_xarray(self) -> xr.Dataset:
        """The samples as a Dataset (for Zarr and NetCDF)."""


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


def header(recording: Savable) -> dict[str, Any]:
    """Everything but the samples: tags, dtypes, interval, session metadata, stats."""
    return {
        "format_version": FORMAT_VERSION,
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
        "dtypes": list(recording.dtypes),
        "interval_s": recording.interval_s,
        "metadata": recording.metadata,
        "stats": recording.stats.as_dict(),
    }


def save(recording: Savable, path: str | os.PathLike[str]) -> str:
    """Write ``recording`` to ``path``; the format follows the suffix.

    Raises :class:`~bifrost.recording.journal.StorageError` naming the file when it
    cannot be written.
    """
    target = Path(path)
    kind = format_of(target)
    if kind == "parquet":
        times, columns, quality = recording.buffer.arrays()
        table = rows_table(recording.names, times, columns, quality)
        meta = {META_KEY: json.dumps(header(recording), default=str).encode()}
        write_atomic(
            table.replace_schema_metadata({**(table.schema.metadata or {}), **meta}), target
        )
        return str(target)
    for module in ("zarr",) if kind == "zarr" else ("h5netcdf", "h5py"):
        require(module, f"{kind.title()} recordings")
    dataset = recording.to_xarray()
    dataset.attrs["bifrost"] = json.dumps(header(recording), default=str)
    temporary = target.with_name(f".{target.name}.tmp")
    try:
        if temporary.exists():
            shutil.rmtree(temporary) if temporary.is_dir() else temporary.unlink()
        if kind == "zarr":
            dataset.to_zarr(temporary, mode="w", consolidated=False)
            if target.exists():
                shutil.rmtree(target)
        else:
            dataset.to_netcdf(temporary, engine="h5netcdf")
        os.replace(temporary, target)
    except OSError as exc:
        raise StorageError(describe_write_error(exc, target)) from exc
    return str(target)

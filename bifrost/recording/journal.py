"""Crash-safe streaming of a recording to disk.

While a recording runs with ``path=``, new rows are flushed every ``flush_interval``
seconds as a numbered Parquet part file in ``<path>.parts/``. Each part is written under
a temporary name, synced and renamed, so a part under its final name is always complete:
after a crash (even ``kill -9``) every part opens and together they hold every sample
older than one flush interval. When the recording ends, the parts are consolidated into
``path`` (again via a temporary name and a rename) in the format its suffix asks for,
and the parts are removed. :func:`bifrost.open_recording` recovers a recording from its
parts when the final file was never written.

Writing happens on a thread of its own, so a slow or full disk never delays sampling.
"""

from __future__ import annotations

import concurrent.futures
import errno
import json
import os
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from bifrost.exceptions import BifrostError

__all__ = ["PARTS_SUFFIX", "Journal", "StorageError", "parts_dir", "read_parts", "write_atomic"]

PARTS_SUFFIX = ".parts"
_PART_GLOB = "part-*.parquet"


class StorageError(BifrostError, OSError):
    """Samples could not be written to disk (disk full, permissions...)."""


def parts_dir(path: Path) -> Path:
    """Where the parts of a streamed recording go."""
    return path.with_name(path.name + PARTS_SUFFIX)


def _fsync_dir(directory: Path) -> None:
    # The rename is durable only once the directory entry is on disk.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(table: pa.Table, target: Path) -> None:
    """Write a Parquet file so that ``target`` is either absent or complete."""
    temporary = target.with_name(f".{target.name}.tmp")
    try:
        with open(temporary, "wb") as handle:
            pq.write_table(table, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
        _fsync_dir(target.parent)
    except OSError:
        temporary.unlink(missing_ok=True)
        raise


def read_parts(directory: Path) -> pa.Table | None:
    """Concatenate the complete parts of a streamed recording (temporary files ignored)."""
    parts = sorted(directory.glob(_PART_GLOB))
    if not parts:
        return None
    return pa.concat_tables([pq.read_table(p) for p in parts])


def _describe(exc: OSError, where: Path) -> str:
    if exc.errno == errno.ENOSPC:
        return f"the disk holding {str(where)!r} is full"
    return f"cannot write {str(where)!r}: {exc.strerror or exc}"


class Journal:
    """Appends row blocks to ``<path>.parts`` on a writer thread.

    Parameters
    ----------
    path
        The final file of the recording.
    header
        JSON-able metadata stored in every part (tags, dtypes, session metadata).
    """

    def __init__(self, path: Path, header: dict[str, Any]) -> None:
        self.path = path
        self.directory = parts_dir(path)
        self.directory.mkdir(parents=True, exist_ok=True)
        for stale in self.directory.glob(".*.tmp"):
            stale.unlink()
        self._meta = {b"bifrost": json.dumps(header, default=str).encode()}
        self._next = len(list(self.directory.glob(_PART_GLOB)))
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="bifrost-journal"
        )
        self._pending: list[concurrent.futures.Future[None]] = []
        self.rows_written = 0
        self.error: StorageError | None = None

    def submit(self, table: pa.Table) -> None:
        """Queue a block of rows for writing (returns at once)."""
        if self.error is not None or table.num_rows == 0:
            return
        number = self._next
        self._next += 1
        table = table.replace_schema_metadata({**(table.schema.metadata or {}), **self._meta})
        self._pending = [f for f in self._pending if not f.done()]
        self._pending.append(self._executor.submit(self._write, table, number))

    def _write(self, table: pa.Table, number: int) -> None:
        if self.error is not None:
            return
        target = self.directory / f"part-{number:06d}.parquet"
        try:
            write_atomic(table, target)
        except OSError as exc:
            self.error = StorageError(
                f"{_describe(exc, self.path)}; {self.rows_written} samples are safe in "
                f"{str(self.directory)!r}. The recording goes on in memory: save it "
                "elsewhere with rec.save(other_path)."
            )
            return
        self.rows_written += table.num_rows

    def drain(self) -> None:
        """Wait until every queued block is on disk (or failed)."""
        for future in list(self._pending):
            future.result()
        self._pending.clear()

    def close(self) -> None:
        """Finish pending writes and stop the writer thread."""
        self.drain()
        self._executor.shutdown(wait=True)

    def discard(self) -> None:
        """Remove the parts once the final file is safely written."""
        shutil.rmtree(self.directory, ignore_errors=True)


def rows_table(
    names: list[str],
    times: np.ndarray[Any, Any],
    columns: list[np.ndarray[Any, Any]],
    quality: np.ndarray[Any, Any],
    quality_suffix: str,
) -> pa.Table:
    """The Parquet layout of a block of rows (time, a column per tag, quality per tag)."""
    arrays: dict[str, Any] = {
        "time": pa.array(times.view("datetime64[ns]"), type=pa.timestamp("ns", tz="UTC"))
    }
    for j, (name, column) in enumerate(zip(names, columns, strict=True)):
        arrays[name] = _column(column)
        arrays[name + quality_suffix] = pa.array(quality[:, j])
    return pa.table(arrays)


def _column(column: np.ndarray[Any, Any]) -> pa.Array:
    if column.dtype != object:
        return pa.array(column)
    # Arrays (waveforms) become list columns; None stays null.
    if any(isinstance(v, np.ndarray) for v in column):
        return pa.array(
            [None if v is None else np.asarray(v, dtype=np.float64) for v in column],
            type=pa.list_(pa.float64()),
        )
    return pa.array(column, from_pandas=True)

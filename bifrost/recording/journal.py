"""Crash-safe streaming of a recording to disk, and recovery after a crash.

While a recording runs with ``path=``, new rows are appended every ``flush_interval``
seconds to a spool segment in ``<path>.parts/`` (see :mod:`.spool`): one compact frame
per flush, fsynced, the header (tags, dtypes, metadata) written once at the start and
again only when it changes. A frame is complete or is ignored, so after a crash (even
``kill -9`` in the middle of a write) the segment reads back every sample older than
one flush interval. When the recording ends, its rows (held in memory) are written to
``path`` in the format its suffix asks for, via a temporary name and a rename, and the
segment is removed: what reaches the disk is the final file plus the spool, a fraction
of it (one-second Parquet parts used to write 3-4x the final file, each repeating the
footer of every column and the whole header). :func:`bifrost.open_recording` recovers
a recording from its segment when the final file was never written. Folders of
Parquet parts (``part-*.parquet``, written by earlier versions) are read as before.

A running journal holds an exclusive lock on ``<path>.parts/lock`` (released by the
operating system when its process dies), so a second recording to the same path is
refused while the first runs. A journal that finds segments or parts nobody holds (a
recording whose process died) never mixes its rows with theirs and never deletes them
unread: each earlier run is first written to a file of its own next to ``path``,
``<stem>.recovered-<time of its first row>.parquet``, and its files are removed only
once that file is on disk. Segments and parts carry a run id, so a folder holding
several runs (left by older versions, or by a recovery that was itself interrupted) is
split back into its runs, whatever their tag lists.

Writing happens on a thread of its own, so a slow or full disk never delays sampling.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import datetime as dt
import errno
import hashlib
import json
import os
import re
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from bifrost._extras import lazy
from bifrost.exceptions import BifrostError, ConfigurationError
from bifrost.recording import spool
from bifrost.recording.buffers import is_numeric

if TYPE_CHECKING:
    import pyarrow as pa
    import pyarrow.parquet as pq
else:
    # Parquet is bifrost-iot's `parquet` extra: imported when a recording is written.
    pa = lazy("pyarrow", "Parquet recordings")
    pq = lazy("pyarrow.parquet", "Parquet recordings")

__all__ = [
    "PARTS_SUFFIX",
    "QUALITY_SUFFIX",
    "Journal",
    "RecordingInUse",
    "RecoveryWarning",
    "Run",
    "StorageError",
    "UnreadableRecording",
    "describe_write_error",
    "has_runs",
    "is_locked",
    "parts_dir",
    "read_run",
    "read_table",
    "recover",
    "rows_table",
    "scan_runs",
    "write_atomic",
]

PARTS_SUFFIX = ".parts"
QUALITY_SUFFIX = ".quality"
META_KEY = b"bifrost"
_PART = re.compile(r"(?:part-(\d+)\.parquet|segment-(\d+)\.spool)")
_PART_GLOB = "part-*.parquet"
_LOCK_NAME = "lock"


class StorageError(BifrostError, OSError):
    """Samples could not be written to disk (disk full, permissions...)."""


class UnreadableRecording(BifrostError, ValueError):
    """A file or parts folder is not a readable bifrost recording."""


class RecordingInUse(ConfigurationError):
    """Another recording is streaming to the same path right now."""


class RecoveryWarning(UserWarning):
    """Parts of a recording that did not end were found next to a recording's path."""


def parts_dir(path: Path) -> Path:
    """Where the parts of a streamed recording go."""
    return path.with_name(path.name + PARTS_SUFFIX)


def _fsync_dir(directory: Path) -> None:
    # A rename or unlink is durable only once the directory entry is on disk.
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(table: pa.Table, target: Path) -> None:
    """Write a Parquet file so that ``target`` is either absent or complete.

    Raises :class:`StorageError` naming ``target`` when it cannot be written.
    """
    temporary = target.with_name(f".{target.name}.tmp")
    try:
        with open(temporary, "wb") as handle:
            pq.write_table(table, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, target)
        _fsync_dir(target.parent)
    except OSError as exc:
        temporary.unlink(missing_ok=True)
        raise StorageError(describe_write_error(exc, target)) from exc
    except pa.ArrowException as exc:
        temporary.unlink(missing_ok=True)
        raise StorageError(f"cannot write {str(target)!r} as Parquet: {exc}") from exc


def read_table(path: Path) -> pa.Table:
    """Read a Parquet file; any failure is an :class:`UnreadableRecording` naming it."""
    try:
        return pq.read_table(path)
    except (pa.ArrowException, OSError) as exc:
        raise UnreadableRecording(
            f"cannot read {str(path)!r} as a Parquet recording ({exc}); if it was cut "
            "short, its parts (if any) are in the folder next to it ending in '.parts'"
        ) from exc


def describe_write_error(exc: OSError, where: Path) -> str:
    """What went wrong writing ``where``, for a user (a full disk said plainly)."""
    if exc.errno == errno.ENOSPC:
        return f"the disk holding {str(where)!r} is full"
    return f"cannot write {str(where)!r}: {exc.strerror or exc}"


# -- runs in a parts folder ----------------------------------------------------------------
@dataclass
class Run:
    """The parts of one recording in a parts folder.

    Attributes
    ----------
    run_id
        The id the recording's journal put in every part (a digest of the header for
        parts written before run ids existed).
    parts
        Its files (spool segments, or Parquet parts of earlier versions), in writing
        order.
    header
        Its latest bifrost header (the most recent session metadata).
    rows
        Rows in all its files (complete frames only).
    dropped
        Bytes at the end of its segments that a crash cut short (not samples anyone
        was told are on disk: a frame counts once its fsync returned).
    """

    run_id: str
    parts: list[Path]
    header: dict[str, Any]
    rows: int
    dropped: int = 0


def _part_number(path: Path) -> int:
    match = _PART.fullmatch(path.name)
    return int(match.group(1) or match.group(2)) if match else -1


def _part_files(directory: Path) -> list[Path]:
    found = [*directory.glob(_PART_GLOB), *directory.glob(spool.SEGMENT_GLOB)]
    return sorted(found, key=_part_number)


def has_runs(directory: Path) -> bool:
    """Whether ``directory`` holds segments or parts (of any run)."""
    return directory.is_dir() and bool(_part_files(directory))


def _read_segment(path: Path) -> spool.Segment:
    try:
        return spool.read_segment(path)
    except (OSError, ValueError) as exc:
        raise UnreadableRecording(
            f"cannot read the spool segment {str(path)!r} ({exc}); move it out of "
            f"{str(path.parent)!r} to recover the rest"
        ) from exc


def _add(runs: dict[str, Run], run_id: str, part: Path, header: dict[str, Any], rows: int) -> Run:
    run = runs.get(run_id)
    if run is None:
        run = runs[run_id] = Run(run_id, [part], header, rows)
    else:
        run.parts.append(part)
        run.header = header
        run.rows += rows
    return run


def scan_runs(directory: Path) -> list[Run]:
    """The runs whose segments or parts are in ``directory``.

    A segment whose first frame never reached the disk (its process died at once) holds
    nothing and is left out.
    """
    runs: dict[str, Run] = {}
    for part in _part_files(directory):
        if part.suffix == ".spool":
            segment = _read_segment(part)
            if not segment.headers:
                continue
            header = segment.headers[-1]
            run = _add(runs, str(header.get("run_id")), part, header, segment.rows)
            run.dropped += segment.dropped
            continue
        try:
            footer = pq.read_metadata(part)
        except (pa.ArrowException, OSError) as exc:
            raise UnreadableRecording(
                f"cannot read the part {str(part)!r} ({exc}); move it out of "
                f"{str(directory)!r} to recover the other parts"
            ) from exc
        raw = (footer.metadata or {}).get(META_KEY)
        if raw is None:
            raise UnreadableRecording(
                f"{str(part)!r} is not a part of a bifrost recording; move it out of "
                f"{str(directory)!r} to recover the other parts"
            )
        try:
            header = json.loads(raw)
        except ValueError as exc:
            raise UnreadableRecording(
                f"the bifrost metadata of {str(part)!r} is damaged ({exc}); move it out of "
                f"{str(directory)!r} to recover the other parts"
            ) from exc
        run_id = header.get("run_id") or hashlib.sha1(raw).hexdigest()[:16]
        _add(runs, run_id, part, header, footer.num_rows)
    return list(runs.values())


def _segment_tables(path: Path) -> list[pa.Table]:
    """A segment's rows frames as tables in the Parquet layout of :func:`rows_table`."""
    segment = _read_segment(path)
    header = segment.headers[-1]
    names = [t["name"] for t in header["tags"]]
    numeric = [is_numeric(d) for d in header["dtypes"]]
    blocks = list(segment.decode())
    if not blocks:  # the header reached the disk, no rows did
        width, count = len(names), sum(numeric)
        empty = np.empty((0, count)), np.empty((0, width), dtype=np.uint8)
        blocks = [spool.Block(np.empty(0, dtype=np.int64), empty[0], empty[1], None)]
    tables = []
    for block in blocks:
        arrays: dict[str, Any] = {
            "time": pa.array(block.times.view("datetime64[ns]"), type=pa.timestamp("ns", tz="UTC"))
        }
        k = 0
        for j, name in enumerate(names):
            if numeric[j]:
                arrays[name] = pa.array(block.numbers[:, k])
                k += 1
            elif block.objects is None:
                arrays[name] = pa.nulls(len(block.times))
            else:
                arrays[name] = block.objects.column(name)
            arrays[name + QUALITY_SUFFIX] = pa.array(block.quality[:, j])
        tables.append(pa.table(arrays))
    return tables


def read_run(run: Run) -> pa.Table:
    """The rows of a run as one table carrying the run's latest header.

    Parts of one run may differ in column types: a string tag that had no value during
    a whole flush has a null column there. Types are unified, never dropped.
    """
    tables = []
    for part in run.parts:
        if part.suffix == ".spool":
            tables += _segment_tables(part)
        else:
            tables.append(read_table(part))
    try:
        table = pa.concat_tables(tables, promote_options="permissive")
    except pa.ArrowException as exc:
        raise UnreadableRecording(
            f"the parts {', '.join(repr(str(p)) for p in run.parts)} of one recording have "
            f"columns that do not fit together ({exc}); open them one by one with "
            "pyarrow.parquet.read_table"
        ) from exc
    meta = {META_KEY: json.dumps(run.header, default=str).encode()}
    return table.replace_schema_metadata(meta)


def _first_time(table: pa.Table) -> str:
    if table.num_rows:
        first = int(table.column("time").cast(pa.int64())[0].as_py())
        moment = dt.datetime.fromtimestamp(first / 1e9, tz=dt.UTC)
    else:
        moment = dt.datetime.now(dt.UTC)
    # No colons: the name must be valid on every file system.
    return moment.strftime("%Y%m%dT%H%M%S.%f")[:-3] + "Z"


def _already_recovered(candidate: Path, run: Run) -> bool:
    try:
        footer = pq.read_metadata(candidate)
        header = json.loads((footer.metadata or {}).get(META_KEY, b"{}"))
    except (pa.ArrowException, OSError, ValueError):
        return False
    # Parts are removed last first, so what a cut-short removal leaves is a prefix of the
    # run: the file (named after the same first row) already holds it.
    return bool(header.get("run_id") == run.run_id and footer.num_rows >= run.rows)


def _recover_run(run: Run, directory: Path, path: Path) -> Path | None:
    """Write one run to its own file next to ``path``, then remove its parts.

    A run without rows (its process died before its first flush) has nothing to keep:
    its files are removed and None returned.
    """
    if run.rows == 0:
        for part in run.parts:
            part.unlink()
        _fsync_dir(directory)
        return None
    table = read_run(run)
    header = dict(run.header)
    header["run_id"] = run.run_id
    header["metadata"] = {**header.get("metadata", {}), "recovered_from": str(directory)}
    if run.dropped:
        # A frame the crash cut short: never acknowledged, but say that it was there.
        header["metadata"]["spool_dropped_bytes"] = run.dropped
    table = table.replace_schema_metadata({META_KEY: json.dumps(header, default=str).encode()})
    stem = f"{path.stem}.recovered-{_first_time(table)}"
    for n in range(1, 1000):
        target = path.with_name(f"{stem}{'' if n == 1 else f'-{n}'}.parquet")
        if not target.exists():
            write_atomic(table, target)
            break
        if _already_recovered(target, run):
            # A recovery that died after writing the file and before removing the parts.
            break
    else:
        raise StorageError(f"too many recovered files named {stem}*.parquet next to {str(path)!r}")
    try:
        written = pq.read_metadata(target).num_rows
    except (pa.ArrowException, OSError) as exc:
        raise StorageError(
            f"{str(target)!r} cannot be read back ({exc}); the parts in {str(directory)!r} are kept"
        ) from exc
    if written < run.rows:
        raise StorageError(
            f"{str(target)!r} holds {written} rows, fewer than the {run.rows} of the parts in "
            f"{str(directory)!r}; the parts are kept"
        )
    for part in reversed(run.parts):
        part.unlink()
    _fsync_dir(directory)
    return target


def recover(path: str | os.PathLike[str]) -> list[str]:
    """Write every run found in ``<path>.parts`` to a file of its own; return their paths.

    Each run becomes ``<stem>.recovered-<time of its first row>.parquet`` next to
    ``path`` (open it with :func:`bifrost.open_recording`); its parts are removed once
    that file is on disk. Parts of a recording that is still running are left alone.
    """
    target = Path(path)
    if target.name.endswith(PARTS_SUFFIX):
        target = target.with_name(target.name[: -len(PARTS_SUFFIX)])
    directory = parts_dir(target)
    if not directory.is_dir():
        raise ConfigurationError(f"there are no parts to recover at {str(directory)!r}")
    lock = _Lock(directory, target)
    try:
        written = [
            str(file)
            for file in (_recover_run(run, directory, target) for run in scan_runs(directory))
            if file is not None
        ]
        for stale in directory.glob(".*.tmp"):
            stale.unlink()
    finally:
        lock.release(remove=True)
    with contextlib.suppress(OSError):  # something else is in there: leave it to its owner
        directory.rmdir()
    return written


# -- who is writing a parts folder ------------------------------------------------------------
if sys.platform == "win32":
    import msvcrt

    def _try_lock(fd: int) -> bool:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True

else:
    import fcntl

    def _try_lock(fd: int) -> bool:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        return True


def is_locked(directory: Path) -> bool:
    """Whether a live recording (of any process) holds ``directory``'s lock."""
    try:
        fd = os.open(directory / _LOCK_NAME, os.O_RDWR)
    except OSError:
        return False  # no lock file: nobody ever locked it, or it cannot be locked here
    try:
        return not _try_lock(fd)
    finally:
        os.close(fd)  # closing drops the lock taken just now, if any


class _Lock:
    """An exclusive lock on a parts folder, held while its recording runs."""

    def __init__(self, directory: Path, path: Path) -> None:
        self.path = directory / _LOCK_NAME
        for _ in range(10):
            try:
                directory.mkdir(parents=True, exist_ok=True)
                fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            except FileNotFoundError:
                continue  # the folder was removed between the two calls: make it again
            except OSError as exc:
                raise StorageError(describe_write_error(exc, directory)) from exc
            if not _try_lock(fd):
                holder = _read_pid(fd)
                os.close(fd)
                raise RecordingInUse(
                    f"another recording{holder} is streaming to {str(path)!r} (it holds "
                    f"{str(self.path)!r}); stop it first or record to another path"
                )
            try:
                same = os.stat(self.path).st_ino == os.fstat(fd).st_ino
            except FileNotFoundError:
                same = False
            if same:
                os.ftruncate(fd, 0)
                os.write(fd, str(os.getpid()).encode())
                self.fd: int | None = fd
                return
            # The previous holder removed the file while we waited: lock the new one.
            os.close(fd)
        raise StorageError(f"cannot lock {str(self.path)!r}: it keeps being removed")

    def release(self, remove: bool = False) -> None:
        if self.fd is None:
            return
        if remove:
            self.path.unlink(missing_ok=True)
        os.close(self.fd)
        self.fd = None


def _read_pid(fd: int) -> str:
    try:
        pid = os.pread(fd, 32, 0).decode().strip()
    except (OSError, UnicodeDecodeError, AttributeError):
        return ""
    return f" (process {pid})" if pid.isdigit() else ""


# -- writing ------------------------------------------------------------------------------
class Journal:
    """Appends row blocks to a spool segment in ``<path>.parts`` on a writer thread.

    Parameters
    ----------
    path
        The final file of the recording.
    header
        JSON-able metadata written at the start of the segment (tags, dtypes, session
        metadata) and again by :meth:`update_header`.

    Raises
    ------
    RecordingInUse
        Another recording streams to ``path``.
    """

    def __init__(self, path: Path, header: dict[str, Any]) -> None:
        self.path = path
        self.directory = parts_dir(path)
        self._lock = _Lock(self.directory, path)
        self.run_id = uuid.uuid4().hex
        self._header = self._encode(header)
        self._object_names = [
            t["name"]
            for t, d in zip(header["tags"], header["dtypes"], strict=True)
            if not is_numeric(d)
        ]
        # Files nobody holds belong to recordings that died. They keep their numbers
        # (ours comes after them) until they are safe in files of their own.
        stale = _part_files(self.directory)
        self._number = max((_part_number(p) for p in stale), default=-1) + 1
        self._segment: Path | None = None
        self._fd: int | None = None
        self._size = 0  # bytes of complete frames in the segment
        self._executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="bifrost-journal"
        )
        self._pending: list[concurrent.futures.Future[None]] = []
        self.rows_written = 0  # rows whose frame's fsync returned: safe on disk
        self.bytes_written = 0  # bytes written to the segment (complete frames)
        self.error: StorageError | None = None
        self.recovered: list[Path] = []
        self.notices: list[str] = []  # for the recorder to warn about, on its thread
        if stale:
            self._pending.append(self._executor.submit(self._recover))
        else:
            self._executor.submit(self._remove_temporaries)

    def _encode(self, header: dict[str, Any]) -> bytes:
        return spool.encode_header({**header, "run_id": self.run_id})

    def _remove_temporaries(self) -> None:
        for stale in self.directory.glob(".*.tmp"):
            stale.unlink(missing_ok=True)

    def _recover(self) -> None:
        # Runs on the writer thread, before any frame of ours is written.
        self._remove_temporaries()
        try:
            runs = scan_runs(self.directory)
        except UnreadableRecording as exc:
            self._cannot_recover(exc)
            return
        for run in runs:
            try:
                target = _recover_run(run, self.directory, self.path)
            except (BifrostError, OSError, pa.ArrowException) as exc:
                self._cannot_recover(exc)
                continue
            if target is None:
                continue
            self.recovered.append(target)
            self.notices.append(
                f"{str(self.path)!r} had the parts of a recording that did not end "
                f"(its process died?); its {run.rows} samples are now in "
                f"{str(target)!r}: open it with bf.open_recording({str(target)!r}). "
                f"The new recording streams to {str(self.path)!r}."
            )

    def _cannot_recover(self, exc: BaseException) -> None:
        self.notices.append(
            f"the parts of an earlier recording in {str(self.directory)!r} could not be "
            f"recovered ({exc}); they stay there, beside the new recording's. Once the "
            f"cause is fixed, call bifrost.recording.recover({str(self.path)!r})."
        )

    def update_header(self, header: dict[str, Any]) -> None:
        """Write ``header`` before the rows that come next (e.g. a clock step seen)."""
        frame = self._encode(header)
        self._pending.append(self._executor.submit(self._set_header, frame))

    def _set_header(self, frame: bytes) -> None:
        self._header = frame
        if self._fd is None or self.error is not None:
            return  # the segment starts with it
        try:
            self._append(frame)
        except StorageError as exc:
            self.fail(exc)

    def fail(self, error: StorageError) -> None:
        """Stop writing: ``error`` says why (rows stay in memory)."""
        if self.error is None:
            self.error = error

    def append(
        self,
        times: np.ndarray[Any, Any],
        numbers: np.ndarray[Any, Any],
        objects: np.ndarray[Any, Any] | None,
        quality: np.ndarray[Any, Any],
    ) -> None:
        """Queue rows for writing (returns at once; the arrays must not change after).

        ``numbers`` holds the numeric tags' values (rows by numeric tags), ``objects``
        the other tags' (rows by object tags, None when there are none), ``quality``
        every tag's code (rows by tags).
        """
        if self.error is not None or len(times) == 0:
            return
        self._pending = [f for f in self._pending if not f.done()]
        self._pending.append(self._executor.submit(self._write, times, numbers, objects, quality))

    def submit(self, table: pa.Table) -> None:
        """Queue a block of rows in the Parquet layout of :func:`rows_table`."""
        if table.num_rows == 0:
            return
        names = [t for t in table.column_names if t != "time" and not t.endswith(QUALITY_SUFFIX)]
        numeric = [n for n in names if n not in self._object_names]
        times = table.column("time").cast(pa.int64()).to_numpy()
        numbers = np.empty((table.num_rows, len(numeric)))
        for j, name in enumerate(numeric):
            numbers[:, j] = table.column(name).to_numpy(zero_copy_only=False)
        objects = np.empty((table.num_rows, len(self._object_names)), dtype=object)
        for j, name in enumerate(self._object_names):
            objects[:, j] = table.column(name).to_numpy(zero_copy_only=False)
        quality = np.stack(
            [table.column(n + QUALITY_SUFFIX).to_numpy() for n in names], axis=1
        ).astype(np.uint8)
        self.append(times, numbers, objects if self._object_names else None, quality)

    def _objects_table(self, objects: np.ndarray[Any, Any]) -> pa.Table:
        arrays = {}
        for j, name in enumerate(self._object_names):
            try:
                arrays[name] = _column(objects[:, j])
            except pa.ArrowException as exc:
                raise StorageError(
                    f"the values of tag {name!r} cannot be stored ({exc}); they stay in "
                    "memory: look at them with rec.to_pandas()"
                ) from exc
        return pa.table(arrays)

    def _write(
        self,
        times: np.ndarray[Any, Any],
        numbers: np.ndarray[Any, Any],
        objects: np.ndarray[Any, Any] | None,
        quality: np.ndarray[Any, Any],
    ) -> None:
        if self.error is not None:
            return
        try:
            table = self._objects_table(objects) if objects is not None else None
            frame = spool.encode_rows(times, numbers, table, quality)
            if self._fd is None:
                self._open()
            self._append(frame)
        except StorageError as exc:
            self.error = StorageError(
                f"{exc}; {self.rows_written} samples are safe in "
                f"{str(self.directory)!r}. The recording goes on in memory: save it "
                "elsewhere with rec.save(other_path)."
            )
            return
        self.rows_written += len(times)

    def _open(self) -> None:
        self._segment = self.directory / spool.segment_name(self._number)
        try:
            self._fd = os.open(self._segment, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            _fsync_dir(self.directory)
        except OSError as exc:
            raise StorageError(describe_write_error(exc, self._segment)) from exc
        self._append(self._header)

    def _append(self, frame: bytes) -> None:
        """Write one frame and sync it; on failure, cut the segment back to whole frames."""
        assert self._fd is not None
        assert self._segment is not None
        view = memoryview(frame)
        try:
            while view:
                view = view[os.write(self._fd, view) :]
            os.fsync(self._fd)
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, self._size)
            raise StorageError(describe_write_error(exc, self._segment)) from exc
        self._size += len(frame)
        self.bytes_written += len(frame)

    def drain(self) -> None:
        """Wait until every queued block is on disk (or failed)."""
        for future in list(self._pending):
            future.result()
        self._pending.clear()

    def _close_segment(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def close(self) -> None:
        """Finish pending writes, stop the writer thread and release the parts folder."""
        try:
            self.drain()
            self._executor.shutdown(wait=True)
        finally:
            self._close_segment()
            self._lock.release()

    def discard(self) -> None:
        """Remove this recording's segment once its final file is safely written.

        Segments and parts of other runs that could not be recovered stay where they are.
        """
        self._close_segment()
        if self._segment is not None:
            self._segment.unlink(missing_ok=True)
        self._remove_temporaries()
        self._lock.release(remove=True)
        # Not empty: unrecovered files of an earlier run, or a new recording's.
        with contextlib.suppress(OSError):
            self.directory.rmdir()


def rows_table(
    names: list[str],
    times: np.ndarray[Any, Any],
    columns: list[np.ndarray[Any, Any]],
    quality: np.ndarray[Any, Any],
) -> pa.Table:
    """The Parquet layout of a block of rows (time, a column per tag, quality per tag).

    Raises :class:`StorageError` naming the tag whose values Parquet cannot hold.
    """
    arrays: dict[str, Any] = {
        "time": pa.array(times.view("datetime64[ns]"), type=pa.timestamp("ns", tz="UTC"))
    }
    for j, (name, column) in enumerate(zip(names, columns, strict=True)):
        try:
            arrays[name] = _column(column)
        except pa.ArrowException as exc:
            raise StorageError(
                f"the values of tag {name!r} cannot be stored in Parquet ({exc}); they "
                "stay in memory: look at them with rec.to_pandas()"
            ) from exc
        arrays[name + QUALITY_SUFFIX] = pa.array(quality[:, j])
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

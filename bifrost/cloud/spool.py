"""A durable queue on disk: append-only segments, fsync per batch, acknowledged offsets.

A sink appends what it has to send, in order, and the broker's acknowledgements move
the spool on; nothing is forgotten before it was acknowledged, dropped by a cap (and
counted) or quarantined. The folder holds::

    segments/00000000000000000042.seg   records 42, 43, ... (the name is the first seq)
    state.json                          next seq, done ranges, counters (atomic rename)
    quarantine/                         payloads the broker kept refusing, one file each

Each record is ``<length u32> <crc32 u32> <seq u64> <time ns i64> <payload>``; the crc
covers seq, time and payload. A batch is one ``write`` and one ``fsync``. After a crash
(kill -9, power cut) the spool reopens at the last complete record: a torn record at
the tail of the last segment is cut off, never read as data.

Acknowledgements may come out of order (live values are sent while a backlog
replays), so the spool keeps the *done* sequence numbers as merged ranges; ``head`` is
the oldest seq not done. The state file is rewritten at most every ``state_interval``
seconds: after a crash, what was acknowledged in that last moment is sent once more
(consumers deduplicate on the message key), and nothing else.

Caps drop the oldest records first: ``max_bytes`` (segments on disk) and ``max_age``
(seconds since a record's time); every dropped record that was not yet sent is counted
in ``dropped``.
"""

from __future__ import annotations

import bisect
import contextlib
import errno
import json
import os
import shutil
import struct
import threading
import time
import zlib
from array import array
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from bifrost.exceptions import BifrostError

__all__ = ["Entry", "Spool", "SpoolError"]

_HEADER = struct.Struct("<IIQq")
_SEQ_TIME = struct.Struct("<Qq")
_SUFFIX = ".seg"
_STATE = "state.json"


class SpoolError(BifrostError, OSError):
    """The spool folder could not be written or read (disk full, permissions, ...)."""


@dataclass(frozen=True, slots=True)
class Entry:
    """One spooled record: its sequence number, its time (ns, UTC) and its bytes."""

    seq: int
    time_ns: int
    payload: bytes


class _Segment:
    """One segment file: records ``first``, ``first + 1``, ... at known offsets."""

    __slots__ = ("fd", "first", "offsets", "path", "size", "times")

    def __init__(self, path: Path, first: int) -> None:
        self.path = path
        self.first = first
        self.offsets = array("q")
        self.times = array("q")
        self.size = 0
        self.fd: int | None = None

    @property
    def end(self) -> int:
        return self.first + len(self.offsets)

    def open_fd(self) -> int:
        if self.fd is None:
            self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        return self.fd

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


class _Ranges:
    """Sorted, merged, half-open ``[start, end)`` ranges of sequence numbers."""

    def __init__(self, ranges: Sequence[Sequence[int]] = ()) -> None:
        self.starts: list[int] = []
        self.ends: list[int] = []
        for start, end in sorted((int(a), int(b)) for a, b in ranges):
            self.add(start, end)

    def add(self, start: int, end: int) -> int:
        """Add ``[start, end)``; returns how many numbers were not in the set before."""
        if end <= start:
            return 0
        i = bisect.bisect_left(self.ends, start)  # first range that ends at/after start
        j = bisect.bisect_right(self.starts, end)  # ranges from i to j-1 touch [start, end)
        covered = 0
        new_start, new_end = start, end
        for k in range(i, j):
            a, b = self.starts[k], self.ends[k]
            covered += max(0, min(b, end) - max(a, start))
            new_start, new_end = min(new_start, a), max(new_end, b)
        self.starts[i:j] = [new_start]
        self.ends[i:j] = [new_end]
        return (end - start) - covered

    def __contains__(self, seq: int) -> bool:
        i = bisect.bisect_right(self.starts, seq) - 1
        return i >= 0 and seq < self.ends[i]

    def next_missing(self, seq: int) -> int:
        """The smallest number >= ``seq`` not in the set."""
        i = bisect.bisect_right(self.starts, seq) - 1
        if i >= 0 and seq < self.ends[i]:
            return self.ends[i]
        return seq

    def prev_missing(self, seq: int, floor: int) -> int:
        """The largest number < ``seq`` and >= ``floor`` not in the set (``floor`` if none)."""
        candidate = seq - 1
        while candidate >= floor:
            i = bisect.bisect_right(self.starts, candidate) - 1
            if i >= 0 and candidate < self.ends[i]:
                candidate = self.starts[i] - 1
            else:
                return candidate
        return floor

    def count(self, start: int, end: int) -> int:
        """How many numbers of ``[start, end)`` are in the set."""
        total = 0
        i = max(0, bisect.bisect_right(self.starts, start) - 1)
        while i < len(self.starts) and self.starts[i] < end:
            total += max(0, min(self.ends[i], end) - max(self.starts[i], start))
            i += 1
        return total

    def trim_below(self, seq: int) -> None:
        """Forget everything below ``seq`` (those records no longer exist)."""
        while self.starts and self.ends[0] <= seq:
            del self.starts[0], self.ends[0]
        if self.starts and self.starts[0] < seq:
            self.starts[0] = seq

    def as_list(self) -> list[list[int]]:
        return [[a, b] for a, b in zip(self.starts, self.ends, strict=True)]


class Spool:
    """A durable, ordered queue of records in a folder.

    Parameters
    ----------
    path
        The folder (created if missing). One spool per folder: a second opener would
        corrupt it, so the folder is locked while open.
    max_bytes
        Cap on the segments on disk; the oldest records are dropped (and counted)
        beyond it.
    max_age
        Seconds; records older than this (by their own time) are dropped and counted.
    segment_bytes
        Size at which a new segment file is started (at most a quarter of
        ``max_bytes``, so the cap is kept to within a segment).
    fsync
        fsync each batch (off only for a throw-away spool).
    state_interval
        Longest time between rewrites of the acknowledged state, in seconds.

    Notes
    -----
    Thread-safe, with one appending thread: a sink appends on its writer thread while
    its sending thread reads, acknowledges and enforces the caps.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        max_bytes: int = 1 << 30,
        max_age: float | None = None,
        segment_bytes: int = 16 << 20,
        fsync: bool = True,
        state_interval: float = 0.05,
    ) -> None:
        self.path = Path(path)
        self.max_bytes = int(max_bytes)
        self.max_age = max_age
        self.segment_bytes = max(4096, min(int(segment_bytes), self.max_bytes // 4))
        self.fsync = fsync
        self.state_interval = state_interval
        self.dropped = 0
        self.quarantined = 0
        self._lock = threading.RLock()
        # Fault-injection seams (tests): every byte and every sync goes through these.
        self._write: Callable[[int, bytes], int] = os.write
        self._sync: Callable[[int], None] = os.fsync
        self._segments: list[_Segment] = []
        self._done = _Ranges()
        self._next = 0
        self._pending = 0
        self._dirty = False
        self._saved_at = 0.0
        self._synced_at = 0.0
        self._closed = False
        try:
            (self.path / "segments").mkdir(parents=True, exist_ok=True)
            self._lock_fd = self._take_lock()
            self._load()
        except OSError as exc:
            raise SpoolError(f"cannot open the spool folder {str(self.path)!r}: {exc}") from exc

    # -- opening --------------------------------------------------------------------------
    def _take_lock(self) -> int:
        import fcntl

        fd = os.open(self.path / "lock", os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise SpoolError(
                f"the spool folder {str(self.path)!r} is in use by another sink or process"
            ) from None
        return fd

    def _load(self) -> None:
        state: dict[str, object] = {}
        state_path = self.path / _STATE
        if state_path.exists():
            with contextlib.suppress(ValueError):
                state = json.loads(state_path.read_text())
        files = sorted((self.path / "segments").glob("*" + _SUFFIX))
        for file in files:
            segment = _Segment(file, int(file.stem))
            self._scan(segment, last=file == files[-1])
            self._segments.append(segment)
        ranges = state.get("done", [])
        self._done = _Ranges(ranges if isinstance(ranges, list) else [])
        saved_next = state.get("next_seq", 0)
        end = self._segments[-1].end if self._segments else 0
        self._next = max(end, int(saved_next) if isinstance(saved_next, int) else 0)
        first = self._segments[0].first if self._segments else self._next
        # Numbers that no segment holds are done: acknowledged and deleted, or never
        # written completely (a torn tail).
        self._done.add(0, first)
        self._done.add(end, self._next)
        for before, after in zip(self._segments, self._segments[1:], strict=False):
            self._done.add(before.end, after.first)  # records lost to a damaged segment
        self._done.trim_below(0)
        self._pending = (self._next - first) - self._done.count(first, self._next)
        for key in ("dropped", "quarantined"):
            value = state.get(key, 0)
            setattr(self, key, int(value) if isinstance(value, int) else 0)

    def _scan(self, segment: _Segment, last: bool) -> None:
        data = segment.path.read_bytes()
        offset = 0
        expected = segment.first
        while offset + _HEADER.size <= len(data):
            length, crc, seq, time_ns = _HEADER.unpack_from(data, offset)
            body = data[offset + _HEADER.size : offset + _HEADER.size + length]
            if (
                len(body) < length
                or seq != expected
                or zlib.crc32(body, zlib.crc32(_SEQ_TIME.pack(seq, time_ns))) != crc
            ):
                break
            segment.offsets.append(offset)
            segment.times.append(time_ns)
            offset += _HEADER.size + length
            expected += 1
        segment.size = offset
        if offset < len(data) and last:
            # A torn write (the process died mid-batch): cut it off so that appends
            # continue after the last complete record.
            with open(segment.path, "r+b") as handle:
                handle.truncate(offset)
                if self.fsync:
                    os.fsync(handle.fileno())

    # -- state ----------------------------------------------------------------------------
    @property
    def head(self) -> int:
        """The oldest sequence number not yet done (acknowledged, dropped, quarantined)."""
        with self._lock:
            first = self._segments[0].first if self._segments else self._next
            return min(self._done.next_missing(first), self._next)

    @property
    def end(self) -> int:
        """The sequence number the next appended record gets."""
        return self._next

    @property
    def pending(self) -> int:
        """Records not yet done."""
        return self._pending

    @property
    def size(self) -> int:
        """Bytes of segments on disk."""
        with self._lock:
            return sum(s.size for s in self._segments)

    def times(self) -> tuple[int | None, int | None]:
        """Time (ns) of the oldest and the newest pending record (None when empty)."""
        with self._lock:
            if self._pending <= 0:
                return None, None
            oldest_seq = self.head
            newest_seq = self._done.prev_missing(self._next, oldest_seq)
            return self._time_of(oldest_seq), self._time_of(newest_seq)

    def _time_of(self, seq: int) -> int | None:
        segment = self._find(seq)
        return None if segment is None else segment.times[seq - segment.first]

    def is_done(self, seq: int) -> bool:
        """Whether ``seq`` was acknowledged, dropped or quarantined."""
        with self._lock:
            return seq in self._done

    # -- appending ------------------------------------------------------------------------
    def append(self, records: Sequence[tuple[int, bytes]]) -> int:
        """Append ``(time_ns, payload)`` records as one batch: one write, one fsync.

        Returns the sequence number of the first record (the others follow).

        Raises
        ------
        SpoolError
            The folder could not be written (the batch is not in the spool; the segment
            is cut back to where it was).
        """
        with self._lock:
            if self._closed:
                raise SpoolError(f"the spool {str(self.path)!r} is closed")
            first = self._next
            if not records:
                return first
            touched: list[_Segment] = []
            seq = first
            start = 0
            try:
                while start < len(records):
                    segment = self._active(seq)
                    room = self.segment_bytes - segment.size
                    stop = start + 1  # at least one record per segment
                    used = _HEADER.size + len(records[start][1])
                    while stop < len(records):
                        used += _HEADER.size + len(records[stop][1])
                        if used > room:
                            break
                        stop += 1
                    seq = self._write_records(segment, records[start:stop], seq)
                    if segment not in touched:
                        touched.append(segment)
                    start = stop
                fds = [segment.open_fd() for segment in touched]
            except OSError as exc:
                self._undo(touched, first)
                raise SpoolError(_write_failure(self.path, exc, len(records))) from exc
        # The fsync runs without the lock: acknowledgements and reads go on meanwhile.
        # The records count (``end``, reads) only once it returned. One thread appends.
        try:
            if self.fsync:
                for fd in fds:
                    try:
                        self._sync(fd)
                    except OSError as exc:
                        # A cap dropped that (older) segment meanwhile: nothing to sync.
                        if exc.errno != errno.EBADF:
                            raise
        except OSError as exc:
            with self._lock:
                self._undo(touched, first)
            raise SpoolError(_write_failure(self.path, exc, len(records))) from exc
        with self._lock:
            self._next = first + len(records)
            self._pending += len(records)
            self._dirty = True
            if self.size > self.max_bytes:
                self.dropped += self._drop_oldest_segments()
            return first

    def _write_records(
        self, segment: _Segment, records: Sequence[tuple[int, bytes]], seq: int
    ) -> int:
        parts = []
        offsets = []
        position = segment.size
        for time_ns, payload in records:
            crc = zlib.crc32(payload, zlib.crc32(_SEQ_TIME.pack(seq, time_ns)))
            parts.append(_HEADER.pack(len(payload), crc, seq, time_ns))
            parts.append(payload)
            offsets.append(position)
            position += _HEADER.size + len(payload)
            seq += 1
        data = memoryview(b"".join(parts))
        fd = segment.open_fd()
        written = 0
        while written < len(data):
            written += self._write_at(fd, data[written:], segment.size + written)
        segment.size = position
        segment.offsets.extend(offsets)
        segment.times.extend(t for t, _ in records)
        return seq

    def _undo(self, touched: list[_Segment], first: int) -> None:
        """Cut the segments of a failed batch back to where they were before it."""
        for segment in touched:
            keep = max(0, first - segment.first)
            size = segment.offsets[keep] if keep < len(segment.offsets) else segment.size
            del segment.offsets[keep:]
            del segment.times[keep:]
            segment.size = size
        active = self._segments[-1] if self._segments else None
        for segment in [*touched, *([active] if active is not None else [])]:
            with contextlib.suppress(OSError):
                os.ftruncate(segment.open_fd(), segment.size)
        while len(self._segments) > 1 and not self._segments[-1].offsets:
            empty = self._segments.pop()
            empty.close()
            with contextlib.suppress(OSError):
                empty.path.unlink()

    def _write_at(self, fd: int, data: memoryview, offset: int) -> int:
        os.lseek(fd, offset, os.SEEK_SET)
        return self._write(fd, bytes(data))

    def _active(self, seq: int) -> _Segment:
        segments = self._segments
        if not segments or segments[-1].size >= self.segment_bytes:
            segment = _Segment(self.path / "segments" / f"{seq:020d}{_SUFFIX}", seq)
            try:
                segment.open_fd()
                if self.fsync:
                    _sync_folder(self.path / "segments")
            except OSError as exc:
                segment.close()
                raise SpoolError(_write_failure(self.path, exc, 0)) from exc
            segments.append(segment)
        return segments[-1]

    # -- reading --------------------------------------------------------------------------
    def _find(self, seq: int) -> _Segment | None:
        firsts = [s.first for s in self._segments]
        i = bisect.bisect_right(firsts, seq) - 1
        if i < 0:
            return None
        segment = self._segments[i]
        return segment if seq < segment.end else None

    def read(self, start: int, limit: int, stop: int | None = None) -> list[Entry]:
        """Up to ``limit`` pending records with ``start <= seq < stop``, in order."""
        out: list[Entry] = []
        with self._lock:
            stop = self._next if stop is None else min(stop, self._next)
            seq = max(start, self.head)
            while seq < stop and len(out) < limit:
                seq = self._done.next_missing(seq)
                if seq >= stop:
                    break
                segment = self._find(seq)
                if segment is None:
                    seq += 1
                    continue
                # Read a run of consecutive records of this segment in one pread.
                run_end = min(stop, segment.end, seq + (limit - len(out)))
                missing_end = run_end
                for s in range(seq, run_end):
                    if s in self._done:
                        missing_end = s
                        break
                i, j = seq - segment.first, missing_end - segment.first
                begin = segment.offsets[i]
                finish = segment.offsets[j] if j < len(segment.offsets) else segment.size
                data = os.pread(segment.open_fd(), finish - begin, begin)
                position = 0
                for _ in range(i, j):
                    length, _, number, time_ns = _HEADER.unpack_from(data, position)
                    position += _HEADER.size
                    out.append(Entry(number, time_ns, data[position : position + length]))
                    position += length
                seq = missing_end
        return out

    def __iter__(self) -> Iterator[Entry]:
        """Every pending record, oldest first."""
        seq = self.head
        while True:
            batch = self.read(seq, 1024)
            if not batch:
                return
            yield from batch
            seq = batch[-1].seq + 1

    # -- moving on ------------------------------------------------------------------------
    def ack(self, start: int, end: int | None = None) -> int:
        """Mark ``[start, end)`` (or just ``start``) done; returns how many were pending."""
        with self._lock:
            stop = start + 1 if end is None else end
            newly = self._done.add(start, stop)
            self._pending -= newly
            if newly:
                self._dirty = True
            return newly

    def quarantine(self, seq: int, name: str, content: bytes, reason: str) -> Path:
        """Keep a payload the broker keeps refusing aside, as a file (fsync'd).

        ``name`` distinguishes several payloads of one record. The caller then marks
        the record done with :meth:`ack` once all of its payloads are dealt with.
        Returns the file.
        """
        folder = self.path / "quarantine"
        folder.mkdir(exist_ok=True)
        target = folder / f"{seq:020d}-{name}.json"
        document = {"seq": seq, "reason": reason, "payload": content.decode("utf-8", "replace")}
        data = json.dumps(document, indent=1).encode()
        temporary = target.with_suffix(".tmp")
        with open(temporary, "wb") as handle:
            handle.write(data)
            if self.fsync:
                os.fsync(handle.fileno())
        os.replace(temporary, target)
        with self._lock:
            self.quarantined += 1
            self._dirty = True
        return target

    def enforce(self, now_ns: int | None = None) -> int:
        """Apply ``max_age`` and ``max_bytes``; returns how many records were dropped."""
        dropped = 0
        with self._lock:
            if self.max_age is not None:
                cutoff = (time.time_ns() if now_ns is None else now_ns) - int(self.max_age * 1e9)
                for segment in self._segments:
                    if not segment.times or segment.times[0] >= cutoff:
                        break
                    # Times are in append order: drop the prefix older than the cutoff,
                    # of the records appended so far (a batch being fsynced is not yet).
                    committed = max(0, self._next - segment.first)
                    n = min(bisect.bisect_left(segment.times, cutoff), committed)
                    if n == 0:
                        break
                    dropped += self._drop(segment.first, segment.first + n)
                    if n < len(segment.times):
                        break
            dropped += self._drop_oldest_segments()
            self._remove_done_segments()
            self.dropped += dropped
            if dropped:
                self._dirty = True
        return dropped

    def _drop_oldest_segments(self) -> int:
        """Drop whole segments, oldest first, until the spool fits ``max_bytes``."""
        dropped = 0
        # Only segments whose records all count: a segment written by an append that is
        # still in its fsync (outside the lock) would never become done, and the loop
        # would spin holding the lock the append waits for. That append caps afterwards.
        while (
            self.size > self.max_bytes
            and len(self._segments) > 1
            and self._segments[0].end <= self._next
        ):
            oldest = self._segments[0]
            dropped += self._drop(oldest.first, oldest.end)
            self._remove_done_segments()
        return dropped

    def _drop(self, start: int, end: int) -> int:
        newly = self._done.add(start, end)
        self._pending -= newly
        return newly

    def _remove_done_segments(self) -> None:
        head = self.head
        while len(self._segments) > 1 and self._segments[0].end <= head:
            segment = self._segments.pop(0)
            segment.close()
            with contextlib.suppress(FileNotFoundError):
                segment.path.unlink()
        if self._segments:
            self._done.trim_below(self._segments[0].first)

    def compact(self) -> None:
        """Delete segments whose records are all done; save the state if it is due."""
        with self._lock:
            self._remove_done_segments()
        if self._dirty and time.monotonic() - self._saved_at >= self.state_interval:
            self.save_state()

    def save_state(self, sync: bool = False) -> None:
        """Write the done ranges and counters (atomic rename; fsync with ``sync``)."""
        with self._lock:
            if self._closed:
                return
            document = {
                "next_seq": self._next,
                "done": self._done.as_list(),
                "dropped": self.dropped,
                "quarantined": self.quarantined,
            }
            self._dirty = False
            self._saved_at = time.monotonic()
            target = self.path / _STATE
            temporary = self.path / (_STATE + ".tmp")
            try:
                with open(temporary, "w") as handle:
                    json.dump(document, handle)
                    if sync or (self.fsync and self._saved_at - self._synced_at >= 1.0):
                        os.fsync(handle.fileno())
                        self._synced_at = self._saved_at
                os.replace(temporary, target)
            except OSError:
                # A full disk: the state stays in memory and is written when it can be;
                # at worst what was acknowledged since is sent once more.
                self._dirty = True

    def close(self) -> None:
        """Save the state (fsync'd) and close the files; idempotent."""
        with self._lock:
            if self._closed:
                return
            self._remove_done_segments()
            self.save_state(sync=True)
            self._closed = True
            for segment in self._segments:
                segment.close()
            os.close(self._lock_fd)

    def destroy(self) -> None:
        """Close and delete the folder (for throw-away spools)."""
        self.close()
        shutil.rmtree(self.path, ignore_errors=True)

    def __enter__(self) -> Spool:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"<Spool {str(self.path)!r}: {self.pending} pending, {self.dropped} dropped, "
            f"{self.quarantined} quarantined>"
        )


def _write_failure(path: Path, exc: OSError, count: int) -> str:
    what = f"{count} records were not spooled" if count else "no new segment could be made"
    if exc.errno == errno.ENOSPC:
        return f"the spool folder {str(path)!r} is full (no space left on device): {what}"
    return f"cannot write to the spool folder {str(path)!r}: {exc.strerror or exc}: {what}"


def _sync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

"""Preallocated columnar sample buffers: int64 ns time, float64 values, uint8 quality.

Rows are appended into fixed-size chunks, so growing never copies what is recorded and a
long recording costs 8 bytes per value + 1 byte of quality + 8 bytes of time per row.
Non-numeric tags (strings) keep one object column; they are rare on PLCs.
"""

from __future__ import annotations

import threading
from typing import Any

import numpy as np
import numpy.typing as npt

from bifrost.model import Quality

__all__ = ["SampleBuffer", "is_numeric"]

_CHUNK_BYTES = 2 << 20  # a chunk is ~2 MiB: little over-allocation, few concatenations
# The first chunk of a default buffer is ~64 KiB and each next one twice the last, up to
# _CHUNK_BYTES: a hundred slow recordings would otherwise fill 2 MiB each with NaN at start
# (RSS and ~1 ms of CPU per recording), for rows that may take hours to come.
_FIRST_CHUNK_BYTES = 64 << 10
_BYTES_PER_CELL = 9  # float64 value + uint8 quality
_NUMERIC = {
    "bool",
    "int8",
    "uint8",
    "int16",
    "uint16",
    "int32",
    "uint32",
    "int64",
    "uint64",
    "float32",
    "float64",
}


def is_numeric(dtype: str) -> bool:
    """Whether a tag's values fit the float64 sample columns (strings and arrays do not)."""
    return dtype.lower() in _NUMERIC


class SampleBuffer:
    """Append-only table of samples for a fixed list of tags.

    Parameters
    ----------
    names
        Tag names (columns).
    numeric
        Per tag, whether its values are numeric (float64 column) or objects.
    chunk_rows
        Rows per preallocated chunk (default: ~64 KiB for the first, doubling up to
        about 2 MiB).
    """

    def __init__(self, names: list[str], numeric: list[bool], chunk_rows: int | None = None):
        row_bytes = _BYTES_PER_CELL * max(1, len(names))
        if chunk_rows is None:
            chunk_rows = max(64, _CHUNK_BYTES // row_bytes)
            first = min(chunk_rows, max(8, _FIRST_CHUNK_BYTES // row_bytes))
        else:
            first = chunk_rows
        self.names = list(names)
        self.numeric = np.asarray(numeric, dtype=bool)
        self._numeric_index = np.flatnonzero(self.numeric)
        self._object_index = np.flatnonzero(~self.numeric)
        self._chunk_rows = chunk_rows
        self._next_rows = first  # rows of the next chunk
        self._expected: int | None = None  # rows the recording will have, when known
        self._size = 0  # rows of the current chunk
        self._chunks: list[tuple[Any, ...]] = []
        self._used: list[int] = []  # rows filled in each chunk
        self._fill = 0  # == self._size: the next append opens a chunk
        self._rows = 0
        self._lock = threading.Lock()  # appends on the loop thread, reads from anywhere

    def expect(self, rows: int) -> None:
        """Size the chunks to come for a recording of ``rows`` rows (a known duration).

        The chunks still double up to ~2 MiB, but none reaches past ``rows``: a 10 s
        recording at 1 Hz holds 10 rows, not 64 KiB of NaN. Rows beyond it (never from
        a fixed duration) open chunks as usual.
        """
        self._expected = max(1, rows)

    def _new_chunk(self) -> None:
        n, width = self._next_rows, len(self.names)
        if self._expected is not None and self._rows < self._expected:
            n = min(n, self._expected - self._rows)
        self._size = n
        self._next_rows = min(self._chunk_rows, 2 * n)
        self._chunks.append(
            (
                np.empty(n, dtype=np.int64),
                np.full((n, len(self._numeric_index)), np.nan),
                np.empty((n, len(self._object_index)), dtype=object),
                np.full((n, width), Quality.BAD_NO_DATA, dtype=np.uint8),
            )
        )
        self._used.append(0)
        self._fill = 0

    def __len__(self) -> int:
        return self._rows

    def append(
        self,
        time_ns: int,
        values: npt.NDArray[np.float64],
        objects: npt.NDArray[np.object_] | None,
        quality: npt.NDArray[np.uint8],
    ) -> None:
        """Append one row: float values of the numeric tags, objects of the others."""
        with self._lock:
            if self._fill == self._size:
                self._new_chunk()
            times, numbers, others, qualities = self._chunks[-1]
            row = self._fill
            times[row] = time_ns
            numbers[row] = values[self._numeric_index] if len(values) else values
            if objects is not None and len(self._object_index):
                others[row] = objects[self._object_index]
            qualities[row] = quality
            self._fill += 1
            self._used[-1] = self._fill
            self._rows += 1

    def reserve(self) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.uint8]]:
        """The next row's value and quality cells, for a reader to decode straight into.

        The row is not part of the buffer until :meth:`commit` (readers of the buffer
        never see it half-filled); :meth:`append_gap` instead fills the same row as a gap.
        Only for buffers of numeric tags: the values are one float64 per tag, in order.
        """
        if len(self._object_index):
            raise ValueError("rows are reserved only in buffers of numeric tags")
        with self._lock:
            if self._fill == self._size:
                self._new_chunk()
            _, numbers, _, qualities = self._chunks[-1]
            row = self._fill
        return numbers[row], qualities[row]

    def commit(self, time_ns: int) -> None:
        """Append the row :meth:`reserve` gave, as filled, stamped ``time_ns``."""
        with self._lock:
            self._chunks[-1][0][self._fill] = time_ns
            self._fill += 1
            self._used[-1] = self._fill
            self._rows += 1

    def extend(
        self,
        times: npt.NDArray[np.int64],
        values: npt.NDArray[np.float64],
        objects: npt.NDArray[np.object_],
        quality: npt.NDArray[np.uint8],
    ) -> None:
        """Append many rows at once (``values``/``objects``/``quality``: rows by tags)."""
        n = len(times)
        if n == 0:
            return
        with self._lock:
            chunk = (
                np.ascontiguousarray(times, dtype=np.int64),
                np.ascontiguousarray(values[:, self._numeric_index], dtype=np.float64),
                np.ascontiguousarray(objects[:, self._object_index]),
                np.ascontiguousarray(quality, dtype=np.uint8),
            )
            # The block becomes a chunk of its own; the next append opens a new one.
            self._chunks.append(chunk)
            self._used.append(n)
            self._fill = self._size
            self._rows += n

    def extend_blocks(
        self,
        times: npt.NDArray[np.int64],
        numbers: npt.NDArray[np.float64],
        objects: npt.NDArray[np.object_],
        quality: npt.NDArray[np.uint8],
    ) -> None:
        """Append many rows given as :meth:`matrix` returns them, taking the arrays as they are.

        ``numbers`` rows by numeric tags, ``objects`` rows by the other tags, ``quality``
        rows by all tags; any memory layout (column-major blocks are kept column-major).
        The buffer owns them from now on.
        """
        n = len(times)
        if n == 0:
            return
        if numbers.shape != (n, len(self._numeric_index)) or quality.shape != (n, len(self.names)):
            raise ValueError("blocks that do not match the buffer's tags")
        with self._lock:
            self._chunks.append((times, numbers, objects, quality))
            self._used.append(n)
            self._fill = self._size
            self._rows += n

    def append_gap(self, time_ns: int, quality: Quality) -> None:
        """Append a row where no tag could be sampled, marked with ``quality``."""
        with self._lock:
            if self._fill == self._size:
                self._new_chunk()
            times, numbers, others, qualities = self._chunks[-1]
            row = self._fill
            times[row] = time_ns
            numbers[row] = np.nan
            others[row] = None
            qualities[row] = quality
            self._fill += 1
            self._used[-1] = self._fill
            self._rows += 1

    def arrays(
        self, since: int = 0
    ) -> tuple[npt.NDArray[np.int64], list[npt.NDArray[Any]], npt.NDArray[np.uint8]]:
        """The rows from ``since`` on: time, one value column per tag, quality matrix.

        Value columns are views into one block (not contiguous); copy if you need to.
        """
        times, numbers, others, quality = self.matrix(since)
        columns: list[npt.NDArray[Any]] = [np.empty(0)] * len(self.names)
        for j, tag_index in enumerate(self._numeric_index):
            columns[tag_index] = numbers[:, j]
        for j, tag_index in enumerate(self._object_index):
            columns[tag_index] = others[:, j]
        return times, columns, quality

    def matrix(
        self, since: int = 0, *, copy: bool = True
    ) -> tuple[
        npt.NDArray[np.int64],
        npt.NDArray[np.float64],
        npt.NDArray[np.object_],
        npt.NDArray[np.uint8],
    ]:
        """The rows from ``since`` on as blocks.

        Returns time, numeric values (rows by numeric tags), object values (rows by the
        other tags) and quality (rows by all tags). With ``copy=False`` the rows of a
        single chunk (a recording read from a file) come as views into it: for callers
        that only read them.
        """
        with self._lock:
            chunks = list(self._chunks)
            used = list(self._used)
        # Skip whole chunks before `since`, then trim the first one kept.
        skip = since
        while chunks and skip >= used[0]:
            skip -= used[0]
            chunks.pop(0)
            used.pop(0)
        if chunks and skip:
            chunks[0] = tuple(a[skip:] for a in chunks[0])
            used[0] -= skip
        if not chunks:
            return (
                np.empty(0, dtype=np.int64),
                np.empty((0, len(self._numeric_index))),
                np.empty((0, len(self._object_index)), dtype=object),
                np.empty((0, len(self.names)), dtype=np.uint8),
            )
        if not copy and len(chunks) == 1:
            k = used[0]
            return chunks[0][0][:k], chunks[0][1][:k], chunks[0][2][:k], chunks[0][3][:k]
        blocks = [
            np.concatenate([c[i][:k] for c, k in zip(chunks, used, strict=True)]) for i in range(4)
        ]
        return blocks[0], blocks[1], blocks[2], blocks[3]

    @property
    def numeric_index(self) -> npt.NDArray[np.intp]:
        """Positions of the numeric tags (columns of :meth:`matrix`'s value block)."""
        return self._numeric_index

    @property
    def used_nbytes(self) -> int:
        """Memory taken by the recorded rows (what :attr:`nbytes` holds, minus spare room)."""
        per_row = 8 + len(self.names) + 8 * len(self._numeric_index) + 8 * len(self._object_index)
        return self._rows * per_row

    @property
    def nbytes(self) -> int:
        """Memory held by the buffers."""
        total = 0
        for chunk in self._chunks:
            total += sum(a.nbytes for a in chunk)
        return total

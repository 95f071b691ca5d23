"""The spool segment: frames read back bit for bit, a torn or damaged tail is left out."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import bifrost as bf
from bifrost.recording import spool
from bifrost.recording.journal import Journal, UnreadableRecording, scan_runs

BASE = 1_700_000_000_000_000_000


def rows(n: int, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    times = BASE + np.cumsum(rng.integers(1, 10**7, n))
    numbers = rng.normal(size=(n, k))
    numbers[rng.random((n, k)) < 0.2] = np.nan
    quality = rng.integers(0, 256, (n, k)).astype(np.uint8)
    return times, numbers, quality


def test_a_rows_frame_reads_back_bit_for_bit(tmp_path: Path):
    times, numbers, quality = rows(50, 4)
    numbers[3, 1] = -0.0
    numbers[4, 2] = np.frombuffer(np.uint64(0x7FF8_0000_DEAD_BEEF).tobytes(), np.float64)[0]
    before = numbers.copy()
    objects = pa.table({"s": pa.array([None if i % 3 else f"v{i}" for i in range(50)])})
    path = tmp_path / spool.segment_name(0)
    path.write_bytes(
        spool.encode_header({"run_id": "r"})
        + spool.encode_rows(times, numbers, objects, quality)
        + spool.encode_rows(times[:1], numbers[:1], None, quality[:1])
    )
    np.testing.assert_array_equal(numbers.view(np.uint64), before.view(np.uint64))
    segment = spool.read_segment(path)
    assert segment.headers == [{"run_id": "r"}]
    assert (segment.rows, segment.dropped) == (51, 0)
    first, second = segment.decode()
    np.testing.assert_array_equal(first.times, times)
    np.testing.assert_array_equal(first.numbers.view(np.uint64), numbers.view(np.uint64))
    np.testing.assert_array_equal(first.quality, quality)
    assert first.objects is not None
    assert first.objects.equals(objects)
    np.testing.assert_array_equal(second.times, times[:1])
    assert second.objects is None


def test_a_frame_cut_anywhere_leaves_every_complete_frame(tmp_path: Path):
    times, numbers, quality = rows(20, 3)
    head = spool.encode_header({"run_id": "r"})
    first = spool.encode_rows(times[:10], numbers[:10], None, quality[:10])
    last = spool.encode_rows(times[10:], numbers[10:], None, quality[10:])
    path = tmp_path / spool.segment_name(0)
    for cut in range(len(last)):
        path.write_bytes(head + first + last[:cut])
        segment = spool.read_segment(path)
        assert (segment.rows, segment.dropped) == (10, cut)
        (block,) = segment.decode()
        np.testing.assert_array_equal(block.times, times[:10])


def test_a_damaged_frame_is_where_reading_stops(tmp_path: Path):
    times, numbers, quality = rows(20, 3)
    frames = [
        spool.encode_header({"run_id": "r"}),
        spool.encode_rows(times[:10], numbers[:10], None, quality[:10]),
        spool.encode_rows(times[10:], numbers[10:], None, quality[10:]),
    ]
    damaged = bytearray(frames[2])
    damaged[-3] ^= 0xFF
    path = tmp_path / spool.segment_name(0)
    path.write_bytes(frames[0] + frames[1] + bytes(damaged))
    segment = spool.read_segment(path)
    assert segment.rows == 10
    assert segment.dropped == len(damaged)


def test_a_file_that_is_no_segment_is_a_bifrost_error_naming_it(tmp_path: Path):
    parts = tmp_path / "run.parquet.parts"
    parts.mkdir()
    (parts / spool.segment_name(3)).write_bytes(b"not a spool at all")
    with pytest.raises(UnreadableRecording, match=r"segment-000003\.spool.*move it out"):
        scan_runs(parts)


def header(names: list[str], dtypes: list[str], **metadata: object) -> dict[str, object]:
    return {
        "format_version": 1,
        "tags": [{"name": n, "address": f"mem:{n}"} for n in names],
        "dtypes": dtypes,
        "interval_s": 0.1,
        "metadata": metadata,
        "stats": {},
    }


def test_a_journal_writes_one_segment_with_the_header_once_and_its_changes(tmp_path: Path):
    path = tmp_path / "run.parquet"
    names, dtypes = ["a", "s", "n"], ["float64", "string[8]", "uint16"]
    journal = Journal(path, header(names, dtypes, step="none"))
    times, numbers, quality = rows(30, 2)
    quality[:] = bf.Quality.GOOD
    numbers[:, 1] = np.arange(30)
    strings = np.array([[f"x{i}" if i % 2 else None] for i in range(30)], dtype=object)
    try:
        journal.append(times[:10], numbers[:10], strings[:10], quality[:10, [0, 0, 1]])
        journal.update_header(header(names, dtypes, step="seen"))
        journal.append(times[10:], numbers[10:], strings[10:], quality[10:, [0, 0, 1]])
        journal.drain()
        assert journal.rows_written == 30
        (run,) = scan_runs(journal.directory)
        assert [p.name for p in run.parts] == [spool.segment_name(0)]
        assert run.header["metadata"] == {"step": "seen"}
        segment = spool.read_segment(run.parts[0])
        assert len(segment.headers) == 2
        assert journal.bytes_written == run.parts[0].stat().st_size
    finally:
        journal.close()
    recovered = bf.open_recording(journal.directory)
    frame = recovered.to_pandas()
    np.testing.assert_array_equal(frame.index.asi8, times)
    np.testing.assert_array_equal(frame["a"].to_numpy(), numbers[:, 0])
    assert str(frame["n"].dtype) == "Int64"
    assert frame["n"].tolist() == list(range(30))
    strings_read = [None if pd.isna(v) else v for v in frame["s"]]
    assert strings_read == [f"x{i}" if i % 2 else None for i in range(30)]
    assert recovered.metadata["step"] == "seen"


def test_a_run_that_died_before_its_first_rows_leaves_nothing_to_recover(tmp_path: Path):
    path = tmp_path / "run.parquet"
    parts = tmp_path / "run.parquet.parts"
    parts.mkdir()
    (parts / spool.segment_name(0)).write_bytes(
        spool.encode_header({**header(["a"], ["float64"]), "run_id": "x"})
    )
    assert bf.recording.recover(path) == []
    assert not parts.exists()

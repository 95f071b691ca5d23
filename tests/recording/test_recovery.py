"""Parts folders on disk: runs of different tag lists, damaged files, locks, recovery."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

import bifrost as bf
from bifrost.recording import journal
from bifrost.recording.journal import (
    Journal,
    RecordingInUse,
    RecoveryWarning,
    StorageError,
    UnreadableRecording,
    is_locked,
    recover,
    rows_table,
    scan_runs,
)

BASE = 1_700_000_000_000_000_000


def head(names: list[str], dtypes: list[str], started: str) -> dict[str, object]:
    return {
        "format_version": 1,
        "tags": [{"name": n, "address": n} for n in names],
        "dtypes": dtypes,
        "interval_s": 0.1,
        "metadata": {"started": started},
        "stats": {},
    }


def block(names: list[str], dtypes: list[str], start: int, rows: int) -> pa.Table:
    times = np.array([BASE + (start + i) * 100_000_000 for i in range(rows)], dtype=np.int64)
    columns = []
    for dtype in dtypes:
        if dtype.startswith("string"):
            columns.append(np.array([f"R{start + i}" for i in range(rows)], dtype=object))
        else:
            columns.append(np.arange(start, start + rows, dtype=np.float64))
    quality = np.zeros((rows, len(names)), dtype=np.uint8)
    return rows_table(names, times, columns, quality)


def write_part(directory: Path, number: int, table: pa.Table, header: dict[str, object]) -> None:
    directory.mkdir(exist_ok=True)
    meta = {b"bifrost": json.dumps(header).encode()}
    journal.write_atomic(
        table.replace_schema_metadata(meta), directory / f"part-{number:06d}.parquet"
    )


def legacy_two_runs(tmp_path: Path) -> Path:
    """What the old journal left after crash, restart with other tags, crash: one folder."""
    parts = tmp_path / "run.parquet.parts"
    first = head(["a", "b"], ["float64", "uint16"], "first")
    second = head(["c", "s", "d"], ["float32", "string[8]", "bool"], "second")
    write_part(parts, 0, block(["a", "b"], ["float64", "uint16"], 0, 20), first)
    write_part(parts, 1, block(["a", "b"], ["float64", "uint16"], 20, 19), first)
    write_part(parts, 2, block(["c", "s", "d"], ["float32", "string[8]", "bool"], 100, 7), second)
    return parts


def test_a_folder_with_two_runs_of_other_tags_is_split_not_mixed(tmp_path: Path):
    parts = legacy_two_runs(tmp_path)
    with pytest.raises(bf.ConfigurationError, match=r"2 recordings.*recover\(") as info:
        bf.open_recording(tmp_path / "run.parquet")
    assert "run.parquet.parts" in str(info.value)
    written = recover(tmp_path / "run.parquet")
    assert len(written) == 2
    assert not parts.exists()
    first, second = (bf.open_recording(p) for p in written)
    assert first.names == ["a", "b"]
    assert len(first) == 39
    assert first.to_pandas()["a"].tolist() == list(range(39))
    assert second.names == ["c", "s", "d"]
    assert second.to_pandas()["s"].tolist() == [f"R{i}" for i in range(100, 107)]
    assert first.metadata["recovered_from"] == str(parts)
    assert all(Path(p).name.startswith("run.recovered-2023") for p in written)


def test_parts_of_one_run_with_different_column_types_recover(tmp_path: Path):
    # A string tag without a single value during a flush has a null-typed column there.
    names, dtypes = ["level", "recipe"], ["float64", "string[8]"]
    header = head(names, dtypes, "now")
    empty = rows_table(
        names,
        np.array([BASE, BASE + 1], dtype=np.int64),
        [np.array([1.0, 2.0]), np.array([None, None], dtype=object)],
        np.array([[0, 133], [0, 133]], dtype=np.uint8),
    )
    parts = tmp_path / "run.parquet.parts"
    write_part(parts, 0, empty, header)
    write_part(parts, 1, block(names, dtypes, 5, 3), header)
    rec = bf.open_recording(tmp_path / "run.parquet")
    frame = rec.to_pandas()
    assert frame["recipe"].isna().tolist() == [True, True, False, False, False]
    assert frame["recipe"].tolist()[2:] == ["R5", "R6", "R7"]
    assert rec.quality_frame()["recipe"].tolist()[:2] == ["bad_no_data"] * 2
    assert frame["level"].tolist() == [1.0, 2.0, 5.0, 6.0, 7.0]


def test_a_damaged_file_is_a_bifrost_error_naming_it(tmp_path: Path):
    broken = tmp_path / "run.parquet"
    broken.write_bytes(b"PAR1 this is not parquet")
    with pytest.raises(UnreadableRecording, match=r"run\.parquet") as info:
        bf.open_recording(broken)
    assert isinstance(info.value, bf.BifrostError)
    plain = tmp_path / "plain.parquet"
    journal.write_atomic(pa.table({"x": [1, 2]}), plain)
    with pytest.raises(UnreadableRecording, match="not a bifrost recording"):
        bf.open_recording(plain)
    parts = tmp_path / "cut.parquet.parts"
    parts.mkdir()
    (parts / "part-000000.parquet").write_bytes(b"garbage")
    with pytest.raises(UnreadableRecording, match=r"part-000000\.parquet.*move it out"):
        bf.open_recording(tmp_path / "cut.parquet")


def test_columns_that_disagree_with_the_header_are_a_bifrost_error(tmp_path: Path):
    path = tmp_path / "run.parquet"
    header = head(["a", "missing"], ["float64", "float64"], "x")
    table = block(["a"], ["float64"], 0, 3)
    journal.write_atomic(
        table.replace_schema_metadata({b"bifrost": json.dumps(header).encode()}), path
    )
    with pytest.raises(UnreadableRecording, match="do not match its bifrost metadata"):
        bf.open_recording(path)


def test_values_parquet_cannot_hold_are_a_storage_error_naming_the_tag():
    with pytest.raises(StorageError, match="'mixed'"):
        rows_table(
            ["mixed"],
            np.array([BASE, BASE + 1], dtype=np.int64),
            [np.array([1, "a"], dtype=object)],
            np.zeros((2, 1), dtype=np.uint8),
        )


def test_a_new_journal_recovers_stale_parts_aside_before_writing(tmp_path: Path):
    parts = legacy_two_runs(tmp_path)
    path = tmp_path / "run.parquet"
    names, dtypes = ["x"], ["float64"]
    new = Journal(path, head(names, dtypes, "third"))
    try:
        new.submit(block(names, dtypes, 500, 4))
        new.drain()
        assert len(new.recovered) == 2
        assert len(new.notices) == 2
        assert str(new.recovered[0]) in new.notices[0]
        assert str(path) in new.notices[0]
        runs = scan_runs(parts)
        assert [r.rows for r in runs] == [4]  # only the new run is left in the folder
        assert bf.open_recording(parts).names == ["x"]
        new.discard()
    finally:
        new.close()
    assert not parts.exists()
    assert sorted(len(bf.open_recording(p)) for p in new.recovered) == [7, 39]


def test_a_recovery_cut_short_is_not_recovered_twice(tmp_path: Path):
    parts = legacy_two_runs(tmp_path)
    copy = tmp_path / "copy"
    shutil.copytree(parts, copy)
    first = recover(tmp_path / "run.parquet")
    # As if the process died after writing the files and before removing the parts.
    shutil.copytree(copy, parts)
    second = recover(tmp_path / "run.parquet")
    assert sorted(second) == sorted(first)
    assert len(list(tmp_path.glob("run.recovered-*.parquet"))) == 2
    assert not parts.exists()
    # As if it died while removing them: the last parts of a run go first.
    parts.mkdir()
    shutil.copy(copy / "part-000000.parquet", parts)
    assert recover(tmp_path / "run.parquet") == [min(first)]
    assert len(list(tmp_path.glob("run.recovered-*.parquet"))) == 2
    assert sorted(len(bf.open_recording(p)) for p in first) == [7, 39]


def test_a_failed_recovery_keeps_the_old_parts_beside_the_new_ones(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
):
    parts = legacy_two_runs(tmp_path)
    path = tmp_path / "run.parquet"
    original = journal.write_atomic

    def no_room_for_recovered_files(table: pa.Table, target: Path) -> None:
        if ".recovered-" in target.name:
            raise StorageError(f"the disk holding {str(target)!r} is full")
        original(table, target)

    monkeypatch.setattr(journal, "write_atomic", no_room_for_recovered_files)
    new = Journal(path, head(["x"], ["float64"], "third"))
    try:
        new.submit(block(["x"], ["float64"], 500, 4))
        new.drain()
        assert new.recovered == []
        assert any("could not be recovered" in n and "recover(" in n for n in new.notices)
        assert sorted(r.rows for r in scan_runs(parts)) == [4, 7, 39]
        new.discard()
    finally:
        new.close()
    monkeypatch.undo()
    assert sorted(r.rows for r in scan_runs(parts)) == [7, 39]
    assert sorted(len(bf.open_recording(p)) for p in recover(path)) == [7, 39]


def test_a_path_being_recorded_is_refused_and_free_again_afterwards(tmp_path: Path):
    path = tmp_path / "run.parquet"
    first = Journal(path, head(["x"], ["float64"], "first"))
    try:
        assert is_locked(first.directory)
        with pytest.raises(RecordingInUse, match=rf"process {os.getpid()}.*run\.parquet"):
            Journal(path, head(["x"], ["float64"], "second"))
        with pytest.raises(RecordingInUse):
            recover(path)
        first.submit(block(["x"], ["float64"], 0, 3))
        first.drain()
    finally:
        first.close()
    assert not is_locked(first.directory)
    # The final file is there and the parts of a run that died next to it.
    journal.write_atomic(
        block(["x"], ["float64"], 0, 1).replace_schema_metadata(
            {b"bifrost": json.dumps(head(["x"], ["float64"], "older")).encode()}
        ),
        path,
    )
    with pytest.warns(RecoveryWarning, match="did not end"):
        older = bf.open_recording(path)
    assert len(older) == 1
    second = Journal(path, head(["x"], ["float64"], "second"))
    try:
        second.drain()
        assert [len(bf.open_recording(p)) for p in second.recovered] == [3]
    finally:
        second.close()


def test_a_folder_with_legacy_parts_and_a_spool_segment_recovers_every_run(tmp_path: Path):
    path = tmp_path / "run.parquet"
    crashed = Journal(path, head(["x"], ["float64"], "third"))
    crashed.submit(block(["x"], ["float64"], 500, 4))
    crashed.drain()
    crashed.close()  # as if its process died: the segment stays, nobody holds it
    (segment,) = crashed.directory.glob("segment-*.spool")
    with open(segment, "ab") as torn:  # and its last write was cut short
        torn.write(b"BFS1\x02")
    parts = legacy_two_runs(tmp_path)  # beside what an older version left
    assert sorted(r.rows for r in scan_runs(parts)) == [4, 7, 39]
    written = recover(path)
    assert not parts.exists()
    recovered = sorted((bf.open_recording(p) for p in written), key=len)
    assert [len(r) for r in recovered] == [4, 7, 39]
    assert recovered[0].metadata["spool_dropped_bytes"] == 5
    expected = block(["x"], ["float64"], 500, 4)["x"].to_pylist()
    assert recovered[0].to_pandas()["x"].tolist() == expected

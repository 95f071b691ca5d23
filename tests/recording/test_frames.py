"""One way to build DataFrames, one direction of imports between the recording modules."""

from __future__ import annotations

import grimp
import numpy as np
import pandas as pd

from bifrost.frames import ReadLayout, read_frame
from bifrost.model import Quality, Tag
from bifrost.recording import Recording
from bifrost.results import ReadResult

TAGS = (
    Tag("level", "hr:0:float32", unit="m"),
    Tag("count", "hr:2:uint32"),
    Tag("alarm", "di:0"),
    Tag("recipe", "hr:10:string[8]"),
)
DTYPES = ["float32", "uint32", "bool", "string[8]"]
STAMP = 1_700_000_000_000_000_000


def read_of(level: float, count: int, alarm: bool, recipe: str, bad: bool) -> ReadResult:
    quality = np.zeros(4, dtype=np.uint8)
    if bad:
        quality[1] = Quality.BAD_TIMEOUT
    return ReadResult(
        TAGS,
        [
            (np.array([0]), np.array([level], dtype=np.float32)),
            (np.array([1]), np.array([count], dtype=np.uint32)),
            (np.array([2]), np.array([alarm])),
            (np.array([3]), np.array([recipe], dtype=object)),
        ],
        quality,
        np.full(4, STAMP, dtype=np.int64),
    )


def test_a_read_and_a_tidy_recording_hold_the_same_values_and_types():
    reads = [read_of(1.5, 7, True, "R1", False), read_of(2.5, 8, False, "R2", True)]
    rec = Recording(TAGS, DTYPES, 0.1)
    for k, result in enumerate(reads):
        rec.buffer.append(STAMP + k, result.as_float(), result.values(), result.quality)
    tidy = rec.to_pandas(long=True)
    layout = ReadLayout(TAGS)
    for k, result in enumerate(reads):
        frame = read_frame(result, layout)
        rows = tidy[tidy["time"] == pd.Timestamp(STAMP + k, tz="UTC")].set_index("tag")
        rows = rows.loc[list(frame.index)]
        for name in frame.index:
            read_value, recorded = frame.loc[name, "value"], rows.loc[name, "value"]
            assert type(read_value) is type(recorded), name
            assert read_value == recorded or (read_value is None and recorded is None), name
        assert frame["quality"].dtype == tidy["quality"].dtype
        assert list(frame["quality"]) == list(rows["quality"])
        assert frame["timestamp"].dtype == tidy["time"].dtype
    assert tidy.loc[(tidy["tag"] == "count"), "value"].tolist() == [7, None]


def test_wide_frames_keep_nullable_types_and_units():
    rec = Recording(TAGS, DTYPES, 0.1)
    result = read_of(1.5, 7, True, "R1", True)
    rec.buffer.append(STAMP, result.as_float(), result.values(), result.quality)
    frame = rec.to_pandas()
    assert str(frame["count"].dtype) == "Int64"
    assert frame["count"].isna().all()
    assert str(frame["alarm"].dtype) == "boolean"
    assert frame.attrs["units"]["level"] == "m"
    assert rec.quality_frame().index.equals(frame.index)


def test_the_session_does_not_import_the_store():
    graph = grimp.build_graph("bifrost")
    below = {
        "bifrost.recording.session": "bifrost.recording.store",
        "bifrost.recording.formats": "bifrost.recording.session",
        "bifrost.recording.journal": "bifrost.recording.session",
        "bifrost.clock": "bifrost.recording",
    }
    for importer, imported in below.items():
        assert graph.find_shortest_chain(importer, imported) is None, (importer, imported)


def recorded(rows: int) -> Recording:
    rec = Recording(TAGS, DTYPES, 0.1)
    rng = np.random.default_rng(3)
    for k in range(rows):
        result = read_of(
            float(rng.normal()), int(rng.integers(0, 2**32)), bool(k % 3), f"R{k}", k % 4 == 0
        )
        rec.buffer.append(STAMP + k, result.as_float(), result.values(), result.quality)
    return rec


def test_a_reopened_recording_has_the_frame_each_column_converted_alone_gives(tmp_path):
    import bifrost as bf
    from bifrost.frames import typed_column

    rec = recorded(40)
    rec.save(tmp_path / "r.parquet")
    frame = bf.open_recording(tmp_path / "r.parquet").to_pandas()
    times, columns, _ = rec.buffer.arrays()
    oracle = pd.DataFrame(
        {t.name: typed_column(c, d) for t, c, d in zip(TAGS, columns, DTYPES, strict=True)},
        index=pd.DatetimeIndex(times.view("datetime64[ns]"), tz="UTC", name="time"),
    )
    pd.testing.assert_frame_equal(frame, oracle, check_freq=False)
    assert frame["count"].isna().sum() == 10  # the bad rows, and only them


def test_integer_only_frames_do_not_share_memory_with_the_recording(tmp_path):
    import bifrost as bf

    tags = [Tag(f"n{i}", f"hr:{i}") for i in range(3)]
    rec = Recording(tags, ["uint16"] * 3, 0.1)
    rec.buffer.extend(
        np.arange(5, dtype=np.int64) + STAMP,
        np.arange(15, dtype=float).reshape(5, 3),
        np.empty((5, 3), dtype=object),
        np.zeros((5, 3), dtype=np.uint8),
    )
    rec.save(tmp_path / "n.parquet")
    reopened = bf.open_recording(tmp_path / "n.parquet")
    frame = reopened.to_pandas()
    frame.iloc[0, 0] = 99
    assert reopened.to_pandas().iloc[0, 0] == 0
    assert frame.index.equals(reopened.to_pandas().index)


def test_a_recording_of_known_length_allocates_what_its_rows_take():
    tags = [Tag(f"t{i}", f"hr:{i}") for i in range(500)]
    rec = Recording(tags, ["float64"] * 500, 0.01)
    rec.buffer.expect(300)
    values, quality = np.zeros(500), np.zeros(500, dtype=np.uint8)
    rec.buffer.append(STAMP, values, None, quality)
    assert rec.buffer.nbytes <= 70 << 10  # the first chunk: ~64 KiB, not 2 MiB
    for k in range(1, 300):
        rec.buffer.append(STAMP + k, values, None, quality)
    assert rec.buffer.nbytes == rec.buffer.used_nbytes
    rec.buffer.append(STAMP + 300, values, None, quality)  # one more than expected
    assert len(rec) == 301

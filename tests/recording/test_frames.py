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

"""CSV recordings: written by bifrost convert, read back with the same values, or refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import bifrost as bf
from bifrost.model import Quality, Tag
from bifrost.recording import Recording, UnreadableRecording
from bifrost.recording.csvfile import CsvRecordingError, read_csv, write_csv

BASE = 1_700_000_000_000_000_000
FLOATS = [0.1, -0.0, 1e-300, 5e-324, 1.7976931348623157e308, float(np.float32(0.1)), np.inf]
STRINGS = ["R1", "", 'say "hi", then,\nleave', "über", "007", " padded "]


def varied(rows: int = 40) -> Recording:
    """Every dtype, odd values, ns times, a bad row, NaN and uncertain samples."""
    tags = [
        Tag("level", "hr:0:float32", unit="m"),
        Tag("count", "hr:2:int64"),
        Tag("alarm", "di:0"),
        Tag("recipe", "hr:10:string[8]"),
        Tag("wave", "ns=2;s=Pump.Vibration"),
    ]
    rec = Recording(tags, ["float64", "int64", "bool", "string[8]", "float64[]"], 0.25)
    rng = np.random.default_rng(7)
    for i in range(rows):
        big = 2**53 if i % 5 == 0 else -(i**3)
        values = np.array([FLOATS[i % len(FLOATS)] * rng.normal(), big, i % 3 == 0, 0, 0], float)
        wave = rng.normal(size=3) if i % 4 else None
        objects = np.array([None, None, None, STRINGS[i % len(STRINGS)], wave], dtype=object)
        quality = np.zeros(len(tags), dtype=np.uint8)
        if i == 7:
            values[0] = np.nan  # a good sample without a value
        if i == 11:
            quality[:] = Quality.BAD_TIMEOUT
            values[:] = np.nan
            objects[:] = None
        if i == 12:
            quality[1] = Quality.UNCERTAIN_CLOCK
        rec.buffer.append(BASE + i * 250_000_000 + i, values, objects, quality)
    rec._finished.set()
    return rec


def assert_same_samples(back: Recording, rec: Recording) -> None:
    pd.testing.assert_frame_equal(back.quality_frame(), rec.quality_frame(), check_freq=False)
    ours, theirs = back.to_pandas(), rec.to_pandas()
    assert list(ours.columns) == list(theirs.columns)
    for name in theirs.columns:
        if name == "wave":
            for got, want in zip(ours[name], theirs[name], strict=True):
                assert (got is None) == (want is None)
                if want is not None:
                    np.testing.assert_array_equal(got, want)
        else:
            pd.testing.assert_series_equal(ours[name], theirs[name], check_freq=False)
    np.testing.assert_array_equal(back.buffer.arrays()[0], rec.buffer.arrays()[0])


def test_every_dtype_round_trips_through_csv(tmp_path: Path):
    rec = varied()
    path = write_csv(rec, tmp_path / "run.csv")
    back = bf.open_recording(path)
    assert back.names == rec.names
    assert back.dtypes == ["float64", "int64", "bool", "string", "float64[]"]
    assert_same_samples(back, rec)
    frame = back.to_pandas()
    assert str(frame["count"].dtype) == "Int64"
    assert str(frame["alarm"].dtype) == "boolean"
    assert frame["count"].iloc[0] == 2**53
    assert frame["recipe"].iloc[4] == "007"  # text that looks like a number stays text
    assert frame["recipe"].iloc[1] == ""  # an empty string of a good sample
    assert pd.isna(frame["recipe"].iloc[11])  # the bad row has no value
    assert np.isnan(frame["level"].iloc[7])
    assert back.interval_s == pytest.approx(0.25, abs=1e-8)
    assert back.metadata == {"imported_from": str(path)}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.csv"]


def test_times_keep_nanoseconds_and_utc(tmp_path: Path):
    rec = varied(3)
    path = write_csv(rec, tmp_path / "run.csv")
    assert "22:13:20.250000001+00:00" in Path(path).read_text()
    index = bf.open_recording(path).to_pandas().index
    assert str(index.tz) == "UTC"
    assert index[1].value == BASE + 250_000_001


def test_a_csv_converts_to_parquet_with_the_same_samples(tmp_path: Path):
    rec = varied()
    csv = write_csv(rec, tmp_path / "run.csv")
    parquet = bf.open_recording(csv).save(tmp_path / "run.parquet")
    back = bf.open_recording(parquet)
    assert_same_samples(back, rec)
    assert back.dtypes[1] == "int64"
    assert back.metadata["imported_from"] == csv


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "hand.csv"
    path.write_text(text, encoding="utf-8")
    return path


HEAD = "time,a,a.quality\n"
T0 = "2024-05-01T12:00:00+00:00"
T1 = "2024-05-01T12:00:01+00:00"


def test_types_follow_the_cells_or_the_dtypes_given(tmp_path: Path):
    path = write(tmp_path, f"{HEAD}{T0},1,good\n{T1},2,bad_timeout\n")
    assert read_csv(path).dtypes == ["int64"]
    as_text = read_csv(path, dtypes={"a": "string"})
    assert as_text.to_pandas()["a"].iloc[0] == "1"
    assert pd.isna(as_text.to_pandas()["a"].iloc[1])
    as_float = read_csv(path, dtypes={"a": "float32"})
    assert as_float.dtypes == ["float32"]
    assert as_float.to_pandas()["a"].iloc[0] == 1.0
    floats = write(tmp_path, f"{HEAD}{T0},1,good\n{T1},2.5,good\n")
    assert read_csv(floats).dtypes == ["float64"]
    empty = write(tmp_path, f"{HEAD}{T0},,bad\n")
    assert read_csv(empty).dtypes == ["float64"]
    header_only = read_csv(write(tmp_path, HEAD))
    assert len(header_only) == 0


def test_a_column_mixing_types_is_refused_until_its_type_is_given(tmp_path: Path):
    path = write(tmp_path, f"{HEAD}{T0},R1,good\n{T1},100,good\n")
    with pytest.raises(CsvRecordingError) as caught:
        read_csv(path)
    message = str(caught.value)
    assert str(path) in message
    assert "line 3, column 'a': '100' is a number but 'R1' on line 2 is text" in message
    assert "--dtype a=string" in message
    assert list(read_csv(path, dtypes={"a": "string"}).to_pandas()["a"]) == ["R1", "100"]
    hand_edited = write(tmp_path, f"{HEAD}{T0},1.50,good\n{T1},01.5,good\n")
    with pytest.raises(CsvRecordingError, match=r"line 3, column 'a': '01\.5' is text"):
        read_csv(hand_edited)
    assert list(read_csv(hand_edited, dtypes={"a": "float64"}).to_pandas()["a"]) == [1.5, 1.5]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("a,a.quality\n1,good\n", r"line 1: no 'time' column \(columns: a, a.quality\)"),
        ("time,a\n" + T0 + ",1\n", r"line 1: column 'a' has no 'a.quality' column"),
        ("time,a,a.quality,b.quality\n" + T0 + ",1,good,good\n", r"column 'b.quality' has no"),
        ("time,a,a,a.quality\n", r"line 1: the column\(s\) 'a' appear more than once"),
        (HEAD + T0 + ",1,good\n" + T1 + ",2,fine\n", r"line 3, column 'a.quality': 'fine' is not"),
        (HEAD + T0 + ",1,good\nyesterday,2,good\n", r"line 3, column 'time': 'yesterday' is not"),
        (HEAD + "2024-05-01T12:00:00,1,good\n", r"line 2, column 'time': '2024-05-01T12:00:00'"),
        (HEAD + T1 + ",1,good\n" + T0 + ",2,good\n", r"line 3, column 'time': .* is not after"),
        (
            HEAD + T0 + ",1,good\n" + T1 + ",2,good,3\n",
            r"line 3: 4 fields where the header names 3",
        ),
        (HEAD + T0 + ",1,good\n" + T1 + ",True,good\n", r"line 3, column 'a': 'True' is a bool"),
        (HEAD + T0 + ',"[1, x]",good\n', r"line 2, column 'a': '\[1, x\]' is not an array"),
        ("", r"cannot read it as CSV"),
    ],
)
def test_bad_csv_names_file_line_column_and_value(tmp_path: Path, text: str, expected: str):
    path = write(tmp_path, text)
    with pytest.raises(CsvRecordingError, match=expected) as caught:
        bf.open_recording(path)
    assert str(path) in str(caught.value)
    assert "\n" not in str(caught.value)
    assert isinstance(caught.value, UnreadableRecording)
    assert isinstance(caught.value, bf.ConfigurationError)


def test_a_declared_type_refuses_cells_it_cannot_hold(tmp_path: Path):
    path = write(tmp_path, f"{HEAD}{T0},7,good\n{T1},abc,good\n")
    with pytest.raises(CsvRecordingError, match=r"line 3, column 'a': 'abc' is not a int64"):
        read_csv(path, dtypes={"a": "int64"})
    with pytest.raises(CsvRecordingError, match=r"line 2, column 'a': '7' is not a bool"):
        read_csv(write(tmp_path, f"{HEAD}{T0},7,good\n"), dtypes={"a": "bool"})
    with pytest.raises(CsvRecordingError, match=r"'300' is not a uint8 value"):
        read_csv(write(tmp_path, f"{HEAD}{T0},300,good\n"), dtypes={"a": "uint8"})
    with pytest.raises(CsvRecordingError, match="cannot hold exactly"):
        read_csv(write(tmp_path, f"{HEAD}{T0},9007199254740993,good\n"))
    with pytest.raises(CsvRecordingError, match="'complex' for 'a' is not one bifrost records"):
        read_csv(path, dtypes={"a": "complex"})
    with pytest.raises(CsvRecordingError, match="dtype given for 'b'"):
        read_csv(path, dtypes={"b": "string"})


def test_line_numbers_count_line_breaks_inside_quoted_cells(tmp_path: Path):
    text = f'time,s,s.quality\n{T0},"two\nlines",good\n{T1},x,nope\n'
    with pytest.raises(CsvRecordingError, match=r"line 4, column 's.quality': 'nope'"):
        read_csv(write(tmp_path, text))


def test_missing_csv_is_a_configuration_error(tmp_path: Path):
    with pytest.raises(bf.ConfigurationError, match="no recording"):
        bf.open_recording(tmp_path / "missing.csv")


def test_a_file_that_is_not_utf8_is_refused_naming_it(tmp_path: Path):
    path = tmp_path / "latin1.csv"
    path.write_bytes(f"{HEAD}{T0},".encode() + b"Gr\xfcn,good\n")
    with pytest.raises(CsvRecordingError, match=r"cannot read it as CSV.*UTF-8") as caught:
        bf.open_recording(path)
    assert str(path) in str(caught.value)

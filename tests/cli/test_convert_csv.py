"""bifrost convert reads CSV back: same samples to Parquet, bad cells exit 2 in one line."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from cli_support import bifrost

import bifrost as bf
from bifrost.model import Quality, Tag
from bifrost.recording import Recording

T0 = "2024-05-01T12:00:00+00:00"
T1 = "2024-05-01T12:00:01.000000001+00:00"


def recording() -> Recording:
    tags = [Tag("level", "hr:0:float32"), Tag("count", "hr:2:uint32"), Tag("on", "di:0")]
    tags.append(Tag("recipe", "hr:10:string[8]"))
    rec = Recording(tags, ["float32", "uint32", "bool", "string[8]"], 0.1)
    for i in range(12):
        values = np.array([float(np.float32(i / 3)), i * 1000, i % 2, 0.0])
        objects = np.array([None, None, None, f"batch {i}"], dtype=object)
        quality = np.full(4, Quality.BAD_COMM_LOST if i == 5 else Quality.GOOD, dtype=np.uint8)
        if i == 5:
            values[:] = np.nan
            objects[:] = None
        rec.buffer.append(1_700_000_000_000_000_000 + i * 100_000_000 + 3, values, objects, quality)
    rec._finished.set()
    return rec


def test_parquet_to_csv_to_parquet_keeps_the_samples(tmp_path: Path):
    rec = recording()
    first = rec.save(tmp_path / "run.parquet")
    text, back = tmp_path / "run.csv", tmp_path / "back.parquet"
    out = bifrost("convert", first, str(text))
    assert out.returncode == 0, out.stderr
    assert out.stderr.count("\n") == 1
    assert out.stderr.startswith("warning: a CSV holds times, values and qualities only")
    again = bifrost("convert", str(text), str(back))
    assert again.returncode == 0, again.stderr
    assert "units" in again.stderr
    assert "12 samples of 4 tags" in again.stdout
    converted = bf.open_recording(back)
    assert converted.dtypes == ["float64", "int64", "bool", "string"]
    pd.testing.assert_frame_equal(converted.to_pandas(), rec.to_pandas(), check_freq=False)
    pd.testing.assert_frame_equal(converted.quality_frame(), rec.quality_frame(), check_freq=False)
    np.testing.assert_array_equal(converted.buffer.arrays()[0], rec.buffer.arrays()[0])


def test_a_bad_cell_exits_2_with_one_line_naming_it(tmp_path: Path):
    bad = tmp_path / "bad.csv"
    bad.write_text(f"time,a,a.quality\n{T0},1,good\n{T1},2,gut\n")
    done = bifrost("convert", str(bad), str(tmp_path / "out.parquet"))
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1
    assert done.stderr.startswith(f"error: {bad}, line 3, column 'a.quality': 'gut' is not a")
    assert not (tmp_path / "out.parquet").exists()
    no_time = tmp_path / "no_time.csv"
    no_time.write_text("when,a,a.quality\nnow,1,good\n")
    done = bifrost("convert", str(no_time), str(tmp_path / "out.parquet"))
    assert done.returncode == 2
    assert "no 'time' column" in done.stderr


def test_dtype_names_the_type_of_an_ambiguous_column(tmp_path: Path):
    mixed = tmp_path / "mixed.csv"
    mixed.write_text(f"time,recipe,recipe.quality\n{T0},R1,good\n{T1},100,good\n")
    target = tmp_path / "out.parquet"
    refused = bifrost("convert", str(mixed), str(target))
    assert refused.returncode == 2
    assert "--dtype recipe=string" in refused.stderr
    done = bifrost("convert", str(mixed), str(target), "--dtype", "recipe=string")
    assert done.returncode == 0, done.stderr
    assert list(bf.open_recording(target).to_pandas()["recipe"]) == ["R1", "100"]
    not_csv = bifrost("convert", str(target), str(tmp_path / "x.nc"), "--dtype", "recipe=string")
    assert not_csv.returncode == 2
    assert "--dtype is for CSV sources" in not_csv.stderr
    malformed = bifrost("convert", str(mixed), str(tmp_path / "y.parquet"), "--dtype", "recipe")
    assert malformed.returncode == 2
    assert "write TAG=TYPE" in malformed.stderr

"""Recordings in memory and on disk: conversions and round trips of every format and dtype."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import bifrost as bf
from bifrost.model import Quality, Tag
from bifrost.recording import Recording

TAGS = [
    Tag("level", "hr:0:float32", unit="m", description="tank level"),
    Tag("count", "hr:2:uint32", unit="parts"),
    Tag("alarm", "di:0"),
    Tag("recipe", "hr:10:string[8]"),
    Tag("wave", "ns=2;s=Pump.Vibration", unit="mm/s"),
]
DTYPES = ["float32", "uint32", "bool", "string[8]", "float64[]"]


def synthetic(rows: int = 50) -> Recording:
    rec = Recording(TAGS, DTYPES, 0.1, {"protocol": "test", "url": "sim://"})
    base = 1_700_000_000_000_000_000
    rng = np.random.default_rng(3)
    for i in range(rows):
        values = np.array([rng.normal(), i, i % 3 == 0, np.nan, np.nan])
        objects = np.array(
            [None, None, None, f"R{i % 4}", rng.normal(size=4) if i % 7 else None], dtype=object
        )
        quality = np.zeros(len(TAGS), dtype=np.uint8)
        if i == 10:
            quality[:] = Quality.BAD_COMM_LOST
            values[:] = np.nan
            objects[:] = None
        rec.buffer.append(base + i * 100_000_000, values, objects, quality)
    rec._finished.set()
    return rec


def test_wide_frame_has_utc_index_and_kept_types():
    frame = synthetic().to_pandas()
    assert str(frame.index.tz) == "UTC"
    assert list(frame.columns) == [t.name for t in TAGS]
    assert str(frame["count"].dtype) == "Int64"
    assert str(frame["alarm"].dtype) == "boolean"
    assert frame["count"].isna().sum() == 1  # the gap row
    assert frame["recipe"].iloc[1] == "R1"
    assert frame.attrs["units"]["level"] == "m"


def test_long_frame_has_quality_per_value():
    tidy = synthetic(20).to_pandas(long=True)
    assert list(tidy.columns) == ["time", "tag", "value", "quality"]
    assert len(tidy) == 20 * len(TAGS)
    gap = tidy[tidy["time"] == tidy["time"].unique()[10]]
    assert set(gap["quality"]) == {"bad_comm_lost"}


def test_xarray_has_units_addresses_quality_and_array_dimension():
    ds = synthetic().to_xarray()
    assert ds["level"].attrs["units"] == "m"
    assert ds["level"].attrs["address"] == "hr:0:float32"
    assert ds["level"].attrs["description"] == "tank level"
    assert ds["level.quality"].dtype == np.uint8
    assert ds["wave"].dims == ("time", "wave.sample")
    assert ds["wave"].shape == (50, 4)
    assert ds.attrs["protocol"] == "test"


@pytest.mark.parametrize("suffix", [".parquet", ".zarr", ".nc"])
def test_every_format_round_trips(tmp_path: Path, suffix: str):
    rec = synthetic()
    path = rec.save(tmp_path / f"run{suffix}")
    back = bf.open_recording(path)
    pd.testing.assert_frame_equal(back.to_pandas(), rec.to_pandas(), check_freq=False)
    pd.testing.assert_frame_equal(back.quality_frame(), rec.quality_frame(), check_freq=False)
    assert [t.name for t in back.tags] == [t.name for t in rec.tags]
    assert back.tags[0].unit == "m"
    waves = back.to_pandas()["wave"]
    assert isinstance(waves.iloc[1], np.ndarray)
    np.testing.assert_array_equal(waves.iloc[1], rec.to_pandas()["wave"].iloc[1])
    assert back.metadata["protocol"] == "test"
    # Nothing half-written is left next to the final file.
    assert sorted(p.name for p in tmp_path.iterdir()) == [f"run{suffix}"]


def test_saving_replaces_an_older_file_atomically(tmp_path: Path):
    path = tmp_path / "run.parquet"
    synthetic(5).save(path)
    synthetic(8).save(path)
    assert len(bf.open_recording(path)) == 8


def test_unknown_suffix_and_missing_file_are_clear(tmp_path: Path):
    with pytest.raises(bf.ConfigurationError, match=r"\.parquet, \.zarr or \.nc"):
        synthetic(2).save(tmp_path / "run.csv")
    with pytest.raises(bf.ConfigurationError, match="no recording"):
        bf.open_recording(tmp_path / "missing.parquet")

"""record (to a file, interrupted by SIGINT), watch, convert: recordings from the shell."""

from __future__ import annotations

import csv
import json
import signal
import subprocess
from pathlib import Path

import numpy as np
import pytest
from cli_support import SCRIPT, CliPlant, bifrost
from waiting import wait_for

import bifrost as bf


def test_record_for_a_duration(cli_plant: CliPlant, tmp_path: Path):
    out = tmp_path / "run.parquet"
    args = ["tank.level", "line.counter", "-i", "50ms", "-d", "0.6", "-o", str(out)]
    done = bifrost("record", *cli_plant.args("opcua"), *args)
    assert done.returncode == 0, done.stderr
    rec = bf.open_recording(out)
    assert rec.names == ["tank.level", "line.counter"]
    assert 6 <= len(rec) <= 14
    with cli_plant.connect("opcua") as plc:
        level = plc.read_value("tank.level")
    assert np.allclose(rec.to_pandas()["tank.level"], level)  # the frozen plant's value
    assert f"{len(rec)} samples of 2 tags" in done.stdout


def test_sigint_stops_a_recording_and_keeps_the_file(cli_plant: CliPlant, tmp_path: Path):
    assert SCRIPT is not None
    out = tmp_path / "interrupted.nc"
    command = [SCRIPT, "record", *cli_plant.args("modbus"), "tank.level", "-i", "50ms"]
    with subprocess.Popen(
        [*command, "-o", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    ) as recorder:
        parts = out.with_name(out.name + ".parts")
        # Sampling has started once rows are on disk (the flush is every 1 s).
        started = wait_for(
            lambda: parts.is_dir() and any(p.name != "lock" for p in parts.iterdir()), timeout=30
        )
        recorder.send_signal(signal.SIGINT)
        stdout, stderr = recorder.communicate(timeout=30)
    assert started, stderr
    assert recorder.returncode == 0, stderr
    rec = bf.open_recording(out)
    assert len(rec) >= 10
    assert f"interrupted; {len(rec)} samples" in stdout
    assert not parts.exists()


def test_watch_prints_json_lines_and_a_table(cli_plant: CliPlant):
    tags = ["tank.level", "line.state"]
    done = bifrost("watch", *cli_plant.args("s7"), *tags, "-i", "100ms", "-d", "0.35", "--json")
    assert done.returncode == 0, done.stderr
    lines = [json.loads(line) for line in done.stdout.splitlines()]
    assert len(lines) >= 4
    assert len(lines) % 2 == 0  # one object per tag and cycle
    assert [r["tag"] for r in lines[:2]] == tags
    with cli_plant.connect("s7") as plc:
        level = plc.read_value("tank.level")
    levels = [r for r in lines if r["tag"] == "tank.level"]
    assert all(r["value"] == r["min"] == r["max"] == level for r in levels)
    assert all(r["quality"] == "good" and r["age_s"] >= 0 for r in lines)
    table = bifrost("watch", *cli_plant.args("s7"), "tank.level", "-i", "100ms", "-d", "0.3")
    assert table.returncode == 0, table.stderr
    row = next(line for line in table.stdout.splitlines() if line.startswith("tank.level"))
    assert f"{level:.6g}" in row
    assert "good" in row


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    with bf.sim.Plant(seed=2, realtime=False) as plant:
        plc = plant.connect("modbus")
        with plc:
            rec = plc.record(["tank.level", "line.counter"], interval="10ms", duration="0.2s")
    path = tmp_path_factory.mktemp("rec") / "run.parquet"
    rec.save(path)
    return path


def test_convert_between_formats_and_to_csv(recording: Path, tmp_path: Path):
    source = bf.open_recording(recording)
    zarr, nc, text = tmp_path / "run.zarr", tmp_path / "run.nc", tmp_path / "run.csv"
    for target in (zarr, nc, text):
        done = bifrost("convert", str(recording if target != nc else zarr), str(target))
        assert done.returncode == 0, done.stderr
    for target in (zarr, nc):
        converted = bf.open_recording(target)
        assert converted.names == source.names
        assert converted.to_pandas().equals(source.to_pandas())
    with text.open() as handle:
        rows = list(csv.DictReader(handle))
    assert len(rows) == len(source)
    assert list(rows[0]) == ["time", "tank.level", "tank.level.quality", "line.counter",
                             "line.counter.quality"]  # fmt: skip
    assert float(rows[0]["tank.level"]) == source.to_pandas()["tank.level"].iloc[0]
    assert rows[0]["time"].endswith("+00:00")
    again = bifrost("convert", str(recording), str(nc))
    assert again.returncode == 2
    assert "--force" in again.stderr
    back = bifrost("convert", str(text), str(tmp_path / "back.parquet"))
    assert back.returncode == 0, back.stderr
    assert bf.open_recording(tmp_path / "back.parquet").to_pandas().equals(source.to_pandas())

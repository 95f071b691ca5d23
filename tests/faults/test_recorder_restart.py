"""Recorders killed and restarted on one path: every run's samples stay recoverable."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
from waiting import wait_for

import bifrost as bf
from bifrost.recording.journal import RecoveryWarning, UnreadableRecording, scan_runs
from bifrost.sim import Plant

ROOT = Path(__file__).resolve().parents[2]

# Raw Modbus addresses of the simulated plant: floats, integers, strings and bits, so that
# consecutive runs have different columns and column types.
TAG_LISTS = [
    ["hr:0:float32", "ir:2:uint32"],
    ["hr:0:float32", "hr:16:string[16]", "di:0"],
    ["ir:5:uint16", "co:0", "hr:12:uint16", "hr:6:float32"],
    ["hr:16:string[16]"],
]

CHILD = textwrap.dedent(
    """
    import sys, warnings
    import bifrost as bf
    url, path, tags = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
    warnings.simplefilter("always")
    plc = bf.connect(url)
    rec = plc.record(tags, interval="10ms", background=True, path=path,
                     flush_interval="100ms")
    print("started", flush=True)
    sys.stdin.readline()  # the test says when to stop, or kills us first
    rec.stop()
    rec.wait(30)
    print(len(rec), flush=True)
    plc.close()
    """
)


@pytest.fixture(scope="module")
def plant():
    with Plant(seed=9) as plant:
        plant.serve(modbus=0)
        yield plant


def start_child(url: str, path: Path, tags: list[str]) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, url, str(path), ",".join(tags)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert child.stdout is not None
    line = child.stdout.readline().strip()
    if line != "started":
        child.kill()
        _, err = child.communicate(timeout=10)
        pytest.fail(f"the recorder did not start: {line!r} {err}")
    return child


def only_new_run(parts: Path, rows: int, old: set[str]) -> str | None:
    """The id of the one run in the folder if it is not in ``old`` and has ``rows``."""
    try:
        runs = scan_runs(parts) if parts.is_dir() else []
    except UnreadableRecording:
        return None  # a part was removed between listing and reading: look again
    if len(runs) == 1 and runs[0].run_id not in old and runs[0].rows >= rows:
        return runs[0].run_id
    return None


def rows_on_disk(parts: Path) -> tuple[int, np.ndarray]:
    rec = bf.open_recording(parts)
    return len(rec), rec.to_pandas().index.asi8


def recovered_files(tmp_path: Path) -> list[Path]:
    return sorted(tmp_path.glob("run.recovered-*.parquet"))


@pytest.mark.slow
def test_ten_crashes_and_restarts_on_one_path_lose_no_recorded_sample(plant, tmp_path: Path):
    url = plant.urls["modbus"]
    path = tmp_path / "run.parquet"
    parts = tmp_path / "run.parquet.parts"
    rng = random.Random(11)
    crashed: list[tuple[list[str], int, np.ndarray]] = []
    old: set[str] = set()
    for k in range(10):
        tags = TAG_LISTS[k % len(TAG_LISTS)]
        child = start_child(url, path, tags)
        try:
            # The run before this one is recovered first; then this one's rows land.
            assert wait_for(lambda n=k: len(recovered_files(tmp_path)) == n, timeout=30)
            assert wait_for(lambda: only_new_run(parts, 10, old), timeout=30)
            time.sleep(rng.uniform(0.0, 0.3))  # kill at a random point of the flush cycle
            os.kill(child.pid, signal.SIGKILL)
        finally:
            child.communicate(timeout=10)
        assert child.returncode == -signal.SIGKILL
        (run,) = scan_runs(parts)
        old.add(run.run_id)
        rows, times = rows_on_disk(parts)
        assert rows >= 10
        crashed.append((tags, rows, times))

    # An eleventh run ends normally: its own rows in the final file, nothing else.
    tags = TAG_LISTS[10 % len(TAG_LISTS)]
    child = start_child(url, path, tags)
    try:
        assert wait_for(lambda: len(recovered_files(tmp_path)) == 10, timeout=30)
        out, err = child.communicate("stop\n", timeout=60)
    finally:
        if child.returncode is None:
            child.kill()
            child.communicate(timeout=10)
    assert child.returncode == 0, err
    # The warning names both paths.
    assert "did not end" in err
    assert f"{path}" in err
    assert "run.recovered-" in err
    final = bf.open_recording(path)
    assert len(final) == int(out.split()[-1])
    assert final.names == tags
    assert not parts.exists()

    recovered = {}
    for file in recovered_files(tmp_path):
        rec = bf.open_recording(file)
        recovered[int(rec.to_pandas().index.asi8[0])] = rec
    assert len(recovered) == 10
    for tags, rows, times in crashed:
        rec = recovered[int(times[0])]
        assert rec.names == tags
        assert len(rec) == rows  # every sample that reached the disk, once
        np.testing.assert_array_equal(rec.to_pandas().index.asi8, times)
        assert rec.metadata["recovered_from"] == str(parts)


def test_a_second_recorder_on_a_path_in_use_is_refused(plant, tmp_path: Path):
    path = tmp_path / "run.parquet"
    with plant.connect("modbus") as plc:
        first = plc.record(["tank.level"], interval="20ms", background=True, path=path)
        try:
            with pytest.raises(bf.ConfigurationError, match=r"another recording.*run\.parquet"):
                plc.record(["tank.level"], interval="20ms", background=True, path=path)
            assert first.running
        finally:
            first.stop()
            first.wait(10)
        again = plc.record(["pump.speed"], interval="20ms", duration="0.1s", path=path)
    assert bf.open_recording(path).names == ["pump.speed"]
    assert len(bf.open_recording(path)) == len(again)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.parquet"]


def test_a_restart_in_process_recovers_the_crashed_run_with_a_warning(plant, tmp_path: Path):
    path = tmp_path / "run.parquet"
    parts = tmp_path / "run.parquet.parts"
    child = start_child(plant.urls["modbus"], path, TAG_LISTS[1])
    try:
        assert wait_for(lambda: only_new_run(parts, 10, set()), timeout=30)
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.communicate(timeout=10)
    rows, times = rows_on_disk(parts)
    with plant.connect("modbus") as plc, pytest.warns(RecoveryWarning) as caught:
        rec = plc.record(["tank.level"], interval="20ms", duration="0.3s", path=path)
    (aside,) = recovered_files(tmp_path)
    message = str(caught[0].message)
    assert str(aside) in message
    assert str(path) in message
    assert "bf.open_recording" in message
    back = bf.open_recording(aside)
    assert len(back) == rows
    np.testing.assert_array_equal(back.to_pandas().index.asi8, times)
    assert len(bf.open_recording(path)) == len(rec)
    assert not parts.exists()

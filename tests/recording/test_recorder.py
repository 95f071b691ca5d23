"""Recording against a real Modbus server: cadence, background work, faults, streaming."""

from __future__ import annotations

import asyncio
import errno
import os
import random
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from modbus_server import ModbusTestServer
from waiting import wait_for

import bifrost as bf
from bifrost._portal import portal
from bifrost.backoff import Backoff
from bifrost.recording.journal import scan_runs
from bifrost.recording.recorder import RecordingStorageWarning

ROOT = Path(__file__).resolve().parents[2]


def test_blocking_recording_accounts_for_every_cycle(modbus_server):
    modbus_server.set("hr", 0, [1, 2, 3])
    with bf.connect(modbus_server.url) as plc:
        rec = plc.record(["hr:0", "hr:1:int16", "co:0"], interval="20ms", duration="0.5s")
    stats = rec.stats
    assert stats.samples + stats.missed_cycles == 25
    assert not rec.running
    times = rec.to_pandas().index
    assert times.is_monotonic_increasing
    assert times.is_unique
    assert rec.to_pandas()["hr:1:int16"].iloc[0] == 2
    assert rec.metadata["driver"].startswith("pymodbus")


def test_background_recordings_run_while_the_caller_computes(modbus_server):
    modbus_server.set("hr", 5, [7])
    second_server = ModbusTestServer().start()
    try:
        with bf.connect(modbus_server.url) as a, bf.connect(second_server.url) as b:
            first = a.record(["hr:5"], interval="10ms", background=True)
            other = b.record(["hr:0"], interval="10ms", background=True)
            assert first.running
            assert other.running
            # Heavy work on the calling thread: the loop thread keeps sampling.
            matrix = np.random.default_rng(0).normal(size=(300, 300))
            for _ in range(20):
                matrix = np.tanh(matrix @ matrix.T / 300)
            taken = len(first)
            assert wait_for(lambda: len(first) > taken + 5)
            first.stop()
            other.stop()
            first.wait(5)
            other.wait(5)
            assert a.recordings == []
            assert b.recordings == []
    finally:
        second_server.stop()
    for rec in (first, other):
        assert not rec.running
        assert len(rec) > 5
    assert set(first.to_pandas()["hr:5"].dropna()) == {7}


def test_a_stalled_loop_counts_missed_cycles_without_bursts(modbus_server):
    with bf.connect(modbus_server.url) as plc:
        rec = plc.record(["hr:0"], interval="20ms", duration="1s", background=True)
        assert wait_for(lambda: len(rec) >= 3)

        async def stall() -> None:
            time.sleep(0.3)  # blocks the loop thread on purpose

        portal.call(stall(), 5)
        rec.wait(5)
    stats = rec.stats
    # The cycles that fell in the stall are counted, not caught up in a burst.
    assert stats.missed_cycles >= 10
    assert stats.samples + stats.missed_cycles == 50


def test_bad_input_fails_before_recording(modbus_server):
    with bf.connect(modbus_server.url) as plc:
        with pytest.raises(bf.AddressError):
            plc.record(["hr:0:float99"], interval="1s", duration="2s")
        with pytest.raises(bf.ConfigurationError, match="needs a duration"):
            plc.record(["hr:0"], interval="1s")
        with pytest.raises(bf.ConfigurationError, match="not a duration"):
            plc.record(["hr:0"], interval="fast", duration="1s")
        with pytest.raises(bf.ConfigurationError, match=r"\.parquet"):
            plc.record(["hr:0"], interval="1s", duration="2s", path="run.txt")
        assert plc.recordings == []


def test_streaming_writes_a_spool_segment_then_one_final_file(modbus_server, tmp_path: Path):
    path = tmp_path / "run.parquet"
    with bf.connect(modbus_server.url) as plc:
        rec = plc.record(
            ["hr:0", "hr:1"], interval="10ms", background=True, path=path, flush_interval="50ms"
        )
        parts = tmp_path / "run.parquet.parts"
        assert wait_for(lambda: parts.exists() and any(r.rows >= 10 for r in scan_runs(parts)))
        # One segment for the whole run, appended to: no file per flush.
        assert [p.suffix for p in scan_runs(parts)[0].parts] == [".spool"]
        assert not path.exists()
        rec.stop()
        rec.wait(10)
    assert path.exists()
    assert not parts.exists()
    assert len(bf.open_recording(path)) == len(rec)


def test_server_restart_is_a_marked_gap_with_no_duplicate_times(tmp_path: Path):
    server = ModbusTestServer().start()
    server.set("hr", 0, [5])
    port = server.port
    with bf.connect(server.url, timeout=0.5) as plc:
        rec = plc.record(["hr:0"], interval="20ms", background=True)
        assert wait_for(lambda: len(rec) >= 5)
        server.stop()
        assert wait_for(lambda: rec.stats.gaps >= 5)
        server = ModbusTestServer(port=port).start()
        server.set("hr", 0, [6])
        assert wait_for(lambda: rec.stats.reconnects >= 1)
        assert wait_for(lambda: (rec.to_pandas()["hr:0"] == 6).sum() >= 3)
        rec.stop()
        rec.wait(5)
    server.stop()
    frame = rec.to_pandas()
    quality = rec.quality_frame()["hr:0"]
    assert frame.index.is_unique
    assert frame.index.is_monotonic_increasing
    assert {"bad_comm_lost"} & set(quality) or {"bad_timeout"} & set(quality)
    assert frame["hr:0"].isna().sum() == (quality != "good").sum()
    assert set(frame["hr:0"].dropna()) == {5, 6}


def test_backoff_grows_with_jitter_and_resets():
    backoff = Backoff(first=0.1, ceiling=1.0)
    delays = [backoff.failed() for _ in range(8)]
    assert all(0.05 <= d <= 1.0 for d in delays)
    assert backoff.delay == 1.0
    backoff.succeeded()
    assert backoff.failed() <= 0.1


CHILD = textwrap.dedent(
    """
    import sys, time
    import bifrost as bf
    url, path = sys.argv[1], sys.argv[2]
    plc = bf.connect(url)
    rec = plc.record(["hr:0", "hr:1:float32"], interval="10ms", background=True,
                     path=path, flush_interval="200ms")
    print("started", flush=True)
    time.sleep(60)
    """
)


@pytest.mark.parametrize("attempt", range(3))
def test_kill_9_while_streaming_loses_at_most_one_flush_interval(
    modbus_server, tmp_path: Path, attempt: int
):
    path = tmp_path / "run.parquet"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, modbus_server.url, str(path)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "started"
        time.sleep(random.uniform(0.7, 1.5))
        killed_at = time.time_ns()
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.wait(10)
        if child.stdout is not None:
            child.stdout.close()
    (run,) = scan_runs(tmp_path / "run.parquet.parts")
    assert run.rows > 0
    recovered = bf.open_recording(path)
    times = recovered.to_pandas().index.asi8
    # Everything older than one flush interval (plus scheduling slack) is on disk.
    assert times[-1] >= killed_at - int(0.2e9) - int(0.4e9)
    assert np.all(np.diff(times) > 0)
    assert recovered.metadata["recovered_from"].endswith("run.parquet.parts")


ACKNOWLEDGING_CHILD = textwrap.dedent(
    """
    import sys
    import bifrost as bf
    from bifrost.recording import journal
    url, path = sys.argv[1], sys.argv[2]
    written = journal.Journal._write

    def acknowledged(self, times, *rest):
        written(self, times, *rest)  # returns once the frame's fsync returned
        if self.error is None:
            print(self.rows_written, int(times[-1]), flush=True)

    journal.Journal._write = acknowledged
    plc = bf.connect(url)
    tags = [f"hr:{i}" for i in range(100)]
    rec = plc.record(tags, interval="5ms", background=True, path=path, flush_interval="20ms")
    rec.wait()
    """
)


@pytest.mark.parametrize("attempt", range(3))
def test_kill_9_during_a_write_keeps_every_acknowledged_sample(
    modbus_server, tmp_path: Path, attempt: int
):
    modbus_server.set("hr", 0, list(range(100)))
    path = tmp_path / "run.parquet"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    child = subprocess.Popen(
        [sys.executable, "-c", ACKNOWLEDGING_CHILD, modbus_server.url, str(path)],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    acknowledged: list[tuple[int, int]] = []
    try:
        assert child.stdout is not None
        # Flushes come every 20 ms: after a random number of them, kill the writer
        # wherever it is (encoding, in os.write, in fsync).
        for _ in range(random.randint(5, 40)):
            line = child.stdout.readline()
            assert line, "the recorder ended early"
            rows, last = line.split()
            acknowledged.append((int(rows), int(last)))
        time.sleep(random.uniform(0.0, 0.02))
        os.kill(child.pid, signal.SIGKILL)
        for line in child.stdout:  # acknowledged before the kill landed
            rows, last = line.split()
            acknowledged.append((int(rows), int(last)))
    finally:
        child.wait(10)
        if child.stdout is not None:
            child.stdout.close()
    rows, last = acknowledged[-1]
    recovered = bf.open_recording(tmp_path / "run.parquet.parts")
    times = recovered.to_pandas().index.asi8
    assert len(recovered) >= rows
    assert times[rows - 1] == last
    for count, stamp in acknowledged:  # every acknowledged block, in place
        assert times[count - 1] == stamp
    assert np.all(np.diff(times) > 0)
    values = recovered.to_pandas().iloc[:rows]
    assert (values["hr:7"] == 7).all()


@pytest.fixture
def small_disk(tmp_path: Path):
    mount_point = tmp_path / "small"
    mount_point.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount_point)],
        capture_output=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], check=False)


def fill(fd: int) -> None:
    """Write zeros to ``fd`` until its disk is full."""
    for _ in range(1000):
        try:
            os.write(fd, bytes(4096))
        except OSError as exc:
            if exc.errno != errno.ENOSPC:
                raise
            return
    pytest.fail("the small disk never filled")


def test_a_full_disk_is_a_clear_error_and_nothing_recorded_is_lost(modbus_server, small_disk):
    path = small_disk / "run.parquet"
    # The spool is compact (a flush of these constant registers takes ~100 bytes): leave
    # the recording a few pages of the disk, so that it fills while it runs.
    filler = small_disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        fill(fd)
    finally:
        os.close(fd)
    os.truncate(filler, os.path.getsize(filler) - (16 << 10))
    tags = [f"hr:{i}" for i in range(40)]
    with bf.connect(modbus_server.url) as plc:
        rec = plc.record(tags, interval="5ms", background=True, path=path, flush_interval="20ms")
        assert wait_for(lambda: rec.storage_error is not None, 30)
        assert rec.running  # sampling goes on in memory
        rec.stop()
        with pytest.warns(RecordingStorageWarning, match="full"):
            rec.wait(20)
    assert "full" in str(rec.storage_error)
    assert "rec.save" in str(rec.storage_error)
    on_disk = bf.open_recording(small_disk / "run.parquet.parts")
    assert 0 < len(on_disk) < len(rec)
    # What reached the disk equals the start of what is in memory.
    memory = rec.to_pandas().iloc[: len(on_disk)]
    np.testing.assert_array_equal(on_disk.to_pandas().index.asi8, memory.index.asi8)


def test_threads_end_with_the_recording(modbus_server, tmp_path: Path, no_thread_leak):
    with bf.connect(modbus_server.url) as plc:
        rec = plc.record(["hr:0"], interval="10ms", duration="0.2s", path=tmp_path / "r.parquet")
    assert len(rec) > 0
    assert threading.active_count() >= 1
    _ = asyncio  # the recorder runs on bifrost's loop, not on one of ours


def test_the_switch_interval_is_lowered_only_while_recording(modbus_server):
    before = sys.getswitchinterval()
    with bf.connect(modbus_server.url) as plc:
        rec = plc.record(["hr:0"], interval="10ms", background=True)
        assert wait_for(lambda: len(rec) > 0)
        assert sys.getswitchinterval() < before
        rec.stop()
        rec.wait(5)
    assert sys.getswitchinterval() == before


def test_one_failing_tag_does_not_stop_the_good_ones(modbus_server):
    modbus_server.set("hr", 0, [11])
    with bf.connect(modbus_server.url) as plc:
        rec = plc.record(["hr:0", "hr:2500"], interval="20ms", duration="0.2s", progress=False)
    quality = rec.quality_frame()
    assert set(quality["hr:0"]) == {"good"}
    assert set(quality["hr:2500"]) == {"bad_protocol"}
    assert set(rec.to_pandas()["hr:0"]) == {11}


def test_session_metadata_travels_with_the_data(modbus_server, tmp_path: Path):
    with bf.connect(modbus_server.url) as plc:
        rec = plc.record(["hr:0"], interval="20ms", duration="0.1s", progress=False)
    attrs = rec.to_xarray().attrs
    assert attrs["protocol"] == "modbus"
    assert attrs["endpoint"] == f"127.0.0.1:{modbus_server.port}"
    assert attrs["driver"].startswith("pymodbus ")
    assert attrs["bifrost_version"]
    assert '"endpoint"' in attrs["device"]
    assert attrs["interval_s"] == 0.02
    assert attrs["started"] < attrs["stopped"]
    back = bf.open_recording(rec.save(tmp_path / "r.nc"))
    assert back.metadata["device"] == rec.metadata["device"]

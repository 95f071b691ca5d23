"""The recorder's logic on the memory driver: its grid, gap rows, backoff and recovery.

The device's faults are exact (this many timeouts, a disconnect now), so the rows a
fault must produce can be asserted row by row; the real-server versions of these
scenarios are in tests/test_reconnect.py.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
from waiting import wait_for

import bifrost as bf
from bifrost.testing import MemoryDevice

pytest_plugins = ["bifrost.testing"]


def qualities(rec: bf.Recording, tag: str) -> list[str]:
    return list(rec.quality_frame()[tag])


def outage(quality: list[str]) -> list[str]:
    """The rows from the first bad one to the last bad one."""
    bad = [i for i, q in enumerate(quality) if q != "good"]
    assert bad, quality
    return quality[bad[0] : bad[-1] + 1]


def assert_one_row_per_cycle(rec: bf.Recording) -> None:
    """No duplicate rows, no silent holes: rows and missed cycles add up to the grid."""
    times = rec.to_pandas().index
    assert times.is_unique
    assert times.is_monotonic_increasing
    assert rec.started_ns is not None
    span_s = (times[-1].value - rec.started_ns) / 1e9
    cycles = span_s / rec.interval_s + 1
    stats = rec.stats
    assert abs(stats.samples + stats.missed_cycles - cycles) <= 2, (stats, cycles)


def test_a_recording_keeps_its_grid(memory_device: MemoryDevice, memory_plc: bf.Connection):
    rec = memory_plc.record(
        ["tank.level", "line.flow", "pump.running"], interval="10ms", duration="0.2s"
    )
    stats = rec.stats
    # Every cycle is a row or a missed cycle (more than 20 only through the bug of
    # test_missed_cycles_stop_at_the_end_of_the_duration, on a busy machine).
    assert stats.samples + stats.missed_cycles >= 20
    assert stats.samples >= 5
    assert stats.gaps == 0
    # One read per row: the recorder never reads twice for a cycle.
    assert memory_device.count("read") == stats.samples
    frame = rec.to_pandas()
    assert frame.index.is_unique
    assert frame.index.is_monotonic_increasing
    assert set(frame["tank.level"]) == {2.5}
    assert set(frame["pump.running"]) == {False}
    assert rec.metadata["protocol"] == "memory"
    assert '"vendor": "bifrost"' in rec.metadata["device"]


def test_latency_beyond_the_interval_counts_missed_cycles_without_bursts(
    memory_device: MemoryDevice,
):
    memory_device["a"] = 1.0
    memory_device.latency = 0.025
    with bf.connect(memory_device.url) as plc:
        rec = plc.record("mem:a", interval="10ms", duration="0.3s")
    stats = rec.stats
    # Each read takes 2.5 cycles: the next one or two are missed, never run late.
    assert stats.missed_cycles >= 10
    assert stats.samples <= 15
    assert stats.samples + stats.missed_cycles >= 30
    assert stats.gaps == 0
    steps = np.diff(rec.to_pandas().index.asi8) / 1e9
    assert steps.min() >= 0.02  # no catching up in a burst after a slow read


def test_a_scaled_integer_tag_records_its_engineering_values(memory_plc: bf.Connection):
    # line.flow is a uint16 scaled by 0.1: raw 125 is 12.5 l/s.
    rec = memory_plc.record("line.flow", interval="10ms", duration="30ms")
    assert memory_plc.read_value("line.flow") == 12.5
    assert set(rec.to_pandas()["line.flow"]) == {12.5}


def test_missed_cycles_stop_at_the_end_of_the_duration(memory_device: MemoryDevice):
    memory_device["a"] = 1.0
    # Three cycles; the first read takes 4.5 of them, so cycles 1 and 2 are missed.
    memory_device.latency = 0.045
    with bf.connect(memory_device.url) as plc:
        rec = plc.record("mem:a", interval="10ms", duration="30ms")
    assert rec.stats.samples == 1
    assert rec.stats.missed_cycles == 2


def test_timeouts_are_bad_timeout_rows_and_the_rows_between_retries_bad_comm_lost(
    memory_device: MemoryDevice,
):
    memory_device["a"] = 1.0
    with bf.connect(memory_device.url) as plc:
        rec = plc.record("mem:a", interval="10ms", background=True)
        assert wait_for(lambda: len(rec) >= 3)
        memory_device.fail_next(2, TimeoutError)
        assert wait_for(lambda: rec.stats.reconnects == 1)
        assert wait_for(lambda: qualities(rec, "mem:a")[-3:] == ["good"] * 3)
        rec.stop()
        rec.wait(5)
    bad = outage(qualities(rec, "mem:a"))
    # A timeout row for each failed attempt; while backing off, comm-lost rows and no
    # requests to the device.
    assert bad[0] == "bad_timeout"
    assert bad.count("bad_timeout") == 2
    assert set(bad) == {"bad_timeout", "bad_comm_lost"}
    assert bad.index("bad_timeout", 1) >= 3  # the retry waited several 10 ms cycles
    reads = [c for c in memory_device.calls if c.kind == "read"]
    first = next(i for i, c in enumerate(reads) if not c.ok)
    failed, retried, recovered = reads[first : first + 3]
    assert (failed.ok, retried.ok, recovered.ok) == (False, False, True)
    # Backoff with jitter: 0.05-0.1 s after the first failure, 0.1-0.2 s after the next.
    assert retried.at - failed.at >= 0.05
    assert recovered.at - retried.at >= 0.1
    stats = rec.stats
    assert stats.gaps == len(bad)
    assert memory_device.count("read", ok=False) == 2
    assert memory_device.count("read", ok=True) == stats.samples - stats.gaps
    assert "no answer from memory://" in stats.last_error
    assert_one_row_per_cycle(rec)


def test_a_stalled_device_times_out_then_recovers(memory_device: MemoryDevice):
    memory_device["a"] = 1.0
    with bf.connect(memory_device.url, timeout=0.03) as plc:
        rec = plc.record("mem:a", interval="10ms", background=True)
        assert wait_for(lambda: len(rec) >= 3)
        memory_device.latency = 1.0
        assert wait_for(lambda: "bad_timeout" in qualities(rec, "mem:a"))
        memory_device.latency = 0
        memory_device["a"] = 2.0
        assert wait_for(lambda: rec.stats.reconnects == 1)
        assert wait_for(lambda: qualities(rec, "mem:a")[-3:] == ["good"] * 3)
        rec.stop()
        rec.wait(5)
    frame = rec.to_pandas()
    quality = qualities(rec, "mem:a")
    first_bad = quality.index("bad_timeout")
    assert set(frame["mem:a"].iloc[:first_bad]) == {1.0}
    assert frame["mem:a"].iloc[-1] == 2.0
    assert quality[-1] == "good"
    assert "within 0.03 s" in rec.stats.last_error
    assert_one_row_per_cycle(rec)


def test_a_disconnect_is_marked_backed_off_and_recovered_from(memory_device: MemoryDevice):
    memory_device["a"] = 1.0
    with bf.connect(memory_device.url) as plc:
        rec = plc.record("mem:a", interval="10ms", background=True)
        assert wait_for(lambda: len(rec) >= 3)
        rows_before = len(rec)
        memory_device.disconnect()
        lost_at = time.monotonic()
        assert wait_for(lambda: memory_device.count("connect", ok=False) >= 2)
        # The retry waited (0.05 s at the least), every cycle still getting a row.
        assert time.monotonic() - lost_at >= 0.05
        assert len(rec) - rows_before >= 3
        memory_device["a"] = 2.0
        memory_device.reconnect()
        assert wait_for(lambda: rec.stats.reconnects == 1)
        assert wait_for(lambda: qualities(rec, "mem:a")[-3:] == ["good"] * 3)
        rec.stop()
        rec.wait(5)
    bad = outage(qualities(rec, "mem:a"))
    assert set(bad) == {"bad_comm_lost"}
    assert rec.stats.gaps == len(bad)
    # Refused attempts were backed off: far fewer than the outage's cycles.
    assert memory_device.count("connect", ok=False) * 3 <= len(bad)
    assert memory_device.count("connect", ok=True) == 2  # connect, then one reconnect
    frame = rec.to_pandas()
    assert frame["mem:a"].iloc[-1] == 2.0  # resumed with the device's current value
    assert frame["mem:a"].iloc[0] == 1.0
    assert_one_row_per_cycle(rec)


def test_a_refused_read_is_a_bad_protocol_row_not_a_gap(memory_device: MemoryDevice):
    memory_device.update({"a": 1.0, "b": 2.0})
    with bf.connect(memory_device.url) as plc:
        rec = plc.record(["mem:a", "mem:b"], interval="10ms", background=True)
        assert wait_for(lambda: len(rec) >= 2)
        memory_device.fail_next(exc=bf.ProtocolError("device busy", code=6))
        memory_device.set_quality("b", bf.Quality.UNCERTAIN)
        assert wait_for(lambda: qualities(rec, "mem:b")[-2:] == ["uncertain"] * 2)
        rec.stop()
        rec.wait(5)
    a, b = qualities(rec, "mem:a"), qualities(rec, "mem:b")
    refused = a.index("bad_protocol")
    assert b[refused] == "bad_protocol"
    # The device answered: no gap, no backoff; the very next cycle reads again.
    assert a[refused + 1] == "good"
    assert a.count("bad_protocol") == 1
    assert rec.stats.gaps == 0
    assert rec.stats.reconnects == 0
    assert memory_device.count("connect") == 1
    # Per-tag quality stays per tag.
    assert set(a[refused + 1 :]) == {"good"}
    assert "uncertain" in b[refused + 1 :]


def test_a_driver_bug_ends_the_recording_and_keeps_its_rows(memory_device: MemoryDevice):
    memory_device["a"] = 1.0
    with bf.connect(memory_device.url) as plc:
        rec = plc.record("mem:a", interval="10ms", background=True)
        assert wait_for(lambda: len(rec) >= 3)
        memory_device.fail_next(exc=RuntimeError("driver bug"))
        with pytest.raises(RuntimeError, match="driver bug"):
            rec.wait(5)
        assert not rec.running
        assert plc.recordings == []
    kept = rec.to_pandas()
    assert len(kept) >= 3
    assert set(kept["mem:a"]) == {1.0}

"""Polled subscriptions' logic on the memory driver: deadbands, quality, outages, backoff."""

from __future__ import annotations

import threading
import time

import pandas as pd
from waiting import wait_for

import bifrost as bf
from bifrost.testing import MemoryDevice

pytest_plugins = ["bifrost.testing"]


class Frames:
    """What a subscription delivered, collected from bifrost's loop thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._frames: list[pd.DataFrame] = []

    def __call__(self, frame: pd.DataFrame) -> None:
        with self._lock:
            self._frames.append(frame)

    def __len__(self) -> int:
        with self._lock:
            return len(self._frames)

    def __getitem__(self, index: int) -> pd.DataFrame:
        with self._lock:
            return self._frames[index]

    def all(self) -> list[pd.DataFrame]:
        with self._lock:
            return list(self._frames)


def polls_after(device: MemoryDevice, count: int) -> bool:
    """Wait until the device has answered ``count`` more reads."""
    start = device.count("read", ok=True)
    return wait_for(lambda: device.count("read", ok=True) >= start + count)


def test_a_change_within_the_deadband_is_not_delivered(memory_device: MemoryDevice):
    memory_device["a"] = 1.0
    frames = Frames()
    with bf.connect(memory_device.url) as plc:
        sub = plc.subscribe("mem:a", frames, interval="5ms", deadband=0.5)
        assert wait_for(lambda: len(frames) == 1)
        memory_device["a"] = 1.4
        assert polls_after(memory_device, 3)
        assert len(frames) == 1
        memory_device["a"] = 2.0  # 0.6 from the value last read
        assert wait_for(lambda: len(frames) == 2)
        assert frames[1]["value"].tolist() == [2.0]
        sub.cancel()


def test_the_deadband_is_in_engineering_units(
    memory_device: MemoryDevice, memory_plc: bf.Connection
):
    frames = Frames()
    # line.flow is raw * 0.1 l/s: raw 125 is 12.5 l/s.
    sub = memory_plc.subscribe("line.flow", frames, interval="5ms", deadband=1.0)
    assert wait_for(lambda: len(frames) == 1)
    assert frames[0]["value"].tolist() == [12.5]
    memory_device["line.flow"] = 130  # 5 raw, but 0.5 l/s: within the deadband
    assert polls_after(memory_device, 3)
    assert len(frames) == 1
    memory_device["line.flow"] = 145  # 1.5 l/s
    assert wait_for(lambda: len(frames) == 2)
    assert frames[1]["value"].tolist() == [14.5]
    sub.cancel()


def test_a_slow_drift_beyond_the_deadband_is_delivered(memory_device: MemoryDevice):
    memory_device["a"] = 1.0
    frames = Frames()
    with bf.connect(memory_device.url) as plc:
        sub = plc.subscribe("mem:a", frames, interval="5ms", deadband=0.5)
        assert wait_for(lambda: len(frames) == 1)
        for value in (1.3, 1.6, 1.9):  # each step within the deadband, 0.9 in all
            memory_device["a"] = value
            assert polls_after(memory_device, 2)
        delivered = wait_for(lambda: len(frames) == 2, timeout=0.1)
        sub.cancel()
    assert delivered


def test_a_quality_change_is_a_change(memory_device: MemoryDevice):
    memory_device.update({"a": 1.0, "b": 2.0})
    frames = Frames()
    with bf.connect(memory_device.url) as plc:
        sub = plc.subscribe(["mem:a", "mem:b"], frames, interval="5ms")
        assert wait_for(lambda: len(frames) == 1)
        memory_device.set_quality("b", bf.Quality.UNCERTAIN)
        assert wait_for(lambda: len(frames) == 2)
        changed = frames[1]
        assert list(changed.index) == ["mem:b"]
        assert changed["quality"].tolist() == ["uncertain"]
        assert changed["value"].tolist() == [2.0]
        sub.cancel()


def test_an_outage_is_notified_once_then_recovery_delivers_every_tag(
    memory_device: MemoryDevice,
):
    memory_device.update({"a": 1.0, "b": 2.0})
    frames = Frames()
    with bf.connect(memory_device.url) as plc:
        sub = plc.subscribe(["mem:a", "mem:b"], frames, interval="5ms")
        assert wait_for(lambda: len(frames) == 1)
        memory_device.disconnect()
        lost_at = time.monotonic()
        # Two failed polls: the first and one retry...
        assert wait_for(lambda: memory_device.count("connect", ok=False) >= 2)
        # ...backed off (0.05 s at the least), not retried on the 5 ms grid.
        assert time.monotonic() - lost_at >= 0.05
        assert len(frames) == 2
        lost = frames[1]
        assert lost["quality"].tolist() == ["bad_comm_lost", "bad_comm_lost"]
        assert lost["value"].isna().all()
        assert sub.errors >= 2
        assert isinstance(sub.last_error, bf.ConnectionError)

        memory_device.reconnect()
        assert wait_for(lambda: len(frames) == 3)
        back = frames[2]
        # After the outage every tag is news, changed or not.
        assert list(back.index) == ["mem:a", "mem:b"]
        assert back["value"].tolist() == [1.0, 2.0]
        assert back["quality"].tolist() == ["good", "good"]
        assert sub.active
        sub.cancel()
    assert sum(f["quality"].eq("bad_comm_lost").all() for f in frames.all()) == 1


def test_timeouts_are_an_outage_too(memory_device: MemoryDevice):
    memory_device["a"] = 1.0
    frames = Frames()
    with bf.connect(memory_device.url) as plc:
        sub = plc.subscribe("mem:a", frames, interval="5ms")
        assert wait_for(lambda: len(frames) == 1)
        memory_device.fail_next(2, TimeoutError)
        assert wait_for(lambda: len(frames) == 3)
        assert [f["quality"].tolist() for f in frames.all()] == [
            ["good"],
            ["bad_comm_lost"],
            ["good"],
        ]
        assert isinstance(sub.last_error, bf.TimeoutError)
        assert memory_device.pending_faults == 0
        sub.cancel()


def test_a_refused_read_is_delivered_as_bad_quality_not_an_outage(memory_device: MemoryDevice):
    memory_device["a"] = 1.0
    frames = Frames()
    with bf.connect(memory_device.url) as plc:
        sub = plc.subscribe("mem:a", frames, interval="5ms")
        assert wait_for(lambda: len(frames) == 1)
        memory_device.fail_next(exc=bf.ProtocolError("busy", code=6))
        assert wait_for(lambda: len(frames) == 3)
        assert [f["quality"].tolist() for f in frames.all()] == [
            ["good"],
            ["bad_protocol"],
            ["good"],
        ]
        # The device answered: no error counted, no reconnect.
        assert sub.errors == 0
        assert memory_device.count("connect") == 1
        sub.cancel()

"""Subscriptions and change-driven recordings on a polled protocol (the memory driver)."""

from __future__ import annotations

import threading

import pandas as pd
from waiting import wait_for

import bifrost as bf
from bifrost.testing import MemoryDevice

pytest_plugins = ["bifrost.testing"]


def test_polled_subscription_delivers_changes_only(memory_device: MemoryDevice):
    memory_device.update({"a": 1.0, "b": 2.0})
    frames: list[pd.DataFrame] = []
    lock = threading.Lock()

    def on_change(frame: pd.DataFrame) -> None:
        with lock:
            frames.append(frame)

    with bf.connect(memory_device.url) as plc:
        sub = plc.subscribe(["mem:a", "mem:b"], on_change, interval="5ms")
        assert wait_for(lambda: len(frames) >= 1)
        first = frames[0]
        assert first["value"].tolist() == [1.0, 2.0]
        memory_device["b"] = 5.0
        assert wait_for(lambda: len(frames) >= 2)
        with lock:
            changed = frames[1]
        assert list(changed.index) == ["mem:b"]
        assert changed["value"].tolist() == [5.0]
        # Polls that find nothing new deliver nothing.
        reads = memory_device.count("read")
        assert wait_for(lambda: memory_device.count("read") >= reads + 3)
        assert len(frames) == 2
        sub.cancel()
        assert not sub.active  # a sync cancel returns once it is done
        reads = memory_device.count("read")
        memory_device["a"] = 9.0
        # Cancelled means no more polling at all, not only no more callbacks.
        assert not wait_for(lambda: memory_device.count("read") > reads, timeout=0.05)
        assert len(frames) == 2


def test_a_failing_callback_does_not_end_the_subscription(memory_device: MemoryDevice):
    memory_device["a"] = 1.0
    calls = []

    def broken(frame: pd.DataFrame) -> None:
        calls.append(frame)
        raise RuntimeError("user bug")

    with bf.connect(memory_device.url) as plc:
        sub = plc.subscribe(["mem:a"], broken, interval="5ms")
        assert wait_for(lambda: sub.errors >= 1)
        memory_device["a"] = 3.0
        assert wait_for(lambda: len(calls) >= 2)
        assert sub.active
        assert isinstance(sub.last_error, RuntimeError)
        sub.cancel()


def test_record_in_subscribe_mode_holds_last_values(memory_device: MemoryDevice):
    memory_device.update({"a": 1, "b": 10})
    with bf.connect(memory_device.url) as plc:
        rec = plc.record(
            ["mem:a:int16", "mem:b:int16"], interval="5ms", mode="subscribe", background=True
        )
        assert wait_for(lambda: len(rec) >= 1)
        memory_device["a"] = 2
        assert wait_for(lambda: len(rec) >= 2)
        rec.stop()
        rec.wait(5)
    frame = rec.to_pandas()
    assert frame["mem:a:int16"].tolist() == [1, 2]
    # The unchanged tag is carried forward in the row of the other one's change.
    assert frame["mem:b:int16"].tolist() == [10, 10]
    assert rec.metadata["mode"] == "subscribe"

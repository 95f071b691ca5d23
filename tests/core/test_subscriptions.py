"""Subscriptions and change-driven recordings on a polled protocol (Modbus)."""

from __future__ import annotations

import threading
import time

import pandas as pd
from waiting import wait_for

import bifrost as bf


def test_polled_subscription_delivers_changes_only(modbus_server):
    modbus_server.set("hr", 200, [1, 2])
    frames: list[pd.DataFrame] = []
    lock = threading.Lock()

    def on_change(frame: pd.DataFrame) -> None:
        with lock:
            frames.append(frame)

    with bf.connect(modbus_server.url) as plc:
        sub = plc.subscribe(["hr:200", "hr:201"], on_change, interval="20ms")
        assert wait_for(lambda: len(frames) >= 1)
        first = frames[0]
        assert first["value"].tolist() == [1, 2]
        modbus_server.set("hr", 201, [5])
        assert wait_for(lambda: len(frames) >= 2)
        with lock:
            changed = frames[1]
        assert list(changed.index) == ["hr:201"]
        assert changed["value"].tolist() == [5]
        sub.cancel()
        assert not sub.active  # a sync cancel returns once it is done
        count = len(frames)
        modbus_server.set("hr", 200, [9])
        time.sleep(0.1)
        assert len(frames) == count


def test_a_failing_callback_does_not_end_the_subscription(modbus_server):
    calls = []

    def broken(frame: pd.DataFrame) -> None:
        calls.append(frame)
        raise RuntimeError("user bug")

    with bf.connect(modbus_server.url) as plc:
        sub = plc.subscribe(["hr:210"], broken, interval="20ms")
        assert wait_for(lambda: sub.errors >= 1)
        modbus_server.set("hr", 210, [3])
        assert wait_for(lambda: len(calls) >= 2)
        assert sub.active
        sub.cancel()


def test_record_in_subscribe_mode_holds_last_values(modbus_server):
    modbus_server.set("hr", 220, [1, 10])
    with bf.connect(modbus_server.url) as plc:
        rec = plc.record(["hr:220", "hr:221"], interval="20ms", mode="subscribe", background=True)
        assert wait_for(lambda: len(rec) >= 1)
        modbus_server.set("hr", 220, [2])
        assert wait_for(lambda: len(rec) >= 2)
        rec.stop()
        rec.wait(5)
    frame = rec.to_pandas()
    assert frame["hr:220"].tolist()[:2] == [1, 2]
    # The unchanged tag is carried forward in the row of the other one's change.
    assert frame["hr:221"].tolist()[:2] == [10, 10]
    assert rec.metadata["mode"] == "subscribe"

"""Store-and-forward to a real mosquitto: a broker killed mid-run loses nothing."""

from __future__ import annotations

import errno
import json
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from brokers import Mosquitto, free_port
from waiting import wait_for

import bifrost as bf
from bifrost.cloud import MqttSink
from bifrost.cloud.payloads import decode_row

TAGS = ["tank.level", "tank.inflow", "reactor.temperature", "line.counter"]


def _samples(recording: bf.Recording) -> set[tuple[str, int]]:
    times, _, _ = recording.buffer.arrays()
    return {(tag, int(t)) for t in times.tolist() for tag in recording.names}


def _dedup(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    seen: set[str] = set()
    out = []
    for message in messages:
        if message["key"] not in seen:
            seen.add(message["key"])
            out.append(message)
    return out


@pytest.mark.slow
def test_broker_killed_for_10s_in_a_30s_run_loses_nothing(
    tmp_path: Path, subscriber_factory: Any
) -> None:
    broker = Mosquitto(tmp_path / "broker").start()
    plant = bf.sim.Plant(seed=3)
    try:
        plant.serve(modbus=0)
        subscriber = subscriber_factory(broker.port, "plant/#")
        sink = MqttSink(broker.url, spool=tmp_path / "spool", device="plant1")
        with plant.connect("modbus") as plc:
            recording = plc.record(
                TAGS, interval="100ms", duration="30s", background=True, sinks=[sink]
            )
            time.sleep(10)
            broker.kill()
            down_at = time.monotonic()
            assert wait_for(lambda: not sink.connected, 5)
            assert wait_for(lambda: sink.stats.pending > 20, 5)
            time.sleep(max(0.0, 10 - (time.monotonic() - down_at)))
            broker.start()
            recording.wait(40)
        assert sink.flush(30), sink.stats
        expected = _samples(recording)
        assert len(expected) == len(recording) * len(TAGS) >= 290 * len(TAGS)
        assert wait_for(lambda: len({m["key"] for m in subscriber.json()}) >= len(expected), 30)
        time.sleep(0.5)  # late duplicates, if any, arrive now
        messages = subscriber.json()
        unique = _dedup(messages)
        received = {(m["tag"], m["time_ns"]) for m in unique}
        assert received == expected  # every sample, nothing else
        assert len(unique) == len(expected)  # one key per sample: never spooled twice
        by_tag: dict[tuple[str, bool], list[int]] = defaultdict(list)
        for message in unique:
            by_tag[message["tag"], message["historical"]].append(message["time_ns"])
        for times in by_tag.values():
            assert times == sorted(times)  # in order per tag, live and replayed each
        historical = sum(m["historical"] for m in unique)
        assert historical >= 80 * len(TAGS)  # ~10 s at 10 Hz were replayed
        stats = sink.stats
        assert stats.pending == 0
        assert stats.dropped == 0
        assert stats.reconnects >= 1
        assert stats.oldest_spooled is None
        sink.close()
        assert list((tmp_path / "spool").glob("segments/*.seg"))  # the active one stays
        with bf.cloud.Spool(tmp_path / "spool") as spool:
            assert spool.pending == 0  # drained, and it says so after a reopen
    finally:
        plant.close()
        broker.stop()


def test_live_values_flow_while_the_backlog_replays(
    tmp_path: Path, subscriber_factory: Any
) -> None:
    port = free_port()
    # A first run spools 3000 rows with no broker, and ends.
    with MqttSink(f"mqtt://127.0.0.1:{port}", spool=tmp_path / "spool", device="d") as first:
        for i in range(3000):
            first.send({"x": i}, time_ns=1_000_000_000 + i)
        assert wait_for(lambda: first.spool.pending == 3000, 10)
    with Mosquitto(tmp_path / "broker", port=port) as broker:
        subscriber = subscriber_factory(broker.port, "plant/#")
        sink = MqttSink(broker.url, spool=tmp_path / "spool", device="d", backlog_window=20)
        try:
            assert sink.stats.pending == 3000
            for i in range(20):
                sink.send({"live": i})
                time.sleep(0.01)
            assert sink.flush(30)
            assert wait_for(lambda: len(subscriber.json()) >= 3020, 10)
        finally:
            sink.close()
    messages = subscriber.json()
    order = [m["tag"] for m in messages]
    # The first live value did not wait for the whole backlog.
    assert order.index("live") < 2000
    xs = [m for m in messages if m["tag"] == "x"]
    assert [m["value"] for m in xs] == list(range(3000))  # replayed in order
    assert all(m["historical"] for m in xs)
    live = [m for m in messages if m["tag"] == "live"]
    assert [m["value"] for m in live] == list(range(20))
    assert not any(m["historical"] for m in live)


def test_spool_cap_drops_the_oldest_and_counts_exactly(
    tmp_path: Path, subscriber_factory: Any
) -> None:
    port = free_port()
    sink = MqttSink(
        f"mqtt://127.0.0.1:{port}",
        spool=tmp_path / "spool",
        device="d",
        max_spool_bytes=64 * 1024,
    )
    try:
        total = 3000
        for i in range(total):
            sink.send({"x": i}, time_ns=1_000_000_000 + i)
        assert wait_for(lambda: sink.stats.dropped > 0 and sink.stats.rows == total, 10)
        assert wait_for(lambda: sink.stats.pending + sink.stats.dropped == total, 10)
        time.sleep(1.2)  # another enforcement pass changes nothing
        stats = sink.stats
        assert stats.pending + stats.dropped == total
        assert stats.spool_bytes <= 64 * 1024
        kept = [decode_row(e.payload).values[0] for e in sink.spool]
        assert kept == list(range(stats.dropped, total))  # the newest kept, in order
        assert stats.oldest_spooled == 1_000_000_000 + stats.dropped
        assert stats.newest_spooled == 1_000_000_000 + total - 1
        with Mosquitto(tmp_path / "broker", port=port) as broker:
            subscriber = subscriber_factory(broker.port, "plant/#")
            assert sink.flush(30)
            assert wait_for(lambda: len(subscriber.json()) >= len(kept), 10)
            values = [m["value"] for m in subscriber.json()]
            assert values == kept
        assert sink.stats.dropped == stats.dropped  # counted once, not again on delivery
    finally:
        sink.close()


def test_max_age_drops_old_rows(tmp_path: Path) -> None:
    sink = MqttSink(
        f"mqtt://127.0.0.1:{free_port()}", spool=tmp_path / "s", device="d", max_spool_age=60
    )
    try:
        now = time.time_ns()
        for i in range(10):
            sink.send({"x": i}, time_ns=now - 3_600_000_000_000 + i)  # an hour ago
        for i in range(5):
            sink.send({"x": 100 + i}, time_ns=now + i)
        assert wait_for(lambda: sink.stats.dropped == 10, 5)
        assert sink.stats.pending == 5
    finally:
        sink.close()


def test_disk_full_is_a_clear_error_and_acquisition_goes_on(
    tmp_path: Path, subscriber_factory: Any, broker: Mosquitto
) -> None:
    subscriber = subscriber_factory(broker.port, "plant/#")
    sink = MqttSink(broker.url, spool=tmp_path / "spool", device="d")
    real_write = sink.spool._write

    def full(fd: int, data: bytes) -> int:
        # A write that gets half its bytes out, then the disk is full.
        real_write(fd, data[: len(data) // 2])
        raise OSError(errno.ENOSPC, "No space left on device")

    plant = bf.sim.Plant(seed=1)
    try:
        plant.serve(modbus=0)
        with plant.connect("modbus") as plc:
            sink.spool._write = full
            recording = plc.record(
                ["tank.level"], interval="50ms", duration="3s", background=True, sinks=[sink]
            )
            assert wait_for(lambda: "full" in sink.stats.last_error, 5)
            assert "no space left on device" in sink.stats.last_error
            assert str(tmp_path / "spool") in sink.stats.last_error
            assert wait_for(lambda: sink.stats.unspooled >= 5, 5)
            rows_then = len(recording)
            assert wait_for(lambda: len(recording) > rows_then + 5, 5)  # still sampling
            sink.spool._write = real_write  # space again
            recording.wait(10)
        assert sink.flush(20), sink.stats
        assert sink.stats.unspooled == 0
        assert sink.stats.dropped == 0
        expected = _samples(recording)
        assert wait_for(lambda: len(subscriber.json()) >= len(expected), 10)
        assert {(m["tag"], m["time_ns"]) for m in _dedup(subscriber.json())} == expected
    finally:
        sink.close()
        plant.close()


def test_a_message_the_broker_keeps_refusing_is_quarantined(
    tmp_path: Path, subscriber_factory: Any
) -> None:
    acl = tmp_path / "acl"
    acl.write_text("topic write plant/d/ok\ntopic read #\n")
    broker = Mosquitto(tmp_path / "broker", extra=[f"acl_file {acl}"])
    acl.chmod(0o644)
    with broker:
        subscriber = subscriber_factory(broker.port, "plant/#")
        sink = MqttSink(broker.url, spool=tmp_path / "spool", device="d", max_attempts=2)
        try:
            for i in range(5):
                sink.send({"ok": i, "secret": i})
            assert sink.flush(20), sink.stats
            stats = sink.stats
            assert stats.quarantined == 5
            assert stats.refused == 10
            assert stats.pending == 0
            files = sorted((tmp_path / "spool" / "quarantine").glob("*.json"))
            assert len(files) == 5
            document = json.loads(files[0].read_text())
            assert "Not authorized" in document["reason"]
            assert json.loads(document["payload"])["tag"] == "secret"
            assert "refused" in stats.last_error
            assert wait_for(lambda: len(subscriber.json()) >= 5, 5)
            assert [m["value"] for m in subscriber.json()] == list(range(5))
        finally:
            sink.close()


def test_publish_a_recording_marked_historical(
    tmp_path: Path, subscriber_factory: Any, broker: Mosquitto
) -> None:
    subscriber = subscriber_factory(broker.port, "plant/#")
    plant = bf.sim.Plant(seed=2)
    try:
        plant.serve(modbus=0)
        with plant.connect("modbus") as plc:
            recording = plc.record(
                ["tank.level", "line.state"], interval="50ms", duration="1s", progress=False
            )
        with MqttSink(broker.url, spool=tmp_path / "spool", device="line1") as sink:
            assert recording.publish(sink) == len(recording)
            assert sink.flush(10)
        expected = _samples(recording)
        assert wait_for(lambda: len(subscriber.json()) >= len(expected), 10)
        messages = subscriber.json()
        assert {(m["tag"], m["time_ns"]) for m in messages} == expected
        assert all(m["historical"] for m in messages)
        assert {m["device"] for m in messages} == {"line1"}
        level = recording.to_pandas()["tank.level"].to_numpy()
        sent = [m["value"] for m in messages if m["tag"] == "tank.level"]
        np.testing.assert_allclose(sent, level)
    finally:
        plant.close()


def test_subscribe_forwards_changes(
    tmp_path: Path, subscriber_factory: Any, broker: Mosquitto
) -> None:
    subscriber = subscriber_factory(broker.port, "plant/#")
    plant = bf.sim.Plant(seed=2)
    try:
        plant.serve(modbus=0)
        with plant.connect("modbus") as plc, MqttSink(broker.url, device="p") as sink:
            frames: list[Any] = []
            subscription = plc.subscribe(
                ["tank.level", "plant.heartbeat"],
                frames.append,
                interval="50ms",
                sinks=[sink],
            )
            assert wait_for(lambda: len(frames) >= 10, 10)
            subscription.cancel()
            assert sink.flush(10)
            changes = sum(len(f) for f in frames)
        assert wait_for(lambda: len(subscriber.json()) >= changes, 10)
        messages = subscriber.json()
        assert len(messages) == changes
        assert {m["tag"] for m in messages} == {"tank.level", "plant.heartbeat"}
        assert not any(m["historical"] for m in messages)
    finally:
        plant.close()


def test_password_must_be_a_secret_and_never_shows() -> None:
    with pytest.raises(bf.ConfigurationError, match="Secret"):
        MqttSink("mqtt://127.0.0.1:1", password="hunter2")  # type: ignore[arg-type]
    with pytest.raises(bf.ConfigurationError, match="password"):
        MqttSink("mqtt://user:hunter2@127.0.0.1:1")
    sink = MqttSink("mqtt://127.0.0.1:1", username="u", password=bf.Secret("hunter2"))
    try:
        assert "hunter2" not in repr(sink) + repr(sink.stats) + repr(sink.__dict__)
    finally:
        sink.close()


def test_a_message_on_which_the_broker_drops_the_connection_is_quarantined(
    tmp_path: Path, subscriber_factory: Any
) -> None:
    # MQTT 3.1.1 has no reason codes: mosquitto closes the connection of a client that
    # sends a packet over its max_packet_size. Without quarantine, that message would
    # take every new connection down, and everything spooled behind it would wait.
    broker = Mosquitto(tmp_path / "broker", extra=["max_packet_size 1000"])
    with broker:
        subscriber = subscriber_factory(broker.port, "plant/#")
        sink = MqttSink(
            broker.url, spool=tmp_path / "spool", device="d", protocol="3.1.1", max_attempts=2
        )
        try:
            for i in range(5):
                sink.send({"n": i})
            sink.send({"blob": "x" * 3000})
            for i in range(5, 10):
                sink.send({"n": i})
            assert sink.flush(60), sink.stats
            stats = sink.stats
            assert stats.quarantined == 1
            assert stats.pending == 0
            files = list((tmp_path / "spool" / "quarantine").glob("*.json"))
            assert len(files) == 1
            document = json.loads(files[0].read_text())
            assert "dropped the connection" in document["reason"]
            assert json.loads(document["payload"])["tag"] == "blob"
            assert wait_for(lambda: len(_dedup(subscriber.json())) >= 10, 10)
            values = sorted({m["value"] for m in _dedup(subscriber.json())})
            assert values == list(range(10))  # everything else went through
        finally:
            sink.close()


def test_a_long_historical_feed_waits_for_the_spool_instead_of_piling_up(
    tmp_path: Path,
) -> None:
    from bifrost.cloud import sinks

    # No broker: the rows only go to the spool, which is made slower than the feed.
    sink = MqttSink(f"mqtt://127.0.0.1:{free_port()}", spool=tmp_path / "spool", device="d")
    try:
        append = sink.spool.append

        def slow_append(records: Any) -> int:
            time.sleep(len(records) * 20e-6)
            return append(records)

        sink.spool.append = slow_append  # type: ignore[method-assign]
        waiting: list[int] = []
        done = threading.Event()

        def watch() -> None:
            while not done.is_set():
                waiting.append(sink._incoming.qsize())
                time.sleep(0.002)

        watcher = threading.Thread(target=watch)
        watcher.start()
        count = 60_000
        times = np.arange(count, dtype=np.int64) + 1_700_000_000_000_000_000
        values = np.arange(count, dtype=np.float64)
        quality = np.zeros((count, 1), dtype=np.uint8)
        sink.feed("src", ["x"], ["float64"], historical=True).rows(times, [values], quality)
        done.set()
        watcher.join()
        assert max(waiting) <= sinks._HISTORY_QUEUE + sinks._HISTORY_CHUNK
        assert max(waiting) > sinks._HISTORY_QUEUE // 2  # the spool was the slower one
        assert wait_for(lambda: sink.spool.end - sink.spool.head == count, 30)
    finally:
        sink.close()

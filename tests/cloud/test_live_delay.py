"""Live values keep flowing while a large backlog replays: each one late by one interval at most.

A sink's spool fills while the broker is away; the broker comes back and the backlog
replays while live rows are fed every publish interval. An independent subscriber
stamps each live message on arrival; each must arrive within the interval (plus a
tolerance for this loaded machine) of being fed, one stall in a hundred rows aside, and
the backlog must drain in full, in order, marked historical. Over loopback, and through
a slow link (a bandwidth-limited proxy) where a fixed number of backlog messages ahead
of a live one would take far longer than an interval to get through.
"""

from __future__ import annotations

import json
import statistics
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from brokers import Mosquitto, free_port
from tcp_proxy import FaultyProxy
from waiting import wait_for

from bifrost.cloud import MqttSink
from bifrost.exceptions import ConfigurationError

INTERVAL = 0.1  # s between live rows
# Scheduling on a 2-core machine shared with other test runs (the spool's fsync, the
# broker, the subscriber and this test's threads all wait their turn).
TOLERANCE = 0.15
LINK_RATE = 40_000  # bytes/s: 100 backlog messages (~200 bytes each) take 0.5 s


class ArrivalClock:
    """Stamps the arrival of each live message at the independent subscriber."""

    def __init__(self, subscriber: Any) -> None:
        self.arrived: dict[int, float] = {}
        self.lock = threading.Lock()
        self._forward = subscriber.client.on_message
        subscriber.client.on_message = self._on_message

    def _on_message(self, client: Any, userdata: Any, message: Any) -> None:
        now = time.monotonic()
        if message.topic.endswith("/live"):
            value = json.loads(message.payload)["value"]
            with self.lock:
                self.arrived.setdefault(value, now)
        self._forward(client, userdata, message)


def _spool_backlog(spool: Path, rows: int) -> None:
    # A run with no broker at all: everything it is handed stays in its spool.
    with MqttSink(f"mqtt://127.0.0.1:{free_port()}", spool=spool, device="d") as away:
        for i in range(rows):
            away.send({"x": i}, time_ns=1_000_000_000 + i)
        assert wait_for(lambda: away.spool.pending == rows, 30)


def _replay_with_live_rows(
    tmp_path: Path, subscriber_factory: Any, rows: int, rate: float | None, **options: Any
) -> dict[int, float]:
    """Replay ``rows`` of backlog while feeding live rows; the live rows' delays (s).

    Checks that the backlog drained, in order, marked historical, and the live rows too.
    """
    spool = tmp_path / "spool"
    _spool_backlog(spool, rows)
    # The checking subscriber must see every message: mosquitto's default drops what is
    # queued for a slow client beyond 1,000, and a Python subscriber on a loaded machine
    # falls that far behind a backlog of 20,000 rows.
    broker = Mosquitto(tmp_path / "broker", extra=["max_queued_messages 0"]).start()
    proxy = FaultyProxy(broker.port, rate=rate).start() if rate else None
    url = f"mqtt://127.0.0.1:{proxy.port}" if proxy else broker.url
    sink: MqttSink | None = None
    try:
        subscriber = subscriber_factory(broker.port, "plant/#")
        clock = ArrivalClock(subscriber)
        sink = MqttSink(url, spool=spool, device="d", **options)
        assert sink.stats.pending == rows
        # Live rows are those spooled once the sink has taken the backlog in hand.
        assert wait_for(lambda: sink is not None and sink.stats.historical > 0, 15)
        fed: dict[int, float] = {}
        replaying: list[int] = []  # live rows fed while part of the backlog was unsent
        start = time.monotonic()
        deadline = start + 100
        i = 0
        while time.monotonic() < deadline:
            backlog_left = sink.stats.acknowledged < rows
            fed[i] = time.monotonic()
            sink.send({"live": i})
            if backlog_left:
                replaying.append(i)
            elif len(fed) > len(replaying) + 10:
                break  # ten more once the backlog is through
            i += 1
            time.sleep(max(0.0, start + i * INTERVAL - time.monotonic()))
        assert sink.flush(30), sink.stats
        # Bounded, but long enough for a Python subscriber behind on a loaded machine.
        assert wait_for(lambda: len(subscriber.json()) >= rows + len(fed), 60)
        time.sleep(0.3)  # late duplicates, if any, arrive now
    finally:
        if sink is not None:
            sink.close()
        if proxy is not None:
            proxy.stop()
        broker.stop()

    # The replay lasted long enough to prove something: many live rows fed during it.
    assert len(replaying) >= 20, len(replaying)
    with clock.lock:
        delays = {n: clock.arrived[n] - fed[n] for n in fed if n in clock.arrived}
    assert sorted(delays) == sorted(fed)  # every live row arrived

    messages = subscriber.json()
    xs = [m for m in messages if m["tag"] == "x"]
    assert [m["value"] for m in xs] == list(range(rows))  # the whole backlog, in order, once
    assert all(m["historical"] for m in xs)
    live = [m for m in messages if m["tag"] == "live"]
    assert [m["value"] for m in live] == sorted(fed)
    assert not any(m["historical"] for m in live)
    assert sink.stats.pending == 0
    assert sink.stats.dropped == 0
    return delays


def _late(delays: dict[int, float]) -> dict[int, float]:
    return {n: round(d, 3) for n, d in delays.items() if d > INTERVAL + TOLERANCE}


def _assert_live_rows_kept_up(delays: dict[int, float]) -> None:
    """Late by one interval at most, but for one stall in a hundred rows of no more than two.

    A rehearsal on the shared 2-core machine held a single row of ~250 for 0.40 s (every
    other one within the interval): a scheduling stall of the spool's fsync, the proxy or
    the subscriber, not the backlog. Without the time bound most rows are late, by ~0.5 s
    over the slow link (the control test below), so this still tells the two apart.
    """
    late = _late(delays)
    assert len(late) <= max(1, len(delays) // 100), (
        f"late by more than {INTERVAL + TOLERANCE} s: {late}"
    )
    assert max(delays.values()) <= 2 * (INTERVAL + TOLERANCE), late
    assert statistics.median(delays.values()) <= INTERVAL, sorted(delays.values())


@pytest.mark.slow
def test_live_rows_are_late_by_one_interval_at_most_while_20000_rows_replay(
    tmp_path: Path, subscriber_factory: Any
) -> None:
    delays = _replay_with_live_rows(tmp_path, subscriber_factory, rows=20_000, rate=None)
    _assert_live_rows_kept_up(delays)


@pytest.mark.slow
def test_over_a_slow_link_the_backlog_yields_to_live_rows(
    tmp_path: Path, subscriber_factory: Any
) -> None:
    # ~1 MB of backlog through 40 kB/s: about 25 s of replay.
    delays = _replay_with_live_rows(tmp_path, subscriber_factory, rows=5_000, rate=LINK_RATE)
    _assert_live_rows_kept_up(delays)


@pytest.mark.slow
def test_over_a_slow_link_a_window_of_messages_alone_delays_live_rows(
    tmp_path: Path, subscriber_factory: Any
) -> None:
    # The control: without the time bound, the link is slow enough that live rows wait
    # behind the backlog_window's messages (~0.5 s of them) far longer than an interval.
    delays = _replay_with_live_rows(
        tmp_path, subscriber_factory, rows=3_000, rate=LINK_RATE, max_live_delay=None
    )
    assert len(_late(delays)) > len(delays) // 2, sorted(delays.values())


@pytest.mark.parametrize("bad", [0, -0.1, float("nan")])
def test_max_live_delay_must_be_a_positive_time(bad: float) -> None:
    with pytest.raises(ConfigurationError, match="max_live_delay"):
        MqttSink(f"mqtt://127.0.0.1:{free_port()}", max_live_delay=bad)

"""MQTT sinks vs a plain paho-mqtt loop, against a local mosquitto.

100,000 values (10,000 rows of 10 tags), QoS 1, one JSON message per value, timed from
the first value handed over to the last PUBACK:

- plain paho: ``json.dumps`` of the same fields and ``client.publish`` per value, the
  same in-flight window, waiting for every PUBACK (the floor: no spool, no bookkeeping);
- ``MqttSink`` without a spool folder (a throw-away one, no fsync): target >= 0.9x;
- ``MqttSink`` with a spool folder (fsync per batch): target >= 0.8x;
- Sparkplug B: one DDATA per row (10 metrics): values/s, target >= 5x JSON one-per-value;
- backlog replay: 100,000 values spooled while the broker is away, then drained
  (values/s and rows/s), with the sink's time bound on the backlog (``max_live_delay``,
  the default) and with only its count window, alternately: the time bound must not
  slow the replay on loopback (target >= 0.9x).

Rounds alternate the contenders; the median is kept. Saves
``benchmarks/results/mqtt.json``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))
from _common import machine_load, save

import bifrost.cloud  # noqa: F401
from bifrost.cloud import MqttSink

ROWS = 10_000
TAGS = 10
VALUES = ROWS * TAGS
WINDOW = 200  # messages handed to paho and not yet acknowledged, for every contender
INFLIGHT = 100  # paho's in-flight limit (it walks its queue on each PUBACK: keep it short)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Broker:
    """mosquitto on a free loopback port (no persistence: the broker is not measured)."""

    def __init__(self, folder: Path, port: int | None = None) -> None:
        self.port = port or _free_port()
        config = folder / f"mosquitto-{self.port}.conf"
        config.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\n")
        mosquitto = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.process = subprocess.Popen(
            [mosquitto, "-c", str(config)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.02)
        raise RuntimeError("mosquitto did not start")

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        self.process.wait(10)


def _rows() -> tuple[np.ndarray, list[np.ndarray], np.ndarray, list[str]]:
    times = 1_700_000_000_000_000_000 + np.arange(ROWS, dtype=np.int64) * 100_000_000
    columns = [np.arange(ROWS, dtype=np.float64) + j for j in range(TAGS)]
    quality = np.zeros((ROWS, TAGS), dtype=np.uint8)
    return times, columns, quality, [f"tag{j:02d}" for j in range(TAGS)]


def plain_paho(broker: Broker) -> float:
    """Seconds for VALUES messages by hand: json.dumps + publish each, all acknowledged."""
    from paho.mqtt import client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    times, columns, _quality, names = _rows()
    done = threading.Event()
    window = threading.Semaphore(WINDOW)
    acked = 0

    def on_publish(client: Any, userdata: Any, mid: int, reason: Any, props: Any) -> None:
        nonlocal acked
        acked += 1
        window.release()
        if acked == VALUES:
            done.set()

    client = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="plain", protocol=mqtt.MQTTv5)
    client.max_inflight_messages_set(INFLIGHT)
    client.on_publish = on_publish
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    stamps = times.tolist()
    values = [c.tolist() for c in columns]
    started = time.perf_counter()
    for i in range(ROWS):
        stamp = stamps[i]
        for j, name in enumerate(names):
            payload = json.dumps(
                {
                    "key": f"d/{name}/{stamp}/{i}",
                    "device": "d",
                    "tag": name,
                    "time_ns": stamp,
                    "seq": i,
                    "value": values[j][i],
                    "quality": "good",
                    "quality_code": 0,
                    "historical": False,
                },
                separators=(",", ":"),
            )
            window.acquire()
            client.publish(f"plant/d/{name}", payload, qos=1)
    done.wait(120)
    elapsed = time.perf_counter() - started
    client.disconnect()
    client.loop_stop()
    return elapsed


def sink_run(broker: Broker, spool: Path | None, payload: str = "json") -> float:
    """Seconds for the rows through an MqttSink until all are acknowledged."""
    times, columns, quality, names = _rows()
    sink = MqttSink(
        broker.url,
        spool=spool,
        device="d",
        payload=payload,  # type: ignore[arg-type]
        group="G",
        node="bench",
        window=WINDOW,
    )
    try:
        while not sink.connected:
            time.sleep(0.01)
        feed = sink.feed("d", names, ["float64"] * TAGS)
        started = time.perf_counter()
        for start in range(0, ROWS, 100):  # as a recorder hands them over: a few at a time
            stop = start + 100
            feed.rows(times[start:stop], [c[start:stop] for c in columns], quality[start:stop])
        assert sink.flush(120), sink.stats
        return time.perf_counter() - started
    finally:
        sink.close()
        if spool is not None:
            shutil.rmtree(spool, ignore_errors=True)


def replay(folder: Path, max_live_delay: float | None = 0.1) -> dict[str, float]:
    """Spool everything with no broker, then time the drain once a broker is there."""
    times, columns, quality, names = _rows()
    port = _free_port()
    spool = folder / "replay-spool"
    with MqttSink(f"mqtt://127.0.0.1:{port}", spool=spool, device="d") as offline:
        offline.feed("d", names, ["float64"] * TAGS).rows(times, columns, quality)
        while offline.spool.pending < ROWS:
            time.sleep(0.01)
    broker = Broker(folder, port)
    try:
        started = time.perf_counter()
        with MqttSink(
            broker.url,
            spool=spool,
            device="d",
            window=WINDOW,
            backlog_window=WINDOW // 2,
            max_live_delay=max_live_delay,
        ) as sink:
            assert sink.flush(300), sink.stats
            elapsed = time.perf_counter() - started
    finally:
        broker.stop()
        shutil.rmtree(spool, ignore_errors=True)
    return {
        "seconds": round(elapsed, 3),
        "rows_per_s": round(ROWS / elapsed),
        "values_per_s": round(VALUES / elapsed),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench-mqtt-"))
    broker = Broker(folder)
    contenders: dict[str, Callable[[], float]] = {
        "plain paho": lambda: plain_paho(broker),
        "MqttSink, no spool folder": lambda: sink_run(broker, None),
        "MqttSink, spool (fsync)": lambda: sink_run(broker, folder / "spool"),
        "MqttSink, Sparkplug B": lambda: sink_run(broker, folder / "spool-spb", "sparkplug"),
    }
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    replays: dict[str, list[dict[str, float]]] = {"time bound": [], "count window": []}
    try:
        for _ in range(args.rounds):
            for name, run in contenders.items():
                samples[name].append(run())
            replays["time bound"].append(replay(folder))
            replays["count window"].append(replay(folder, max_live_delay=None))
    finally:
        broker.stop()
        shutil.rmtree(folder, ignore_errors=True)
    seconds = {name: statistics.median(values) for name, values in samples.items()}
    backlog, unbounded = (
        min(
            runs,
            key=lambda run: abs(run["seconds"] - statistics.median(r["seconds"] for r in runs)),
        )
        for runs in replays.values()
    )
    rate = {name: VALUES / s for name, s in seconds.items()}
    base = rate["plain paho"]
    result = {
        "values": VALUES,
        "rows": ROWS,
        "qos": 1,
        "values_per_s": {name: round(r) for name, r in rate.items()},
        "ratio_no_spool": round(rate["MqttSink, no spool folder"] / base, 3),
        "ratio_spool": round(rate["MqttSink, spool (fsync)"] / base, 3),
        "sparkplug_vs_json": round(
            rate["MqttSink, Sparkplug B"] / rate["MqttSink, spool (fsync)"], 2
        ),
        "backlog_replay": backlog,
        "backlog_replay_count_window_only": unbounded,
        "replay_time_bound_vs_count_window": round(unbounded["seconds"] / backlog["seconds"], 3),
        "targets": {
            "ratio_no_spool": 0.9,
            "ratio_spool": 0.8,
            "sparkplug_vs_json": 5.0,
            "replay_time_bound_vs_count_window": 0.9,
        },
        **machine_load(),
    }
    for name, r in rate.items():
        print(f"{name:28s} {r:10,.0f} values/s  ({seconds[name]:.2f} s)")
    print(f"no spool / plain paho: {result['ratio_no_spool']:.2f}x (target 0.9x)")
    print(f"spool / plain paho:    {result['ratio_spool']:.2f}x (target 0.8x)")
    print(f"Sparkplug / JSON:      {result['sparkplug_vs_json']:.1f}x values/s (target 5x)")
    print(
        f"backlog replay:        {backlog['values_per_s']:,} values/s, "
        f"{backlog['rows_per_s']:,} rows/s"
    )
    print(
        f"replay, count window only: {unbounded['values_per_s']:,} values/s "
        f"(time bound / count window {result['replay_time_bound_vs_count_window']:.2f}x, "
        "target 0.9x)"
    )
    save("mqtt", result)


if __name__ == "__main__":
    main()

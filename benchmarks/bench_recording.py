"""Recording 500 Modbus tags at 100 Hz while the main thread computes, against the anchor.

Anchor: a hand-written pymodbus polling loop on its own thread, appending each value to
Python lists — the script engineers write today. Both run against the simulated plant
(its own process) while the main thread runs a pure-Python CPU-heavy loop; reported:
missed cycles, jitter p50/p99 and memory per recorded value.

Second part: to_pandas() / to_xarray() of 10M values vs building the same DataFrame
directly from NumPy arrays.
"""

from __future__ import annotations

import os
import threading
import time
import tracemalloc
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
from _common import interleaved, plant_process, save
from pymodbus.client import ModbusTcpClient

import bifrost as bf
from bifrost.model import Tag
from bifrost.recording import Recording

N_TAGS = 500
INTERVAL = 0.01
SECONDS = float(os.environ.get("BENCH_SECONDS", "30"))
FIRST = 1000


def busy(stop: threading.Event) -> int:
    """Pure-Python work on the main thread (holds the GIL between switches)."""
    total = 0
    while not stop.is_set():
        for i in range(10_000):
            total += i * i % 7
    return total


def run_bifrost(url: str) -> dict[str, float]:
    tags = [f"hr:{FIRST + i}" for i in range(N_TAGS)]
    stop = threading.Event()
    with bf.connect(url) as plc:
        rec = plc.record(tags, interval=INTERVAL, duration=SECONDS, background=True)
        timer = threading.Timer(SECONDS, stop.set)
        timer.start()
        busy(stop)
        rec.wait(SECONDS + 30)
    stats = rec.stats
    values = len(rec) * N_TAGS
    return {
        "samples": stats.samples,
        "missed_cycles": stats.missed_cycles,
        "jitter_p50_ms": round(stats.jitter_p50_ms, 3),
        "jitter_p99_ms": round(stats.jitter_p99_ms, 3),
        "bytes_per_value": round(rec.buffer.used_nbytes / max(1, values), 2),
        "bytes_per_value_allocated": round(rec.buffer.nbytes / max(1, values), 2),
    }


def run_anchor(url: str) -> dict[str, float]:
    parts = urlsplit(url)
    client = ModbusTcpClient(parts.hostname or "127.0.0.1", port=parts.port or 502)
    client.connect()
    times: list[float] = []
    columns: list[list[int]] = [[] for _ in range(N_TAGS)]
    lateness: list[float] = []
    missed = 0
    stop = threading.Event()

    def poll() -> None:
        nonlocal missed
        start = time.monotonic()
        k = 0
        while not stop.is_set():
            due = start + k * INTERVAL
            delay = due - time.monotonic()
            if delay > 0:
                time.sleep(delay)
            late = time.monotonic() - due
            if late >= INTERVAL:
                missed += int(late // INTERVAL)
                k += int(late // INTERVAL)
                continue
            lateness.append(late)
            registers: list[int] = []
            for offset in range(0, N_TAGS, 125):
                registers += client.read_holding_registers(
                    FIRST + offset, count=125, device_id=1
                ).registers
            times.append(time.time())
            for column, value in zip(columns, registers, strict=True):
                column.append(value)
            k += 1

    tracemalloc.start()
    thread = threading.Thread(target=poll)
    thread.start()
    timer = threading.Timer(SECONDS, stop.set)
    timer.start()
    busy(stop)
    thread.join()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    client.close()
    values = len(times) * N_TAGS
    ms = np.asarray(lateness) * 1e3
    return {
        "samples": len(times),
        "missed_cycles": missed,
        "jitter_p50_ms": round(float(np.percentile(ms, 50)), 3),
        "jitter_p99_ms": round(float(np.percentile(ms, 99)), 3),
        "bytes_per_value": round(peak / max(1, values), 2),
    }


def conversions() -> dict[str, float]:
    rows, width = 100_000, 100  # 10M values
    tags = [Tag(f"t{i:03d}", f"hr:{i}") for i in range(width)]
    rec = Recording(tags, ["float32"] * width, 0.01)
    times = np.arange(rows, dtype=np.int64) * 10_000_000 + 1_700_000_000_000_000_000
    values = np.random.default_rng(0).normal(size=(rows, width))
    rec.buffer.extend(
        times, values, np.empty((rows, width), dtype=object), np.zeros((rows, width), np.uint8)
    )
    index = pd.DatetimeIndex(times.view("datetime64[ns]"), tz="UTC")
    names = [t.name for t in tags]

    def direct() -> None:
        pd.DataFrame(values, index=index, columns=names)

    def direct_columns() -> None:
        pd.DataFrame(
            {n: np.ascontiguousarray(values[:, j]) for j, n in enumerate(names)}, index=index
        )

    timings = interleaved(
        {
            "numpy -> DataFrame": direct,
            "numpy columns -> DataFrame": direct_columns,
            "Recording.to_pandas": rec.to_pandas,
            "Recording.to_xarray": rec.to_xarray,
        },
        rounds=5,
    )
    base = timings["numpy -> DataFrame"]
    return {
        **{f"{k} ms": round(v * 1e3, 1) for k, v in timings.items()},
        "to_pandas_ratio": round(timings["Recording.to_pandas"] / base, 2),
        "to_xarray_ratio": round(timings["Recording.to_xarray"] / base, 2),
    }


def main() -> dict[str, object]:
    with plant_process("modbus") as urls:
        url = urls["modbus"]
        ours = run_bifrost(url)
        anchor = run_anchor(url)
    result = {
        "tags": N_TAGS,
        "interval_s": INTERVAL,
        "seconds": SECONDS,
        "bifrost": ours,
        "pymodbus loop + lists": anchor,
        "conversions_10M_values": conversions(),
        "targets": "0 missed cycles; <= 24 bytes per value; conversions within 2x",
    }
    save("recording", result)
    return result


if __name__ == "__main__":
    import json

    print(json.dumps(main(), indent=2))

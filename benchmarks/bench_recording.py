"""Recording 500 Modbus tags at 100 Hz while the main thread computes, against the anchor.

Anchor: a hand-written pymodbus polling loop on its own thread, appending each value to
Python lists — the script engineers write today. Both run against the simulated plant
(its own process) while the main thread runs a pure-Python CPU-heavy loop; reported:
missed cycles, jitter p50/p99 and memory per recorded value.

Second part, recording to disk (no busy loop; rounds alternate, min/median/max):
- CPU per value of ``plc.record(..., path=...)`` (sampling, streaming to the spool, the
  final Parquet file) against a pymodbus loop appending to lists plus ``to_parquet`` of
  the same rows at the end, each measured as this process's CPU time;
- write amplification: bytes the process wrote (``wchar`` of ``/proc/self/io``, which
  also counts the ~1 % of Modbus request bytes) over the size of the final file;
- the recording's buffer memory after its first row and at the end, against what its
  rows take;
- ``open_recording(file).to_pandas()`` against ``pd.read_parquet(file)`` of that file.

Third part: to_pandas() / to_xarray() of 10M values vs building the same DataFrame
directly from NumPy arrays.
"""

from __future__ import annotations

import os
import tempfile
import threading
import time
import tracemalloc
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
from _common import (
    interleaved,
    interleaved_samples,
    machine_load,
    plant_process,
    ratio_spread,
    save,
    spread,
)
from pymodbus.client import ModbusTcpClient

import bifrost as bf
from bifrost.model import Tag
from bifrost.recording import Recording

N_TAGS = 500
INTERVAL = 0.01
SECONDS = float(os.environ.get("BENCH_SECONDS", "30"))
FIRST = 1000
DISK_SECONDS = float(os.environ.get("BENCH_DISK_SECONDS", "10"))
DISK_ROUNDS = int(os.environ.get("BENCH_DISK_ROUNDS", "3"))


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


def written_bytes() -> int:
    """Bytes this process passed to write calls so far (files and sockets)."""
    with open("/proc/self/io") as io:
        for line in io:
            if line.startswith("wchar:"):
                return int(line.split()[1])
    raise RuntimeError("/proc/self/io has no wchar line")


def record_to_disk(url: str, path: str, seconds: float = DISK_SECONDS) -> dict[str, float]:
    tags = [f"hr:{FIRST + i}" for i in range(N_TAGS)]
    with bf.connect(url) as plc:
        plc.read(tags)  # plan and connection warm, as the anchor's client is
        written, cpu = written_bytes(), time.process_time()
        rec = plc.record(tags, interval=INTERVAL, duration=seconds, background=True, path=path)
        while len(rec) == 0:
            time.sleep(0.001)
        first_row_bytes = rec.buffer.nbytes
        rec.wait(seconds + 60)
        cpu = time.process_time() - cpu
        written = written_bytes() - written
    final = os.path.getsize(path)
    values = len(rec) * N_TAGS
    return {
        "rows": len(rec),
        "missed_cycles": rec.stats.missed_cycles,
        "cpu_per_value_us": cpu / values * 1e6,
        "write_amplification": written / final,
        "final_bytes": final,
        "buffer_bytes_after_first_row": first_row_bytes,
        "buffer_allocated_over_used": rec.buffer.nbytes / max(1, rec.buffer.used_nbytes),
    }


def pymodbus_to_parquet(url: str, path: str, seconds: float = DISK_SECONDS) -> dict[str, float]:
    parts = urlsplit(url)
    client = ModbusTcpClient(parts.hostname or "127.0.0.1", port=parts.port or 502)
    client.connect()
    names = [f"hr:{FIRST + i}" for i in range(N_TAGS)]
    written, cpu = written_bytes(), time.process_time()
    times: list[int] = []
    columns: list[list[int]] = [[] for _ in range(N_TAGS)]
    start = time.monotonic()
    cycles = round(seconds / INTERVAL)
    k = 0
    while k < cycles:
        delay = start + k * INTERVAL - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        registers: list[int] = []
        for offset in range(0, N_TAGS, 125):
            registers += client.read_holding_registers(
                FIRST + offset, count=125, device_id=1
            ).registers
        times.append(time.time_ns())
        for column, value in zip(columns, registers, strict=True):
            column.append(value)
        k += 1
    index = pd.DatetimeIndex(np.asarray(times).view("datetime64[ns]"), tz="UTC", name="time")
    pd.DataFrame(dict(zip(names, columns, strict=True)), index=index).to_parquet(path)
    cpu = time.process_time() - cpu
    written = written_bytes() - written
    client.close()
    return {
        "cpu_per_value_us": cpu / (len(times) * N_TAGS) * 1e6,
        "write_amplification": written / os.path.getsize(path),
    }


def to_disk(url: str, folder: str) -> dict[str, object]:
    ours: list[dict[str, float]] = []
    anchor: list[dict[str, float]] = []
    # Warm-up of both, uncounted: imports (pyarrow.parquet), connections, plan caches.
    record_to_disk(url, os.path.join(folder, "warm-bifrost.parquet"), 0.5)
    pymodbus_to_parquet(url, os.path.join(folder, "warm-anchor.parquet"), 0.5)
    for n in range(DISK_ROUNDS):
        ours.append(record_to_disk(url, os.path.join(folder, f"bifrost-{n}.parquet")))
        anchor.append(pymodbus_to_parquet(url, os.path.join(folder, f"anchor-{n}.parquet")))

    def of(rounds: list[dict[str, float]], key: str) -> list[float]:
        return [r[key] for r in rounds]

    final = os.path.join(folder, f"bifrost-{DISK_ROUNDS - 1}.parquet")
    reads = interleaved_samples(
        {
            "open_recording().to_pandas()": lambda: bf.open_recording(final).to_pandas(),
            "pd.read_parquet": lambda: pd.read_parquet(final),
        },
        rounds=15,
    )
    rounded = lambda d: {k: round(v, 3) for k, v in d.items()}  # noqa: E731
    return {
        "seconds_per_round": DISK_SECONDS,
        "rounds": DISK_ROUNDS,
        "rows_per_round": of(ours, "rows"),
        "missed_cycles_per_round": of(ours, "missed_cycles"),
        "cpu_per_value_us": rounded(spread(of(ours, "cpu_per_value_us"))),
        "anchor_cpu_per_value_us": rounded(spread(of(anchor, "cpu_per_value_us"))),
        "cpu_ratio": ratio_spread(of(ours, "cpu_per_value_us"), of(anchor, "cpu_per_value_us")),
        "write_amplification": rounded(spread(of(ours, "write_amplification"))),
        "anchor_write_amplification": rounded(spread(of(anchor, "write_amplification"))),
        "final_file_bytes": spread(of(ours, "final_bytes")),
        "buffer_bytes_after_first_row": spread(of(ours, "buffer_bytes_after_first_row")),
        "buffer_allocated_over_used": rounded(spread(of(ours, "buffer_allocated_over_used"))),
        "read_back_ms": {k: rounded(spread([x * 1e3 for x in v])) for k, v in reads.items()},
        "read_back_ratio": ratio_spread(
            reads["open_recording().to_pandas()"], reads["pd.read_parquet"]
        ),
        "targets": "write amplification <= 1.5x; CPU <= 1.2x the anchor; buffers sized to "
        "the recording; read back <= 1.2x pd.read_parquet",
    }


def amplification_by_data(folder: str) -> dict[str, float]:
    """Spool + final file over the final file, for kinds of data (500 tags, 1,000 rows).

    The spool is what the recorder writes per flush (100 rows here); the final file is
    what ``Recording.save`` writes. Bytes as written, no device involved.
    """
    from bifrost.recording import spool

    rng = np.random.default_rng(0)
    rows, width = 1000, 500
    walk = np.cumsum(rng.normal(0, 0.01, (rows, width)), axis=0) + 20
    adc = np.round((20 + np.cumsum(rng.normal(0, 0.002, (rows, width)), axis=0)) * 40.96)
    kinds = {
        "uint16 registers, uniform noise": ("uint16", rng.integers(0, 65535, (rows, width))),
        "float32 analog random walk": ("float32", walk.astype(np.float32)),
        "float32 of a 12-bit ADC, slow": ("float32", (adc / 40.96).astype(np.float32)),
        "float64 white noise (worst case)": ("float64", rng.normal(size=(rows, width))),
        "constant": ("uint16", np.full((rows, width), 7)),
    }
    times = np.arange(rows, dtype=np.int64) * 10_000_000 + 1_700_000_000_000_000_000
    times += rng.integers(0, 100_000, rows)
    quality = np.zeros((rows, width), np.uint8)
    result = {}
    for kind, (dtype, values) in kinds.items():
        numbers = values.astype(np.float64)
        rec = Recording([Tag(f"t{i}", f"hr:{i}") for i in range(width)], [dtype] * width, 0.01)
        rec.buffer.extend(times, numbers, np.empty((rows, width), dtype=object), quality)
        path = os.path.join(folder, "kind.parquet")
        rec.save(path)
        final = os.path.getsize(path)
        spooled = sum(
            len(
                spool.encode_rows(
                    times[s : s + 100], numbers[s : s + 100], None, quality[s : s + 100]
                )
            )
            for s in range(0, rows, 100)
        )
        result[kind] = round((final + spooled) / final, 2)
    return result


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
    load = machine_load()
    with plant_process("modbus") as urls, tempfile.TemporaryDirectory() as folder:
        url = urls["modbus"]
        disk = to_disk(url, folder)
        disk["write_amplification_by_data"] = amplification_by_data(folder)
        ours = run_bifrost(url) if SECONDS else {}
        anchor = run_anchor(url) if SECONDS else {}
    result = {
        "load": load,
        "to_disk": disk,
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

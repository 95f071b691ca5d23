"""Helpers shared by the benchmarks: a plant in its own process, interleaved timing."""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

RESULTS = Path(__file__).parent / "results"


@contextmanager
def plant_process(*protocols: str) -> Iterator[dict[str, str]]:
    """Run `bifrost sim` in a separate process (no GIL shared with the client)."""
    args = [sys.executable, "-m", "bifrost", "sim", "--seconds", "900"]
    for protocol in protocols:
        args += [f"--{protocol}", "0"]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    try:
        urls: dict[str, str] = {}
        assert process.stdout is not None
        deadline = time.monotonic() + 30
        while len(urls) < len(protocols) and time.monotonic() < deadline:
            line = process.stdout.readline()
            if not line:
                raise RuntimeError("the simulated plant exited early")
            name, _, url = line.strip().partition(" ")
            if name in protocols:
                urls[name] = url.strip()
        yield urls
    finally:
        process.terminate()
        process.wait(10)


def interleaved(
    contenders: dict[str, Callable[[], object]], rounds: int, repeat: int = 1
) -> dict[str, float]:
    """Median seconds per call of each contender, measured in alternation."""
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for fn in contenders.values():
        fn()  # warm up: connections, plan caches
    for _ in range(rounds):
        for name, fn in contenders.items():
            started = time.perf_counter()
            for _ in range(repeat):
                fn()
            samples[name].append((time.perf_counter() - started) / repeat)
    return {name: statistics.median(values) for name, values in samples.items()}


def interleaved_samples(
    contenders: dict[str, Callable[[], object]], rounds: int, repeat: int = 1
) -> dict[str, list[float]]:
    """Seconds per call of each contender, one sample per round, measured in alternation.

    Each round calls every contender ``repeat`` times in turn, so a burst of load from
    elsewhere on the machine hits all of them alike; ratios are taken per round
    (:func:`ratio_spread`).
    """
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for fn in contenders.values():
        fn()  # warm up: connections, plan caches
    for _ in range(rounds):
        for name, fn in contenders.items():
            started = time.perf_counter()
            for _ in range(repeat):
                fn()
            samples[name].append((time.perf_counter() - started) / repeat)
    return samples


def spread(values: list[float]) -> dict[str, float]:
    """min / median / max of ``values``."""
    return {
        "min": min(values),
        "median": statistics.median(values),
        "max": max(values),
    }


def ratio_spread(ours: list[float], theirs: list[float]) -> dict[str, float]:
    """min / median / max of the per-round ratios ours / theirs."""
    ratios = [a / b for a, b in zip(ours, theirs, strict=True)]
    return {k: round(v, 3) for k, v in spread(ratios).items()}


def ms(stats: dict[str, float]) -> dict[str, float]:
    """Seconds -> milliseconds, rounded."""
    return {k: round(v * 1e3, 4) for k, v in stats.items()}


def machine_load() -> dict[str, float]:
    """The 1/5/15-minute load averages (the machine has 2 cores, shared)."""
    one, five, _ = os.getloadavg()
    return {"load_1min": round(one, 2), "load_5min": round(five, 2), "cores": os.cpu_count() or 0}


def save(name: str, payload: dict[str, object]) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n")


@contextmanager
def modbus_devices(devices: int = 1, delay_ms: float = 0.0) -> Iterator[dict[str, list[int]]]:
    """Run ``_modbus_devices.py`` in its own process: {"device": ports, "delayed": ports}."""
    script = Path(__file__).parent / "_modbus_devices.py"
    args = [sys.executable, str(script), "--devices", str(devices), "--delay-ms", str(delay_ms)]
    process = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
    try:
        ports: dict[str, list[int]] = {"device": [], "delayed": []}
        assert process.stdout is not None
        for line in process.stdout:
            if line.strip() == "ready":
                break
            kind, port = line.split()
            ports[kind].append(int(port))
        else:
            raise RuntimeError("the benchmark devices exited early")
        yield ports
    finally:
        process.terminate()
        process.wait(10)

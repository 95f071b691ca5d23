"""Helpers shared by the benchmarks: a plant in its own process, interleaved timing."""

from __future__ import annotations

import json
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


def save(name: str, payload: dict[str, object]) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / f"{name}.json").write_text(json.dumps(payload, indent=2) + "\n")

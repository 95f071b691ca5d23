"""Analytics kernels vs pandas, scipy and tsdownsample, side by side in one run.

10M float64 samples (1 kHz for 10,000 s). Every task runs bifrost (public API, compiled
backend), its reference and ``np.copyto`` of the same array (the memory-bandwidth
floor), interleaved, median of rounds. Prints the table, saves
``benchmarks/results/analytics.json`` and, with ``--plot PATH``, a chart.

MinMaxLTTB is also run 7 times (``--runs``), each run a median of interleaved rounds
against tsdownsample's ``MinMaxLTTBDownsampler`` on the same input, ``n_out`` and
``minmax_ratio``: against its default (one thread) and ``parallel=True``, and once more
in a child process with ``RAYON_NUM_THREADS=1`` (bifrost on one thread as well). The
min / median / max of the per-run ratios go to ``results/downsampling.json``.

Run with OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE unset (see DEPENDENCIES.md).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.signal as sg
from tsdownsample import MinMaxLTTBDownsampler

sys.path.insert(0, str(Path(__file__).parent))
from _common import interleaved, machine_load, save, spread

import bifrost.analytics as bfa

N = 10_000_000
CHANNELS = 8

# name, reference label, target (bifrost must be at least this many times faster; for
# the downsampler: at most 1.1 times slower)
TASKS: list[tuple[str, str, float]] = [
    ("rolling mean (w=1000)", "pandas rolling().mean()", 8.0),
    ("rolling std (w=1000)", "pandas rolling().std()", 6.0),
    ("resample 1 kHz -> 1 s mean", "pandas resample().mean()", 4.0),
    ("resample mean/min/max/count", "pandas resample().agg()", 5.0),
    ("sosfiltfilt order 4, 1 ch", "scipy sosfiltfilt", 1.5),
    (f"sosfiltfilt order 4, {CHANNELS} ch", "scipy sosfiltfilt", 3.0),
    ("welch nperseg 4096", "scipy welch", 2.0),
    ("MinMaxLTTB -> 2000", "tsdownsample", 1.1),
]
# tsdownsample's own default (MinMaxLTTBDownsampler.downsample's minmax_ratio).
N_OUT, MINMAX_RATIO = 2000, 4


def contenders(x: np.ndarray) -> list[dict[str, Callable[[], object]]]:
    index = pd.date_range("2024-01-01", periods=N, freq="ms")
    series = pd.Series(x, index=index)
    sos = sg.butter(4, 50.0, fs=1000.0, output="sos")
    # The eight channels hold 10M samples in all (1.25M each).
    channels = np.ascontiguousarray(x.reshape(CHANNELS, -1))
    frame = pd.DataFrame(channels.T)
    floor = np.empty_like(x)
    downsampler = MinMaxLTTBDownsampler()
    stats = ["mean", "min", "max", "count"]

    def copy() -> None:
        np.copyto(floor, x)

    return [
        {
            "bifrost": lambda: bfa.rolling_mean(series, 1000),
            "reference": lambda: series.rolling(1000).mean(),
            "copyto": copy,
        },
        {
            "bifrost": lambda: bfa.rolling_std(series, 1000),
            "reference": lambda: series.rolling(1000).std(),
            "copyto": copy,
        },
        {
            "bifrost": lambda: bfa.resample(series, "1s"),
            "reference": lambda: series.resample("1s").mean(),
            "copyto": copy,
        },
        {
            "bifrost": lambda: bfa.resample(series, "1s", how=stats),
            "reference": lambda: series.resample("1s").agg(stats),
            "copyto": copy,
        },
        {
            "bifrost": lambda: bfa.sos_filter(x, sos),
            "reference": lambda: sg.sosfiltfilt(sos, x),
            "copyto": copy,
        },
        {
            "bifrost": lambda: bfa.sos_filter(frame, sos),
            "reference": lambda: sg.sosfiltfilt(sos, frame.to_numpy(), axis=0),
            "copyto": copy,
        },
        {
            "bifrost": lambda: bfa.welch(x, 1000.0, nperseg=4096),
            "reference": lambda: sg.welch(x, fs=1000.0, nperseg=4096),
            "copyto": copy,
        },
        {
            "bifrost": lambda: bfa.downsample(x, n_out=N_OUT, minmax_ratio=MINMAX_RATIO),
            "reference": lambda: downsampler.downsample(x, n_out=N_OUT, minmax_ratio=MINMAX_RATIO),
            "copyto": copy,
        },
    ]


def downsampling_runs(x: np.ndarray, runs: int, rounds: int) -> dict[str, object]:
    """MinMaxLTTB against tsdownsample: per run the median of interleaved rounds."""
    downsampler = MinMaxLTTBDownsampler()
    group: dict[str, Callable[[], object]] = {
        "bifrost": lambda: bfa.downsample(x, n_out=N_OUT, minmax_ratio=MINMAX_RATIO),
        "tsdownsample": lambda: downsampler.downsample(x, n_out=N_OUT, minmax_ratio=MINMAX_RATIO),
        "tsdownsample_parallel": lambda: downsampler.downsample(
            x, n_out=N_OUT, minmax_ratio=MINMAX_RATIO, parallel=True
        ),
    }
    if os.environ.get("RAYON_NUM_THREADS") == "1":
        # tsdownsample's parallel path would be on one thread too: nothing to compare.
        del group["tsdownsample_parallel"]
    medians: dict[str, list[float]] = {name: [] for name in group}
    for _ in range(runs):
        for name, median in interleaved(group, rounds=rounds).items():
            medians[name].append(median)
    ratios = {
        f"vs_{name}": spread([t / b for t, b in zip(times, medians["bifrost"], strict=True)])
        for name, times in medians.items()
        if name != "bifrost"
    }
    return {
        "threads": os.environ.get("RAYON_NUM_THREADS", "default"),
        "runs": runs,
        "rounds_per_run": rounds,
        "ms": {
            name: {k: round(v * 1e3, 3) for k, v in spread(t).items()}
            for name, t in medians.items()
        },
        "speedup": {name: {k: round(v, 3) for k, v in r.items()} for name, r in ratios.items()},
        "load": machine_load(),
    }


def signal() -> np.ndarray:
    return np.random.default_rng(0).normal(size=N).cumsum() * 1e-2


def print_downsampling(result: dict[str, object]) -> None:
    speedups = result["speedup"]
    assert isinstance(speedups, dict)
    for name, r in speedups.items():
        print(
            f"MinMaxLTTB, bifrost threads={result['threads']}, {name}: "
            f"{r['min']:.2f}x / {r['median']:.2f}x / {r['max']:.2f}x "
            f"(min/median/max of {result['runs']} runs, target >= 1.1x)"
        )


def plot(rows: list[dict[str, object]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [str(r["task"]) for r in rows]
    y = np.arange(len(rows))
    fig, ax = plt.subplots(figsize=(9, 4.8))
    height = 0.27
    for offset, key, label in [
        (-height, "bifrost_ms", "bifrost"),
        (0.0, "reference_ms", "reference"),
        (height, "copyto_ms", "np.copyto (floor)"),
    ]:
        ax.barh(y + offset, [float(r[key]) for r in rows], height, label=label)  # type: ignore[arg-type]
    ax.set_yticks(y, [f"{n}\nvs {r['reference']}" for n, r in zip(names, rows, strict=True)])
    ax.invert_yaxis()
    ax.set_xscale("log")
    ax.set_xlabel("milliseconds per call (median, log scale)")
    ax.set_title(f"bifrost analytics, {N / 1e6:.0f}M float64 samples, backend={bfa.backend()}")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--plot", type=Path)
    parser.add_argument("--runs", type=int, default=7, help="MinMaxLTTB runs")
    parser.add_argument("--run-rounds", type=int, default=15, help="rounds per MinMaxLTTB run")
    parser.add_argument("--downsampling", action="store_true", help="only the MinMaxLTTB runs")
    parser.add_argument("--child-json", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    x = signal()
    if args.child_json:
        print(json.dumps(downsampling_runs(x, args.runs, args.run_rounds)))
        return
    if not args.downsampling:
        table(x, args.rounds, args.plot)
    compare_downsampling(x, args.runs, args.run_rounds)


def table(x: np.ndarray, rounds: int, plot_path: Path | None) -> None:
    rows: list[dict[str, object]] = []
    print(f"backend={bfa.backend()}  N={N:,}  rounds={rounds} (median)")
    header = (
        f"{'task':32} {'bifrost':>9} {'reference':>10} {'copyto':>8} {'speedup':>8} {'target':>7}"
    )
    print(header)
    for (task, reference, target), group in zip(TASKS, contenders(x), strict=True):
        times = interleaved(group, rounds=rounds)
        speedup = times["reference"] / times["bifrost"]
        row = {
            "task": task,
            "reference": reference,
            "bifrost_ms": round(times["bifrost"] * 1e3, 2),
            "reference_ms": round(times["reference"] * 1e3, 2),
            "copyto_ms": round(times["copyto"] * 1e3, 2),
            "speedup": round(speedup, 2),
            "x_copyto": round(times["bifrost"] / times["copyto"], 2),
            "target": round(target, 2),
            "met": speedup >= target,
        }
        rows.append(row)
        print(
            f"{task:32} {row['bifrost_ms']:>8}ms {row['reference_ms']:>9}ms "
            f"{row['copyto_ms']:>7}ms {speedup:>7.2f}x {target:>6.2f}x"
            f"{'' if row['met'] else '  (missed)'}"
        )
    save("analytics", {"n": N, "backend": bfa.backend(), "rounds": rounds, "rows": rows})
    if plot_path:
        plot(rows, plot_path)


def compare_downsampling(x: np.ndarray, runs: int, rounds: int) -> None:
    """The MinMaxLTTB runs with bifrost's default threads here, then on one thread."""
    default = downsampling_runs(x, runs, rounds)
    child = [sys.executable, __file__, "--child-json", "--runs", str(runs)]
    single = json.loads(
        subprocess.run(
            [*child, "--run-rounds", str(rounds)],
            env={**os.environ, "RAYON_NUM_THREADS": "1"},
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    for result in (default, single):
        print_downsampling(result)
    payload = {"n": N, "n_out": N_OUT, "minmax_ratio": MINMAX_RATIO, "runs": [default, single]}
    save("downsampling", payload)


if __name__ == "__main__":
    main()

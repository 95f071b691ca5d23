"""Analytics kernels vs pandas, scipy and tsdownsample, side by side in one run.

10M float64 samples (1 kHz for 10,000 s). Every task runs bifrost (public API, compiled
backend), its reference and ``np.copyto`` of the same array (the memory-bandwidth
floor), interleaved, median of rounds. Prints the table, saves
``benchmarks/results/analytics.json`` and, with ``--plot PATH``, a chart.

Run with OPENBLAS_CORETYPE/OPENBLAS_L2_SIZE unset (see DEPENDENCIES.md).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.signal as sg
from tsdownsample import MinMaxLTTBDownsampler

sys.path.insert(0, str(Path(__file__).parent))
from _common import interleaved, save

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
    ("MinMaxLTTB -> 2000", "tsdownsample", 1 / 1.1),
]


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
            "bifrost": lambda: bfa.downsample(x, n_out=2000),
            "reference": lambda: downsampler.downsample(x, n_out=2000),
            "copyto": copy,
        },
    ]


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
    args = parser.parse_args()
    x = np.random.default_rng(0).normal(size=N).cumsum() * 1e-2
    rows: list[dict[str, object]] = []
    print(f"backend={bfa.backend()}  N={N:,}  rounds={args.rounds} (median)")
    header = (
        f"{'task':32} {'bifrost':>9} {'reference':>10} {'copyto':>8} {'speedup':>8} {'target':>7}"
    )
    print(header)
    for (task, reference, target), group in zip(TASKS, contenders(x), strict=True):
        times = interleaved(group, rounds=args.rounds)
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
    save("analytics", {"n": N, "backend": bfa.backend(), "rounds": args.rounds, "rows": rows})
    if args.plot:
        plot(rows, args.plot)


if __name__ == "__main__":
    main()

"""bfa.features vs the same table from pandas groupby and NumPy, side by side in one run.

Two tasks, each checked to give the same numbers as its reference before it is timed:

* process tags: 4 columns at 100 Hz for 10,000 s (1M rows), 10 s windows: mean, std,
  min, max, rms, peak, crest, skewness, kurtosis and slope; the reference is one pandas
  groupby of the sums of powers (x, x^2, x^3, x^4, t, t*x, t^2) per window, the fastest
  pandas way to get these moments (it loses digits to cancellation, so the check
  against it is loose);
* vibration: 6.4M samples at 6400 Hz in 1 s windows, moments and five band energies from
  64-sample blocks; the reference reshapes into blocks, runs ``numpy.fft.rfft`` and
  averages per window.

Prints median milliseconds and the ratio, and saves ``benchmarks/results/features.json``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).parent))
from _common import interleaved, save

import bifrost.analytics as bfa

MOMENTS = ["mean", "std", "min", "max", "rms", "peak", "crest", "skewness", "kurtosis", "slope"]


def process_frame() -> pd.DataFrame:
    rng = np.random.default_rng(0)
    n = 1_000_000
    index = pd.date_range("2026-01-01", periods=n, freq="10ms", tz="UTC", unit="ns")
    return pd.DataFrame(
        {f"tag{i}": rng.normal(size=n).cumsum() * 0.01 + i for i in range(4)}, index=index
    )


def groupby_moments(df: pd.DataFrame) -> pd.DataFrame:
    """The same features from groupbys of sums of powers (the pandas reference)."""
    keys = df.index.floor("10s")
    t = (df.index.asi8 - df.index.asi8[0]) / 1e9
    powers = {"t": t, "t2": t * t}
    for name, x in df.items():
        v = x.to_numpy()
        powers.update({f"{name}|1": v, f"{name}|2": v * v, f"{name}|3": v**3})
        powers.update({f"{name}|4": v**4, f"{name}|tx": t * v})
    grouped = pd.DataFrame(powers, index=df.index).groupby(keys)
    sums, n = grouped.sum(), grouped.size().to_numpy()
    lows, highs = df.groupby(keys).min(), df.groupby(keys).max()
    peaks = df.abs().groupby(keys).max()
    tm = sums["t"].to_numpy() / n
    tvar = sums["t2"].to_numpy() / n - tm * tm
    out = {}
    for name in df.columns:
        m1, m2, m3, m4 = (sums[f"{name}|{k}"].to_numpy() / n for k in (1, 2, 3, 4))
        var = m2 - m1 * m1
        c3 = m3 - 3 * m1 * m2 + 2 * m1**3
        c4 = m4 - 4 * m1 * m3 + 6 * m1 * m1 * m2 - 3 * m1**4
        rms = np.sqrt(m2)
        peak = peaks[name].to_numpy()
        out.update(
            {
                f"{name}.mean": m1,
                f"{name}.std": np.sqrt(var),
                f"{name}.min": lows[name].to_numpy(),
                f"{name}.max": highs[name].to_numpy(),
                f"{name}.rms": rms,
                f"{name}.peak": peak,
                f"{name}.crest": peak / rms,
                f"{name}.skewness": c3 / var**1.5,
                f"{name}.kurtosis": c4 / (var * var) - 3,
                f"{name}.slope": (sums[f"{name}|tx"].to_numpy() / n - tm * m1) / tvar,
            }
        )
    return pd.DataFrame(out, index=sums.index)


FS, BLOCK = 6400.0, 64
EDGES = [(0, 200), (200, 400), (400, 800), (800, 1600), (1600, 3200)]


def vibration_frame() -> pd.DataFrame:
    rng = np.random.default_rng(1)
    n = 6_400_000
    t = np.arange(n) / FS
    x = 3 * np.sin(2 * np.pi * 24.2 * t) + rng.normal(scale=0.3, size=n)
    index = pd.date_range("2026-01-01", periods=n, freq=pd.Timedelta(1e9 / FS, "ns"), tz="UTC")
    return pd.DataFrame({"v": x}, index=index)


def numpy_bands(x: np.ndarray) -> dict[str, np.ndarray]:
    """Moments and band energies of 1 s windows from blocks (the NumPy reference)."""
    per = int(FS)
    windows = x.reshape(-1, per)
    blocks = x.reshape(-1, BLOCK)
    hann = 0.5 - 0.5 * np.cos(2 * np.pi * np.arange(BLOCK) / BLOCK)
    spectrum = np.fft.rfft((blocks - blocks.mean(axis=1, keepdims=True)) * hann, axis=1)
    power = np.abs(spectrum) ** 2 / (BLOCK * hann @ hann)
    power[:, 1 : BLOCK // 2] *= 2
    power = power.reshape(len(windows), per // BLOCK, -1).mean(axis=1)
    freqs = np.fft.rfftfreq(BLOCK, 1 / FS)
    d = windows - windows.mean(axis=1, keepdims=True)
    m2 = (d * d).mean(axis=1)
    out = {
        "v.rms": np.sqrt((windows**2).mean(axis=1)),
        "v.kurtosis": (d**4).mean(axis=1) / (m2 * m2) - 3,
    }
    for low, high in EDGES:
        inside = (freqs >= low) & ((freqs < high) | (high >= FS / 2))
        out[f"v.band_{low}_{high}Hz"] = power[:, inside].sum(axis=1)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    rows = []
    print(f"backend={bfa.backend()}  rounds={args.rounds} (median)")
    print(f"{'task':44} {'bifrost':>9} {'reference':>10} {'speedup':>8}")

    process = process_frame()
    ours = bfa.features(process, "10s", features=MOMENTS)
    theirs = groupby_moments(process)
    # Loosely: sums of powers lose digits to cancellation (why the kernel does not use them).
    np.testing.assert_allclose(
        ours[theirs.columns].to_numpy(), theirs.to_numpy(), rtol=1e-2, atol=1e-4
    )
    vibration = vibration_frame()
    names = ["rms", "kurtosis", "bands"]
    fs = {"v": FS}
    ours_v = bfa.features(vibration, "1s", features=names, fs=fs, block=BLOCK)
    for column, values in numpy_bands(vibration["v"].to_numpy()).items():
        np.testing.assert_allclose(ours_v[column].to_numpy(), values, rtol=1e-8)

    tasks = [
        (
            "4 process tags, 1M rows, 10 s windows",
            "pandas groupby of power sums",
            {
                "bifrost": lambda: bfa.features(process, "10s", features=MOMENTS),
                "reference": lambda: groupby_moments(process),
            },
        ),
        (
            "vibration 6.4M samples, 1 s windows, 5 bands",
            "numpy rfft of blocks",
            {
                "bifrost": lambda: bfa.features(
                    vibration, "1s", features=names, fs=fs, block=BLOCK
                ),
                "reference": lambda: numpy_bands(vibration["v"].to_numpy()),
            },
        ),
    ]
    for task, reference, contenders in tasks:
        times = interleaved(contenders, rounds=args.rounds)
        speedup = times["reference"] / times["bifrost"]
        row = {
            "task": task,
            "reference": reference,
            "bifrost_ms": round(times["bifrost"] * 1e3, 2),
            "reference_ms": round(times["reference"] * 1e3, 2),
            "speedup": round(speedup, 2),
        }
        rows.append(row)
        print(f"{task:44} {row['bifrost_ms']:>8}ms {row['reference_ms']:>9}ms {speedup:>7.2f}x")
    save("features", {"backend": bfa.backend(), "rounds": args.rounds, "rows": rows})


if __name__ == "__main__":
    main()

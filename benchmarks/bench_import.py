"""Import time of bifrost against pandas, side by side, and the wall time of `bifrost --help`.

Each sample is a fresh interpreter (``python -X importtime`` style timing from inside:
``time.perf_counter`` around the import), alternating the contenders so both see the same
machine. Targets (issue 10): ``import bifrost`` <= 0.25x ``import pandas``; ``bifrost
--help`` <= 0.3 s wall. Run from the development venv (``make bench``) or any venv with
bifrost-cli installed.
"""

from __future__ import annotations

import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from _common import save

ROUNDS = 15
IMPORT = "import time; t = time.perf_counter(); import {0}; print(time.perf_counter() - t)"


def _import_seconds(module: str) -> float:
    done = subprocess.run(
        [sys.executable, "-c", IMPORT.format(module)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    return float(done.stdout)


def _help_seconds(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, capture_output=True, check=True)
    return time.perf_counter() - started


def _command_count(command: list[str]) -> int:
    # How many verbs the measured help lists: the figure means more with the count.
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    listing = done.stdout.split("Commands:", 1)[-1].split("\n\n", 1)[0]
    return sum(1 for line in listing.splitlines() if line.startswith("  ") and line.strip())


def main() -> None:
    script = shutil.which("bifrost", path=str(Path(sys.executable).parent))
    command = [script, "--help"] if script else [sys.executable, "-m", "bifrost", "--help"]
    samples: dict[str, list[float]] = {"bifrost": [], "pandas": [], "help": [], "python": []}
    for _ in range(ROUNDS):
        samples["bifrost"].append(_import_seconds("bifrost"))
        samples["pandas"].append(_import_seconds("pandas"))
        samples["help"].append(_help_seconds(command))
        samples["python"].append(_help_seconds([sys.executable, "-c", "pass"]))
    median = {name: statistics.median(values) for name, values in samples.items()}
    ratio = median["bifrost"] / median["pandas"]
    # Both imports of a round ran back to back, so their ratio sees one machine state.
    per_round = sorted(b / p for b, p in zip(samples["bifrost"], samples["pandas"], strict=True))
    print(
        f"import bifrost {median['bifrost'] * 1e3:.0f} ms, import pandas "
        f"{median['pandas'] * 1e3:.0f} ms: ratio {ratio:.2f}; per round min / median / max "
        f"{per_round[0]:.2f} / {statistics.median(per_round):.2f} / {per_round[-1]:.2f} "
        "(target <= 0.25)"
    )
    helped = samples["help"]
    print(
        f"bifrost --help {median['help'] * 1e3:.0f} ms wall, median of {ROUNDS} (min "
        f"{min(helped) * 1e3:.0f}, max {max(helped) * 1e3:.0f}; target <= 300 ms; "
        f"python -c pass {median['python'] * 1e3:.0f} ms)"
    )
    save(
        "import",
        {
            "import_bifrost_s": median["bifrost"],
            "import_pandas_s": median["pandas"],
            "ratio_bifrost_to_pandas": ratio,
            "ratio_per_round_min": per_round[0],
            "ratio_per_round_median": statistics.median(per_round),
            "ratio_per_round_max": per_round[-1],
            "bifrost_help_wall_s": median["help"],
            "bifrost_help_wall_min_s": min(helped),
            "bifrost_help_wall_max_s": max(helped),
            "bifrost_help_commands": _command_count(command),
            "python_startup_wall_s": median["python"],
            "rounds": ROUNDS,
        },
    )


if __name__ == "__main__":
    main()

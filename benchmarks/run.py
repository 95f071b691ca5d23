"""Run every benchmark and print its ratios (``make bench``).

Each benchmark runs in a process of its own: run one after another in one interpreter,
a later one measured the heap, threads and loops the earlier ones left (cold planning
came out 2.3-2.8 us per tag after the OPC UA benchmark against 1.8 us on its own).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).parent


def main() -> int:
    failed = []
    for script in sorted(HERE.glob("bench_*.py")):
        print(f"== {script.stem}", flush=True)
        if subprocess.run([sys.executable, script.name], cwd=HERE, check=False).returncode:
            failed.append(script.stem)
    if failed:
        print(f"failed: {', '.join(failed)}", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

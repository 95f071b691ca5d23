"""Cold read planning: raw addresses to a compiled Modbus read, per tag, 1,000 to 60,000 tags.

"Cold": a new connection (empty plan cache) and, for the first figure, the address
parser's cache cleared too, so every address is parsed. The second figure keeps the
parsed addresses (a tag list planned again on another connection, or after a change)
and isolates what this issue is about: resolving names to Tags, merging, layout.
Target: <= 2 us per tag (10,000 tags in <= 20 ms), linear to 60,000.

The target is absolute, and this machine's speed is not: a shared host ran the same
code 1.8x slower from one minute to the next. Each round therefore also times a control,
one ``split`` and ``int`` per address in plain Python, so a slow round shows as a slow
control, and the ratio to it is comparable across runs.
"""

from __future__ import annotations

import time

from _common import machine_load, save, spread

from bifrost import aio
from bifrost.protocols.modbus import address as modbus_address

SIZES = (1_000, 10_000, 60_000)
ROUNDS = 7


def addresses(n: int) -> list[str]:
    # A realistic mix: uint16, float32 pairs, coils, two unit ids.
    out = []
    for i in range(n):
        kind = i % 4
        if kind == 0:
            out.append(f"hr:{i}")
        elif kind == 1:
            out.append(f"ir:{i % 60000}:float32")
        elif kind == 2:
            out.append(f"co:{i}")
        else:
            out.append(f"hr:{i % 60000}@2")
    return out


def plan_once(tags: list[str], clear_parser: bool) -> tuple[float, float]:
    """Wall and CPU seconds of one cold plan (CPU: this process only, which a loaded
    host inflates far less than the wall clock)."""
    connection = aio.AsyncConnection("modbus://127.0.0.1:1502")
    cache = getattr(modbus_address, "_parse", None)  # the parser's cache, where it has one
    if clear_parser and cache is not None:
        cache.cache_clear()
    started, cpu = time.perf_counter(), time.process_time()
    connection._compile(tags)
    return time.perf_counter() - started, time.process_time() - cpu


def control_once(tags: list[str]) -> float:
    """CPU seconds of one plain-Python pass over the addresses: a split and an int each."""
    cpu = time.process_time()
    [int(address.split(":")[1].split("@")[0]) for address in tags]
    return time.process_time() - cpu


def main() -> dict[str, object]:
    results: dict[str, object] = {"load": machine_load(), "rounds": ROUNDS}
    control_per_size: dict[int, dict[str, float]] = {}
    for label, clear in (("cold_parse", True), ("parsed_addresses", False)):
        per_size, cpu_per_size, ratio_per_size = {}, {}, {}
        for n in SIZES:
            tags = addresses(n)
            plan_once(tags, clear)  # imports, NumPy warm
            samples, controls = [], []
            for _ in range(ROUNDS):
                samples.append(plan_once(tags, clear))
                controls.append(control_once(tags))
            wall = [w / n * 1e6 for w, _ in samples]
            cpu = [c / n * 1e6 for _, c in samples]
            per_size[n] = {k: round(v, 3) for k, v in spread(wall).items()}
            cpu_per_size[n] = {k: round(v, 3) for k, v in spread(cpu).items()}
            ratios = [c / max(k, 1e-9) for (_, c), k in zip(samples, controls, strict=True)]
            ratio_per_size[n] = {k: round(v, 2) for k, v in spread(ratios).items()}
            control = [k / n * 1e6 for k in controls]
            control_per_size[n] = {k: round(v, 3) for k, v in spread(control).items()}
        results[f"us_per_tag_{label}"] = per_size
        results[f"cpu_us_per_tag_{label}"] = cpu_per_size
        results[f"cpu_ratio_to_control_{label}"] = ratio_per_size
    results["control_cpu_us_per_tag"] = control_per_size
    results["target"] = "<= 2 us per tag cold, linear to 60,000 tags"
    save("planning", results)
    return results


if __name__ == "__main__":
    outcome = main()
    for key, value in outcome.items():
        print(f"{key:28s} {value}")

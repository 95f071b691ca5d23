"""Many Modbus devices recorded from one process, against hand-written asyncio loops.

100 devices x 100 registers at 1 Hz plus 10 devices x 100 registers at 10 Hz (1/10 of
them at 10 Hz), served by ``_modbus_devices.py`` (its own process, one port per device).
Each contender runs in a process of its own, rounds alternating, and reports its CPU time
per recorded value, missed cycles, threads, resident memory per device and how long
starting every recording took:

- bifrost: ``bf.connect`` + ``record(background=True)`` per device;
- asyncio + pymodbus: one ``AsyncModbusTcpClient`` task per device appending to lists;
- asyncio + raw streams: one task per device, MBAP by hand (the leanest loop one writes).

Then bifrost alone at 1, 10, 50 and 100 devices (1 Hz) for the growth chart
(``docs/many_devices.png``). Targets: <= 1.3x the hand-written loop's CPU per value,
0 missed cycles, threads bounded, <= 1 MiB per device, 100 recordings started in <= 2 s.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import struct
import subprocess
import sys
import threading
import time
from pathlib import Path

from _common import machine_load, modbus_devices, save, spread

HERE = Path(__file__).parent
REGISTERS = 100
SLOW, FAST = 100, 10
SECONDS = float(os.environ.get("BENCH_SECONDS", "12"))
_ROWS = [0]  # replies taken by the asyncio loops
ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))


def _rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss


def _plan(ports: list[int], slow: int, fast: int) -> list[tuple[int, float]]:
    return [(p, 1.0) for p in ports[:slow]] + [(p, 0.1) for p in ports[slow : slow + fast]]


# -- contenders, each in its own process ----------------------------------------------------
def run_bifrost(plan: list[tuple[int, float]], seconds: float) -> dict[str, float]:
    import bifrost as bf
    import bifrost.aio
    import bifrost.protocols.modbus.driver
    import bifrost.recording  # imported before the baseline: not per device

    tags = [f"hr:{i}" for i in range(REGISTERS)]
    rss_before = _rss_kib()
    threads_before = threading.active_count()
    started = time.perf_counter()
    connections = [bf.connect(f"modbus://127.0.0.1:{port}") for port, _ in plan]
    recordings = [
        plc.record(tags, interval=interval, duration=seconds, background=True, progress=False)
        for plc, (_, interval) in zip(connections, plan, strict=True)
    ]
    start_s = time.perf_counter() - started
    # CPU per value in the steady middle half: starting and ending recordings (plans,
    # metadata, final frames) are not the cost of recording.
    time.sleep(seconds / 4)
    cpu0, rows0 = time.process_time(), sum(len(r) for r in recordings)
    time.sleep(seconds / 4)
    threads = threading.active_count() - threads_before
    rss_mid = _rss_kib()
    time.sleep(seconds / 4)
    cpu = time.process_time() - cpu0
    values = (sum(len(r) for r in recordings) - rows0) * REGISTERS
    for recording in recordings:
        recording.wait(seconds + 30)
    missed = sum(r.stats.missed_cycles for r in recordings)
    gaps = sum(r.stats.gaps for r in recordings)
    for plc in connections:
        plc.close()
    return {
        "start_s": start_s,
        "cpu_s": cpu,
        "values": values,
        "missed_cycles": missed,
        "gaps": gaps,
        "threads_added": threads,
        "rss_kib_per_device": (rss_mid - rss_before) / len(plan),
    }


async def _poll_pymodbus(port: int, interval: float, seconds: float, out: list[int]) -> int:
    from pymodbus.client import AsyncModbusTcpClient

    client = AsyncModbusTcpClient("127.0.0.1", port=port)
    await client.connect()
    loop = asyncio.get_running_loop()
    start, missed, k = loop.time(), 0, 0
    times: list[float] = []
    columns: list[list[int]] = [[] for _ in range(REGISTERS)]
    while k * interval < seconds:
        delay = start + k * interval - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        elif -delay >= interval:
            missed += int(-delay // interval)
            k += int(-delay // interval)
            continue
        reply = await client.read_holding_registers(0, count=REGISTERS, device_id=1)
        _ROWS[0] += 1
        times.append(time.time())
        for column, value in zip(columns, reply.registers, strict=True):
            column.append(value)
        k += 1
    client.close()
    out.append(len(times))
    return missed


async def _poll_raw(port: int, interval: float, seconds: float, out: list[int]) -> int:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    loop = asyncio.get_running_loop()
    start, missed, k, tid = loop.time(), 0, 0, 0
    times: list[float] = []
    columns: list[list[int]] = [[] for _ in range(REGISTERS)]
    unpack = struct.Struct(f">{REGISTERS}H").unpack
    while k * interval < seconds:
        delay = start + k * interval - loop.time()
        if delay > 0:
            await asyncio.sleep(delay)
        elif -delay >= interval:
            missed += int(-delay // interval)
            k += int(-delay // interval)
            continue
        tid = (tid + 1) & 0xFFFF
        writer.write(struct.pack(">HHHBBHH", tid, 0, 6, 1, 3, 0, REGISTERS))
        reply = await reader.readexactly(9 + 2 * REGISTERS)
        _ROWS[0] += 1
        times.append(time.time())
        for column, value in zip(columns, unpack(reply[9:]), strict=True):
            column.append(value)
        k += 1
    writer.close()
    out.append(len(times))
    return missed


def run_asyncio(plan: list[tuple[int, float]], seconds: float, raw: bool) -> dict[str, float]:
    import pymodbus.client  # noqa: F401 -- imported before the baseline, as bifrost's

    poll = _poll_raw if raw else _poll_pymodbus
    rss_before = _rss_kib()

    window: list[tuple[float, int]] = []

    async def measure() -> None:
        # The same steady middle half as bifrost's.
        await asyncio.sleep(seconds / 4)
        window.append((time.process_time(), _ROWS[0]))
        await asyncio.sleep(seconds / 2)
        window.append((time.process_time(), _ROWS[0]))

    async def main() -> tuple[int, int]:
        rows: list[int] = []
        results = await asyncio.gather(measure(), *(poll(p, i, seconds, rows) for p, i in plan))
        return sum(rows), sum(results[1:])  # type: ignore[arg-type]

    _, missed = asyncio.run(main())
    (cpu0, rows0), (cpu1, rows1) = window
    return {
        "start_s": 0.0,
        "cpu_s": cpu1 - cpu0,
        "values": (rows1 - rows0) * REGISTERS,
        "missed_cycles": missed,
        "gaps": 0,
        "threads_added": 0,
        "rss_kib_per_device": (_rss_kib() - rss_before) / len(plan),
    }


def _worker(kind: str, ports: list[int], slow: int, fast: int, seconds: float) -> dict[str, float]:
    args = [sys.executable, str(Path(__file__)), "--worker", kind, "--slow", str(slow)]
    args += ["--fast", str(fast), "--seconds", str(seconds), "--ports", ",".join(map(str, ports))]
    out = subprocess.run(args, capture_output=True, text=True, check=True, cwd=HERE)
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


def main() -> dict[str, object]:
    contenders = ("bifrost", "asyncio+pymodbus", "asyncio+raw")
    runs: dict[str, list[dict[str, float]]] = {k: [] for k in contenders}
    growth: dict[int, list[dict[str, float]]] = {n: [] for n in (1, 10, 50, 100)}
    with modbus_devices(SLOW + FAST) as ports:
        devices = ports["device"]
        for _ in range(ROUNDS):
            for kind in contenders:
                runs[kind].append(_worker(kind, devices, SLOW, FAST, SECONDS))
        for n, results in growth.items():
            for kind in ("bifrost", "asyncio+raw"):
                results.append(_worker(kind, devices, n, 0, SECONDS / 2) | {"kind": kind})  # type: ignore[dict-item]

    def per_value(run: dict[str, float]) -> float:
        return run["cpu_s"] / max(1, run["values"]) * 1e6

    summary: dict[str, object] = {
        "devices": f"{SLOW} at 1 Hz + {FAST} at 10 Hz, {REGISTERS} registers each",
        "seconds": SECONDS,
        "rounds": ROUNDS,
        "load": machine_load(),
    }
    for kind, results in runs.items():
        summary[kind] = {
            "cpu_us_per_value": spread([per_value(r) for r in results]),
            "missed_cycles": [r["missed_cycles"] for r in results],
            "gaps": [r["gaps"] for r in results],
            "threads_added": [r["threads_added"] for r in results],
            "rss_kib_per_device": spread([r["rss_kib_per_device"] for r in results]),
            "start_s": spread([r["start_s"] for r in results]),
        }
    ours = [per_value(r) for r in runs["bifrost"]]
    for anchor in ("asyncio+pymodbus", "asyncio+raw"):
        theirs = [per_value(r) for r in runs[anchor]]
        summary[f"cpu_ratio_vs_{anchor}"] = spread(
            [a / b for a, b in zip(ours, theirs, strict=True)]
        )
    summary["growth"] = {
        str(n): {
            r["kind"]: {
                "cpu_us_per_value": per_value(r),
                "rss_kib_per_device": r["rss_kib_per_device"],
            }  # type: ignore[index]
            for r in results
        }
        for n, results in growth.items()
    }
    summary["targets"] = (
        "<= 1.3x the hand-written loop's CPU per value, 0 missed cycles, bounded threads, "
        "<= 1 MiB per device, 100 recordings started in <= 2 s"
    )
    save("many_devices", summary)
    _chart(summary["growth"])  # type: ignore[arg-type]
    return summary


def _chart(growth: dict[str, dict[str, dict[str, float]]]) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    counts = [int(n) for n in growth]
    fig, (cpu, mem) = plt.subplots(1, 2, figsize=(9, 3.4))
    for kind, style in (("bifrost", "o-"), ("asyncio+raw", "s--")):
        cpu.plot(
            counts, [growth[str(n)][kind]["cpu_us_per_value"] for n in counts], style, label=kind
        )
        mem.plot(
            counts, [growth[str(n)][kind]["rss_kib_per_device"] for n in counts], style, label=kind
        )
    cpu.set(xlabel="devices (100 registers at 1 Hz)", ylabel="CPU µs per value", xscale="log")
    mem.set(xlabel="devices", ylabel="RSS KiB per device", xscale="log")
    cpu.legend()
    fig.tight_layout()
    fig.savefig(HERE.parent / "docs" / "many_devices.png", dpi=110)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--worker")
    parser.add_argument("--slow", type=int, default=SLOW)
    parser.add_argument("--fast", type=int, default=FAST)
    parser.add_argument("--seconds", type=float, default=SECONDS)
    parser.add_argument("--ports", default="")
    args = parser.parse_args()
    if args.worker:
        port_list = [int(p) for p in args.ports.split(",")]
        plan = _plan(port_list, args.slow, args.fast)
        if args.worker == "bifrost":
            outcome = run_bifrost(plan, args.seconds)
        else:
            outcome = run_asyncio(plan, args.seconds, raw=args.worker == "asyncio+raw")
        print(json.dumps(outcome))
    else:
        print(json.dumps(main(), indent=1))

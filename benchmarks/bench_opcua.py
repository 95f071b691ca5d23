"""1,000 OPC UA nodes through bifrost, side by side with raw asyncua.

The simulated plant runs in its own process with 1,000 auxiliary UInt16 variables
(``Plant/Aux/aux.0000``...) that change at 10 Hz. Same run, same server:

- read: ``Connection.read`` of the 1,000 nodes (DataFrame out) vs asyncua's
  ``Client.read_values`` (one Read call, list out) on a loop in this thread. Target:
  within 1.1x. Also vs reading the nodes one by one (``Node.read_value``): target >= 15x.
- subscribe: 1,000 monitored items at 100 ms for 10 s, through bifrost's native
  subscription (one ReadResult per publish, as ``record(mode="subscribe")`` gets them)
  and through asyncua's own iterator API. Every value change must arrive (counted per
  item against the plant's ticks, no overflow flag); client CPU per notification
  (``time.process_time``, all threads) within 1.2x of asyncua's.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from _common import interleaved, save

import bifrost as bf
from bifrost.model import Quality
from bifrost.sim.tagmap import opcua_aux_tags

N_NODES = 1000
SECONDS = 10.0
INTERVAL_MS = 100.0

_SERVER = """
import sys, time
import bifrost as bf
with bf.sim.Plant(seed=1) as plant:
    urls = plant.serve(opcua=0, opcua_aux={n})
    print("opcua", urls["opcua"], flush=True)
    time.sleep(900)
"""


@contextmanager
def plant_with_aux(n: int) -> Iterator[str]:
    """A realtime plant in its own process serving ``n`` auxiliary OPC UA variables."""
    process = subprocess.Popen(
        [sys.executable, "-c", _SERVER.format(n=n)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.startswith("opcua "):
            raise RuntimeError("the simulated plant did not start")
        yield line.split()[1]
    finally:
        process.terminate()
        process.wait(10)


def bench_reads(url: str, loop: asyncio.AbstractEventLoop) -> dict[str, float]:
    from asyncua import Client

    client = Client(url)
    loop.run_until_complete(client.connect())
    nodes = [client.get_node(f"ns=2;s=Plant.Aux.{i:04d}") for i in range(N_NODES)]
    tags = opcua_aux_tags(N_NODES)
    names = [t.name for t in tags]
    try:
        with bf.connect(url, security="None", tags=tags) as plc:
            frame = plc.read(names)
            raw = loop.run_until_complete(client.read_values(nodes))
            assert len(frame) == len(raw) == N_NODES
            assert (frame["quality"] == "good").all()

            def one_by_one() -> None:
                async def run() -> None:
                    for node in nodes:
                        await node.read_value()

                loop.run_until_complete(run())

            batch = interleaved(
                {
                    "bifrost": lambda: plc.read(names),
                    "asyncua_read_values": lambda: loop.run_until_complete(
                        client.read_values(nodes)
                    ),
                },
                rounds=30,
            )
            single = interleaved({"asyncua_node_by_node": one_by_one}, rounds=3)
            bifrost_single = interleaved({"bifrost": lambda: plc.read(names)}, rounds=3)
    finally:
        loop.run_until_complete(client.disconnect())
    return {
        "bifrost_read_s": batch["bifrost"],
        "asyncua_read_values_s": batch["asyncua_read_values"],
        "asyncua_node_by_node_s": single["asyncua_node_by_node"],
        "ratio_vs_read_values": batch["bifrost"] / batch["asyncua_read_values"],
        "speedup_vs_node_by_node": single["asyncua_node_by_node"] / bifrost_single["bifrost"],
    }


def asyncua_subscription(url: str, loop: asyncio.AbstractEventLoop) -> dict[str, Any]:
    from asyncua import Client

    async def run() -> dict[str, Any]:
        client = Client(url)
        await client.connect()
        try:
            nodes = [client.get_node(f"ns=2;s=Plant.Aux.{i:04d}") for i in range(N_NODES)]
            sub = await client.create_subscription(INTERVAL_MS, queue_maxsize=1_000_000)
            await sub.subscribe_data_change(nodes, queuesize=10, sampling_interval=INTERVAL_MS)
            counts = np.zeros(N_NODES, dtype=np.int64)
            index = {node.nodeid: i for i, node in enumerate(nodes)}
            overflow = 0
            stamps: set[Any] = set()
            await sub.next_event(timeout=5.0)  # the initial values start the clock
            cpu, wall = time.process_time(), time.monotonic()
            deadline = wall + SECONDS
            while (left := deadline - time.monotonic()) > 0:
                event = await sub.next_event(timeout=left)
                if event is None:
                    break
                data = getattr(event, "data", None)
                if data is None:
                    continue
                counts[index[event.node.nodeid]] += 1
                stamps.add(data.monitored_item.Value.SourceTimestamp)
                status = data.monitored_item.Value.StatusCode
                if status is not None and status.value & 0x80:
                    overflow += 1
            cpu = time.process_time() - cpu
            await sub.delete()
            return {"counts": counts, "cpu_s": cpu, "overflow": overflow, "ticks": len(stamps)}
        finally:
            await client.disconnect()

    return loop.run_until_complete(run())


def bifrost_subscription(url: str) -> dict[str, Any]:
    tags = opcua_aux_tags(N_NODES)
    counts = np.zeros(N_NODES, dtype=np.int64)
    overflow = 0
    publishes = 0
    stamps: set[int] = set()

    async def run() -> float:
        nonlocal overflow, publishes
        async with bf.aio.connect(url, security="None", tags=tags) as plc:
            driver: Any = plc._driver  # the native hook, as record(mode="subscribe") uses it
            plan = driver.compile_read(list(tags))
            started = asyncio.Event()
            counting = False

            def on_data(result: bf.ReadResult) -> None:
                nonlocal overflow, publishes
                started.set()
                if not counting:
                    return
                publishes += 1
                assert result.indices is not None
                np.add.at(counts, result.indices, 1)
                stamps.update(np.unique(result.timestamp_ns).tolist())
                overflow += int(np.count_nonzero(result.quality == Quality.GOOD_OVERFLOW))

            handle = await driver.subscribe(plan, INTERVAL_MS / 1000, on_data, queue_size=10)
            await asyncio.wait_for(started.wait(), 5.0)
            counting = True
            cpu = time.process_time()
            await asyncio.sleep(SECONDS)
            counting = False
            cpu = time.process_time() - cpu
            await handle.close()
            return cpu

    cpu = asyncio.run(run())
    return {
        "counts": counts,
        "cpu_s": cpu,
        "overflow": overflow,
        "publishes": publishes,
        "ticks": len(stamps),
    }


def main() -> None:
    loop = asyncio.new_event_loop()
    try:
        with plant_with_aux(N_NODES) as url:
            reads = bench_reads(url, loop)
            print(
                f"read {N_NODES} nodes: bifrost {reads['bifrost_read_s'] * 1e3:.2f} ms, "
                f"asyncua read_values {reads['asyncua_read_values_s'] * 1e3:.2f} ms "
                f"(ratio {reads['ratio_vs_read_values']:.2f}, target <= 1.1); node by node "
                f"{reads['asyncua_node_by_node_s'] * 1e3:.0f} ms "
                f"({reads['speedup_vs_node_by_node']:.1f}x, target >= 15)"
            )
            theirs = asyncua_subscription(url, loop)
            ours = bifrost_subscription(url)
    finally:
        loop.close()
    expected = SECONDS * 1000.0 / INTERVAL_MS  # value changes per item in the window
    results: dict[str, Any] = dict(reads)
    for name, run in (("asyncua", theirs), ("bifrost", ours)):
        counts = run["counts"]
        total = int(counts.sum())
        results[f"{name}_notifications"] = total
        results[f"{name}_per_item_min_max"] = [int(counts.min()), int(counts.max())]
        results[f"{name}_overflow_flags"] = run["overflow"]
        # Every aux update stamps all items alike: the distinct source timestamps seen
        # are the server's updates in the window; an item with fewer values lost some
        # (or its value repeated, which rounding allows at a sine's peak, rarely).
        results[f"{name}_server_updates"] = run["ticks"]
        results[f"{name}_cpu_us_per_notification"] = run["cpu_s"] / max(total, 1) * 1e6
    results["bifrost_publish_responses"] = ours["publishes"]
    results["expected_per_item"] = expected
    results["cpu_ratio"] = (
        results["bifrost_cpu_us_per_notification"] / results["asyncua_cpu_us_per_notification"]
    )
    print(
        f"subscribe {N_NODES} items at {INTERVAL_MS:g} ms for {SECONDS:g} s: "
        f"bifrost {results['bifrost_notifications']} notifications "
        f"(per item {results['bifrost_per_item_min_max']} of {results['bifrost_server_updates']} "
        f"server updates; {expected:g} at a full 10 Hz), "
        f"{results['bifrost_overflow_flags']} overflow flags, "
        f"{results['bifrost_cpu_us_per_notification']:.1f} us CPU each); asyncua iterator "
        f"{results['asyncua_notifications']} (per item {results['asyncua_per_item_min_max']} of "
        f"{results['asyncua_server_updates']}, "
        f"{results['asyncua_cpu_us_per_notification']:.1f} us CPU each); "
        f"CPU ratio {results['cpu_ratio']:.2f} (target <= 1.2)"
    )
    save("opcua", results)


if __name__ == "__main__":
    main()

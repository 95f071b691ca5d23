"""1,000 OPC UA nodes through bifrost, side by side with raw asyncua.

The simulated plant runs in its own process with 1,000 auxiliary UInt16 variables
(``Plant/Aux/aux.0000``...) that change at 10 Hz. Same run, same server:

- read: ``Connection.read`` of the 1,000 nodes (DataFrame out) vs asyncua's
  ``Client.read_values`` (one Read call, list out) on a loop in this thread, in rounds of
  reads alternating one by one; the ratio per round, min/median/max. Target: within 1.1x
  in every round. Also vs reading the nodes one by one (``Node.read_value``): >= 15x.
- subscribe: 1,000 monitored items at 100 ms for 10 s, through bifrost's native
  subscription (one ReadResult per publish, as ``record(mode="subscribe")`` gets them)
  and through asyncua's own iterator API. Every value change must arrive (counted per
  item against the plant's ticks, no overflow flag); client CPU per notification
  (``time.process_time``, all threads) within 1.2x of asyncua's.
- many items: 5,000 monitored items whose values change at 2 Hz, for ~6 s a round over
  three rounds, against a plant whose server states MaxMonitoredItemsPerCall = 1,000 and
  answers BadTooManyOperations to a larger CreateMonitoredItems (as real servers do).
  bifrost splits the call at the limit by itself; asyncua's side is split by hand. No
  loss, no overflow flag, no refused call; client CPU per notification within 1.0x of
  asyncua's.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
from _common import interleaved, machine_load, ms, ratio_spread, save, spread

import bifrost as bf
from bifrost.model import Quality
from bifrost.protocols.opcua.nodes import datetime_ns
from bifrost.sim.tagmap import opcua_aux_tags

N_NODES = 1000
SECONDS = 10.0
INTERVAL_MS = 100.0

MANY_NODES = 5000
MANY_SECONDS = 6.0
MANY_INTERVAL_MS = 500.0
MANY_ROUNDS = 3
MONITORED_ITEMS_PER_CALL = 1000
# After the window, both clients keep taking notifications for this long without
# counting them as the window's work: a server update reaches a client 0.3-1.5 s after
# its source time (the publishing interval, then the server encoding 5,000 items), so an
# update stamped near the window's end arrives after it. Counted at the window's end, it
# showed as a whole update lost (4,999 or 5,000 values) in both clients.
DRAIN_SECONDS = 3.0
# asyncua's health probe, as bifrost sets its own (twice per session timeout): the reads
# anchor runs its loop only while it reads, and a probe left pending in between times out
# on the next run and ends the session.
_WATCHDOG_S = 300.0

# The plant in its own process. With a limit, the server states it in its
# OperationLimits node and refuses a larger CreateMonitoredItems, counting every call;
# a line on stdin asks for the count. The aux period goes through the binding's options
# (serve() offers only the 10 Hz default).
_SERVER = """
import asyncio, json, sys
import bifrost as bf
from asyncua import ua
from bifrost.protocols.opcua.nodes import datetime_ns
period, limit = {period!r}, {limit!r}
with bf.sim.Plant(seed=1, aux={n}) as plant:
    plant._options["opcua"] = {{"aux": {n}, "aux_period": period, "dt": plant.dt}}
    urls = plant._serve("127.0.0.1", {{"opcua": 0}})
    calls, refused = [], [0]
    if limit:
        server = plant._bindings["opcua"]._server
        service = server.iserver.subscription_service
        create = service.create_monitored_items

        async def limited(params):
            calls.append(len(params.ItemsToCreate))
            if len(params.ItemsToCreate) > limit:
                refused[0] += 1
                raise ua.UaStatusCodeError(ua.StatusCodes.BadTooManyOperations)
            return await create(params)

        async def state():
            node = server.get_node(ua.NodeId(11714))  # OperationLimits/MaxMonitoredItemsPerCall
            await node.write_value(ua.Variant(limit, ua.VariantType.UInt32))
            service.create_monitored_items = limited

        asyncio.run_coroutine_threadsafe(state(), plant._loop).result(10)
    # The server reports a value only when it changed: count, per update, the variables
    # whose value stayed the same (a sine's peak), which no client can receive.
    binding = plant._bindings["opcua"]
    apply, previous, unchanged = binding._apply, [None], {{}}

    def counted(snapshot, aux):
        apply(snapshot, aux)
        if aux is not None and binding._aux_vars:
            if previous[0] is not None:
                stamp = binding._aux_vars[0].value.SourceTimestamp
                unchanged[datetime_ns(stamp)] = int((aux == previous[0]).sum())
            previous[0] = aux

    binding._apply = counted
    print("opcua", urls["opcua"], flush=True)
    for _ in sys.stdin:
        stats = {{"calls": calls, "refused": refused[0], "unchanged": dict(unchanged)}}
        print(json.dumps(stats), flush=True)
"""


class PlantProcess:
    """The plant's process: its URL, and the CreateMonitoredItems calls it served."""

    def __init__(self, process: subprocess.Popen[str], url: str) -> None:
        self._process = process
        self.url = url

    def stats(self) -> dict[str, Any]:
        """CreateMonitoredItems calls, refused ones, unchanged variables per update (ns)."""
        assert self._process.stdin is not None
        assert self._process.stdout is not None
        self._process.stdin.write("stats\n")
        self._process.stdin.flush()
        stats: dict[str, Any] = json.loads(self._process.stdout.readline())
        stats["unchanged"] = {int(k): v for k, v in stats["unchanged"].items()}
        return stats


@contextmanager
def plant_with_aux(n: int, period: float = 0.1, limit: int = 0) -> Iterator[PlantProcess]:
    """A realtime plant in its own process serving ``n`` auxiliary OPC UA variables.

    They change every ``period`` seconds; ``limit`` > 0 is the server's stated and
    enforced MaxMonitoredItemsPerCall.
    """
    script = _SERVER.format(n=n, period=period, limit=limit)
    process = subprocess.Popen(
        [sys.executable, "-c", script], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        if not line.startswith("opcua "):
            raise RuntimeError("the simulated plant did not start")
        yield PlantProcess(process, line.split()[1])
    finally:
        process.terminate()
        process.wait(10)


def coverage(
    run: dict[str, Any], n: int, interval_ms: float, unchanged: dict[int, int]
) -> dict[str, int]:
    """Values received per server update, over the updates well inside the window.

    Each update stamps all ``n`` items alike (``run["stamps"]``: source time in ns ->
    values received in the window; ``run["late"]``: the same, received in the drain after
    it). Near the window's start an update can be cut: values that came while the items
    were still being created (in several calls) were not counted. So only the server's
    updates from one interval after the start to two before the end count; each must have
    brought one value per item whose value changed by the end of the drain (``unchanged``:
    per update the server made, the count of the others; a server sends a value only on a
    change).
    """
    stamps: Counter[int] = run["stamps"]
    late: Counter[int] = run["late"]
    since, until = run["window_ns"]
    interval_ns = int(interval_ms * 1e6)
    inner = [t for t in sorted(unchanged) if since + interval_ns < t < until - 2 * interval_ns]
    expected = {t: n - unchanged[t] for t in inner}
    received = {t: stamps[t] + late[t] for t in inner}
    return {
        "inner_updates": len(inner),
        # Stamps the server did not make: a timestamp mismatch would hide losses.
        "stamps_unknown_to_server": sum(t not in unchanged for t in stamps),
        "values_unchanged": sum(n - e for e in expected.values()),
        "values_missing": sum(max(0, expected[t] - received[t]) for t in inner),
        "values_extra": sum(max(0, received[t] - expected[t]) for t in inner),
        # Inner updates' values that came only in the drain: the delivery latency.
        "values_after_window": sum(late[t] for t in inner),
    }


READ_ROUNDS = 9
READ_PAIRS = 8  # alternating bifrost / asyncua reads per round


def alternating(
    ours: Callable[[], object], theirs: Callable[[], object], rounds: int, pairs: int
) -> tuple[list[float], list[float], list[list[float]]]:
    """Seconds per call of each side, per round; calls alternate one by one within a round.

    A burst of load from elsewhere on the shared machine then falls on both sides alike
    instead of on one side's block of calls. Also the load average after each round.
    """
    ours(), theirs()  # warm up: connections, plan caches
    mine: list[float] = []
    anchor: list[float] = []
    loads: list[list[float]] = []
    for _ in range(rounds):
        a = b = 0.0
        for _ in range(pairs):
            started = time.perf_counter()
            ours()
            middle = time.perf_counter()
            theirs()
            a += middle - started
            b += time.perf_counter() - middle
        mine.append(a / pairs)
        anchor.append(b / pairs)
        loads.append([round(x, 2) for x in os.getloadavg()])
    return mine, anchor, loads


def bench_reads(url: str, loop: asyncio.AbstractEventLoop) -> dict[str, Any]:
    from asyncua import Client

    client = Client(url, watchdog_intervall=_WATCHDOG_S)
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

            ours, theirs, loads = alternating(
                lambda: plc.read(names),
                lambda: loop.run_until_complete(client.read_values(nodes)),
                READ_ROUNDS,
                READ_PAIRS,
            )
            # Side by side too: the same read against the 1,000 round trips.
            single = interleaved(
                {"bifrost": lambda: plc.read(names), "asyncua_node_by_node": one_by_one},
                rounds=5,
            )
    finally:
        loop.run_until_complete(client.disconnect())
    return {
        "bifrost_read_s": statistics.median(ours),
        "asyncua_read_values_s": statistics.median(theirs),
        "bifrost_read_ms": ms(spread(ours)),
        "asyncua_read_values_ms": ms(spread(theirs)),
        "read_rounds": READ_ROUNDS,
        "read_pairs_per_round": READ_PAIRS,
        "ratio_vs_read_values": ratio_spread(ours, theirs),
        "load_per_round": loads,
        "asyncua_node_by_node_s": single["asyncua_node_by_node"],
        "speedup_vs_node_by_node": single["asyncua_node_by_node"] / single["bifrost"],
    }


def asyncua_subscription(
    url: str,
    loop: asyncio.AbstractEventLoop,
    n: int = N_NODES,
    interval_ms: float = INTERVAL_MS,
    seconds: float = SECONDS,
    per_call: int | None = None,
) -> dict[str, Any]:
    from asyncua import Client

    async def run() -> dict[str, Any]:
        client = Client(url, watchdog_intervall=_WATCHDOG_S)
        await client.connect()
        try:
            nodes = [client.get_node(f"ns=2;s=Plant.Aux.{i:04d}") for i in range(n)]
            sub = await client.create_subscription(interval_ms, queue_maxsize=1_000_000)
            size = per_call or n  # asyncua sends one call: split by hand at the limit
            for start in range(0, n, size):
                await sub.subscribe_data_change(
                    nodes[start : start + size], queuesize=10, sampling_interval=interval_ms
                )
            counts = np.zeros(n, dtype=np.int64)
            index = {node.nodeid: i for i, node in enumerate(nodes)}
            overflow = 0
            stamps: Counter[int] = Counter()
            late: Counter[int] = Counter()  # values taken after the window
            await sub.next_event(timeout=5.0)  # the initial values start the clock
            cpu, wall, since = time.process_time(), time.monotonic(), time.time_ns()
            deadline = wall + seconds
            while (left := deadline - time.monotonic()) > 0:
                event = await sub.next_event(timeout=left)
                if event is None:
                    break
                data = getattr(event, "data", None)
                if data is None:
                    continue
                counts[index[event.node.nodeid]] += 1
                stamps[datetime_ns(data.monitored_item.Value.SourceTimestamp)] += 1
                status = data.monitored_item.Value.StatusCode
                if status is not None and status.value & 0x80:
                    overflow += 1
            cpu = time.process_time() - cpu
            until = time.time_ns()
            drain_until = time.monotonic() + DRAIN_SECONDS
            while (left := drain_until - time.monotonic()) > 0:
                event = await sub.next_event(timeout=left)
                if event is None:
                    break
                data = getattr(event, "data", None)
                if data is not None:
                    late[datetime_ns(data.monitored_item.Value.SourceTimestamp)] += 1
            await sub.delete()
            return {
                "counts": counts,
                "cpu_s": cpu,
                "overflow": overflow,
                "ticks": len(stamps),
                "stamps": stamps,
                "late": late,
                "window_ns": (since, until),
            }
        finally:
            await client.disconnect()

    return loop.run_until_complete(run())


def bifrost_subscription(
    url: str, n: int = N_NODES, interval_ms: float = INTERVAL_MS, seconds: float = SECONDS
) -> dict[str, Any]:
    tags = opcua_aux_tags(n)
    counts = np.zeros(n, dtype=np.int64)
    overflow = 0
    publishes = 0
    stamps: Counter[int] = Counter()
    late: Counter[int] = Counter()  # values taken after the window

    async def run() -> float:
        nonlocal overflow, publishes
        async with bf.aio.connect(url, security="None", tags=tags) as plc:
            driver: Any = plc._driver  # the native hook, as record(mode="subscribe") uses it
            plan = driver.compile_read(list(tags))
            started = asyncio.Event()
            counting = draining = False

            def on_data(result: bf.ReadResult) -> None:
                nonlocal overflow, publishes
                started.set()
                if not counting:
                    if draining:
                        ticks, per_tick = np.unique(result.timestamp_ns, return_counts=True)
                        late.update(dict(zip(ticks.tolist(), per_tick.tolist(), strict=True)))
                    return
                publishes += 1
                assert result.indices is not None
                np.add.at(counts, result.indices, 1)
                ticks, per_tick = np.unique(result.timestamp_ns, return_counts=True)
                stamps.update(dict(zip(ticks.tolist(), per_tick.tolist(), strict=True)))
                overflow += int(np.count_nonzero(result.quality == Quality.GOOD_OVERFLOW))

            handle = await driver.subscribe(plan, interval_ms / 1000, on_data, queue_size=10)
            await asyncio.wait_for(started.wait(), 5.0)
            counting = True
            cpu, since = time.process_time(), time.time_ns()
            await asyncio.sleep(seconds)
            counting, draining = False, True
            cpu, until = time.process_time() - cpu, time.time_ns()
            await asyncio.sleep(DRAIN_SECONDS)
            draining = False
            await handle.close()
            window[:] = [since, until]
            return cpu

    window: list[int] = []
    cpu = asyncio.run(run())
    return {
        "counts": counts,
        "cpu_s": cpu,
        "overflow": overflow,
        "publishes": publishes,
        "ticks": len(stamps),
        "stamps": stamps,
        "late": late,
        "window_ns": tuple(window),
    }


def many_items(loop: asyncio.AbstractEventLoop) -> dict[str, Any]:
    """5,000 items at 2 Hz against a server enforcing MaxMonitoredItemsPerCall, in rounds."""
    rounds: dict[str, list[dict[str, Any]]] = {"asyncua": [], "bifrost": []}
    with plant_with_aux(MANY_NODES, MANY_INTERVAL_MS / 1000, MONITORED_ITEMS_PER_CALL) as plant:
        for _ in range(MANY_ROUNDS):
            rounds["asyncua"].append(
                asyncua_subscription(
                    plant.url,
                    loop,
                    MANY_NODES,
                    MANY_INTERVAL_MS,
                    MANY_SECONDS,
                    per_call=MONITORED_ITEMS_PER_CALL,
                )
            )
            rounds["bifrost"].append(
                bifrost_subscription(plant.url, MANY_NODES, MANY_INTERVAL_MS, MANY_SECONDS)
            )
        calls = plant.stats()
    for runs in rounds.values():
        for run in runs:
            run["coverage"] = coverage(run, MANY_NODES, MANY_INTERVAL_MS, calls["unchanged"])
    out: dict[str, Any] = {
        "items": MANY_NODES,
        "interval_ms": MANY_INTERVAL_MS,
        "seconds_per_round": MANY_SECONDS,
        "rounds": MANY_ROUNDS,
        "max_monitored_items_per_call": MONITORED_ITEMS_PER_CALL,
        "create_monitored_items_calls": calls["calls"],
        "bad_too_many_operations": calls["refused"],
    }
    cpu: dict[str, list[float]] = {}
    for name, runs in rounds.items():
        per_notification = [r["cpu_s"] / max(int(r["counts"].sum()), 1) * 1e6 for r in runs]
        cpu[name] = per_notification
        out[f"{name}_cpu_us_per_notification"] = spread(per_notification)
        # Lost values: an item with fewer values than the server's updates in the window.
        out[f"{name}_per_item_min_max"] = [
            [int(r["counts"].min()), int(r["counts"].max())] for r in runs
        ]
        out[f"{name}_server_updates"] = [r["ticks"] for r in runs]
        out[f"{name}_overflow_flags"] = sum(r["overflow"] for r in runs)
        out[f"{name}_notifications"] = [int(r["counts"].sum()) for r in runs]
        out[f"{name}_inner_updates"] = [r["coverage"]["inner_updates"] for r in runs]
        out[f"{name}_values_missing"] = sum(r["coverage"]["values_missing"] for r in runs)
        out[f"{name}_values_extra"] = sum(r["coverage"]["values_extra"] for r in runs)
        out[f"{name}_values_unchanged"] = sum(r["coverage"]["values_unchanged"] for r in runs)
        out[f"{name}_values_after_window"] = sum(r["coverage"]["values_after_window"] for r in runs)
        out[f"{name}_stamps_unknown_to_server"] = sum(
            r["coverage"]["stamps_unknown_to_server"] for r in runs
        )
    out["cpu_ratio"] = ratio_spread(cpu["bifrost"], cpu["asyncua"])
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--reads-only", action="store_true", help="only the read rows (saved as opcua_reads)"
    )
    args = parser.parse_args()
    loop = asyncio.new_event_loop()
    try:
        with plant_with_aux(N_NODES) as plant:
            reads = bench_reads(plant.url, loop)
            ratio = reads["ratio_vs_read_values"]
            print(
                f"read {N_NODES} nodes, {READ_ROUNDS} rounds of {READ_PAIRS} alternating "
                f"reads: bifrost {reads['bifrost_read_ms']} ms, asyncua read_values "
                f"{reads['asyncua_read_values_ms']} ms; ratio per round min/median/max "
                f"{ratio['min']:.2f} / {ratio['median']:.2f} / {ratio['max']:.2f} (target <= 1.1); "
                f"load {reads['load_per_round'][0]} .. {reads['load_per_round'][-1]}; node by "
                f"node {reads['asyncua_node_by_node_s'] * 1e3:.0f} ms "
                f"({reads['speedup_vs_node_by_node']:.1f}x, target >= 15)"
            )
            if args.reads_only:
                save("opcua_reads", {**reads, "machine": machine_load()})
                return
            theirs = asyncua_subscription(plant.url, loop)
            ours = bifrost_subscription(plant.url)
            unchanged = plant.stats()["unchanged"]
        for run in (theirs, ours):
            run["coverage"] = coverage(run, N_NODES, INTERVAL_MS, unchanged)
        many = many_items(loop)
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
        results[f"{name}_coverage"] = run["coverage"]
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
    results["many_items"] = many
    ours_cpu, theirs_cpu = (
        many["bifrost_cpu_us_per_notification"],
        many["asyncua_cpu_us_per_notification"],
    )
    print(
        f"subscribe {MANY_NODES} items at {MANY_INTERVAL_MS:g} ms, {MANY_ROUNDS} rounds of "
        f"{MANY_SECONDS:g} s, server MaxMonitoredItemsPerCall {MONITORED_ITEMS_PER_CALL}: "
        f"bifrost {many['bifrost_values_missing']} values missing over "
        f"{many['bifrost_inner_updates']} server updates inside the window "
        f"({many['bifrost_values_extra']} extra; {many['bifrost_values_unchanged']} unchanged "
        f"on the server, not sent; {many['bifrost_stamps_unknown_to_server']} stamps the server "
        f"did not make; {many['bifrost_values_after_window']} came in the {DRAIN_SECONDS:g} s "
        f"drain), asyncua {many['asyncua_values_missing']} missing over "
        f"{many['asyncua_inner_updates']}; overflow flags "
        f"{many['bifrost_overflow_flags']} / {many['asyncua_overflow_flags']}; "
        f"CreateMonitoredItems calls {many['create_monitored_items_calls']}, "
        f"{many['bad_too_many_operations']} BadTooManyOperations; CPU per notification "
        f"bifrost {ours_cpu['median']:.1f} us (min {ours_cpu['min']:.1f}, "
        f"max {ours_cpu['max']:.1f}), "
        f"asyncua {theirs_cpu['median']:.1f} us (min {theirs_cpu['min']:.1f}, "
        f"max {theirs_cpu['max']:.1f}); ratio {many['cpu_ratio']} (target <= 1.0)"
    )
    results["machine"] = machine_load()
    save("opcua", results)


if __name__ == "__main__":
    main()

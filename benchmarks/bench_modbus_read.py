"""Sequential Modbus reads through Connection.read, side by side with raw pymodbus.

Against the simulated plant (pymodbus' server, its own process), in one run, interleaved:

(a) 1,000 registers: bifrost ``Connection.read`` against hand-coalesced pymodbus reads of
    8 x 125 registers (sync client) ending in raw register lists, and ending in the same
    DataFrame; pymodbus' async client; one request per tag.
    Targets: <= 1.5x the raw lists, <= 1.25x the DataFrame script, >= 60x per tag.
(b) 10 tags (one request): the fixed cost of a read above the raw request (pymodbus' sync
    client, and a bare blocking socket). Target: <= 0.3 ms above the raw request. A
    sync read of a connection nothing else uses runs on the caller's thread; the same
    read on a connection a slow recording shares goes through bifrost's loop (two
    thread hand-overs), measured alongside.

Every figure is min / median / max over rounds; ratios are taken within each round.
"""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from urllib.parse import urlsplit

import pandas as pd
from _common import interleaved_samples, machine_load, ms, plant_process, ratio_spread, save, spread
from pymodbus.client import AsyncModbusTcpClient, ModbusTcpClient

import bifrost as bf

N_TAGS = 1000
SHORT = 10
FIRST = 1000  # the plant's auxiliary registers start here


def main() -> dict[str, object]:
    with plant_process("modbus") as urls:
        url = urls["modbus"]
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 502
        tags = [f"hr:{FIRST + i}" for i in range(N_TAGS)]
        short = tags[:SHORT]

        client = ModbusTcpClient(host, port=port)
        client.connect()

        def per_tag() -> None:
            for i in range(N_TAGS):
                client.read_holding_registers(FIRST + i, count=1, device_id=1)

        def coalesced_sync() -> None:
            for start in range(FIRST, FIRST + N_TAGS, 125):
                client.read_holding_registers(start, count=125, device_id=1)

        names = pd.Index(tags, name="tag")

        def coalesced_sync_to_frame() -> None:
            # The same result a user gets from bifrost: values per tag in a DataFrame.
            registers: list[int] = []
            for start in range(FIRST, FIRST + N_TAGS, 125):
                registers += client.read_holding_registers(start, count=125, device_id=1).registers
            stamp = pd.Timestamp.now(tz="UTC")
            pd.DataFrame({"value": registers, "timestamp": stamp}, index=names)

        def pymodbus_short() -> None:
            client.read_holding_registers(FIRST, count=SHORT, device_id=1)

        # The floor of one round trip from Python: a blocking socket, no library.
        raw = socket.create_connection((host, port))
        raw.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        request = struct.pack(">HHHBBHH", 1, 0, 6, 1, 3, FIRST, SHORT)
        reply_size = 9 + 2 * SHORT

        def socket_short() -> None:
            raw.sendall(request)
            got = 0
            while got < reply_size:
                got += len(raw.recv(4096))

        # The async anchor runs on its own loop thread, called the way bifrost is.
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, daemon=True)
        thread.start()
        async_client = asyncio.run_coroutine_threadsafe(_async_client(host, port), loop).result()

        async def coalesced_async_body() -> None:
            for start in range(FIRST, FIRST + N_TAGS, 125):
                await async_client.read_holding_registers(start, count=125, device_id=1)

        def coalesced_async() -> None:
            asyncio.run_coroutine_threadsafe(coalesced_async_body(), loop).result()

        with bf.connect(url) as plc, bf.connect(url) as shared:
            # One register every 10 s keeps this connection's reads on the loop.
            recording = shared.record(["hr:0"], interval="10s", background=True)
            long_runs = interleaved_samples(
                {
                    "bifrost Connection.read": lambda: plc.read(tags),
                    "pymodbus coalesced (sync)": coalesced_sync,
                    "pymodbus coalesced (sync) + DataFrame": coalesced_sync_to_frame,
                    "pymodbus coalesced (async)": coalesced_async,
                },
                rounds=30,
                repeat=10,
            )
            short_runs = interleaved_samples(
                {
                    "bifrost Connection.read, 10 tags": lambda: plc.read(short),
                    "bifrost Connection.read_result, 10 tags": lambda: plc.read_result(short),
                    "bifrost Connection.read, 10 tags, through the loop": lambda: shared.read(
                        short
                    ),
                    "pymodbus read, 10 registers": pymodbus_short,
                    "socket round trip, 10 registers": socket_short,
                },
                rounds=30,
                repeat=50,
            )
            slow = interleaved_samples({"pymodbus per tag": per_tag}, rounds=3)
            recording.stop()
        raw.close()
        client.close()
        async_client.close()
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)

    ours = long_runs["bifrost Connection.read"]
    ours_short = short_runs["bifrost Connection.read, 10 tags"]
    fixed = {
        anchor: spread([a - b for a, b in zip(ours_short, short_runs[anchor], strict=True)])
        for anchor in ("pymodbus read, 10 registers", "socket round trip, 10 registers")
    }
    looped = short_runs["bifrost Connection.read, 10 tags, through the loop"]
    fixed["pymodbus read, 10 registers (bifrost through the loop)"] = spread(
        [a - b for a, b in zip(looped, short_runs["pymodbus read, 10 registers"], strict=True)]
    )
    per_tag_median = spread(slow["pymodbus per tag"])["median"]
    result = {
        "tags": N_TAGS,
        "load": machine_load(),
        "ms": {k: ms(spread(v)) for k, v in {**long_runs, **short_runs, **slow}.items()},
        "ratio_vs_coalesced_sync": ratio_spread(ours, long_runs["pymodbus coalesced (sync)"]),
        "ratio_vs_coalesced_sync_frame": ratio_spread(
            ours, long_runs["pymodbus coalesced (sync) + DataFrame"]
        ),
        "ratio_vs_coalesced_async": ratio_spread(ours, long_runs["pymodbus coalesced (async)"]),
        "speedup_vs_per_tag": round(per_tag_median / spread(ours)["median"], 1),
        "fixed_cost_10_tags_ms": {k: ms(v) for k, v in fixed.items()},
        "targets": (
            "1,000 registers <= 1.5x raw lists, <= 1.25x the DataFrame script, >= 60x per "
            "tag; a 10-tag read <= 0.3 ms above the raw request"
        ),
    }
    save("modbus_read", result)
    return result


async def _async_client(host: str, port: int) -> AsyncModbusTcpClient:
    client = AsyncModbusTcpClient(host, port=port)
    await client.connect()
    return client


if __name__ == "__main__":
    outcome = main()
    for name, stats in outcome["ms"].items():  # type: ignore[union-attr]
        print(f"{name:42s} " + " / ".join(f"{stats[k]:8.3f}" for k in ("min", "median", "max")))
    for key in (
        "ratio_vs_coalesced_sync",
        "ratio_vs_coalesced_sync_frame",
        "ratio_vs_coalesced_async",
        "speedup_vs_per_tag",
        "fixed_cost_10_tags_ms",
        "load",
    ):
        print(f"{key:42s} {outcome[key]}")

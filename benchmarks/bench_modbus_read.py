"""1,000 tags read through Connection.read, side by side with raw pymodbus.

Anchors, measured in the same run against the same simulated plant (its own process):
(a) pymodbus, one request per tag; (b) hand-coalesced pymodbus reads of 125 registers,
with the sync client (the shortest script a user would write) and with the async client
(what bifrost drives underneath). Targets: bifrost within 1.25x of (b), >= 60x faster
than (a).
"""

from __future__ import annotations

import asyncio
import threading
from urllib.parse import urlsplit

import pandas as pd
from _common import interleaved, plant_process, save
from pymodbus.client import AsyncModbusTcpClient, ModbusTcpClient

import bifrost as bf

N_TAGS = 1000
FIRST = 1000  # the plant's auxiliary registers start here


def main() -> dict[str, object]:
    with plant_process("modbus") as urls:
        url = urls["modbus"]
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 502
        tags = [f"hr:{FIRST + i}" for i in range(N_TAGS)]

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

        with bf.connect(url) as plc:

            def bifrost_read() -> None:
                plc.read(tags)

            fast = interleaved(
                {
                    "bifrost Connection.read": bifrost_read,
                    "pymodbus coalesced (sync)": coalesced_sync,
                    "pymodbus coalesced (sync) + DataFrame": coalesced_sync_to_frame,
                    "pymodbus coalesced (async)": coalesced_async,
                },
                rounds=30,
                repeat=10,
            )
            slow = interleaved({"pymodbus per tag": per_tag}, rounds=3)
        client.close()
        async_client.close()
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)

    times = {**fast, **slow}
    ours = times["bifrost Connection.read"]
    result = {
        "tags": N_TAGS,
        "ms": {k: round(v * 1e3, 3) for k, v in times.items()},
        "ratio_vs_coalesced_sync": round(ours / times["pymodbus coalesced (sync)"], 2),
        "ratio_vs_coalesced_async": round(ours / times["pymodbus coalesced (async)"], 2),
        "ratio_vs_coalesced_sync_frame": round(
            ours / times["pymodbus coalesced (sync) + DataFrame"], 2
        ),
        "speedup_vs_per_tag": round(times["pymodbus per tag"] / ours, 1),
        "targets": "within 1.25x of coalesced; >= 60x faster than per tag",
    }
    save("modbus_read", result)
    return result


async def _async_client(host: str, port: int) -> AsyncModbusTcpClient:
    client = AsyncModbusTcpClient(host, port=port)
    await client.connect()
    return client


if __name__ == "__main__":
    outcome = main()
    for name, ms in outcome["ms"].items():  # type: ignore[union-attr]
        print(f"{name:30s} {ms:10.3f} ms")
    for key in (
        "ratio_vs_coalesced_sync",
        "ratio_vs_coalesced_sync_frame",
        "ratio_vs_coalesced_async",
        "speedup_vs_per_tag",
    ):
        print(f"{key:30s} {outcome[key]}")

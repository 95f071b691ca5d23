"""1,000 S7 REAL tags through Connection.read, side by side with raw python-snap7.

The simulated plant runs in its own process (`bifrost sim --s7 0`); its DB100 holds the
auxiliary channels as REALs. Same run, same server:

- scattered: 1,000 REALs one every 16 bytes (16,000 bytes of DB100) vs snap7's
  ``read_multi_vars`` in batches of 20 (its limit; snap7's own optimiser left on, as a
  user gets it). Target: bifrost >= 8x faster.
- contiguous: 1,000 REALs in 4,000 bytes vs one ``db_read(100, 0, 4000)`` decoded with
  NumPy (snap7 splits it at the PDU size itself). Target: bifrost within 1.2x. Also
  reported: the same db_read turned into the DataFrame ``Connection.read`` returns, and
  bifrost's requests and decoding alone (no thread hops, no DataFrame).
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import numpy as np
import pandas as pd
import snap7
from _common import interleaved, plant_process, save
from snap7.type import Area

import bifrost as bf
from bifrost.protocols.s7 import client as snap7_calls
from bifrost.protocols.s7.codec import decode
from bifrost.protocols.s7.plan import layout

N_TAGS = 1000
AUX_DB = 100


def requests_only(plc: bf.Connection, tags: list[str]) -> None:
    """The driver's planned requests and decoding, called directly (no thread hops).

    Separates what the planner controls (requests, bytes, decoding) from the fixed cost
    of a user call: the hop onto bifrost's loop, the hop onto the PLC's worker thread and
    the DataFrame.
    """
    driver: Any = plc._async._driver  # benchmark introspection, not API
    plan = plc._async._compile(tags).plan
    laid_out = layout(plan, driver._pdu, driver.options)
    image = np.zeros(laid_out.size, dtype=np.uint8)
    snap7_calls.read_all(driver._client, plan, laid_out, image, None)
    [(g.positions, decode(g, image, laid_out.starts, plan.bits)) for g in plan.groups]


def main() -> dict[str, object]:
    with plant_process("s7") as urls:
        url = urls["s7"]
        parts = urlsplit(url)
        host, port = parts.hostname or "127.0.0.1", parts.port or 102
        client = snap7.Client()
        client.connect(host, 0, 1, tcp_port=port)

        scattered_items = [
            {"area": Area.DB, "db_number": AUX_DB, "start": 16 * i, "size": 4}
            for i in range(N_TAGS)
        ]

        def snap7_multi_vars() -> None:
            for k in range(0, N_TAGS, 20):
                _, data = client.read_multi_vars(scattered_items[k : k + 20])
                np.frombuffer(b"".join(data), dtype=">f4")

        def snap7_db_read() -> None:
            np.frombuffer(bytes(client.db_read(AUX_DB, 0, 4 * N_TAGS)), dtype=">f4")

        def snap7_db_read_frame() -> None:
            # The same output as Connection.read: one row per tag with quality and time.
            values = np.frombuffer(bytes(client.db_read(AUX_DB, 0, 4 * N_TAGS)), dtype=">f4")
            now = pd.Timestamp.now(tz="UTC")
            pd.DataFrame(
                {
                    "value": values.astype(np.float32),
                    "quality": "good",
                    "timestamp": now,
                    "unit": "",
                    "address": contiguous,
                },
                index=pd.Index(contiguous, name="tag"),
            )

        scattered = [f"DB{AUX_DB}.DBD{16 * i}:REAL" for i in range(N_TAGS)]
        contiguous = [f"DB{AUX_DB}.DBD{4 * i}:REAL" for i in range(N_TAGS)]

        with bf.connect(url) as plc:
            # Same values both ways (the plant steps in between, so compare one moment).
            ours = plc.read(contiguous)["value"].to_numpy(dtype=np.float32)
            theirs = np.frombuffer(bytes(client.db_read(AUX_DB, 0, 4 * N_TAGS)), ">f4")
            assert ours.shape == theirs.shape

            times = interleaved(
                {
                    "bifrost scattered": lambda: plc.read(scattered),
                    "snap7 read_multi_vars x20": snap7_multi_vars,
                    "bifrost contiguous": lambda: plc.read(contiguous),
                    "snap7 db_read": snap7_db_read,
                    "snap7 db_read + DataFrame": snap7_db_read_frame,
                    "bifrost contiguous, requests only": lambda: requests_only(plc, contiguous),
                },
                rounds=15,
                repeat=5,
            )
        client.disconnect()

    result = {
        "tags": N_TAGS,
        "ms": {k: round(v * 1e3, 3) for k, v in times.items()},
        "speedup_scattered_vs_read_multi_vars": round(
            times["snap7 read_multi_vars x20"] / times["bifrost scattered"], 1
        ),
        "ratio_contiguous_vs_db_read": round(
            times["bifrost contiguous"] / times["snap7 db_read"], 2
        ),
        "ratio_contiguous_vs_db_read_frame": round(
            times["bifrost contiguous"] / times["snap7 db_read + DataFrame"], 2
        ),
        "ratio_requests_only_vs_db_read": round(
            times["bifrost contiguous, requests only"] / times["snap7 db_read"], 2
        ),
        "targets": "scattered >= 8x faster than read_multi_vars; contiguous within 1.2x",
    }
    save("s7_read", result)
    return result


if __name__ == "__main__":
    outcome = main()
    for name, ms in outcome["ms"].items():  # type: ignore[union-attr]
        print(f"{name:30s} {ms:10.3f} ms")
    for key in (
        "speedup_scattered_vs_read_multi_vars",
        "ratio_contiguous_vs_db_read",
        "ratio_contiguous_vs_db_read_frame",
        "ratio_requests_only_vs_db_read",
    ):
        print(f"{key:40s} {outcome[key]}")

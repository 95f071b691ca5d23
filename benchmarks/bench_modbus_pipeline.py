"""Pipelined Modbus TCP (``pipeline=8``): 1,000 registers over a slow link and on loopback.

The devices are ``_modbus_devices.py`` in their own process (answers pipelined requests
in order). Side by side, interleaved, in one run:

(a) through a link that delays each direction by 1 ms: bifrost ``pipeline=8`` against
    hand-coalesced pymodbus (8 x 125, sync client) and bifrost one request at a time.
    Target: >= 4x faster than pymodbus.
(b) on loopback: bifrost ``pipeline=8`` (``read_result``, the raw columns, and ``read``,
    the DataFrame) against the sequential C libmodbus client (8 x 125, measured in C;
    built here if libmodbus-dev is installed), pymodbus and bifrost one at a time.
    Target: faster than libmodbus. A sync read of a connection nothing else uses runs
    on the caller's thread; the same read on a connection a slow recording shares goes
    through bifrost's loop (two thread hand-overs), measured alongside.

Figures are min / median / max over rounds; ratios are taken within each round.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

from _common import (
    interleaved_samples,
    machine_load,
    modbus_devices,
    ms,
    ratio_spread,
    save,
    spread,
)
from pymodbus.client import ModbusTcpClient

import bifrost as bf

FIRST = 1000
N_TAGS = 1000
DELAY_MS = 1.0
ROUNDS = 30  # loopback rounds: each contender 20 times, then the C client 50 times
HERE = Path(__file__).parent


def _libmodbus_binary(workdir: Path) -> Path | None:
    """Compile the C client against libmodbus, or None (the reason is printed)."""
    compiler = shutil.which("cc")
    flags = subprocess.run(
        ["pkg-config", "--cflags", "--libs", "libmodbus"],
        capture_output=True,
        text=True,
        check=False,
    )
    if compiler is None or flags.returncode != 0:
        print("libmodbus-dev is not installed (apt-get install libmodbus-dev): no C figure")
        return None
    binary = workdir / "libmodbus_read"
    subprocess.run(
        [
            compiler,
            "-O2",
            "-o",
            str(binary),
            str(HERE / "c" / "libmodbus_read.c"),
            *flags.stdout.split(),
        ],
        check=True,
    )
    return binary


def main() -> dict[str, object]:
    tags = [f"hr:{FIRST + i}" for i in range(N_TAGS)]
    result: dict[str, object] = {"tags": N_TAGS, "load_before": machine_load()}
    with modbus_devices(1, DELAY_MS) as ports, tempfile.TemporaryDirectory() as tmp:
        direct, delayed = ports["device"][0], ports["delayed"][0]
        binary = _libmodbus_binary(Path(tmp))

        def pymodbus_reader(port: int) -> tuple[ModbusTcpClient, object]:
            client = ModbusTcpClient("127.0.0.1", port=port)
            client.connect()

            def read() -> None:
                for start in range(FIRST, FIRST + N_TAGS, 125):
                    client.read_holding_registers(start, count=125, device_id=1)

            return client, read

        # (a) the slow link
        slow_client, slow_pymodbus = pymodbus_reader(delayed)
        with (
            bf.connect(f"modbus://127.0.0.1:{delayed}", pipeline=8) as piped,
            bf.connect(f"modbus://127.0.0.1:{delayed}") as one_by_one,
        ):
            slow = interleaved_samples(
                {
                    "bifrost pipeline=8 read": lambda: piped.read(tags),
                    "pymodbus coalesced (sync)": slow_pymodbus,  # type: ignore[dict-item]
                    "bifrost one at a time read": lambda: one_by_one.read(tags),
                },
                rounds=15,
                repeat=5,
            )
            slow_state = piped.info()["pipeline"]
        slow_client.close()

        # (b) loopback
        fast_client, fast_pymodbus = pymodbus_reader(direct)
        c_samples: list[float] = []

        def libmodbus_round() -> None:
            assert binary is not None
            out = subprocess.run(
                [str(binary), "127.0.0.1", str(direct), "1", "50"],
                capture_output=True,
                text=True,
                check=True,
            )
            c_samples.append(float(out.stdout.split()[0]))

        with (
            bf.connect(f"modbus://127.0.0.1:{direct}", pipeline=8) as piped,
            bf.connect(f"modbus://127.0.0.1:{direct}", pipeline=8) as shared,
            bf.connect(f"modbus://127.0.0.1:{direct}") as one_by_one,
        ):
            # One register every 10 s: the recording keeps this connection's reads on
            # the loop and costs nothing measurable itself.
            recording = shared.record(["hr:0"], interval="10s", background=True)
            contenders = {
                "bifrost pipeline=8 read_result": lambda: piped.read_result(tags),
                "bifrost pipeline=8 read": lambda: piped.read(tags),
                "bifrost pipeline=8 read_result through the loop": lambda: shared.read_result(tags),
                "bifrost one at a time read_result": lambda: one_by_one.read_result(tags),
                "pymodbus coalesced (sync)": fast_pymodbus,
            }
            loop_samples: dict[str, list[float]] = {name: [] for name in contenders}
            for _ in range(ROUNDS):
                # One round: each contender 20 times, then the C client 50 times.
                for name, samples in interleaved_samples(contenders, 1, 20).items():
                    loop_samples[name] += samples
                if binary is not None:
                    libmodbus_round()
            fast_state = piped.info()["pipeline"]
            recording.stop()
        fast_client.close()

    ours_slow = slow["bifrost pipeline=8 read"]
    result["delayed_link"] = {
        "delay_ms_each_way": DELAY_MS,
        "ms": {k: ms(spread(v)) for k, v in slow.items()},
        "speedup_vs_pymodbus": ratio_spread(slow["pymodbus coalesced (sync)"], ours_slow),
        "speedup_vs_one_at_a_time": ratio_spread(slow["bifrost one at a time read"], ours_slow),
        "pipeline": slow_state,
        "target": ">= 4x faster than hand-coalesced pymodbus",
    }
    loopback: dict[str, object] = {
        "ms": {k: ms(spread(v)) for k, v in loop_samples.items()},
        "pipeline": fast_state,
        "target": "faster than the sequential C libmodbus client",
    }
    if c_samples:
        loopback["ms"]["libmodbus (C) sequential 8 x 125"] = ms(spread(c_samples))  # type: ignore[index]
        for name in (
            "bifrost pipeline=8 read_result",
            "bifrost pipeline=8 read",
            "bifrost pipeline=8 read_result through the loop",
        ):
            loopback[f"ratio {name} / libmodbus"] = ratio_spread(loop_samples[name], c_samples)
    else:
        loopback["libmodbus"] = "not installed: compare with DEPENDENCIES.md's 0.20-0.31 ms"
    result["loopback"] = loopback
    result["load_after"] = machine_load()
    save("modbus_pipeline", result)
    return result


if __name__ == "__main__":
    import json

    print(json.dumps(main(), indent=1))

"""sim and demo: the simulated plant from the command line."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pandas as pd
from cli_support import SCRIPT, bifrost

import bifrost as bf


def test_demo_writes_parquet_trend_and_report(tmp_path: Path):
    done = bifrost("demo", "--out", str(tmp_path), "--seconds", "2", "--interval", "50ms")
    assert done.returncode == 0, done.stderr
    rec = bf.open_recording(tmp_path / "recording.parquet")
    frame = rec.to_pandas()
    assert {"tank.level", "reactor.temperature", "reactor.setpoint"} <= set(frame.columns)
    # The demo steps the setpoint by 15 degC a third of the way in.
    assert frame["reactor.setpoint"].iloc[-1] - frame["reactor.setpoint"].iloc[0] == 15.0
    assert isinstance(frame.index, pd.DatetimeIndex)
    assert (tmp_path / "trend.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    report = (tmp_path / "report.html").read_text()
    assert "reactor.temperature" in report
    assert "data:image/png;base64," in report
    assert "wrote" in done.stdout


def test_sim_serves_and_writes_its_tag_tables(tmp_path: Path):
    assert SCRIPT is not None
    with subprocess.Popen(
        [SCRIPT, "sim", "--modbus", "0", "--s7", "0", "--tags-out", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as sim:
        try:
            assert sim.stdout is not None
            urls = dict(sim.stdout.readline().split() for _ in range(2))
            done = bifrost("read", urls["s7"], "-t", str(tmp_path / "s7.yaml"), "--json")
        finally:
            sim.terminate()
            sim.wait(30)
    assert set(urls) == {"modbus", "s7"}
    assert done.returncode == 0, done.stderr
    assert '"tag": "tank.level"' in done.stdout
    assert (
        bf.TagTable.from_yaml(tmp_path / "modbus.yaml").names
        == bf.sim.Plant(realtime=False).tags("modbus").names
    )

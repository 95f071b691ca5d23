"""The command line, run as a user runs it (a subprocess of the installed entry point)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd

import bifrost as bf

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "160"}
    return subprocess.run(
        [sys.executable, "-m", "bifrost", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env=env,
    )


def test_version():
    done = run("--version")
    assert done.returncode == 0
    assert done.stdout.startswith("bifrost ")


def test_read_json_against_a_real_server(modbus_server):
    modbus_server.set("hr", 40, [0x4148, 0x0000, 7])  # 12.5 as float32, then 7
    done = run("read", modbus_server.url, "hr:40:float32", "hr:42", "--json")
    assert done.returncode == 0, done.stderr
    rows = json.loads(done.stdout)
    assert [(r["tag"], r["value"], r["quality"]) for r in rows] == [
        ("hr:40:float32", 12.5, "good"),
        ("hr:42", 7, "good"),
    ]


def test_errors_are_one_clear_line(modbus_server):
    done = run("read", modbus_server.url, "hr:4x0")
    assert done.returncode == 1
    assert "Traceback" not in done.stderr
    assert "hr:4x0" in done.stderr
    assert "position 3" in done.stderr


def test_record_writes_a_file(modbus_server, tmp_path: Path):
    out = tmp_path / "run.parquet"
    done = run(
        "record",
        modbus_server.url,
        "hr:0",
        "--interval",
        "50ms",
        "--duration",
        "0.5s",
        "-o",
        str(out),
    )
    assert done.returncode == 0, done.stderr
    assert len(bf.open_recording(out)) >= 5


def test_demo_writes_parquet_trend_and_report(tmp_path: Path):
    done = run("demo", "--out", str(tmp_path), "--seconds", "2", "--interval", "50ms")
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


def test_options_reach_the_connection(modbus_server):
    modbus_server.set("hr", 60, [321], unit=2)
    done = run("read", modbus_server.url, "hr:60", "-O", "unit=2", "--json")
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)[0]["value"] == 321
    bad = run("read", modbus_server.url, "hr:60", "-O", "unit")
    assert bad.returncode == 1
    assert "KEY=VALUE" in bad.stderr

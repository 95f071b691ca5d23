"""A saved recording replayed as a device over real Modbus and OPC UA servers."""

from __future__ import annotations

import itertools
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import bifrost as bf
from bifrost.exceptions import ConfigurationError
from bifrost.model import Quality, Tag
from bifrost.recording.session import Recording
from bifrost.sim import Dropout, Frozen, Noise, Replay, Slow

ROWS = 20
INTERVAL = 0.1
GAP_ROW = 7  # the device could not be read: every tag bad
NAMES = ["level", "temp", "count", "state", "run", "recipe"]
DTYPES = ["float32", "float64", "uint32", "int16", "bool", "string[8]"]


def _row(i: int) -> dict[str, Any]:
    return {
        "level": float(np.float32(1.5 + 0.1 * i)),
        "temp": 20.0 + i / 3.0,
        "count": 4_000_000_000 + i,
        "state": i % 3 - 1,
        "run": i % 2 == 0,
        "recipe": f"R-{i:02d}",
    }


def _write_recording(path: Path) -> Path:
    tags = [Tag(n, f"mem:{n}", unit="m" if n == "level" else "") for n in NAMES]
    rec = Recording(tags, DTYPES, INTERVAL, metadata={"device": "test"})
    start = 1_700_000_000_000_000_000
    for i in range(ROWS):
        when = start + round(i * INTERVAL * 1e9)
        if i == GAP_ROW:
            rec.buffer.append_gap(when, Quality.BAD_TIMEOUT)
            continue
        row = _row(i)
        numbers = np.array([float(row[n]) if n != "recipe" else np.nan for n in NAMES])
        objects = np.array([row["recipe"] if n == "recipe" else None for n in NAMES], object)
        rec.buffer.append(when, numbers, objects, np.zeros(len(NAMES), dtype=np.uint8))
    rec.save(path)
    return path


@pytest.fixture(scope="module")
def recording(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _write_recording(tmp_path_factory.mktemp("replay") / "run.parquet")


def _expected(i: int) -> dict[str, Any]:
    return _row(i)


def _read(plc: Any) -> tuple[dict[str, Any], dict[str, str]]:
    frame = plc.read(plc.tags.names)
    return dict(zip(frame.index, frame["value"], strict=True)), dict(
        zip(frame.index, frame["quality"].astype(str), strict=True)
    )


def _assert_row(values: dict[str, Any], i: int) -> None:
    expected = _expected(i)
    assert np.float32(values["level"]) == np.float32(expected["level"])
    assert values["temp"] == expected["temp"]  # float64: bit for bit
    for name in ("count", "state", "run", "recipe"):
        assert values[name] == expected[name], (name, values[name], expected[name])


def test_modbus_and_opcua_serve_the_recorded_row_at_the_replay_position(recording: Path) -> None:
    pytest.importorskip("asyncua")
    with bf.sim.replay(recording, realtime=False) as replay:
        urls = replay.serve(modbus=0, opcua=0)
        assert set(urls) == {"modbus", "opcua"}
        assert replay.tags("opcua")["level"].address == "ns=2;s=Replay.level"
        with replay.connect("modbus") as modbus, replay.connect("opcua") as opcua:
            for position, row in [(0.0, 0), (0.25, 2), (0.95, 9), (1.55, 15), (1.99, 19)]:
                replay.seek(position)
                assert replay.row == row
                for plc in (modbus, opcua):
                    values, quality = _read(plc)
                    assert set(quality.values()) == {"good"}
                    _assert_row(values, row)
            # A row the recording has no values for: OPC UA says so, Modbus keeps the
            # last good values (it has no per-value status).
            replay.seek(GAP_ROW * INTERVAL + 0.01)
            with pytest.raises(bf.ProtocolError, match="BadNoCommunication"):
                _read(opcua)  # every tag of the read is bad
            assert replay.values()["level"] is None
            values, quality = _read(modbus)
            _assert_row(values, GAP_ROW - 1)


def test_position_wraps_when_looping_and_stays_at_the_end_otherwise(recording: Path) -> None:
    looping = Replay(recording, realtime=False)
    once = Replay(recording, realtime=False, loop=False)
    try:
        assert looping.duration == pytest.approx(ROWS * INTERVAL)
        assert looping.position_of(2.25) == pytest.approx(0.25)
        assert looping.row_of(looping.position_of(2.25)) == 2
        assert once.row_of(once.position_of(5.0)) == ROWS - 1
        looping.seek(4.35)
        assert (looping.row, looping.loops) == (3, 2)
        looping.step(ROWS)
        assert (looping.row, looping.loops) == (3, 3)
    finally:
        looping.close()
        once.close()


def _bracket(replay: Replay, read: Any) -> tuple[int, Any, int]:
    """Row before the read, what the read saw, row after it (the replay's own clock)."""
    before = replay.row_of(replay.position_of(replay.elapsed_at(time.monotonic())))
    seen = read()
    after = replay.row_of(replay.position_of(replay.elapsed_at(time.monotonic())))
    return before, seen, after


@pytest.mark.parametrize("loop", [True, False])
def test_realtime_replay_follows_speed_times_the_clock(recording: Path, loop: bool) -> None:
    speed = 4.0
    with bf.sim.replay(recording, speed=speed, loop=loop) as replay:
        replay.serve(modbus=0)
        seen_rows = []
        # What is checked is the replay's clock, not how fast the server answers: a long
        # timeout keeps a stall of the machine (CI shares 2 cores) from failing the read.
        with replay.connect("modbus", timeout=10.0) as plc:
            deadline = time.monotonic() + 1.6  # about three passes of the 0.5 s loop
            while time.monotonic() < deadline:
                before, count, after = _bracket(replay, lambda: plc.read_value("count"))
                row = count - _expected(0)["count"]
                seen_rows.append(row)
                # Published as the clock moves: never ahead, at most 0.1 s (4 rows at this
                # speed) behind on a busy machine; rows counted around the loop.
                behind = (before - row) % ROWS if loop else before - row
                ahead = (row - before) % ROWS if loop else row - before
                span = (after - before) % ROWS if loop else after - before
                assert 0 <= behind <= 4 or 0 <= ahead <= span, (before, row, after)
                time.sleep(0.03)
    wraps = sum(1 for a, b in itertools.pairwise(seen_rows) if b < a)
    if loop:
        assert wraps >= 1, seen_rows
    else:
        assert wraps == 0
        assert seen_rows[-1] == ROWS - 1


def test_frozen_and_noise_faults_seen_by_a_client(recording: Path) -> None:
    faults = [Frozen("level", start=0.5, end=1.2), Noise("temp", amplitude=0.5, seed=3)]
    with bf.sim.replay(recording, realtime=False, faults=faults) as replay:
        replay.serve(modbus=0)
        with replay.connect("modbus") as plc:
            replay.seek(1.0)
            values, _ = _read(plc)
            assert np.float32(values["level"]) == np.float32(_expected(5)["level"])  # frozen
            assert values["count"] == _expected(10)["count"]  # the others move on
            noisy = [values["temp"]]
            assert noisy[0] != _expected(10)["temp"]
            assert abs(noisy[0] - _expected(10)["temp"]) <= 0.5
            assert _read(plc)[0]["temp"] == noisy[0]  # one row, one noise value
            replay.seek(1.3)  # the freeze is over
            values, _ = _read(plc)
            assert np.float32(values["level"]) == np.float32(_expected(13)["level"])
            assert abs(values["temp"] - _expected(13)["temp"]) <= 0.5
            assert values["temp"] != noisy[0]
    again = Replay(recording, realtime=False, faults=faults)
    try:
        assert again.values(1.0)["temp"] == noisy[0]  # seeded: the same noise again
        assert again.values(1.0, faults=False)["temp"] == _expected(10)["temp"]
    finally:
        again.close()


def test_a_dropout_times_the_client_out_and_it_recovers(recording: Path) -> None:
    with bf.sim.replay(recording, realtime=False, faults=[Dropout(start=1.0, end=1.5)]) as replay:
        replay.serve(modbus=0)
        with replay.connect("modbus", timeout=0.5) as plc:
            replay.seek(0.5)
            _assert_row(_read(plc)[0], 5)
            replay.seek(1.2)
            started = time.monotonic()
            try:
                _, quality = _read(plc)
            except (bf.ConnectionError, bf.TimeoutError):
                pass
            else:
                assert all(q.startswith("bad") for q in quality.values()), quality
            assert time.monotonic() - started >= 0.4  # it waited for an answer
            replay.seek(1.6)
            deadline = time.monotonic() + 10
            while True:  # the client reconnects on its own
                try:
                    values, quality = _read(plc)
                except (bf.ConnectionError, bf.TimeoutError):
                    values, quality = {}, {"x": "bad"}
                if set(quality.values()) == {"good"} or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            _assert_row(values, 16)


def test_a_slow_device_adds_latency(recording: Path) -> None:
    with bf.sim.replay(recording, realtime=False, faults=[Slow(0.3, start=0.0, end=1.0)]) as replay:
        replay.serve(modbus=0)
        with replay.connect("modbus", timeout=3.0) as plc:
            replay.seek(0.5)
            started = time.monotonic()
            values, quality = _read(plc)
            slow = time.monotonic() - started
            assert set(quality.values()) == {"good"}
            _assert_row(values, 5)
            assert slow >= 0.28  # generous: the reply was held back 0.3 s
            replay.seek(1.5)
            _assert_row(_read(plc)[0], 15)


def test_bad_arguments_are_refused_before_serving(recording: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="speed"):
        Replay(recording, speed=0)
    with pytest.raises(ConfigurationError, match="no tag 'nope'"):
        Replay(recording, faults=[Frozen("nope")])
    with pytest.raises(ConfigurationError, match="end"):
        Dropout(start=2, end=1)
    with pytest.raises(ConfigurationError, match="amplitude"):
        Noise("temp", amplitude=-1)
    with pytest.raises(ConfigurationError, match="no recording"):
        Replay(tmp_path / "missing.parquet")
    with (
        Replay(recording, realtime=False) as replay,
        pytest.raises(ConfigurationError, match="does not serve 'profinet'"),
    ):
        replay.serve(profinet=0)
    with Replay(recording) as running, pytest.raises(ConfigurationError, match="realtime=False"):
        running.seek(1.0)


def test_opcua_clients_see_the_slow_device_and_the_dropout(recording: Path) -> None:
    pytest.importorskip("asyncua")
    faults = [Slow(0.3, start=0.0, end=0.5), Dropout(start=0.6, end=0.8)]
    with bf.sim.replay(recording, realtime=False, faults=faults) as replay:
        replay.serve(opcua=0)
        replay.seek(0.3)
        with replay.connect("opcua", timeout=2.0) as plc:
            started = time.monotonic()
            assert replay.row == 3
            assert np.float32(plc.read_value("level")) == np.float32(_expected(3)["level"])
            assert time.monotonic() - started >= 0.28
            replay.seek(0.7)
            with pytest.raises(bf.TimeoutError):
                plc.read(["level"])
            replay.seek(0.9)
            deadline = time.monotonic() + 20
            while True:  # a new session once the device answers again
                try:
                    value = plc.read_value("count")
                    break
                except (bf.ConnectionError, bf.TimeoutError):
                    assert time.monotonic() < deadline
                    time.sleep(0.2)
            assert value == _expected(9)["count"]


def test_s7_serves_the_recorded_row_in_its_own_data_block(recording: Path) -> None:
    with bf.sim.replay(recording, realtime=False) as replay:
        urls = replay.serve(s7=0)
        assert urls["s7"].startswith("s7://127.0.0.1:")
        table = replay.tags("s7")
        assert table["level"].address == "DB100.DBD0:REAL"
        assert table["temp"].address == "DB100.DBD4:LREAL"
        assert table["run"].address.startswith("DB100.DBX")
        assert table["recipe"].address.endswith(":STRING[4]")
        with replay.connect("s7") as plc:
            for position, row in [(0.0, 0), (0.35, 3), (1.25, 12), (1.99, 19)]:
                replay.seek(position)
                assert replay.row == row
                values, quality = _read(plc)
                assert set(quality.values()) == {"good"}
                _assert_row(values, row)
                assert (
                    np.float32(values["level"]).tobytes()
                    == np.float32(_expected(row)["level"]).tobytes()
                )
            # No per-value status over S7 either: the last good row stays.
            replay.seek(GAP_ROW * INTERVAL + 0.01)
            _assert_row(_read(plc)[0], GAP_ROW - 1)


def test_s7_lays_out_64_bit_integers_and_packs_bools(tmp_path: Path) -> None:
    names, dtypes = ["big", "a", "b", "small", "huge"], ["int64", "bool", "bool", "int8", "uint64"]
    rec = Recording([Tag(n, f"mem:{n}") for n in names], dtypes, 1.0)
    big, huge = -(2**40) - 7, 2**53 - 1  # beyond 32 bits (recordings keep numbers as float64)
    numbers = np.array([big, 1.0, 0.0, -5.0, huge], dtype=np.float64)
    rec.buffer.append(1_700_000_000_000_000_000, numbers, None, np.zeros(5, np.uint8))
    with Replay(rec, realtime=False) as replay:
        table = replay.tags("s7")
        assert [table[n].address for n in names] == [
            "DB100.DBD0:LINT",
            "DB100.DBX8.0",
            "DB100.DBX8.1",
            "DB100.DBB9:SINT",
            "DB100.DBD10:ULINT",
        ]
        with replay.connect("s7") as plc:
            values, quality = _read(plc)
    assert set(quality.values()) == {"good"}
    assert values == {"big": big, "a": True, "b": False, "small": -5, "huge": huge}


def test_s7_clients_see_frozen_values_and_the_dropout(recording: Path) -> None:
    faults = [Frozen("level", start=0.5, end=1.2), Dropout(start=1.4, end=1.6)]
    with bf.sim.replay(recording, realtime=False, faults=faults) as replay:
        replay.serve(s7=0)
        with replay.connect("s7", timeout=0.5) as plc:
            replay.seek(1.0)
            values, _ = _read(plc)
            assert np.float32(values["level"]) == np.float32(_expected(5)["level"])  # frozen
            assert values["count"] == _expected(10)["count"]
            replay.seek(1.45)
            started = time.monotonic()
            try:
                _, quality = _read(plc)
            except (bf.ConnectionError, bf.TimeoutError):
                pass
            else:
                assert all(q.startswith("bad") for q in quality.values()), quality
            assert time.monotonic() - started >= 0.4  # it waited for an answer
            replay.seek(1.7)
            deadline = time.monotonic() + 15
            while True:  # the client reconnects once the device answers again
                try:
                    values, quality = _read(plc)
                except (bf.ConnectionError, bf.TimeoutError):
                    values, quality = {}, {"x": "bad"}
                if set(quality.values()) == {"good"} or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            _assert_row(values, 17)

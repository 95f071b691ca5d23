"""History reads and read timestamps against the simulated plant's asyncua server."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd
import pytest

import bifrost as bf
from bifrost.sim import Plant

STEPS = 12


@pytest.fixture(scope="module")
def plant() -> Iterator[Plant]:
    with Plant(seed=5, realtime=False) as plant:
        plant.serve(opcua=0)
        yield plant


@pytest.fixture(scope="module")
def history(plant: Plant) -> Any:
    binding: Any = plant._bindings["opcua"]
    historian = binding.history
    historian.period_ns = 0  # every step is stored: the test knows each stored value
    return historian


@pytest.fixture(scope="module")
def stepped(plant: Plant, history: Any) -> dict[str, Any]:
    """Step the plant one step at a time and keep what was published at each step."""
    start = pd.Timestamp.now(tz="UTC")
    published = []
    for _ in range(STEPS):
        plant.step(1)
        published.append(plant.snapshot())
    with plant.connect("opcua") as plc:
        plc.read("tank.level")  # the last publish has been applied once a read answers
    return {"start": start, "end": pd.Timestamp.now(tz="UTC"), "published": published}


@pytest.fixture
def plc(plant: Plant) -> Iterator[bf.Connection]:
    with plant.connect("opcua", history_values_per_request=5) as connection:
        yield connection


def _counting(history: Any, monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    calls: list[Any] = []
    original = history.read_history

    async def counted(params: Any) -> Any:
        calls.append(params)
        return await original(params)

    monkeypatch.setattr(history, "read_history", counted)
    return calls


def test_raw_history_is_every_published_value_in_order(
    plc: bf.Connection, stepped: dict[str, Any], history: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _counting(history, monkeypatch)
    frame = plc.read_history(["tank.level", "line.counter"], stepped["start"], stepped["end"])
    assert isinstance(frame.index, pd.DatetimeIndex)
    assert str(frame.index.tz) == "UTC"
    assert list(frame.columns) == ["tag", "value", "quality"]
    assert frame.index.is_monotonic_increasing
    levels = frame[frame.tag == "tank.level"]
    expected = np.array([p["tank.level"] for p in stepped["published"]], dtype=np.float32)
    np.testing.assert_array_equal(np.float32(levels.value.to_numpy(dtype=float)), expected)
    counters = frame[frame.tag == "line.counter"].value.tolist()
    assert counters == [p["line.counter"] for p in stepped["published"]]
    assert (frame.quality == "good").all()
    # 12 values, 5 per request: three pages, the last two asked with continuation points.
    assert len(calls) == 3
    assert all(item.ContinuationPoint for item in calls[-1].NodesToRead)


def test_max_values_stops_early_and_releases_the_continuation_point(
    plc: bf.Connection, stepped: dict[str, Any], history: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = _counting(history, monkeypatch)
    frame = plc.read_history("tank.level", stepped["start"], stepped["end"], max_values=7)
    expected = np.array([p["tank.level"] for p in stepped["published"][:7]], dtype=np.float32)
    np.testing.assert_array_equal(np.float32(frame.value.to_numpy(dtype=float)), expected)
    assert calls[-1].ReleaseContinuationPoints


def test_processed_history_matches_the_raw_values(
    plc: bf.Connection, stepped: dict[str, Any], history: Any
) -> None:
    start = stepped["start"]
    # Whole milliseconds (OPC UA's ProcessingInterval unit), three intervals to the end.
    interval = pd.Timedelta(
        milliseconds=int((stepped["end"] - start) / pd.Timedelta("1ms")) // 3 + 1
    )
    end = start + 3 * interval
    raw = plc.read_history("line.counter", start, end)
    history.page_size = 2  # three intervals: the processed read continues too
    try:
        frames = {
            how: plc.read_history("line.counter", start, end, aggregate=how, interval=interval)
            for how in ("average", "Minimum", "max", "count")
        }
    finally:
        history.page_size = 10_000
    values = raw.value.astype(float)
    bins = ((raw.index - start) // interval).astype(int)
    for how, frame in frames.items():
        assert len(frame) == 3, how
        good = frame[frame.quality != "bad"]
        got = good.value.astype(float).to_numpy()
        grouped = values.groupby(bins.to_numpy())
        oracle = {"average": grouped.mean(), "Minimum": grouped.min(), "max": grouped.max()}
        wanted = oracle.get(how, grouped.size())
        np.testing.assert_allclose(got, wanted.to_numpy(dtype=float), rtol=1e-12)


def test_a_variable_without_history_is_named(plc: bf.Connection, stepped: dict[str, Any]) -> None:
    with pytest.raises(bf.ProtocolError, match=r"pump\.vibration.*no history") as caught:
        plc.read_history(["tank.level", "pump.vibration"], stepped["start"], stepped["end"])
    assert list(caught.value.tags) == ["pump.vibration"]
    frame = plc.read_history(
        ["tank.level", "pump.vibration"], stepped["start"], stepped["end"], errors="quality"
    )
    bad = frame[frame.tag == "pump.vibration"]
    assert len(bad) == 1
    assert bad.quality.iloc[0] != "good"
    assert bad.value.iloc[0] is None
    assert (frame[frame.tag == "tank.level"].quality == "good").all()
    with pytest.raises(bf.ProtocolError, match=r"ns=2;s=Plant\.Nothing.*server answered Bad"):
        plc.read_history("ns=2;s=Plant.Nothing", stepped["start"], stepped["end"])


def test_unsupported_aggregate_and_bad_arguments(
    plc: bf.Connection, stepped: dict[str, Any]
) -> None:
    start, end = stepped["start"], stepped["end"]
    with pytest.raises(bf.ProtocolError, match="BadAggregateNotSupported"):
        plc.read_history("tank.level", start, end, aggregate="time_average", interval="1s")
    with pytest.raises(bf.ConfigurationError, match="unknown aggregate 'median'"):
        plc.read_history("tank.level", start, end, aggregate="median", interval="1s")
    with pytest.raises(bf.ConfigurationError, match="both aggregate= and interval="):
        plc.read_history("tank.level", start, end, aggregate="average")
    with pytest.raises(bf.ConfigurationError, match=r"end .* must be after start"):
        plc.read_history("tank.level", end, start)
    with pytest.raises(bf.ConfigurationError, match="max_values"):
        plc.read_history("tank.level", start, end, max_values=0)


def test_read_timestamps_source_server_received(plc: bf.Connection, plant: Plant) -> None:
    plant.step(1)
    result: Any = plc.read_result(["tank.level", "reactor.temperature"])
    server = plc.read(["tank.level"], timestamp="server").timestamp.iloc[0]
    received = plc.read(["tank.level"], timestamp="received").timestamp.iloc[0]
    source = plc.read(["tank.level"]).timestamp.iloc[0]
    assert server == source  # the plant stamps both with the same time
    assert received >= server
    # The columnar result keeps all three kinds.
    assert result.server_timestamp_ns is not None
    assert result.received_ns > 0
    assert (result.timestamp_ns <= result.received_ns).all()
    with pytest.raises(bf.ConfigurationError, match="timestamp must be"):
        plc.read("tank.level", timestamp="device")  # type: ignore[arg-type]

"""The plant's tank alarm (events, acknowledge) and methods, over its real asyncua server."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import pandas as pd
import pytest

import bifrost as bf
from bifrost.sim import Plant
from bifrost.testing import memory_device

WAIT = 10.0  # s: upper bound of every wait for events (never a timing assertion)
PLANT = "/Objects/2:Plant"


@pytest.fixture(scope="module")
def plant() -> Iterator[Plant]:
    with Plant(seed=7) as plant:
        plant.serve(opcua=0)
        yield plant


@pytest.fixture
def plc(plant: Plant) -> Iterator[bf.Connection]:
    with plant.connect("opcua", writable=True) as connection:
        connection.call(f"{PLANT}/2:Tank", "2:SetLevel", 2.0)  # below the alarm
        _wait_for(lambda: not connection.read_value("tank.high_alarm"), "the alarm to clear")
        yield connection


def _wait_for(predicate: Any, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.02)


class _Collector:
    def __init__(self) -> None:
        self.frames: list[pd.DataFrame] = []
        self.lock = threading.Lock()

    def __call__(self, frame: pd.DataFrame) -> None:
        with self.lock:
            self.frames.append(frame)

    def rows(self) -> pd.DataFrame:
        with self.lock:
            frames = list(self.frames)
        return pd.concat(frames) if frames else pd.DataFrame(columns=bf.frames.EVENT_COLUMNS)

    def saw(self, state: str, value: bool) -> bool:
        """Whether the latest event has ``state`` (active, acked...) equal to ``value``."""
        rows = self.rows()
        if not len(rows) or rows[state].iloc[-1] is pd.NA:
            return False
        return bool(rows[state].iloc[-1]) == value


def test_high_level_raises_an_alarm_that_can_be_acknowledged(plc: bf.Connection) -> None:
    events = _Collector()
    subscription = plc.subscribe_events(PLANT, events)
    try:
        plc.call(f"{PLANT}/2:Tank", "2:SetLevel", 3.9)
        _wait_for(lambda: events.saw("active", True), "the alarm")
        raised = events.rows().iloc[-1]
        assert raised.source == "Tank"
        assert raised.condition == "HighLevel"
        assert raised.event_type == "OffNormalAlarmType"
        assert raised.severity == 700
        assert "3.90 m" in raised.message
        assert (raised.active, raised.acked, raised.retain) == (True, False, True)
        assert plc.read_value("tank.high_alarm") is True
        plc.acknowledge(raised.event_id, "operator saw it")
        _wait_for(lambda: events.saw("acked", True), "the acknowledgement")
        acked = events.rows().iloc[-1]
        assert (acked.active, acked.acked) == (True, True)
        assert "operator saw it" in acked.message
        with pytest.raises(bf.ProtocolError, match="BadEventIdUnknown"):
            plc.acknowledge(raised.event_id, "a stale event id")
        plc.call(f"{PLANT}/2:Tank", "2:SetLevel", 2.0)
        _wait_for(lambda: events.saw("active", False), "the alarm to clear")
        cleared = events.rows().iloc[-1]
        assert (cleared.active, cleared.acked, cleared.retain) == (False, True, False)
    finally:
        subscription.cancel()


def test_record_events_reports_an_active_alarm_first(plc: bf.Connection) -> None:
    plc.call(f"{PLANT}/2:Tank", "2:SetLevel", 4.2)
    _wait_for(lambda: plc.read_value("tank.high_alarm"), "the plant's alarm")
    frame = plc.record_events(PLANT, duration="0.5s")
    assert list(frame.columns) == bf.frames.EVENT_COLUMNS
    assert str(frame.time.dt.tz) == "UTC"
    assert frame.active.iloc[0]
    assert not frame.acked.iloc[0]
    assert isinstance(frame.event_id.iloc[0], bytes)


def test_acknowledge_needs_a_writable_connection_and_a_known_event(
    plant: Plant, plc: bf.Connection
) -> None:
    with plant.connect("opcua") as read_only:
        with pytest.raises(bf.WriteNotAllowed, match="writable=True"):
            read_only.acknowledge(b"0123", "no")
        with pytest.raises(bf.WriteNotAllowed, match="writable=True"):
            read_only.call(f"{PLANT}/2:Line", "2:Reset")
    with pytest.raises(bf.ConfigurationError, match="not seen on this connection"):
        plc.acknowledge(b"never-sent", "")
    with pytest.raises(bf.ArgumentTypeError):
        plc.acknowledge("an id", "")  # type: ignore[arg-type]


def test_events_of_a_node_that_does_not_exist(plc: bf.Connection) -> None:
    with pytest.raises(bf.ProtocolError, match="does not exist"):
        plc.record_events("/Objects/2:Nowhere", duration="0.1s")


def test_line_reset_returns_the_count_and_zeroes_it(plc: bf.Connection) -> None:
    _wait_for(lambda: plc.read_value("line.counter") > 0, "a part to be made")
    before = plc.read_value("line.counter")
    counted = plc.call(f"{PLANT}/2:Line", "2:Reset")
    assert isinstance(counted, int)
    assert counted >= before
    _wait_for(lambda: plc.read_value("line.counter") < counted, "the counter to reset")


def test_set_level_moves_the_tank(plc: bf.Connection) -> None:
    assert plc.call("ns=2;s=Plant.Tank", "2:SetLevel", 1.25) is None
    _wait_for(lambda: abs(plc.read_value("tank.level") - 1.25) < 0.05, "the level to move")


def test_arguments_are_checked_before_the_call(plc: bf.Connection, plant: Plant) -> None:
    calls: list[Any] = []
    binding: Any = plant._bindings["opcua"]
    service = binding._server.iserver.method_service
    original = service.call

    async def counted(params: Any) -> Any:
        calls.append(params)
        return await original(params)

    service.call = counted
    try:
        with pytest.raises(bf.ArgumentTypeError, match=r"takes 1 argument \(Level: Double\)"):
            plc.call(f"{PLANT}/2:Tank", "2:SetLevel")
        with pytest.raises(bf.ArgumentTypeError, match="got 2"):
            plc.call(f"{PLANT}/2:Tank", "2:SetLevel", 1.0, 2.0)
        with pytest.raises(bf.ValueOutOfRange, match=r"argument 'Level'.*Double"):
            plc.call(f"{PLANT}/2:Tank", "2:SetLevel", "high")
        with pytest.raises(bf.ArgumentTypeError, match="takes 0 arguments"):
            plc.call(f"{PLANT}/2:Line", "2:Reset", 1)
        assert calls == []  # nothing reached the server
        with pytest.raises(bf.ValueOutOfRange, match="BadOutOfRange"):
            plc.call(f"{PLANT}/2:Tank", "2:SetLevel", 9.0)
        assert len(calls) == 1
    finally:
        service.call = original
    with pytest.raises(bf.ProtocolError, match="no method '2:Drain'"):
        plc.call(f"{PLANT}/2:Tank", "2:Drain")
    with pytest.raises(bf.ProtocolError, match="not a method"):
        plc.call(f"{PLANT}/2:Tank", "ns=2;s=Plant.Tank.Level")


def test_other_protocols_name_the_protocol_that_has_these_services() -> None:
    memory_device("opcua-services-elsewhere", {"x": 1.0})
    tags = [bf.Tag("x", "mem:x")]
    with bf.connect("memory://opcua-services-elsewhere", tags=tags, writable=True) as plc:
        for attempt in (
            lambda: plc.read_history("x", "2026-01-01", "2026-01-02"),
            lambda: plc.record_events("/Objects", duration="0.1s"),
            lambda: plc.subscribe_events("/Objects", print),
            lambda: plc.acknowledge(b"1", ""),
            lambda: plc.call("/Objects", "2:Reset"),
        ):
            with pytest.raises(bf.ConfigurationError, match="is an OPC UA service"):
                attempt()
        with pytest.raises(bf.ConfigurationError, match="no server timestamp"):
            plc.read("x", timestamp="server")
        assert plc.read("x", timestamp="received").value.iloc[0] == 1.0

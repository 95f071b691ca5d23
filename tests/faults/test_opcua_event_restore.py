"""Event subscriptions after a lost session: made again, alarms keep coming, once each.

The plant's real OPC UA server behind a TCP proxy that cuts every connection (the
session is lost, as with a pulled cable or a restarted gateway).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pandas as pd
import pytest
from tcp_proxy import FaultyProxy

import bifrost as bf
from bifrost.sim import Plant

WAIT = 15.0  # s: upper bound of every wait (never a timing assertion)
PLANT = "/Objects/2:Plant"
TANK = f"{PLANT}/2:Tank"


@pytest.fixture(scope="module")
def plant() -> Iterator[Plant]:
    with Plant(seed=11) as plant:
        plant.serve(opcua=0)
        yield plant


@pytest.fixture
def proxy(plant: Plant) -> Iterator[FaultyProxy]:
    port = urlsplit(plant.urls["opcua"]).port
    assert port is not None
    proxy = FaultyProxy(port).start()
    try:
        yield proxy
    finally:
        proxy.stop()


@pytest.fixture
def plc(proxy: FaultyProxy) -> Iterator[bf.Connection]:
    url = f"opc.tcp://127.0.0.1:{proxy.port}/bifrost/"
    with bf.connect(url, security="None", writable=True, timeout=1.0) as connection:
        connection.call(TANK, "2:SetLevel", 2.0)  # below the alarm
        _wait_for(lambda: not _alarm(connection), "the alarm to clear")
        yield connection


def _alarm(plc: bf.Connection) -> bool:
    return bool(plc.read_value("ns=2;s=Plant.Tank.HighAlarm"))


def _wait_for(predicate: Any, what: str) -> None:
    deadline = time.monotonic() + WAIT
    while not predicate():
        if time.monotonic() > deadline:
            pytest.fail(f"gave up waiting for {what}")
        time.sleep(0.02)


def _retry(action: Any, what: str) -> Any:
    """Run ``action`` until the connection is back (it reconnects on demand)."""
    deadline = time.monotonic() + WAIT
    while True:
        try:
            return action()
        except bf.ConnectionError:
            if time.monotonic() > deadline:
                pytest.fail(f"gave up waiting for {what}")
            time.sleep(0.1)


class _Events:
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

    def count(self, active: bool) -> int:
        rows = self.rows()
        return int((rows.active == active).sum()) if len(rows) else 0


def test_an_alarm_after_a_lost_session_arrives_once(plc: bf.Connection, proxy: FaultyProxy) -> None:
    events = _Events()
    subscription = plc.subscribe_events(PLANT, events)
    try:
        plc.call(TANK, "2:SetLevel", 3.9)
        _wait_for(lambda: events.count(active=True) >= 1, "the first alarm")
        proxy.cut()  # every connection closed: session and subscription are gone
        _wait_for(lambda: subscription.resubscriptions >= 1, "the event subscription again")
        assert subscription.active
        # ConditionRefresh on the new subscription re-sent the still active alarm: the
        # same EventId, not delivered again.
        raised_before = events.count(active=True)
        _retry(lambda: plc.call(TANK, "2:SetLevel", 2.0), "the connection")
        _wait_for(lambda: events.count(active=False) >= 1, "the alarm to clear")
        plc.call(TANK, "2:SetLevel", 3.95)
        _wait_for(lambda: events.count(active=True) > raised_before, "an alarm after the cut")
        rows = events.rows()
        assert rows.event_id.is_unique
        last = rows.iloc[-1]
        assert (last.condition, last.active, last.acked) == ("HighLevel", True, False)
        plc.acknowledge(last.event_id, "seen after the reconnect")
        _wait_for(lambda: bool(events.rows().acked.iloc[-1]), "the acknowledgement")
    finally:
        subscription.cancel()
    assert not subscription.active


def test_a_subscription_the_server_refuses_after_the_loss_ends_and_says_why(
    plc: bf.Connection, proxy: FaultyProxy, plant: Plant
) -> None:
    from asyncua import ua

    events = _Events()
    subscription = plc.subscribe_events(PLANT, events)
    binding: Any = plant._bindings["opcua"]
    service = binding._server.iserver.subscription_service
    original = service.create_monitored_items

    async def refused(params: Any) -> Any:
        raise ua.UaStatusCodeError(ua.StatusCodes.BadTooManyMonitoredItems)

    service.create_monitored_items = refused
    try:
        proxy.cut()
        _wait_for(lambda: not subscription.active, "the subscription to end")
    finally:
        service.create_monitored_items = original
        subscription.cancel()
    assert isinstance(subscription.last_error, bf.ProtocolError)
    assert "BadTooManyMonitoredItems" in str(subscription.last_error)
    assert subscription.errors == 1
    assert subscription.resubscriptions == 0


def test_while_the_server_is_away_the_subscription_waits_and_says_why(
    plc: bf.Connection, proxy: FaultyProxy
) -> None:
    events = _Events()
    subscription = plc.subscribe_events(PLANT, events)
    try:
        proxy.stall()  # new connections get no answer
        proxy.cut()
        _wait_for(lambda: subscription.last_error is not None, "a failed attempt")
        assert isinstance(subscription.last_error, bf.ConnectionError)
        assert subscription.active  # the server is away, not refusing: it keeps trying
        proxy.heal()
        _wait_for(lambda: subscription.resubscriptions >= 1, "the event subscription again")
        _retry(lambda: plc.call(TANK, "2:SetLevel", 3.9), "the connection")
        _wait_for(lambda: events.count(active=True) >= 1, "an alarm after the outage")
    finally:
        proxy.heal()
        subscription.cancel()

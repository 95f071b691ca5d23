"""Recorders hand each cycle over ``Driver.cycle_lead`` before it is due: early only for
drivers that wait on a worker thread, at the due time for those on the loop."""

from __future__ import annotations

import time
from typing import Any

import pytest

import bifrost as bf
from bifrost.protocols.registry import driver_for_url
from bifrost.protocols.worker import HANDOVER_LEAD
from bifrost.testing import MemoryDevice

pytest_plugins = ["bifrost.testing"]


def test_modbus_tcp_is_handed_cycles_when_due_and_rtu_early():
    assert driver_for_url("modbus://127.0.0.1:1502").cycle_lead == 0.0
    rtu = driver_for_url("modbus+rtu:///dev/ttyUSB0?baudrate=19200")
    assert rtu.cycle_lead == HANDOVER_LEAD > 0


@pytest.mark.parametrize("lead", [0.0, 0.004])
def test_a_recording_calls_the_driver_lead_seconds_before_each_cycle(
    memory_device: MemoryDevice, monkeypatch: pytest.MonkeyPatch, lead: float
):
    memory_device["a"] = 1.0
    handed: list[float] = []  # seconds before due each cycle reached the driver
    with bf.connect(memory_device.url) as plc:
        driver: Any = plc.aio._driver
        original = driver.execute_read_at

        async def spy(plan: Any, due: float) -> Any:
            handed.append(due - time.monotonic())
            return await original(plan, due)

        monkeypatch.setattr(driver, "execute_read_at", spy)
        monkeypatch.setattr(type(driver), "cycle_lead", property(lambda self: lead))
        plc.record("mem:a", interval="20ms", duration="0.2s")
    assert handed
    # Never handed over before its lead (the loop's clock resolution aside); with a
    # lead, some cycles arrive ahead of due, which a lead of 0 never does.
    assert min(handed) >= -1.0  # sanity: no cycle handed a second late
    assert max(handed) <= lead + 1e-6
    if lead:
        assert max(handed) > 0

"""Wakeup: a recorder's sleep ends at its deadline, or at once when the recording stops."""

from __future__ import annotations

import asyncio

from bifrost.recording.timing import Wakeup


def test_set_ends_a_long_sleep_and_every_later_one():
    async def scenario() -> list[str]:
        loop = asyncio.get_running_loop()
        wakeup, events = Wakeup(), []
        loop.call_soon(wakeup.set)
        await asyncio.wait_for(wakeup.sleep_until(loop.time() + 3600), 10)
        events.append("woken")
        await asyncio.wait_for(wakeup.sleep_until(loop.time() + 3600), 10)
        events.append("returned at once")
        return events

    assert asyncio.run(scenario()) == ["woken", "returned at once"]


def test_a_sleep_ends_at_its_deadline_and_leaves_no_timer_behind():
    async def scenario() -> tuple[bool, bool, int]:
        loop = asyncio.get_running_loop()
        wakeup = Wakeup()
        deadline = loop.time() + 0.01
        await asyncio.wait_for(wakeup.sleep_until(deadline), 10)
        reached = loop.time() >= deadline
        task = asyncio.create_task(wakeup.sleep_until(loop.time() + 3600))
        await asyncio.sleep(0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        # The loop's pending timers: asyncio has no public way to list them.
        timers = [h for h in loop._scheduled if not h.cancelled()]
        return reached, wakeup.is_set(), len(timers)

    assert asyncio.run(scenario()) == (True, False, 0)

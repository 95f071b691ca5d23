"""The recorders' shared timetable: each sleep ends at its own deadline, behind one timer."""

from __future__ import annotations

import asyncio

from bifrost.recording.timing import Wakeup


def live_timers(loop: asyncio.AbstractEventLoop) -> list[asyncio.TimerHandle]:
    # The loop's pending timers: asyncio has no public way to list them.
    return [h for h in loop._scheduled if not h.cancelled()]  # type: ignore[attr-defined]


def test_many_sleeps_end_in_deadline_order_each_at_its_deadline_behind_one_timer():
    async def scenario() -> tuple[list[int], list[bool], list[int]]:
        loop = asyncio.get_running_loop()
        start = loop.time()
        # Out of order, two at the same tick, one already due.
        offsets = [0.05, 0.01, 0.03, 0.03, 0.02, -1.0, 0.04]
        woken: list[int] = []
        on_time: list[bool] = []
        timers: list[int] = []

        async def sleeper(k: int) -> None:
            deadline = start + offsets[k]
            await Wakeup().sleep_until(deadline)
            on_time.append(loop.time() >= deadline - 0.001)
            woken.append(k)

        tasks = [asyncio.create_task(sleeper(k)) for k in range(len(offsets))]
        await asyncio.sleep(0)
        timers.append(len(live_timers(loop)))
        await asyncio.wait_for(asyncio.gather(*tasks), 10)
        timers.append(len(live_timers(loop)))
        return woken, on_time, timers

    woken, on_time, timers = asyncio.run(scenario())
    assert woken == [5, 1, 4, 2, 3, 6, 0]
    assert all(on_time)
    assert timers == [1, 0]  # one loop timer for six sleeps; none once all are over


def test_a_stopped_or_cancelled_sleep_leaves_the_others_on_time_and_no_timer_behind():
    async def scenario() -> tuple[list[str], int, int, float]:
        loop = asyncio.get_running_loop()
        events: list[str] = []
        stopped, cancelled, kept = Wakeup(), Wakeup(), Wakeup()
        start = loop.time()

        async def sleep(name: str, wakeup: Wakeup, offset: float) -> None:
            await wakeup.sleep_until(start + offset)
            events.append(name)

        first = asyncio.create_task(sleep("stopped", stopped, 0.02))
        second = asyncio.create_task(sleep("cancelled", cancelled, 0.03))
        third = asyncio.create_task(sleep("kept", kept, 0.06))
        await asyncio.sleep(0)
        stopped.set()  # the earliest: the timer moves on to the next one
        await first
        second.cancel()
        await asyncio.gather(second, return_exceptions=True)
        during = len(live_timers(loop))
        await asyncio.wait_for(third, 10)
        ended = loop.time() - start
        long = asyncio.create_task(kept.sleep_until(loop.time() + 3600))
        await asyncio.sleep(0)
        long.cancel()
        await asyncio.gather(long, return_exceptions=True)
        return events, during, len(live_timers(loop)), ended

    events, during, after, ended = asyncio.run(scenario())
    assert events == ["stopped", "kept"]
    assert during == 1
    assert after == 0
    assert ended >= 0.06 - 0.001


def test_sleeps_on_two_loops_keep_to_their_own_loop():
    def run_one(offset: float) -> float:
        async def scenario() -> float:
            loop = asyncio.get_running_loop()
            deadline = loop.time() + offset
            wakeup = Wakeup()
            await asyncio.wait_for(wakeup.sleep_until(deadline), 10)
            await asyncio.wait_for(wakeup.sleep_until(loop.time() + offset), 10)
            return loop.time() - deadline

        return asyncio.run(scenario())

    # The same Wakeup class, a new loop each time: each sleep is timed by its own loop.
    assert run_one(0.02) >= 0.02 - 0.001
    assert run_one(0.01) >= 0.01 - 0.001


def test_a_loop_that_ran_sleeps_is_freed_with_its_timetable():
    import gc
    import weakref

    wakeup = Wakeup()  # outlives the loop, as a finished recording does
    seen: list[weakref.ref[asyncio.AbstractEventLoop]] = []

    async def scenario() -> None:
        loop = asyncio.get_running_loop()
        seen.append(weakref.ref(loop))
        await wakeup.sleep_until(loop.time() + 0.01)
        long = asyncio.create_task(Wakeup().sleep_until(loop.time() + 3600))
        await asyncio.sleep(0)
        long.cancel()
        await asyncio.gather(long, return_exceptions=True)

    asyncio.run(scenario())
    gc.collect()
    assert seen[0]() is None

"""Sync Modbus TCP reads on the caller's thread (no hop), and everything that shares them.

A sync read of a connection nothing else uses runs on the caller's thread with the
socket the loop handed over (bifrost._portal.Handover). These tests hold it to the
loop's behaviour: the same values and errors, and whatever else uses the connection at
the same time (a recording, other threads, a subscription, a reconnect, a busy device,
a timeout) reads right and never meets a read on another thread on the socket.
"""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator

import pytest
from faults.modbus_fault_server import FAULTS, ModbusFaultServer
from waiting import wait_for

import bifrost as bf
from bifrost.protocols.modbus.pdu import ReplyMismatch, check_reply, is_good_read, read_request

TIMEOUT = 0.5
GOOD = 100  # register a holds a on the fault server


@pytest.fixture
def server() -> Iterator[ModbusFaultServer]:
    with ModbusFaultServer(delay=2 * TIMEOUT) as fault_server:
        yield fault_server


def registers(start: int, count: int = 5) -> list[str]:
    return [f"hr:{start + i}" for i in range(count)]


def values(start: int, count: int = 5) -> list[int]:
    return list(range(start, start + count))


def off_loop_reads(plc: bf.Connection) -> int:
    return plc.aio._driver._tcp.direct_reads  # type: ignore[attr-defined,no-any-return]


def read_values(plc: bf.Connection, tags: list[str]) -> list[int]:
    return [int(v) for v in plc.read(tags)["value"]]


def handed_over(plc: bf.Connection) -> int:
    """Two reads (the loop hands the socket over after the first); reads off it so far."""
    read_values(plc, registers(GOOD))
    read_values(plc, registers(GOOD))
    return off_loop_reads(plc)


def test_a_read_with_the_connection_alone_runs_on_the_callers_thread(server):
    tags = registers(GOOD)
    with bf.connect(server.url, timeout=TIMEOUT) as plc:
        assert read_values(plc, tags) == values(GOOD)  # through the loop, which hands over
        before = off_loop_reads(plc)
        for _ in range(20):
            assert read_values(plc, tags) == values(GOOD)
            assert plc.read_value("hr:7") == 7
            assert list(plc.read_result(tags).values()) == values(GOOD)
        assert off_loop_reads(plc) == before + 60
        assert server.connections == 1


def test_pipelined_reads_off_the_loop_keep_every_value(server):
    # Spans far apart: one request each, several in flight at once.
    starts = (10, 100, 2500, 2600, 2700, 2800)
    tags = [tag for start in starts for tag in registers(start)]
    expected = [v for start in starts for v in values(start)]
    with bf.connect(server.url, timeout=TIMEOUT, pipeline=4) as plc:
        for _ in range(30):
            assert read_values(plc, tags) == expected
        assert off_loop_reads(plc) >= 25
        state = plc.info()["pipeline"]
    assert state["in_flight"] == 4
    assert state["fallbacks"] == 0
    assert state["stale_replies"] == 0


def test_a_recording_on_the_same_connection_keeps_reads_on_the_loop(server):
    tags = registers(GOOD)
    with bf.connect(server.url, timeout=TIMEOUT) as plc:
        read_values(plc, tags)
        read_values(plc, tags)
        recording = plc.record(registers(300), interval="10ms", background=True, progress=False)
        started = off_loop_reads(plc)
        for _ in range(100):
            assert read_values(plc, tags) == values(GOOD)
        assert off_loop_reads(plc) == started  # every one went through the loop
        # The reads can be done before the recording has more than a few rows.
        assert wait_for(lambda: len(recording) > 5, 10)
        recording.stop()
        recording.wait()
        assert plc.recordings == []
        frame = recording.to_pandas()
        assert len(frame) > 5
        assert (frame.to_numpy() == values(300)).all()
        assert recording.stats.gaps == 0
        read_values(plc, tags)  # hands over again once the recording is gone
        assert read_values(plc, tags) == values(GOOD)
        assert off_loop_reads(plc) == started + 1


def test_recordings_started_and_stopped_during_reads_off_the_loop(server):
    # A reader thread keeps reading (off the loop whenever it can) a slow address while
    # recordings start and stop on the same connection: each start waits for the read
    # on the thread, none meets it on the socket, every value is right.
    slow = FAULTS["slow_in_time"]
    errors: list[BaseException] = []
    done = threading.Event()
    with bf.connect(server.url, timeout=TIMEOUT) as plc:

        def reader() -> None:
            try:
                while not done.is_set():
                    assert read_values(plc, registers(slow, 1)) == [slow]
                    assert read_values(plc, registers(GOOD)) == values(GOOD)
            except BaseException as exc:
                errors.append(exc)

        thread = threading.Thread(target=reader)
        thread.start()
        try:
            recordings = []
            for _ in range(5):
                time.sleep(0.05)
                recording = plc.record(registers(300), interval="5ms", background=True)
                time.sleep(0.05)
                recording.stop()
                recording.wait()
                recordings.append(recording)
        finally:
            done.set()
            thread.join(10)
        assert not errors
        assert off_loop_reads(plc) > 0
        for recording in recordings:
            frame = recording.to_pandas()
            assert len(frame) > 0
            assert (frame.to_numpy() == values(300)).all()


def test_threads_sharing_a_connection_each_read_their_own_values(server):
    errors: list[BaseException] = []
    reads = 150
    with bf.connect(server.url, timeout=TIMEOUT, pipeline=4) as plc:
        read_values(plc, registers(GOOD))

        def reader(start: int) -> None:
            tags = registers(start, 3) + registers(start + 500, 3)
            expected = values(start, 3) + values(start + 500, 3)
            try:
                for _ in range(reads):
                    assert read_values(plc, tags) == expected
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=reader, args=(s,)) for s in (10, 2500, 2600, 2700)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not errors
        direct = off_loop_reads(plc)
        assert 0 < direct < 4 * reads + 1  # both ways were taken
        assert plc.info()["pipeline"]["stale_replies"] == 0


def test_an_async_call_on_the_loop_waits_for_a_read_off_it(server):
    # A read on the loop (what an async caller does) while a thread reads off it.
    slow = FAULTS["slow_in_time"]
    with bf.connect(server.url, timeout=TIMEOUT) as plc:
        read_values(plc, registers(GOOD))
        results: list[list[int]] = []

        def reader() -> None:
            for _ in range(10):
                results.append(read_values(plc, registers(slow, 1)))

        thread = threading.Thread(target=reader)
        thread.start()
        from bifrost._portal import portal

        for _ in range(10):
            frame = portal.call(plc.aio.read(registers(GOOD)), 10)
            assert [int(v) for v in frame["value"]] == values(GOOD)
        thread.join(10)
        assert results == [[slow]] * 10


def test_a_subscription_keeps_reads_on_the_loop_for_good(server):
    tags = registers(GOOD)
    with bf.connect(server.url, timeout=TIMEOUT) as plc:
        read_values(plc, tags)
        read_values(plc, tags)
        changes = []
        subscription = plc.subscribe(registers(300), changes.append, interval="10ms")
        started = off_loop_reads(plc)
        for _ in range(30):
            assert read_values(plc, tags) == values(GOOD)
        subscription.cancel()
        for _ in range(5):
            assert read_values(plc, tags) == values(GOOD)
        assert off_loop_reads(plc) == started
        assert changes


def test_a_connection_the_device_closed_while_idle_is_reopened_without_an_error(server):
    tags = registers(GOOD)
    with bf.connect(server.url, timeout=TIMEOUT) as plc:
        read_values(plc, tags)
        read_values(plc, tags)
        for round_ in range(3):
            server.close_connections()
            time.sleep(0.05)
            requests = server.requests
            assert read_values(plc, tags) == values(GOOD)
            assert server.requests == requests + 1  # asked once, on the new connection
            assert server.connections == 2 + round_
            assert read_values(plc, tags) == values(GOOD)


def test_a_connection_lost_during_a_read_off_the_loop_is_a_connection_error(server):
    close = FAULTS["close"]
    with bf.connect(server.url, timeout=TIMEOUT) as plc:
        before = handed_over(plc)
        with pytest.raises(bf.ConnectionError, match="closed by the device"):
            plc.read(registers(close, 1))
        assert off_loop_reads(plc) == before + 1
        assert read_values(plc, registers(GOOD)) == values(GOOD)


def test_a_device_silent_off_the_loop_times_out_and_the_next_read_works(server):
    silent = FAULTS["silent"]
    with bf.connect(server.url, timeout=TIMEOUT) as plc:
        before = handed_over(plc)
        started = time.monotonic()
        with pytest.raises(bf.TimeoutError, match="no answer"):
            plc.read(registers(silent, 1))
        assert time.monotonic() - started >= TIMEOUT
        assert off_loop_reads(plc) == before + 1
        assert read_values(plc, registers(GOOD)) == values(GOOD)
        assert read_values(plc, registers(GOOD)) == values(GOOD)
        assert off_loop_reads(plc) == before + 2  # reconnected on the loop, then off it


def test_the_calls_own_timeout_holds_off_the_loop(server):
    # Each request has 1 s; the call as a whole 0.3 s: it ends as a cancelled call.
    silent = FAULTS["silent"]
    with bf.connect(server.url, timeout=1.0, call_timeout=0.3) as plc:
        before = handed_over(plc)
        with pytest.raises(bf.TimeoutError, match=r"did not finish within 0\.3 s"):
            plc.read(registers(silent, 1))
        assert off_loop_reads(plc) == before + 1
        assert read_values(plc, registers(GOOD)) == values(GOOD)


def test_a_busy_device_off_the_loop_is_asked_again_on_the_loop(server):
    busy = FAULTS["busy_then_ok"]
    with bf.connect(server.url, timeout=TIMEOUT) as plc:
        before = handed_over(plc)
        requests = server.requests
        assert read_values(plc, registers(busy, 1)) == [busy]
        assert server.requests == requests + 3  # busy twice, then the answer
        assert off_loop_reads(plc) == before + 1  # started off the loop, ended on it
        assert read_values(plc, registers(GOOD)) == values(GOOD)
        assert off_loop_reads(plc) == before + 2


def test_a_busy_reply_in_a_pipelined_read_off_the_loop_keeps_the_requests_in_flight(server):
    busy = FAULTS["busy_then_ok"]
    starts = (10, busy, 2500, 2600)
    tags = [tag for start in starts for tag in registers(start, 1)]
    with bf.connect(server.url, timeout=TIMEOUT, pipeline=4) as plc:
        read_values(plc, registers(GOOD))
        read_values(plc, registers(GOOD))
        for _ in range(3):
            assert read_values(plc, tags) == list(starts)
        state = plc.info()["pipeline"]
    assert state["fallbacks"] == 0
    assert state["stale_replies"] == 0


def test_a_duplicated_reply_off_the_loop_is_dropped_and_counted(server):
    duplicate = FAULTS["duplicate"]
    with bf.connect(server.url, timeout=TIMEOUT) as plc:
        read_values(plc, registers(GOOD))
        read_values(plc, registers(GOOD))
        assert read_values(plc, registers(duplicate, 1)) == [duplicate]
        time.sleep(0.05)  # the copy arrives while no request waits
        assert read_values(plc, registers(GOOD)) == values(GOOD)
        state = plc.info()["pipeline"]
    assert state["stale_replies"] == 1
    assert state["duplicates"] == 1


def outcome(plc: bf.Connection, tags: list[str]) -> tuple[object, ...]:
    try:
        frame = plc.read(tags, errors="quality")
    except bf.BifrostError as exc:
        return type(exc), str(exc).replace(plc.endpoint, "DEVICE")
    return tuple(frame["quality"]), tuple(frame["value"][frame["quality"] == "good"])


@pytest.mark.parametrize(
    "fault", ["wrong_tid", "wrong_unit", "wrong_function", "short_byte_count", "garbage", "delayed"]
)
def test_a_bad_reply_off_the_loop_ends_as_it_does_on_the_loop(server, fault):
    address = FAULTS[fault]
    tags = registers(GOOD) + registers(address) + registers(3000)
    with (
        bf.connect(server.url, timeout=TIMEOUT) as loop_only,
        bf.connect(server.url, timeout=TIMEOUT) as plc,
    ):
        before = handed_over(plc)
        ours = outcome(plc, tags)
        assert off_loop_reads(plc) == before + 1
        # The same read through the loop (a recording keeps that connection on it).
        recording = loop_only.record(registers(GOOD), interval="1s", background=True)
        theirs = outcome(loop_only, tags)
        recording.stop()
        assert off_loop_reads(loop_only) == 0
        # Both connections go on reading right.
        assert read_values(plc, registers(GOOD)) == values(GOOD)
    assert ours == theirs
    assert ours[0] != ("good",) * 15


def test_the_inline_acceptance_of_a_read_reply_is_exactly_the_full_check():
    # wire.py accepts a good read reply inline (pdu.is_good_read); anything it does not
    # accept goes through check_reply. The two must agree on every PDU.
    rng = random.Random(7)
    requests = [read_request(1, t, 0, n) for t in ("hr", "ir", "co", "di") for n in (1, 7, 125)]
    for request in requests:
        good = check_reply(
            request,
            bytes((request.function, request.reply_size - 2)) + bytes(request.reply_size - 2),
        )
        assert good.exception is None
        for _ in range(400):
            size = rng.choice([1, 2, 3, request.reply_size - 1, request.reply_size, 254])
            pdu = bytearray(rng.randrange(256) for _ in range(max(1, size)))
            if rng.random() < 0.7:
                pdu[0] = request.function
            if len(pdu) > 1 and rng.random() < 0.7:
                pdu[1] = request.reply_size - 2 + rng.choice([0, 0, 0, -1, 1, 2])
            pdu = bytes(pdu)
            try:
                reply = check_reply(request, pdu)
                accepted = reply.exception is None
            except ReplyMismatch:
                accepted = False
            assert is_good_read(request, pdu) == accepted, (request, pdu)


@pytest.mark.parametrize(
    "options", [{"pause_between_requests": 0.001}, {"close_after_each_cycle": True}]
)
def test_devices_that_need_pauses_or_new_connections_are_read_through_the_loop(server, options):
    tags = registers(GOOD)
    with bf.connect(server.url, timeout=TIMEOUT, **options) as plc:
        for _ in range(5):
            assert read_values(plc, tags) == values(GOOD)
        assert plc.aio._handover is None


def test_a_thread_running_an_event_loop_reads_off_the_loop_and_keeps_its_loop(server):
    # A Jupyter kernel's thread runs its loop while a cell runs: the read goes as on any
    # thread, and the cell's loop is the thread's running loop again afterwards.
    import asyncio

    tags = registers(GOOD)
    with bf.connect(server.url, timeout=TIMEOUT) as plc:
        read_values(plc, tags)
        before = off_loop_reads(plc)

        async def cell() -> list[int]:
            loop = asyncio.get_running_loop()
            got = read_values(plc, tags)
            assert asyncio.get_running_loop() is loop
            await asyncio.sleep(0)  # the cell's loop still works
            return got

        for _ in range(3):
            assert asyncio.run(cell()) == values(GOOD)
        assert off_loop_reads(plc) == before + 3


def test_a_sync_read_from_bifrosts_loop_thread_is_refused(server):
    tags = registers(GOOD)
    with bf.connect(server.url, timeout=TIMEOUT) as plc:
        read_values(plc, tags)
        from bifrost._portal import portal

        async def on_the_loop() -> None:
            plc.read(tags)

        with pytest.raises(RuntimeError, match="from the bifrost loop thread"):
            portal.call(on_the_loop(), 10)
        assert read_values(plc, tags) == values(GOOD)


def test_ctrl_c_during_a_read_off_the_loop_leaves_the_connection_usable(server):
    import os
    import signal

    silent = FAULTS["silent"]
    with bf.connect(server.url, timeout=2.0) as plc:
        before = handed_over(plc)
        timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT))
        timer.start()
        started = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            plc.read(registers(silent, 1))
        timer.join()
        assert time.monotonic() - started < 1.5
        assert off_loop_reads(plc) == before + 1
        # The late request was forgotten; the loop may use the connection again.
        assert read_values(plc, registers(GOOD)) == values(GOOD)
        assert plc.info()["pipeline"]["requested"] == 1
        assert read_values(plc, registers(GOOD)) == values(GOOD)


def test_without_poll_reads_stay_on_the_loop(server, monkeypatch):
    # Windows has no select.poll and no os.read on sockets: the loop reads there.
    from bifrost.protocols.modbus import transport

    monkeypatch.setattr(transport, "OFF_LOOP_POSSIBLE", False)
    with bf.connect(server.url, timeout=TIMEOUT) as plc:
        for _ in range(3):
            assert read_values(plc, registers(GOOD)) == values(GOOD)
        assert plc.aio._handover is None
        assert off_loop_reads(plc) == 0

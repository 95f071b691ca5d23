"""Modbus replies that are wrong, late, partial or missing, from a fault server and a gateway.

Every case ends in a typed error or in bad-quality rows within the timeout (plus 0.1 s
for the hops), never in a wrong value, and a recording goes on through all of them.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Iterator

import pandas as pd
import pytest
from faults.gateway_proxy import GatewayProxy
from faults.modbus_fault_server import FAULTS, ModbusFaultServer
from waiting import wait_for

import bifrost as bf

TIMEOUT = 0.3
SLACK = 0.1
COUNT = 10  # registers or coils per faulty read: one request
GOOD_START = 10  # a span the server always answers correctly

VALUE, PROTOCOL, TIMED_OUT, CLOSED = "value", "bad_protocol", "timeout", "closed"
READ_CASES = {
    **{f"exception_{code}": PROTOCOL for code in range(1, 12)},
    "busy_then_ok": VALUE,
    "short_byte_count": PROTOCOL,
    "odd_byte_count": PROTOCOL,
    "zero_byte_count": PROTOCOL,
    "one_register": PROTOCOL,
    "extra_registers": PROTOCOL,
    "wrong_tid": TIMED_OUT,
    "stale_then_ok": VALUE,
    "wrong_unit": PROTOCOL,
    "wrong_function": PROTOCOL,
    "exception_for_other_function": PROTOCOL,
    "wrong_protocol_id": PROTOCOL,
    "length_too_long": TIMED_OUT,
    "length_too_short": PROTOCOL,
    "length_zero": PROTOCOL,
    "half_frame": TIMED_OUT,
    "half_frame_close": CLOSED,
    "garbage": PROTOCOL,
    "delayed": TIMED_OUT,
    "slow_in_time": VALUE,
    "silent": TIMED_OUT,
    "close": CLOSED,
    "duplicate": VALUE,
}
COIL_CASES = {
    "short_byte_count": PROTOCOL,
    "zero_byte_count": PROTOCOL,
    "extra_registers": PROTOCOL,
    "wrong_function": PROTOCOL,
    "exception_for_other_function": PROTOCOL,
    "stale_then_ok": VALUE,
    "duplicate": VALUE,
}
WRITE_CASES = {
    "write_wrong_address": PROTOCOL,
    "write_wrong_echo": PROTOCOL,
    "exception_4": PROTOCOL,
}
GATEWAY_ROUNDS = 50


@pytest.fixture
def server() -> Iterator[ModbusFaultServer]:
    with ModbusFaultServer(delay=2 * TIMEOUT) as fault_server:
        yield fault_server


def registers(start: int, count: int = COUNT) -> list[str]:
    return [f"hr:{start + i}" for i in range(count)]


def coils(start: int, count: int = COUNT) -> list[str]:
    return [f"co:{start + i}" for i in range(count)]


def expected_values(tags: list[str]) -> list[object]:
    # What the fault server holds: register a is a, coil a is on when a is odd.
    table, _ = tags[0].split(":")
    offsets = [int(t.split(":")[1]) for t in tags]
    return [o % 2 == 1 for o in offsets] if table == "co" else offsets


def refused_tags(name: str, tags: list[str]) -> list[str]:
    # Exception 2 on the merged request sends one request per tag; only the tag at the
    # faulty address is refused then.
    return tags[:1] if name == "exception_2" else tags


def read_in_time(plc: bf.Connection, tags: list[str], errors: str = "quality") -> object:
    started = time.monotonic()
    try:
        return plc.read(tags, errors=errors)  # type: ignore[arg-type]
    finally:
        elapsed = time.monotonic() - started
        assert elapsed < TIMEOUT + SLACK, f"took {elapsed:.3f} s"


def check_outcome(
    plc: bf.Connection, endpoint: str, name: str, outcome: str, tags: list[str]
) -> None:
    # A good read first: the first call of a process pays for imports, not for faults.
    reads_correctly(plc)
    if outcome == TIMED_OUT:
        with pytest.raises(bf.TimeoutError, match=endpoint):
            read_in_time(plc, tags)
        return
    if outcome == CLOSED:
        with pytest.raises(bf.ConnectionError, match=endpoint) as caught:
            read_in_time(plc, tags)
        assert not isinstance(caught.value, bf.TimeoutError)
        return
    frame = read_in_time(plc, tags)
    refused = refused_tags(name, tags) if outcome == PROTOCOL else []
    for tag, want in zip(tags, expected_values(tags), strict=True):
        quality, value = frame.loc[tag, "quality"], frame.loc[tag, "value"]  # type: ignore[attr-defined]
        if tag in refused:
            assert (quality, value) == ("bad_protocol", None), tag
        else:
            assert (quality, value) == ("good", want), tag
    if outcome == PROTOCOL:
        with pytest.raises(bf.ProtocolError, match=endpoint) as caught:
            read_in_time(plc, tags, errors="raise")
        assert refused[0] in str(caught.value)
        assert "unit 1" in str(caught.value)
        if name.startswith("exception_") and name != "exception_for_other_function":
            assert caught.value.code == int(name.split("_")[1])
        else:
            assert caught.value.code is None
            assert "bad Modbus reply" in str(caught.value)


def reads_correctly(plc: bf.Connection) -> None:
    tags = registers(GOOD_START)
    frame = plc.read(tags)
    assert frame["value"].tolist() == expected_values(tags)
    assert set(frame["quality"]) == {"good"}


@pytest.mark.parametrize("name", list(READ_CASES))
def test_a_faulty_register_reply_is_a_typed_error_or_bad_rows(server, name):
    endpoint = f"127.0.0.1:{server.port}"
    with bf.connect(server.url, timeout=TIMEOUT) as plc:
        check_outcome(plc, endpoint, name, READ_CASES[name], registers(FAULTS[name]))
        reads_correctly(plc)


@pytest.mark.parametrize("name", list(COIL_CASES))
def test_a_faulty_coil_reply_is_a_typed_error_or_bad_rows(server, name):
    endpoint = f"127.0.0.1:{server.port}"
    with bf.connect(server.url, timeout=TIMEOUT) as plc:
        check_outcome(plc, endpoint, name, COIL_CASES[name], coils(FAULTS[name]))
        reads_correctly(plc)


@pytest.mark.parametrize("table", ["hr", "co"])
@pytest.mark.parametrize("name", list(WRITE_CASES))
def test_a_write_whose_reply_does_not_echo_it_is_a_protocol_error(server, name, table):
    tag = f"{table}:{FAULTS[name]}"
    with bf.connect(server.url, timeout=TIMEOUT, writable=True) as plc:
        started = time.monotonic()
        with pytest.raises(bf.ProtocolError, match=f"tag '{tag}'") as caught:
            plc.write({tag: 1})
        assert time.monotonic() - started < TIMEOUT + SLACK
        assert caught.value.tags == (tag,)
        plc.write({"hr:30": 4321})
        assert plc.read_value("hr:30") == 4321


def test_a_lost_frame_boundary_reopens_the_connection_and_later_requests_read(server):
    # One read, three requests: good, garbage (the stream is out of step), good again.
    tags = [*registers(GOOD_START), *registers(FAULTS["garbage"]), *registers(3000)]
    with bf.connect(server.url, timeout=TIMEOUT) as plc:
        reads_correctly(plc)  # the server has counted this connection once it answered
        connections = server.connections
        frame = plc.read(tags, errors="quality")
        quality = frame["quality"].tolist()
        assert quality == ["good"] * COUNT + ["bad_protocol"] * COUNT + ["good"] * COUNT
        assert frame["value"].tolist()[-COUNT:] == list(range(3000, 3010))
        assert server.connections == connections + 1


def test_busy_is_asked_again_with_a_growing_pause_within_the_timeout(server):
    with bf.connect(server.url, timeout=TIMEOUT) as plc:
        tags = registers(FAULTS["busy_then_ok"])
        before = server.requests
        assert plc.read(tags)["value"].tolist() == expected_values(tags)
        assert server.requests - before == 3
        before = server.requests
        started = time.monotonic()
        with pytest.raises(bf.ProtocolError, match="SERVER DEVICE BUSY") as caught:
            plc.read(registers(FAULTS["exception_6"]))
        assert caught.value.code == 6
        assert server.requests - before == 3
        assert time.monotonic() - started >= 0.05 + 0.1
    with bf.connect(server.url, timeout=TIMEOUT, busy_retries=0) as plc:
        before = server.requests
        with pytest.raises(bf.ProtocolError, match="SERVER DEVICE BUSY"):
            plc.read(registers(FAULTS["exception_6"]))
        assert server.requests - before == 1
    with bf.connect(server.url, timeout=TIMEOUT, busy_retries=10) as plc:
        # Pauses of 50, 100, 200 ms...: the third would end past the timeout, so it is
        # never started.
        before = server.requests
        started = time.monotonic()
        with pytest.raises(bf.ProtocolError, match="SERVER DEVICE BUSY"):
            plc.read(registers(FAULTS["exception_6"]))
        assert time.monotonic() - started < TIMEOUT + SLACK
        assert server.requests - before == 3


def test_busy_retries_option_is_checked(server):
    with pytest.raises(bf.ConfigurationError, match="busy_retries=-1 is outside the accepted"):
        bf.connect(server.url, busy_retries=-1)
    with pytest.raises(bf.ConfigurationError, match="busy_retries='many' is invalid"):
        bf.connect(f"{server.url}?busy_retries=many")
    with bf.connect(f"{server.url}?busy_retries=0") as plc:
        assert plc.read_value(f"hr:{GOOD_START}") == GOOD_START


def test_transaction_ids_go_on_across_reconnects(server):
    with bf.connect(server.url, timeout=TIMEOUT) as plc:
        for _ in range(3):
            plc.read(registers(GOOD_START))
            with pytest.raises(bf.TimeoutError):
                plc.read(registers(FAULTS["silent"]))  # the connection is dropped after it
    ids = server.transaction_ids
    assert server.connections >= 3
    assert all((b - a) % 65536 == 1 for a, b in itertools.pairwise(ids)), ids


def test_a_connection_the_device_closed_while_idle_is_reopened_before_sending(server):
    with bf.connect(server.url, timeout=TIMEOUT) as plc:
        reads_correctly(plc)
        server.close_connections()
        assert wait_for(lambda: server.open_connections == 0)
        time.sleep(0.05)  # the close reaches the client's socket
        reads_correctly(plc)
    assert server.connections == 2


def test_the_device_identification_is_read_through_the_transport(server):
    with bf.connect(server.url, timeout=TIMEOUT) as plc:
        info = plc.info()
    assert info["vendor"] == "bifrost faults"
    assert info["product_code"] == "FAULT-1"
    assert info["revision"] == "1.0"


def quality_of(rec: bf.Recording, tag: str) -> list[str]:
    return list(rec.quality_frame()[tag])


def test_a_background_recording_writes_bad_rows_and_keeps_going(server):
    good = f"hr:{GOOD_START}"
    bad = [
        f"hr:{FAULTS[name]}"
        for name in (
            "zero_byte_count",
            "short_byte_count",
            "extra_registers",
            "wrong_function",
            "wrong_unit",
            "garbage",
            "length_too_short",
            "exception_4",
        )
    ]
    with bf.connect(server.url, timeout=TIMEOUT) as plc:
        rec = plc.record([good, *bad], interval="50ms", background=True)
        assert wait_for(lambda: len(rec) >= 10)
        # The good tag's replies turn bad for a while: the same recording rides it out.
        server.set_behaviour(GOOD_START, "odd_byte_count")
        assert wait_for(lambda: quality_of(rec, good)[-3:] == ["bad_protocol"] * 3)
        server.set_behaviour(GOOD_START, None)
        assert wait_for(lambda: quality_of(rec, good)[-3:] == ["good"] * 3)
        # Past the 1.2 s after which one bad frame used to end a recording.
        assert wait_for(lambda: len(rec) >= 40)
        assert rec.running
        assert rec.error is None
        rec.stop()
        rec.wait(10)
    frame, quality = rec.to_pandas(), rec.quality_frame()
    for tag in bad:
        assert set(quality[tag]) == {"bad_protocol"}, tag
        assert frame[tag].isna().all(), tag
    took_value = quality[good] == "good"
    assert (frame.loc[took_value, good] == GOOD_START).all()
    assert frame.loc[~took_value, good].isna().all()
    assert (~took_value).sum() >= 3


@pytest.fixture
def gateway(server: ModbusFaultServer) -> Iterator[GatewayProxy]:
    with GatewayProxy(server.port) as proxy:
        proxy.hold_replies_to(100)
        yield proxy


def test_late_replies_a_gateway_forwards_are_never_taken_for_the_next_request(gateway):
    wrong = answered = 0
    tags = registers(900)
    # Each round waits out one timeout for hr:100; short, but with room for a loaded host.
    with bf.connect(gateway.url, timeout=0.15) as plc:
        for _ in range(GATEWAY_ROUNDS):
            with pytest.raises(bf.TimeoutError):
                plc.read(registers(100))
            frame = plc.read(tags, errors="quality")
            good = frame["quality"] == "good"
            wrong += int(
                (frame["value"][good] != pd.Series(expected_values(tags), tags)[good]).any()
            )
            answered += int(good.all())
    assert wrong == 0
    assert answered == GATEWAY_ROUNDS
    # Every round did deliver hr:100's late reply onto the connection that asked for hr:900.
    assert gateway.late_replies_forwarded == GATEWAY_ROUNDS


def test_the_gateway_fault_fools_a_client_whose_transaction_ids_restart(gateway):
    # The control: pymodbus with a new client per reconnect (ids from 1 again) takes
    # hr:100's late reply for the answer to hr:900, as the issue reports.
    from pymodbus.client import ModbusTcpClient

    fooled = 0
    for _ in range(3):
        first = ModbusTcpClient("127.0.0.1", port=gateway.port, timeout=0.1, retries=0)
        first.connect()
        with contextlib.suppress(Exception):
            first.read_holding_registers(100, count=COUNT, device_id=1)
        first.close()
        second = ModbusTcpClient("127.0.0.1", port=gateway.port, timeout=0.5, retries=0)
        second.connect()
        try:
            reply = second.read_holding_registers(900, count=COUNT, device_id=1)
            fooled += reply.registers == list(range(100, 110))
        finally:
            second.close()
    assert fooled >= 1

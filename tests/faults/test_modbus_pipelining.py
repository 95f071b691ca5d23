"""Pipelined Modbus TCP (``pipeline=N``): replies out of order, dropped, duplicated, late.

A read of several requests (spans far enough apart never to be merged) has up to N of
them in flight; the fault server answers them in order except at the faulty span. Every
case ends in the right values or a typed error, never a wrong value; a device that drops
or repeats replies is caught and read one request at a time from then on.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pandas as pd
import pytest
from faults.gateway_proxy import GatewayProxy
from faults.modbus_fault_server import FAULTS, ModbusFaultServer

import bifrost as bf

TIMEOUT = 0.5
COUNT = 5
# Good spans, apart enough to be one request each; the faulty span (at 1000-2000) goes
# between them, so requests follow it in the same read.
GOOD = (10, 100, 2500, 2600, 2700, 2800)


@pytest.fixture
def server() -> Iterator[ModbusFaultServer]:
    with ModbusFaultServer(delay=2 * TIMEOUT) as fault_server:
        yield fault_server


def spans(*starts: int) -> list[str]:
    return [f"hr:{start + i}" for start in starts for i in range(COUNT)]


def values_of(frame: pd.DataFrame, tags: list[str]) -> list[object]:
    return [frame.loc[tag, "value"] for tag in tags]


def expected(tags: list[str]) -> list[int]:
    # The fault server's register a holds a.
    return [int(tag.split(":")[1]) for tag in tags]


def pipeline_of(plc: bf.Connection) -> dict[str, object]:
    return plc.info()["pipeline"]  # type: ignore[no-any-return]


def test_a_device_that_pipelines_keeps_its_requests_in_flight(server):
    tags = spans(*GOOD)
    with bf.connect(server.url, timeout=TIMEOUT, pipeline=4) as plc:
        for _ in range(5):
            assert values_of(plc.read(tags), tags) == expected(tags)
        state = pipeline_of(plc)
    assert state["in_flight"] == 4
    assert state["fallbacks"] == 0
    assert server.connections == 1


def test_replies_out_of_order_are_matched_by_transaction_id(server):
    tags = spans(FAULTS["swap_with_next"], *GOOD)
    with bf.connect(server.url, timeout=TIMEOUT, pipeline=4) as plc:
        for _ in range(5):
            frame = plc.read(tags)
            assert values_of(frame, tags) == expected(tags)
            assert set(frame["quality"]) == {"good"}
        state = pipeline_of(plc)
    assert state["fallbacks"] == 0
    assert state["in_flight"] == 4


def test_a_dropped_reply_falls_back_to_one_in_flight_and_reads_right(server, caplog):
    tags = spans(FAULTS["drop_once"], *GOOD)
    with (
        caplog.at_level(logging.WARNING, logger="bifrost.modbus"),
        bf.connect(server.url, timeout=TIMEOUT, pipeline=4) as plc,
    ):
        frame = plc.read(tags)  # the dropped request is asked again, on its own
        assert values_of(frame, tags) == expected(tags)
        assert values_of(plc.read(tags), tags) == expected(tags)
        state = pipeline_of(plc)
    assert state["in_flight"] == 1
    assert state["fallbacks"] == 1
    assert "unanswered" in str(state["reason"])
    assert [r.message for r in caplog.records].count(caplog.records[0].message) == 1
    assert "does not answer pipelined requests" in caplog.records[0].message


def test_a_duplicated_reply_is_dropped_and_counted_and_ends_pipelining(server):
    tags = spans(FAULTS["duplicate"], *GOOD)
    with bf.connect(server.url, timeout=TIMEOUT, pipeline=4) as plc:
        for _ in range(3):
            assert values_of(plc.read(tags), tags) == expected(tags)
        state = pipeline_of(plc)
    assert state["duplicates"] >= 1
    assert state["fallbacks"] == 1
    assert state["in_flight"] == 1


def test_a_late_reply_after_a_timeout_is_never_taken_for_another(server):
    tags = spans(FAULTS["delayed"], *GOOD)
    good = spans(*GOOD)
    with bf.connect(server.url, timeout=TIMEOUT, pipeline=4) as plc:
        for _ in range(2):
            with pytest.raises(bf.TimeoutError):
                plc.read(tags)
            assert values_of(plc.read(good), good) == expected(good)


def test_a_gateway_forwarding_late_replies_never_gives_a_wrong_value(server):
    with GatewayProxy(server.port) as gateway:
        gateway.hold_replies_to(100)
        tags = spans(600, 700, 800, 900)
        with bf.connect(gateway.url, timeout=0.2, pipeline=4) as plc:
            for _ in range(10):
                with pytest.raises(bf.TimeoutError):
                    plc.read(spans(100))
                frame = plc.read(tags, errors="quality")
                good = frame["quality"] == "good"
                assert good.all()
                assert values_of(frame, tags) == expected(tags)
        assert gateway.late_replies_forwarded == 10


def test_pymodbus_server_is_caught_dropping_and_read_one_at_a_time(modbus_server):
    # pymodbus 3.16's server drops and repeats requests that arrive together.
    modbus_server.set("hr", 0, list(range(1000)))
    tags = [f"hr:{i}" for i in range(1000)]
    with bf.connect(modbus_server.url, timeout=TIMEOUT, pipeline=8) as plc:
        for _ in range(3):
            frame = plc.read(tags)
            assert frame["value"].tolist() == list(range(1000))
        state = pipeline_of(plc)
    assert state["in_flight"] == 1
    assert state["fallbacks"] == 1

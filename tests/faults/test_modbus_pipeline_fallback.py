"""A pipelined connection to a device that answers bursts wrongly never returns a wrong value.

The reference server (libmodbus' answers) mishandles requests that arrive together in
three ways: it answers only the first, answers every one under the last transaction id,
or swaps the ids of the first two replies. The last two make replies to requests of the
same size pass for each other's, which no check of a reply alone can catch: the
connection's first burst is a probe of reads whose sizes all differ, and any sign of
trouble during a burst throws the burst's data away, reads again one request at a time
and stays there (logged once, counted in ``info()["pipeline"]``).
"""

from __future__ import annotations

import logging

import pytest
from modbus_reference_server import ReferenceServer

import bifrost as bf

# Four requests of five registers each (too far apart to merge): the same size, so a
# reply under the wrong id would pass every check of the reply itself.
TAGS = [f"hr:{start + i}" for start in (0, 200, 400, 600) for i in range(5)]
EXPECTED = [int(tag.split(":")[1]) for tag in TAGS]  # register a holds a


@pytest.mark.parametrize("mode", ["first_only", "last_tid", "swap"])
def test_a_device_that_answers_bursts_wrongly_is_read_one_at_a_time(mode, caplog):
    with (
        caplog.at_level(logging.WARNING, logger="bifrost.modbus"),
        ReferenceServer({"hr": [(0, 999)]}, pipelining=mode) as server,
        bf.connect(server.url, timeout=0.3, pipeline=4) as plc,
    ):
        for _ in range(3):
            frame = plc.read(TAGS)
            assert frame["value"].tolist() == EXPECTED
            assert set(frame["quality"]) == {"good"}
        state = plc.info()["pipeline"]
    assert state["in_flight"] == 1
    assert state["fallbacks"] == 1
    assert state["reason"]
    warnings = [r for r in caplog.records if "pipelined" in r.getMessage()]
    assert len(warnings) == 1


def test_a_device_that_answers_bursts_right_keeps_pipelining():
    with (
        ReferenceServer({"hr": [(0, 999)]}) as server,
        bf.connect(server.url, timeout=0.3, pipeline=4) as plc,
    ):
        for _ in range(3):
            assert plc.read(TAGS)["value"].tolist() == EXPECTED
        state = plc.info()["pipeline"]
    assert state["in_flight"] == 4
    assert state["fallbacks"] == 0


def test_quirks_from_the_scanner_turn_pipelining_off(tmp_path):
    path = tmp_path / "device.yaml"
    with ReferenceServer({"hr": [(0, 999)]}, pipelining="swap") as server:
        with bf.connect(server.url, timeout=0.3) as plc:
            plc.scan("hr", stop=999, pipeline=4).to_quirks(path)
        with bf.connect(server.url, timeout=0.3, quirks=path) as plc:
            assert plc.read(TAGS)["value"].tolist() == EXPECTED
            state = plc.info()["pipeline"]
    assert state["requested"] == 1
    assert state["fallbacks"] == 0


def test_single_registers_are_not_pipelined_before_the_device_is_proven():
    # Requests of one register each: no probe can tell their replies apart, and
    # neither could any check, so they go one at a time until a probe has passed.
    singles = ["hr:0", "hr:200", "hr:400", "hr:600"]
    with (
        ReferenceServer({"hr": [(0, 999)]}, pipelining="swap") as server,
        bf.connect(server.url, timeout=0.3, pipeline=4) as plc,
    ):
        for _ in range(3):
            assert plc.read(singles)["value"].tolist() == [0, 200, 400, 600]
        state = plc.info()["pipeline"]
        assert state["fallbacks"] == 0  # nothing went wrong: it was never tried
        plc.read(TAGS)  # a plan a probe can be made of: the swap is caught
        assert plc.info()["pipeline"]["in_flight"] == 1
    with (
        ReferenceServer({"hr": [(0, 999)]}) as server,
        bf.connect(server.url, timeout=0.3, pipeline=4) as plc,
    ):
        plc.read(TAGS)  # proven
        assert plc.read(singles)["value"].tolist() == [0, 200, 400, 600]
        # The four single reads reached the server in one burst (read off one chunk).
        assert len(set(server.arrivals[-4:])) == 1
        assert plc.info()["pipeline"]["in_flight"] == 4

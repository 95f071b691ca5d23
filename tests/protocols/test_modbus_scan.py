"""The register scanner, ``plc.scan()``, against real servers on loopback.

The reference server answers as libmodbus' does (exception 3 for a quantity over the
limit, checked first, then exception 2 for an address outside the mapping) with holes
between readable ranges, a reduced batch, and ways of getting pipelining wrong. Each
test checks what the scan found against the server's own mapping, that it sent only
reads, and that it needed no more requests than halving allows: per boundary
``log2(batch)`` reads plus a check, per unreadable stretch one read per ``resolution``
addresses, per readable stretch one read per batch.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from modbus_reference_server import LAST, ReferenceServer, complement, request_bound

import bifrost as bf
from bifrost.protocols.modbus.quirks import Quirks
from bifrost.protocols.modbus.scan import ScanResult

TIMEOUT = 0.5


@pytest.fixture
def libmodbus_like() -> Iterator[ReferenceServer]:
    # libmodbus' mapping: one range per table (modbus_mapping_new_start_address).
    mapping = {"hr": [(100, 1099)], "ir": [(0, 499)], "co": [(16, 215)], "di": [(0, 99)]}
    with ReferenceServer(mapping) as server:
        yield server


def test_a_libmodbus_like_device_is_mapped_exactly_in_few_requests(libmodbus_like):
    server = libmodbus_like
    with bf.connect(server.url, timeout=TIMEOUT) as plc:
        result = plc.scan(table=["hr", "ir", "co", "di"], pipeline=0)
    ranges = result.ranges
    for table, expected in server.mapping.items():
        found = ranges[ranges["table"] == table]
        assert list(zip(found["first"], found["last"], strict=True)) == expected
        assert result.tables[table].unreadable == complement(expected, 0, LAST)
    assert result.max_batch == {"hr": 125, "ir": 125, "co": 200, "di": 100}
    # Reads only, each counted by the server as by the scan.
    assert server.writes == 0
    assert server.requests == result.requests
    for table, expected in server.mapping.items():
        limit = 125 if table in ("hr", "ir") else 2000
        batch = result.max_batch[table]
        assert result.tables[table].requests <= request_bound(expected, batch, limit, 64)
    assert result.pipeline_ok is None


def test_boundaries_are_exact_and_refusals_are_exception_2(libmodbus_like):
    with bf.connect(libmodbus_like.url, timeout=TIMEOUT) as plc:
        result = plc.scan("hr", start=90, stop=1200, pipeline=0)
    assert result.tables["hr"].readable == [(100, 1099)]
    assert result.tables["hr"].unreadable == [(90, 99), (1100, 1200)]
    assert result.tables["hr"].exceptions.keys() == {"exception 2"}
    # Every address the scan called unreadable was refused when read alone.
    singles = {a for t, a, n, code in libmodbus_like.refused if n == 1 and code == 2}
    assert {99, 1100} <= singles
    assert result.requests < 60  # vs 1,111 reads of one address


HOLES = {"hr": [(0, 99), (200, 262), (1000, 1999), (3000, 3009), (40000, 40127)]}


@pytest.mark.parametrize("oversize", ["value", "address", "silent"])
def test_a_reduced_batch_is_found_however_the_device_refuses_it(oversize):
    # 60 registers at most; larger reads get exception 3 (libmodbus' way), exception 2
    # (some devices) or no answer at all.
    timeout = 0.15 if oversize == "silent" else TIMEOUT
    with (
        ReferenceServer(HOLES, max_batch={"hr": 60}, oversize=oversize) as server,
        bf.connect(server.url, timeout=timeout) as plc,
    ):
        result = plc.scan("hr", pipeline=0)
    scan = result.tables["hr"]
    assert scan.readable == HOLES["hr"]
    assert scan.max_batch == 60
    assert scan.batch_limit_proven
    assert server.writes == 0
    assert scan.requests <= request_bound(HOLES["hr"], 60, 125, 64)
    if oversize == "silent":
        assert 0 < scan.exceptions["timeout"] <= 8  # each one costs a timeout: few


def test_readable_islands_narrower_than_the_resolution_may_be_stepped_over():
    mapping = {"hr": [(0, 9), (5000, 5003)]}
    with ReferenceServer(mapping) as server, bf.connect(server.url, timeout=TIMEOUT) as plc:
        coarse = plc.scan("hr", stop=9999, resolution=64, pipeline=0)
        fine = plc.scan("hr", stop=9999, resolution=4, pipeline=0)
    assert coarse.tables["hr"].readable == [(0, 9)]  # 5000-5003 lies between grid points
    assert fine.tables["hr"].readable == [(0, 9), (5000, 5003)]
    assert fine.requests > coarse.requests


def test_the_pymodbus_server_is_scanned_and_caught_mishandling_pipelining(modbus_server):
    # Its map: holding registers 0-1999 and 3000-3009; it drops or repeats requests
    # that arrive together.
    before = modbus_server.requests
    with bf.connect(modbus_server.url, timeout=0.3) as plc:
        result = plc.scan("hr", stop=9999)
    assert result.tables["hr"].readable == [(0, 1999), (3000, 3009)]
    assert result.max_batch == {"hr": 125}
    assert result.pipeline_ok is False
    assert result.pipelining is not None
    assert result.pipelining.reason
    # It never saw some of the burst: the ones it dropped.
    assert result.tables["hr"].requests < modbus_server.requests - before < result.requests


def test_a_device_that_pipelines_passes_the_probe(libmodbus_like):
    with bf.connect(libmodbus_like.url, timeout=TIMEOUT) as plc:
        result = plc.scan("hr", stop=2000, pipeline=8)
    assert result.pipeline_ok is True
    assert result.pipelining is not None
    assert result.pipelining.depth == 8
    assert "pipeline" not in result.quirks().options()


@pytest.mark.parametrize("mode", ["first_only", "last_tid", "swap"])
def test_a_device_that_answers_pipelined_requests_wrongly_is_flagged(mode, tmp_path):
    with (
        ReferenceServer({"hr": [(0, 999)]}, pipelining=mode) as server,
        bf.connect(server.url, timeout=0.2) as plc,
    ):
        result = plc.scan("hr", stop=1999, pipeline=4)
    assert result.pipeline_ok is False
    assert result.pipelining is not None
    path = tmp_path / "device.yaml"
    result.to_quirks(path)
    assert Quirks.from_yaml(path).pipeline == 1


def test_quirks_from_a_scan_keep_merged_requests_out_of_holes(tmp_path):
    mapping = {"hr": [(0, 99), (110, 199)]}
    # Tags on both sides of the 10-register hole: a plain plan merges them over it.
    tags = ["hr:95", "hr:99", "hr:110", "hr:120"]
    with ReferenceServer(mapping, max_batch={"hr": 50}) as server:
        with bf.connect(server.url, timeout=TIMEOUT) as plc:
            result = plc.scan("hr", stop=299, pipeline=0)
            assert plc.explain(tags)["count"].tolist() == [26]  # 95..120, over the hole
        path = tmp_path / "device.yaml"
        quirks = result.to_quirks(path)
        assert quirks.unreadable == {"hr": [[100, 109], [200, 299]]}
        assert quirks.max_registers_per_request == 50
        assert "unreadable:" in path.read_text()
        server.refused.clear()
        with bf.connect(server.url, timeout=TIMEOUT, quirks=path) as plc:
            plan = plc.explain(tags)
            frame = plc.read(tags)
    assert plan["start"].tolist() == ["hr:95", "hr:110"]
    assert plan["count"].tolist() == [5, 11]
    assert frame["value"].tolist() == [95, 99, 110, 120]
    assert server.refused == []  # no request reached into the hole


def test_a_tag_inside_an_unreadable_range_is_read_alone():
    quirks = {"unreadable": {"hr": [[100, 109]]}}
    with (
        ReferenceServer({"hr": [(0, 199)]}) as server,
        bf.connect(server.url, timeout=TIMEOUT, quirks=quirks) as plc,
    ):
        plan = plc.explain(["hr:98", "hr:105", "hr:112"])
        frame = plc.read(["hr:98", "hr:105", "hr:112"])
    assert sorted(plan["start"]) == ["hr:105", "hr:112", "hr:98"]
    assert frame["value"].tolist() == [98, 105, 112]  # the quirk was wrong: still read


def test_unreadable_ranges_are_checked_with_file_and_key(tmp_path):
    path = tmp_path / "device.yaml"
    path.write_text("unreadable:\n  hr: [[200, 100]]\n")
    with pytest.raises(bf.ConfigurationError, match="unreadable") as info:
        Quirks.from_yaml(path)
    assert str(path) in str(info.value)
    with pytest.raises(bf.ConfigurationError, match="xx"):
        Quirks.from_mapping({"unreadable": {"xx": [[0, 1]]}})


def test_bad_arguments_are_refused_before_anything_is_sent(libmodbus_like):
    with bf.connect(libmodbus_like.url, timeout=TIMEOUT) as plc:
        before = libmodbus_like.requests
        for kwargs in (
            {"table": "hx"},
            {"table": []},
            {"start": -1},
            {"stop": 70000},
            {"start": 10, "stop": 5},
            {"resolution": 0},
            {"pipeline": 99},
            {"unit": 300},
            {"timeout": 0},
        ):
            with pytest.raises(bf.ConfigurationError):
                plc.scan(**kwargs)  # type: ignore[arg-type]
        assert libmodbus_like.requests == before


def test_other_protocols_have_no_scanner():
    with bf.connect("memory://scan-test") as plc, pytest.raises(bf.ConfigurationError) as info:
        plc.scan()
    assert "modbus://" in str(info.value)


def test_the_async_connection_scans_too(libmodbus_like):
    async def main() -> ScanResult:
        async with bf.aio.connect(libmodbus_like.url, timeout=TIMEOUT) as plc:
            return await plc.scan("co", stop=999, pipeline=0)

    result = asyncio.run(main())
    assert result.tables["co"].readable == [(16, 215)]
    assert "co: 16-215" in repr(result)


def test_the_simulated_plant_can_play_a_smaller_device(tmp_path):
    with bf.sim.Plant(seed=1) as plant:
        plant.modbus_device(holes={"hr": [(100, 199), (2000, 2099)]}, max_batch=40)
        plant.serve(modbus=0)
        with plant.connect("modbus", timeout=TIMEOUT) as plc:
            result = plc.scan("hr", stop=5999, pipeline=0)
            path = tmp_path / "plant.yaml"
            result.to_quirks(path)
        # The plant's holding registers end at 1000 + its 4000 auxiliary ones.
        size = 1000 + plant.aux
        assert result.tables["hr"].readable == [(0, 99), (200, 1999), (2100, size - 1)]
        assert result.max_batch == {"hr": 40}
        with plant.connect("modbus", timeout=TIMEOUT, quirks=path) as plc:
            frame = plc.read(plc.tags.names)
            assert plc.explain(plc.tags.names)["count"].max() <= 40
    assert set(frame["quality"]) == {"good"}


def test_the_simulated_plant_refuses_holes_outside_its_register_tables():
    with bf.sim.Plant(seed=1) as plant:
        plant.modbus_device(holes={"co": [(0, 9)]})
        with pytest.raises(bf.ConfigurationError, match="register table"):
            plant.serve(modbus=0)


def test_a_device_that_needs_pauses_gets_them_during_a_scan():
    with (
        ReferenceServer({"hr": [(0, 199)]}) as server,
        bf.connect(server.url, timeout=TIMEOUT, pause_between_requests="20ms") as plc,
    ):
        result = plc.scan("hr", stop=299)
    gaps = [b - a for a, b in zip(server.arrivals, server.arrivals[1:], strict=False)]
    assert len(gaps) == result.requests - 1
    assert min(gaps) >= 0.019  # measured where the requests arrive
    assert result.pipeline_ok is None  # no burst for a device that needs quiet time


def test_a_scan_result_shows_as_a_table_in_notebooks(libmodbus_like):
    with bf.connect(libmodbus_like.url, timeout=TIMEOUT) as plc:
        result = plc.scan("hr", start=0, stop=1199, pipeline=0)
    page = result._repr_html_()
    assert "<table" in page
    assert page.count("<tr>") == 1 + 3  # header, 0-99, 100-1099, 1100-1199
    assert "unit 1: batch hr 125" in page


def test_quirks_set_a_batch_only_where_the_device_refused_one(libmodbus_like, tmp_path):
    # Coils 16-215: the largest read is 200 bits because the range ends there, which
    # says nothing about the device's limit; nothing refused a larger read.
    with bf.connect(libmodbus_like.url, timeout=TIMEOUT) as plc:
        result = plc.scan("co", pipeline=0)
    assert result.max_batch == {"co": 200}
    assert not result.tables["co"].batch_limit_proven
    options = result.to_quirks(tmp_path / "device.yaml").options()
    assert "max_bits_per_request" not in options
    assert options["unreadable"] == {"co": [[0, 15], [216, 65535]]}

"""Device workarounds (quirks) against real pymodbus servers that break the rules.

The server counts and timestamps every request it receives, so each test proves what an
option changes on the wire rather than in the plan.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import pairwise
from pathlib import Path

import pytest
from quirky_server import QuirkyServer

import bifrost as bf
from bifrost.protocols.modbus.quirks import Quirks


@pytest.fixture(scope="module")
def quirky() -> Iterator[QuirkyServer]:
    server = QuirkyServer()
    with server:
        server.set("hr", 0, [7 * i for i in range(100)])
        yield server


@pytest.fixture
def server(quirky: QuirkyServer) -> QuirkyServer:
    quirky.busy = 0
    quirky.max_registers = None
    quirky.reset()
    return quirky


HR30 = [f"hr:{i}" for i in range(30)]


# -- what goes on the wire -----------------------------------------------------------------
def test_max_registers_per_request_reads_a_device_that_refuses_large_requests(server):
    server.max_registers = 10
    with bf.connect(server.url, timeout=2.0) as plc:
        refused = plc.read(HR30, errors="quality")
        assert set(refused["quality"]) == {"bad_protocol"}
    assert [s.count for s in server.seen] == [30]
    server.reset()
    with bf.connect(server.url, timeout=2.0, max_registers_per_request=10) as plc:
        frame = plc.read(HR30)
    assert frame["value"].tolist() == [7 * i for i in range(30)]
    assert [(s.address, s.count) for s in server.seen] == [(0, 10), (10, 10), (20, 10)]


def test_max_bits_per_request_splits_coil_reads(server):
    tags = [f"co:{i}" for i in range(40)]
    with bf.connect(server.url, timeout=2.0, max_bits_per_request=16) as plc:
        assert len(plc.read(tags)) == 40
    assert [s.count for s in server.seen] == [16, 16, 8]
    assert {s.function for s in server.seen} == {1}


def test_one_request_per_tag_sends_each_tag_alone(server):
    tags = ["hr:0", "hr:1", "hr:2:int32", "hr:4", "hr:4"]
    with bf.connect(server.url, timeout=2.0) as plc:
        plc.read(tags)
    assert len(server.seen) == 1
    server.reset()
    with bf.connect(server.url, timeout=2.0, one_request_per_tag=True) as plc:
        frame = plc.read(tags)
    # The two tags at hr:4 are the same read for the device: they share one.
    assert [(s.address, s.count) for s in server.seen] == [(0, 1), (1, 1), (2, 2), (4, 1)]
    assert frame["value"].tolist()[-2:] == [28, 28]


def test_merge_gap_zero_stops_reading_over_holes(server):
    tags = ["hr:0", "hr:5", "hr:10", "hr:11"]
    with bf.connect(server.url, timeout=2.0) as plc:
        plc.read(tags)
    assert [(s.address, s.count) for s in server.seen] == [(0, 12)]
    server.reset()
    with bf.connect(server.url, timeout=2.0, merge_gap=0) as plc:
        frame = plc.read(tags)
    assert [(s.address, s.count) for s in server.seen] == [(0, 1), (5, 1), (10, 2)]
    assert frame["value"].tolist() == [0, 35, 70, 77]


def test_busy_device_is_asked_again_with_a_growing_pause(server):
    server.busy = 3
    with bf.connect(server.url, timeout=3.0, busy_retries=3, busy_backoff="40ms") as plc:
        assert plc.read_value("hr:3") == 21
    times = [s.at for s in server.seen]
    assert len(times) == 4
    gaps = [b - a for a, b in pairwise(times)]
    # 40, 80, 160 ms: each at least its pause (less a little for clock granularity).
    for gap, pause in zip(gaps, (0.04, 0.08, 0.16), strict=True):
        assert gap >= pause * 0.9


def test_busy_past_the_retries_is_a_protocol_error_naming_exception_6(server):
    server.busy = 5
    with (
        bf.connect(server.url, timeout=3.0, busy_retries=1, busy_backoff=0.01) as plc,
        pytest.raises(bf.ProtocolError, match=r"exception 6 \(SERVER DEVICE BUSY\)"),
    ):
        plc.read("hr:3")
    assert len(server.seen) == 2


def test_pause_between_requests_keeps_the_device_quiet(server):
    tags = ["hr:0", "hr:10", "hr:20"]
    options = {"merge_gap": 0, "pause_between_requests": "150ms"}
    with bf.connect(server.url, timeout=2.0, **options) as plc:
        plc.read(tags)
        plc.read(tags)  # the pause holds across reads too
    times = [s.at for s in server.seen]
    assert len(times) == 6
    assert min(b - a for a, b in pairwise(times)) >= 0.14


def test_without_a_pause_requests_follow_each_other_sooner(server):
    # The twin of the test above, so that its bound proves the option, not the machine.
    with bf.connect(server.url, timeout=2.0, merge_gap=0) as plc:
        plc.read(["hr:0", "hr:10", "hr:20"])
    times = [s.at for s in server.seen]
    assert min(b - a for a, b in pairwise(times)) < 0.14


def test_pause_after_connect_waits_before_the_first_request(server):
    with bf.connect(server.url, timeout=2.0, pause_after_connect=0.3) as plc:
        plc.read("hr:1")
    assert len(server.connected_at) == 1
    assert server.seen[0].at - server.connected_at[0] >= 0.27


def test_close_after_each_cycle_opens_a_connection_per_read(server):
    with bf.connect(server.url, timeout=2.0) as plc:
        for _ in range(3):
            plc.read(["hr:1", "hr:2"])
    assert server.connections == 1
    server.reset()
    with bf.connect(server.url, timeout=2.0, close_after_each_cycle=True) as plc:
        values = [plc.read(["hr:1", "hr:2"])["value"].tolist() for _ in range(3)]
        assert not plc.connected
    assert values == [[7, 14]] * 3
    assert server.connections == 3


# -- bad values, refused before anything is sent -------------------------------------------
@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("max_registers_per_request", 0, "max_registers_per_request=0 is outside .* 1-125"),
        ("max_registers_per_request", 126, "max_registers_per_request=126 .* 1-125"),
        ("max_bits_per_request", 2001, "max_bits_per_request=2001 .* 1-2000"),
        ("busy_retries", -1, "busy_retries=-1 .* 0-20"),
        ("pause_between_requests", "2min", "pause_between_requests='2min' is not a duration"),
        ("pause_after_connect", 61, "pause_after_connect=61 .* 0-60 s"),
        ("busy_backoff", -0.5, "busy_backoff=-0.5 .* 0-60 s"),
        ("merge_gap", -1, "merge_gap=-1 is outside the accepted range 0-125"),
        ("merge_gap", "wide", "Modbus option merge_gap='wide' is invalid"),
    ],
)
def test_invalid_quirk_options_name_the_option_and_range(server, option, value, message):
    with pytest.raises(bf.ConfigurationError, match=message):
        bf.connect(server.url, **{option: value})
    assert server.requests == 0


def test_a_pause_with_pipelining_is_refused(server):
    with pytest.raises(bf.ConfigurationError, match="pause_between_requests needs one request"):
        bf.connect(server.url, pipeline=4, pause_between_requests=0.1)


def test_a_tag_too_big_for_the_device_limit_fails_before_the_wire(server):
    with (
        bf.connect(server.url, timeout=2.0, max_registers_per_request=4) as plc,
        pytest.raises(bf.ConfigurationError, match=r"'hr:0:string\[10\]'.*5 registers.*=4"),
    ):
        plc.read(["hr:20", "hr:0:string[10]"])
    assert server.requests == 0


# -- quirks files --------------------------------------------------------------------------
QUIRKS = """\
device:
  vendor: Acme
  model: PM-200
  notes: refuses reads over 10 registers
max_registers_per_request: 10
pause_between_requests: 20ms
busy_retries: 4
"""


def test_connect_with_a_quirks_file_uses_its_options(server, tmp_path: Path):
    path = tmp_path / "device.yaml"
    path.write_text(QUIRKS)
    server.max_registers = 10
    with bf.connect(server.url, timeout=2.0, quirks=str(path)) as plc:
        frame = plc.read(HR30)
        assert plc.info()["quirks"] == str(path)
    assert frame["quality"].eq("good").all()
    reads = [s for s in server.seen if s.function == 3]
    assert [s.count for s in reads] == [10, 10, 10]
    times = [s.at for s in reads]
    assert min(b - a for a, b in pairwise(times)) >= 0.018


def test_explicit_options_win_over_the_quirks_file(server, tmp_path: Path):
    path = tmp_path / "device.yaml"
    path.write_text(QUIRKS)
    with bf.connect(
        server.url + "?pause_between_requests=0",
        timeout=2.0,
        quirks=path,
        max_registers_per_request=15,
    ) as plc:
        plc.read(HR30)
    assert [s.count for s in server.seen] == [15, 15]


def test_a_bad_quirks_file_names_file_line_and_key(tmp_path: Path):
    path = tmp_path / "bad.yaml"
    path.write_text(
        "device: {vendor: Acme}\nmax_registers_per_request: 300\nmerge_gap: 2\nbogus: 1\n"
    )
    with pytest.raises(bf.ConfigurationError) as caught:
        bf.connect("modbus://127.0.0.1:1", quirks=path)
    text = str(caught.value)
    assert str(path) in text
    assert "line 2: max_registers_per_request: Input should be less than or equal to 125" in text
    assert "line 4: bogus: Extra inputs are not permitted" in text


def test_a_quirks_file_with_a_bad_duration_names_the_key(tmp_path: Path):
    path = tmp_path / "bad.yaml"
    path.write_text("pause_after_connect: soon\n")
    with pytest.raises(bf.ConfigurationError, match=r"line 1: pause_after_connect: .*'soon'"):
        Quirks.from_yaml(path)


def test_a_missing_or_non_mapping_quirks_file_is_a_configuration_error(tmp_path: Path):
    with pytest.raises(bf.ConfigurationError, match="cannot read the device quirks file"):
        Quirks.from_yaml(tmp_path / "nowhere.yaml")
    path = tmp_path / "list.yaml"
    path.write_text("- 1\n- 2\n")
    with pytest.raises(bf.ConfigurationError, match="must be a mapping"):
        Quirks.from_yaml(path)


def test_quirks_round_trip_through_yaml(tmp_path: Path):
    quirks = Quirks(
        device={"vendor": "Acme", "serial": "A-1"},
        max_registers_per_request=32,
        one_request_per_tag=True,
        pause_between_requests="25ms",
    )
    path = tmp_path / "device.yaml"
    quirks.to_yaml(path)
    again = Quirks.from_yaml(path)
    assert again == quirks
    assert again.options() == {
        "max_registers_per_request": 32,
        "one_request_per_tag": True,
        "pause_between_requests": 0.025,
    }
    assert again.device is not None
    assert again.device.model_extra == {"serial": "A-1"}
    assert path.read_text().startswith("device:")

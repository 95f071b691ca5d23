"""The memory driver and its device: grammar, options, typed values, writes, faults, fixtures."""

from __future__ import annotations

import asyncio
import re
import threading
import time

import numpy as np
import pytest

import bifrost as bf
from bifrost.model import DataType, Quality
from bifrost.protocols.memory.address import MemoryAddress, parse_memory_address
from bifrost.protocols.memory.device import find_device
from bifrost.protocols.memory.driver import MemoryDriver
from bifrost.protocols.registry import driver_for_url, known_schemes
from bifrost.results import ReadResult
from bifrost.testing import MEMORY_VALUES, MemoryDevice, memory_device

pytest_plugins = ["bifrost.testing", "pytester"]

# -- the protocol package ---------------------------------------------------------------------


def test_memory_is_an_installed_protocol():
    assert "memory" in known_schemes()
    driver = driver_for_url("memory://plant-a", timeout=0.5)
    assert isinstance(driver, MemoryDriver)
    assert driver.endpoint == "memory://plant-a"
    assert driver.options.timeout == 0.5
    assert not driver.connected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("mem:tank.level", MemoryAddress("tank.level", DataType.FLOAT64)),
        ("MEM:tank.level:FLOAT32", MemoryAddress("tank.level", DataType.FLOAT32)),
        ("  mem:pump/1_running:bool ", MemoryAddress("pump/1_running", DataType.BOOL)),
        ("mem:Batch-Count:uint64", MemoryAddress("Batch-Count", DataType.UINT64)),
        ("mem:batch.name:string[16]", MemoryAddress("batch.name", DataType.STRING, 16)),
        ("mem:note:string", MemoryAddress("note", DataType.STRING, 254)),
    ],
)
def test_valid_addresses(text: str, expected: MemoryAddress):
    assert parse_memory_address(text) == expected


def test_an_address_prints_in_its_full_form():
    assert str(parse_memory_address("MEM:a.b")) == "mem:a.b:float64"
    assert str(parse_memory_address("mem:s:string[3]")) == "mem:s:string[3]"


@pytest.mark.parametrize(
    ("text", "position", "reason"),
    [
        ("tank.level", 0, "expected 'mem:'"),
        ("  hr:3", 2, "expected 'mem:'"),
        ("mem:", 4, "expected a key"),
        ("mem::float32", 4, "expected a key"),
        ("mem:tank level", 8, "unexpected ' ' in the key"),
        ("mem:tank.level:float", 15, "unknown type 'float'"),
        ("mem:tank.level:float64:x", 22, "too many ':' fields"),
        ("mem:s:string[0]", 6, "string length must be 1-65535"),
        ("mem:s:string[x]", 6, "unknown type"),
    ],
)
def test_bad_addresses_name_the_position(text: str, position: int, reason: str):
    with pytest.raises(bf.AddressError, match="memory address") as caught:
        parse_memory_address(text)
    assert caught.value.position == position
    assert reason in caught.value.reason


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("memory://", "names its device"),
        ("memory://a/b", "has no path"),
        ("memory://bad%20name", "name 'bad%20name' is invalid"),
        ("memory://plant?latency=1", "unknown memory option 'latency'"),
        ("memory://plant?timeout=0", "timeout must be positive"),
        ("memory://plant?timeout=soon", "timeout='soon' is invalid"),
    ],
)
def test_bad_urls_fail_before_connecting(url: str, message: str):
    with pytest.raises(bf.ConfigurationError, match=re.escape(message)):
        driver_for_url(url)


def test_a_bad_tag_address_fails_naming_the_tag(memory_plc: bf.Connection):
    with pytest.raises(bf.AddressError, match=r"tag 'x'"):
        memory_plc.read([bf.Tag("x", "mem:a:decimal")])
    # A string that is neither a tag nor a memory address is an unknown tag.
    with pytest.raises(bf.TagNotFound, match=r"tank\.levle"):
        memory_plc.read("tank.levle")


# -- reading ----------------------------------------------------------------------------------


def test_values_read_as_the_types_of_the_tags(memory_plc: bf.Connection):
    frame = memory_plc.read(list(MEMORY_VALUES))
    assert frame["quality"].tolist() == ["good"] * len(MEMORY_VALUES)
    values = frame["value"].to_dict()
    assert values == {
        "tank.level": 2.5,
        "tank.temperature": 21.5,
        "pump.running": False,
        "batch.count": 0,
        "line.flow": 12.5,  # raw 125, scaled by 0.1 by the core
        "batch.name": "A-001",
    }
    assert isinstance(values["pump.running"], bool)
    assert isinstance(values["batch.count"], int)


def test_one_key_read_as_two_types(memory_device: MemoryDevice):
    memory_device["n"] = 300

    async def read() -> ReadResult:
        async with bf.aio.connect(memory_device.url) as plc:
            return await plc.read_result(["mem:n:int16", "mem:n", "mem:n:int8"])

    result = asyncio.run(read())
    # int16 and float64 hold 300; int8 cannot, and says so instead of wrapping around.
    assert result.quality.tolist() == [Quality.GOOD, Quality.GOOD, Quality.BAD_CONFIG]
    dtypes = {values.dtype for _, values in result.columns}
    assert dtypes == {np.dtype("int16"), np.dtype("float64")}
    assert "holds 300 under key 'n', which int8 cannot hold" in str(result.errors[0])


def test_a_missing_key_reads_bad_config(memory_plc: bf.Connection):
    frame = memory_plc.read(["tank.level", "mem:nowhere"], errors="quality")
    assert frame["quality"].tolist() == ["good", "bad_config"]
    with pytest.raises(bf.ProtocolError, match="holds no value for key 'nowhere'") as caught:
        memory_plc.read(["tank.level", "mem:nowhere"])
    assert caught.value.tags == ("mem:nowhere",)


def test_quality_set_on_the_device_reaches_the_read(
    memory_device: MemoryDevice, memory_plc: bf.Connection
):
    memory_device.set_quality("tank.level", Quality.UNCERTAIN)
    frame = memory_plc.read(["tank.level", "batch.count"])
    assert frame["quality"].tolist() == ["uncertain", "good"]
    assert frame["value"].tolist() == [2.5, 0]  # uncertain values are still values
    memory_device.set_quality("tank.level", Quality.BAD_NO_DATA)
    with pytest.raises(bf.ProtocolError, match="BAD_NO_DATA") as caught:
        memory_plc.read(["tank.level", "batch.count"])
    assert caught.value.code == Quality.BAD_NO_DATA
    frame = memory_plc.read(["tank.level", "batch.count"], errors="quality")
    assert frame["quality"].tolist() == ["bad_no_data", "good"]
    memory_device.set_quality("tank.level", Quality.GOOD)
    assert memory_plc.read("tank.level")["quality"].tolist() == ["good"]


def test_explain_browse_and_info(memory_device: MemoryDevice, memory_plc: bf.Connection):
    plan = memory_plc.explain(["tank.level", "tank.temperature", "mem:tank.level:int8"])
    assert plan.to_dict("records") == [
        {"request": "read", "device": memory_device.name, "keys": 2, "tags": 3}
    ]
    table = memory_plc.browse()
    assert table.loc["batch.name", "dtype"] == "string[16]"
    assert table.loc["line.flow", "key"] == "line.flow"
    memory_device.info["firmware"] = "1.2"
    info = memory_plc.info()
    assert info["protocol"] == "memory"
    assert info["firmware"] == "1.2"


# -- writing ----------------------------------------------------------------------------------


def test_writes_store_values_of_the_tags_types(
    memory_device: MemoryDevice, memory_plc: bf.Connection
):
    memory_plc.write({"tank.level": 3, "pump.running": 1, "batch.count": 7.0})
    assert memory_device["tank.level"] == 3.0
    assert isinstance(memory_device["tank.level"], float)
    assert memory_device["pump.running"] is True
    assert memory_device["batch.count"] == 7
    assert isinstance(memory_device["batch.count"], int)
    # A float32 keeps float32 precision, so what is read back is what was written.
    memory_plc.write({"mem:tank.temperature:float32": 0.1})
    assert memory_device["tank.temperature"] == float(np.float32(0.1))
    assert memory_plc.read_value("tank.temperature") == pytest.approx(0.1, abs=1e-7)


def test_writes_are_checked_before_anything_is_stored(
    memory_device: MemoryDevice, memory_plc: bf.Connection
):
    before = memory_device.count("write")
    with pytest.raises(bf.ValueOutOfRange, match=r"batch\.count"):
        memory_plc.write({"tank.level": 9.0, "batch.count": 2**31})
    with pytest.raises(bf.ValueOutOfRange, match="room for 16"):
        memory_plc.write({"batch.name": "x" * 17})
    with pytest.raises(bf.WriteNotAllowed, match="read-only in the tag table"):
        memory_plc.write({"tank.temperature": 20.0})
    assert memory_device["tank.level"] == 2.5
    assert memory_device.count("write") == before  # nothing reached the device


def test_a_dry_run_checks_and_shows_the_writes_and_sends_nothing(
    memory_device: MemoryDevice, memory_plc: bf.Connection
):
    before = memory_device.count("write")
    requests = memory_plc.write({"tank.level": 3, "batch.count": 7.0}, dry_run=True)
    assert requests is not None
    assert list(requests["tag"]) == ["tank.level", "batch.count"]
    assert list(requests["value"]) == [3.0, 7]
    # Checked like a real write: a bad value fails the dry run too.
    with pytest.raises(bf.ValueOutOfRange, match=r"batch\.count"):
        memory_plc.write({"batch.count": 2**31}, dry_run=True)
    # A read-only connection shows what it would write, and still sends nothing.
    with bf.connect(memory_device.url, tags=memory_plc.tags) as plc:
        shown = plc.write({"tank.level": 4.0}, dry_run=True)
        assert shown is not None
        assert shown["value"].tolist() == [4.0]
    assert memory_device["tank.level"] == 2.5
    assert memory_device.count("write") == before


def test_a_read_only_connection_refuses_writes(memory_device: MemoryDevice):
    with (
        bf.connect(memory_device.url) as plc,
        pytest.raises(bf.WriteNotAllowed, match="read-only"),
    ):
        plc.write({"mem:a": 1.0})
    assert "a" not in memory_device


def test_a_key_read_only_on_the_device_refuses_the_whole_write(
    memory_device: MemoryDevice, memory_plc: bf.Connection
):
    memory_device.protect("batch.count")
    with pytest.raises(bf.WriteNotAllowed, match=r"'batch.count' .* read-only on memory://"):
        memory_plc.write({"tank.level": 4.0, "batch.count": 1})
    assert memory_device["tank.level"] == 2.5
    memory_device.unprotect("batch.count")
    memory_plc.write({"tank.level": 4.0, "batch.count": 1})
    assert (memory_device["tank.level"], memory_device["batch.count"]) == (4.0, 1)


def test_a_device_can_react_to_writes(memory_device: MemoryDevice, memory_plc: bf.Connection):
    @memory_device.on_write
    def follow(key: str, value: object) -> None:
        if key == "pump.running":
            memory_device["line.flow"] = 300 if value else 0

    memory_plc.write({"pump.running": True})
    assert memory_plc.read_value("line.flow") == 30.0


# -- faults -----------------------------------------------------------------------------------


def test_injected_faults_arrive_as_bifrost_errors_and_the_next_request_reconnects(
    memory_device: MemoryDevice, memory_plc: bf.Connection
):
    memory_device.fail_next(1, TimeoutError)
    memory_device.fail_next(1, ConnectionResetError("cable pulled"))
    memory_device.fail_next(1, bf.TimeoutError("bifrost's own"))
    connects = memory_device.count("connect")
    with pytest.raises(bf.TimeoutError, match=f"no answer from {re.escape(memory_device.url)}"):
        memory_plc.read("tank.level")
    with pytest.raises(bf.ConnectionError, match=r"lost the connection .*cable pulled") as lost:
        memory_plc.read("tank.level")
    assert not isinstance(lost.value, bf.TimeoutError)
    with pytest.raises(bf.TimeoutError, match="bifrost's own"):
        memory_plc.read("tank.level")
    assert memory_device.pending_faults == 0
    assert memory_plc.read_value("tank.level") == 2.5
    # Each failed request dropped the connection; each next one opened a new one.
    assert memory_device.count("connect") == connects + 3
    assert memory_device.count("read", ok=False) == 3


def test_a_protocol_error_is_bad_quality_on_reads_and_raised_on_writes(
    memory_device: MemoryDevice, memory_plc: bf.Connection
):
    memory_device.fail_next(2, bf.ProtocolError("device busy", code=6))
    frame = memory_plc.read(["tank.level", "batch.count"], errors="quality")
    assert frame["quality"].tolist() == ["bad_protocol", "bad_protocol"]
    assert frame["value"].isna().all()
    with pytest.raises(bf.ProtocolError, match="device busy") as caught:
        memory_plc.write({"tank.level": 1.0})
    assert caught.value.code == 6
    assert memory_device["tank.level"] == 2.5
    assert memory_plc.connected  # the device answered: the connection stands


def test_other_exceptions_reach_the_caller_unchanged(
    memory_device: MemoryDevice, memory_plc: bf.Connection
):
    memory_device.fail_next(exc=RuntimeError("driver bug"))
    with pytest.raises(RuntimeError, match="driver bug"):
        memory_plc.read("tank.level")
    memory_device.fail_next(3)
    memory_device.clear_faults()
    assert memory_plc.read_value("tank.level") == 2.5


def test_latency_delays_every_request(memory_device: MemoryDevice, memory_plc: bf.Connection):
    memory_device.latency = 0.03
    started = time.monotonic()
    memory_plc.read("tank.level")
    memory_plc.write({"tank.level": 1.0})
    assert time.monotonic() - started >= 0.06


def test_latency_beyond_the_timeout_times_out(memory_device: MemoryDevice):
    memory_device["a"] = 1.0
    memory_device.latency = 0.5
    with bf.connect(memory_device.url, timeout=0.05) as plc:
        started = time.monotonic()
        with pytest.raises(bf.TimeoutError, match=r"within 0.05 s"):
            plc.read("mem:a")
        assert time.monotonic() - started < 0.4
        memory_device.latency = 0
        assert plc.read_value("mem:a") == 1.0
    # The device saw the request abandoned, as a server sees a client give up.
    assert [c.error for c in memory_device.calls if c.kind == "read"] == ["CancelledError", ""]


def test_a_disconnected_device_drops_connections_and_refuses_new_ones(
    memory_device: MemoryDevice, memory_plc: bf.Connection
):
    assert memory_plc.connected
    memory_device.disconnect()
    assert not memory_plc.connected
    with pytest.raises(bf.ConnectionError, match="the device is disconnected"):
        memory_plc.read("tank.level")
    with pytest.raises(bf.ConnectionError, match="reconnect"):
        bf.connect(memory_device.url)
    memory_device.reconnect()
    assert memory_plc.read_value("tank.level") == 2.5
    assert memory_plc.connected


def test_a_disconnect_during_a_request_fails_it(
    memory_device: MemoryDevice, memory_plc: bf.Connection
):
    memory_device.latency = 0.9  # below the connection's 1 s timeout
    unplug = threading.Timer(0.02, memory_device.disconnect)
    started = time.monotonic()
    unplug.start()
    try:
        with pytest.raises(bf.ConnectionError, match="lost the connection") as caught:
            memory_plc.read("tank.level")
    finally:
        unplug.join()
    assert not isinstance(caught.value, bf.TimeoutError)
    # At once, as a reset connection fails, not when the answer would have come.
    assert time.monotonic() - started < 0.5


def test_values_and_faults_are_validated(memory_device: MemoryDevice):
    with pytest.raises(bf.AddressError, match="unexpected ' '"):
        memory_device["tank level"] = 1.0
    with pytest.raises(ValueError, match="latency"):
        memory_device.latency = -1
    with pytest.raises(ValueError, match="count >= 1"):
        memory_device.fail_next(0)
    with pytest.raises(TypeError, match="exception class or instance"):
        memory_device.fail_next(1, "timeout")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="not a valid Quality"):
        memory_device.set_quality("a", 7)


# -- devices by name, and the fixtures ------------------------------------------------------------


def test_devices_are_shared_by_name():
    with memory_device("shared-by-name", {"a": 1.0}) as device:
        assert memory_device("shared-by-name") is device
        with bf.connect("memory://shared-by-name") as plc:
            assert plc.read_value("mem:a") == 1.0
        with pytest.raises(bf.ConfigurationError, match="exists already"):
            MemoryDevice("shared-by-name")
    # Removed: the name starts afresh.
    assert find_device("shared-by-name") is None
    with memory_device("shared-by-name") as again:
        assert again is not device
        assert len(again) == 0


def test_a_connection_creates_the_device_it_names():
    with bf.connect("memory://made-by-a-connection") as plc:
        device = memory_device("made-by-a-connection")
        try:
            device["x"] = 5.0
            assert plc.read_value("mem:x") == 5.0
            assert device.count("read") == 1
        finally:
            device.remove()


def test_fresh_devices_get_names_of_their_own():
    with memory_device() as a, memory_device() as b:
        assert a.name != b.name
        assert a.url == f"memory://{a.name}"


def test_users_load_the_fixtures_with_one_line(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
):
    # Only pytest's own plugins and the conftest's line: what is tested is that line.
    monkeypatch.setenv("PYTEST_DISABLE_PLUGIN_AUTOLOAD", "1")
    pytester.makeconftest('pytest_plugins = ["bifrost.testing", "pytester"]\n')
    pytester.makepyfile(
        """
        from bifrost.protocols.memory.device import find_device

        def test_uses_both(memory_device, memory_plc):
            assert memory_plc.url == memory_device.url
            memory_device["tank.level"] = 7.5
            assert memory_plc.read_value("tank.level") == 7.5
            memory_plc.write({"batch.count": 3})
            assert memory_device["batch.count"] == 3
            pytest_names.append(memory_device.name)

        pytest_names = []

        def test_the_device_was_removed():
            (name,) = pytest_names
            assert find_device(name) is None
        """
    )
    result = pytester.runpytest_inprocess("-p", "no:cacheprovider", "-W", "error")
    result.assert_outcomes(passed=2)

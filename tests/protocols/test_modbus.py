"""The Modbus driver against a real pymodbus server on a free loopback port."""

from __future__ import annotations

import socket
import struct
import time

import numpy as np
import pytest
from modbus_server import ModbusTestServer

import bifrost as bf
from bifrost.model import ByteOrder

FORMATS = {
    "int16": "h",
    "uint16": "H",
    "int32": "i",
    "uint32": "I",
    "int64": "q",
    "uint64": "Q",
    "float32": "f",
    "float64": "d",
}
SAMPLES = {
    "int16": -12345,
    "uint16": 54321,
    "int32": -123456789,
    "uint32": 3456789012,
    "int64": -1234567890123456789,
    "uint64": 17234567890123456789,
    "float32": 123.45600128173828,  # exactly representable as float32
    "float64": -9876.54321,
}


def wire(value: object, fmt: str, order: ByteOrder) -> list[int]:
    raw = struct.pack(">" + fmt, value)
    words = [raw[i : i + 2] for i in range(0, len(raw), 2)]
    if order.swap_words:
        words.reverse()
    if order.swap_bytes:
        words = [w[::-1] for w in words]
    return [int.from_bytes(w, "big") for w in words]


def cases() -> list[tuple[str, ByteOrder]]:
    return [
        (name, order)
        for name in FORMATS
        for order in ByteOrder
        if struct.calcsize(FORMATS[name]) > 2 or not order.swap_words
    ]


@pytest.fixture
def plc(modbus_server: ModbusTestServer):
    with bf.connect(modbus_server.url, timeout=2.0) as connection:
        yield connection


@pytest.fixture
def wplc(modbus_server: ModbusTestServer):
    with bf.connect(modbus_server.url, writable=True, timeout=2.0) as connection:
        yield connection


def test_every_type_and_order_decodes_what_the_device_holds(modbus_server, plc):
    addresses = []
    expected = []
    offset = 100
    for name, order in cases():
        words = wire(SAMPLES[name], FORMATS[name], order)
        modbus_server.set("hr", offset, words)
        addresses.append(f"hr:{offset}:{name}:{order.value}")
        expected.append(SAMPLES[name])
        offset += len(words) + 1
    before = modbus_server.requests
    frame = plc.read(addresses)
    # 26 scattered values within ~110 registers: one request, not one per tag.
    assert modbus_server.requests - before == 1
    assert list(frame.index) == addresses
    assert (frame["quality"] == "good").all()
    for address, want, got in zip(addresses, expected, frame["value"], strict=True):
        assert got == pytest.approx(want, rel=1e-12), address


@pytest.mark.parametrize(("name", "order"), cases())
def test_write_then_read_round_trips(wplc, modbus_server, name, order):
    address = f"hr:400:{name}:{order.value}"
    wplc.write({address: SAMPLES[name]})
    assert modbus_server.get("hr", 400, len(wire(SAMPLES[name], FORMATS[name], order))) == wire(
        SAMPLES[name], FORMATS[name], order
    )
    assert wplc.read_value(address) == pytest.approx(SAMPLES[name], rel=1e-12)


def test_bits_strings_and_input_registers(modbus_server, plc):
    modbus_server.set("co", 3, [True, False, True])
    modbus_server.set("di", 7, [True])
    modbus_server.set("ir", 5, [4242])
    modbus_server.set("hr", 20, [0x4142, 0x4344, 0x4500, 0])
    frame = plc.read(["co:3", "co:4", "00006", "di:7", "10008", "ir:5", "30006", "hr:20:string[8]"])
    assert frame["value"].tolist() == [True, False, True, True, True, 4242, 4242, "ABCDE"]


def test_scale_offset_and_units_from_the_tag_table(modbus_server):
    modbus_server.set("hr", 30, [250])
    tags = bf.TagTable([bf.Tag("tank.level", "hr:30:int16", unit="cm", scale=0.1, offset=5.0)])
    with bf.connect(modbus_server.url, tags=tags) as plc:
        frame = plc.read(["tank.level"])
        assert frame.loc["tank.level", "value"] == pytest.approx(30.0)
        assert frame.loc["tank.level", "unit"] == "cm"
        assert frame.loc["tank.level", "address"] == "hr:30:int16"
        assert str(frame["timestamp"].dt.tz) == "UTC"
        assert plc.browse().loc["tank.level", "dtype"] == "int16"


def test_1000_tags_take_eight_requests(modbus_server, plc):
    modbus_server.set("hr", 0, list(range(1000)))
    before = modbus_server.requests
    values = plc.read([f"hr:{i}" for i in range(1000)])["value"].to_numpy()
    assert modbus_server.requests - before == 8
    np.testing.assert_array_equal(values.astype(int), np.arange(1000))


def test_device_exception_names_tag_and_code(plc):
    with pytest.raises(bf.ProtocolError) as caught:
        plc.read(["hr:2500:float32"])
    assert caught.value.code == 2
    assert "ILLEGAL DATA ADDRESS" in str(caught.value)
    assert "hr:2500:float32" in str(caught.value)
    assert caught.value.tags == ("hr:2500:float32",)


def test_errors_quality_keeps_good_tags(plc, modbus_server):
    modbus_server.set("hr", 1995, [7])
    modbus_server.set("hr", 3001, [9])
    frame = plc.read(["hr:1995", "hr:2500", "hr:3001"], errors="quality")
    assert frame["quality"].tolist() == ["good", "bad_protocol", "good"]
    assert frame["value"].tolist() == [7, None, 9]


def test_a_merge_over_a_hole_falls_back_to_the_tags_own_ranges(plc, modbus_server):
    # 1998 and 2001 are close enough to merge, but 2000 does not exist on the device.
    modbus_server.set("hr", 1998, [11, 12])
    frame = plc.read(["hr:1998", "hr:1999", "hr:2001"], errors="quality")
    assert frame["value"].tolist() == [11, 12, None]
    assert frame["quality"].tolist() == ["good", "good", "bad_protocol"]


def test_unit_ids(modbus_server):
    modbus_server.set("hr", 50, [222], unit=2)
    with bf.connect(modbus_server.url, unit=2) as plc:
        assert plc.read_value("hr:50") == 222
    with bf.connect(modbus_server.url) as plc:
        assert plc.read_value("hr:50@2") == 222
        with pytest.raises(bf.ConfigurationError, match="outside 1-247"):
            plc.read_value("hr:50@250")
    for bad in (0, 248, 300):
        with pytest.raises(bf.ConfigurationError, match=str(bad)):
            bf.connect(modbus_server.url, unit=bad)


def test_writes_are_refused_unless_allowed(plc, modbus_server):
    before = modbus_server.requests
    with pytest.raises(bf.WriteNotAllowed, match="writable=True"):
        plc.write({"hr:60": 1})
    assert modbus_server.requests == before


def test_bad_values_fail_before_anything_is_sent(wplc, modbus_server):
    modbus_server.set("hr", 60, [5, 6])
    before = modbus_server.requests
    with pytest.raises(bf.ValueOutOfRange, match="'hr:61:int16'"):
        wplc.write({"hr:60": 1, "hr:61:int16": 40000})
    with pytest.raises(bf.WriteNotAllowed, match="input registers"):
        wplc.write({"ir:1": 1})
    with pytest.raises(bf.AddressError, match="position 3"):
        wplc.write({"hr:x1": 1})
    assert modbus_server.requests == before
    assert modbus_server.get("hr", 60, 2) == [5, 6]


def test_read_only_tags_in_the_table_cannot_be_written(modbus_server):
    tags = bf.TagTable(
        [bf.Tag("sp", "hr:70:float32", writable=True), bf.Tag("pv", "hr:72:float32")]
    )
    with bf.connect(modbus_server.url, tags=tags, writable=True) as plc:
        plc.write({"sp": 75.5})
        assert plc.read_value("sp") == 75.5
        with pytest.raises(bf.WriteNotAllowed, match="'pv' is read-only"):
            plc.write({"pv": 1.0})


def test_malformed_addresses_and_unknown_names_fail_before_io(plc, modbus_server):
    before = modbus_server.requests
    with pytest.raises(bf.AddressError, match="position 13"):
        plc.read(["hr:0:float32:ABDC"])
    with pytest.raises(bf.TagNotFound, match=r"tank\.level"):
        plc.read(["tank.level"])
    assert modbus_server.requests == before


def test_refused_port_fails_fast_naming_host_and_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(bf.ConnectionError, match=f"127.0.0.1:{port}"):
        bf.connect(f"modbus://127.0.0.1:{port}", timeout=1.0)
    assert time.monotonic() - started < 3.0


def test_silent_device_times_out_naming_host_and_port():
    # A listener that accepts connections but never answers a request.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        with bf.connect(f"modbus://127.0.0.1:{port}", timeout=0.5) as plc:
            started = time.monotonic()
            with pytest.raises(bf.TimeoutError, match=f"127.0.0.1:{port}") as caught:
                plc.read(["hr:0"])
            assert time.monotonic() - started < 2.5
            assert isinstance(caught.value, bf.BifrostError)


def test_reconnects_after_the_server_restarts(no_thread_leak):
    server = ModbusTestServer().start()
    server.set("hr", 0, [1])
    plc = bf.connect(server.url, timeout=1.0)
    try:
        assert plc.read_value("hr:0") == 1
        port = server.port
        server.stop()
        with pytest.raises(bf.ConnectionError, match=f"127.0.0.1:{port}"):
            plc.read_value("hr:0")
        server = ModbusTestServer(port=port).start()
        server.set("hr", 0, [2])
        assert plc.read_value("hr:0") == 2
    finally:
        plc.close()
        server.stop()


def test_bad_options_are_configuration_errors(modbus_server):
    with pytest.raises(bf.ConfigurationError, match="unknown Modbus option 'baud'"):
        bf.connect(modbus_server.url, baud=9600)
    with pytest.raises(bf.ConfigurationError, match="unsupported URL scheme 'http'"):
        bf.connect("http://127.0.0.1")
    with pytest.raises(bf.ConfigurationError, match="not a device URL"):
        bf.connect("127.0.0.1:502")


def test_info_names_the_endpoint(plc, modbus_server):
    info = plc.info()
    assert info["protocol"] == "modbus"
    assert info["endpoint"] == f"127.0.0.1:{modbus_server.port}"


def test_adjacent_tags_running_past_the_last_register(plc, modbus_server):
    # 1995..1999 exist, 2000 and 2001 do not: one merged request is refused, then each
    # tag is read on its own, once (no endless splitting).
    modbus_server.set("hr", 1995, [1, 2, 3, 4, 5])
    before = modbus_server.requests
    frame = plc.read([f"hr:{i}" for i in range(1995, 2002)], errors="quality")
    assert frame["value"].tolist() == [1, 2, 3, 4, 5, None, None]
    assert frame["quality"].tolist() == ["good"] * 5 + ["bad_protocol"] * 2
    assert modbus_server.requests - before == 1 + 7


def test_explain_shows_the_requests_a_read_sends(plc, modbus_server):
    tags = [f"hr:{i}" for i in range(300)] + ["co:5", "hr:1000:float32"]
    plan = plc.explain(tags)
    assert plan["request"].tolist() == [
        "read_holding_registers",
        "read_holding_registers",
        "read_holding_registers",
        "read_holding_registers",
        "read_coils",
    ]
    assert plan["count"].tolist() == [125, 125, 50, 2, 1]
    assert plan["tags"].sum() == len(tags)
    before = modbus_server.requests
    plc.read(tags)
    assert modbus_server.requests - before == len(plan)


def test_the_read_frame_is_the_one_pandas_constructor_builds(plc, modbus_server):
    # read_frame puts ready-made blocks together; the frame must be what the plain
    # constructor makes of the same columns (dtypes, index, values, quality).
    import pandas as pd

    from bifrost.frames import ReadLayout, quality_categorical, read_frame, utc_index

    tags = plc.resolve(["hr:0:float32", "hr:2:int16", "co:0", "hr:10:string[4]", "hr:4"])
    result = plc.read_result(tags)
    layout = ReadLayout(tags)
    expected = pd.DataFrame(
        {
            "value": result.values(),
            "quality": quality_categorical(result.quality),
            "timestamp": utc_index(result.timestamp_ns, name=None),
            "unit": layout.units,
            "address": layout.addresses,
        },
        index=layout.index,
    )
    frame = read_frame(result, layout)
    pd.testing.assert_frame_equal(frame, expected)
    frame.loc[frame.index[0], "unit"] = "changed"  # a frame's cells are its own
    assert read_frame(result, layout).loc[frame.index[0], "unit"] == ""


def test_a_read_runs_on_the_event_loop_without_a_thread_per_device(modbus_server):
    import threading

    before = {t.name for t in threading.enumerate()}
    connections = [bf.connect(modbus_server.url) for _ in range(5)]
    try:
        for plc in connections:
            assert plc.read_value("hr:4") is not None
        started = {t.name for t in threading.enumerate()} - before
        assert not [name for name in started if name.startswith("bifrost-modbus")]
    finally:
        for plc in connections:
            plc.close()


def test_pipeline_option_is_checked(modbus_server):
    with pytest.raises(bf.ConfigurationError, match="pipeline must be 1-64"):
        bf.connect(modbus_server.url, pipeline=0)
    with pytest.raises(bf.ConfigurationError, match="pipeline='x' is invalid"):
        bf.connect(f"{modbus_server.url}?pipeline=x")
    with pytest.raises(bf.ConfigurationError, match="serial line"):
        bf.Connection("modbus+rtu:///dev/null", pipeline=4)

"""The S7 driver against a real python-snap7 server on a free loopback port.

The server is :class:`bifrost.protocols.s7.server.S7Server`: snap7's own server with PLC-like
bit writes and request counters (see its module docstring for what it changes).
"""

from __future__ import annotations

import asyncio
import math
import socket
import struct
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from snap7.type import SrvArea

import bifrost as bf
from bifrost.protocols.registry import driver_for_url
from bifrost.protocols.s7.driver import S7Driver
from bifrost.protocols.s7.options import S7Options
from bifrost.protocols.s7.plan import layout
from bifrost.protocols.s7.server import S7Server
from bifrost.protocols.s7.tia import tags_from_tia

DB1 = 1  # typed values
DB2 = 2  # strings and bits
DB9 = 9  # 16,000 bytes of REALs every 4 bytes (value = index)
SIZE = 256


def fill_db1(memory: bytearray) -> None:
    struct.pack_into(">B", memory, 0, 0xA5)  # BYTE
    struct.pack_into(">b", memory, 1, -100)  # SINT
    struct.pack_into(">H", memory, 2, 54321)  # WORD / UINT
    struct.pack_into(">h", memory, 4, -12345)  # INT
    struct.pack_into(">I", memory, 6, 3456789012)  # DWORD / UDINT
    struct.pack_into(">i", memory, 10, -123456789)  # DINT
    struct.pack_into(">f", memory, 14, 123.456001281738)  # REAL
    struct.pack_into(">d", memory, 18, -9876.54321)  # LREAL
    struct.pack_into(">q", memory, 26, -1234567890123456789)  # LINT
    struct.pack_into(">Q", memory, 34, 17234567890123456789)  # ULINT / LWORD
    struct.pack_into(">h", memory, 42, 725)  # INT, read scaled by 0.1


def fill_db2(memory: bytearray) -> None:
    memory[0] = 0b1010_0101
    memory[10:16] = bytes((20, 5)) + b"hell"  # STRING[20], header + start
    memory[16] = ord("o")
    memory[40] = ord("Z")  # CHAR
    memory[50:54] = bytes((2, 9)) + b"ab"  # current length 9 > maximum 2: trust maximum


class Areas:
    def __init__(self) -> None:
        self.db1 = bytearray(SIZE)
        self.db2 = bytearray(SIZE)
        self.db9 = bytearray(16000)
        self.mk = bytearray(64)
        self.pe = bytearray(16)
        self.pa = bytearray(16)
        self.reset()

    def reset(self) -> None:
        for memory in (self.db1, self.db2, self.mk, self.pe, self.pa):
            memory[:] = bytes(len(memory))
        fill_db1(self.db1)
        fill_db2(self.db2)
        self.db9[:] = np.arange(4000, dtype=">f4").tobytes()
        struct.pack_into(">H", self.mk, 10, 4242)
        self.mk[3] = 0b0000_0010
        struct.pack_into(">h", self.pe, 4, -2)
        self.pe[0] = 1
        self.pa[1] = 0b0000_0100
        struct.pack_into(">f", self.pa, 4, 2.5)


def start_server(areas: Areas, port: int = 0) -> S7Server:
    server = S7Server()
    server.register_area(SrvArea.DB, DB1, areas.db1)
    server.register_area(SrvArea.DB, DB2, areas.db2)
    server.register_area(SrvArea.DB, DB9, areas.db9)
    server.register_area(SrvArea.MK, 0, areas.mk)
    server.register_area(SrvArea.PE, 0, areas.pe)
    server.register_area(SrvArea.PA, 0, areas.pa)
    server.start_to("127.0.0.1", port)
    return server


@pytest.fixture(scope="module")
def areas() -> Areas:
    return Areas()


@pytest.fixture(scope="module")
def server(areas: Areas) -> Iterator[S7Server]:
    s = start_server(areas)
    yield s
    s.stop()


@pytest.fixture
def url(server: S7Server, areas: Areas) -> str:
    areas.reset()
    server.reset_counters()
    return f"s7://127.0.0.1:{server.bound_port}"


@pytest.fixture
def plc(url: str) -> Iterator[bf.Connection]:
    with bf.connect(url, timeout=2.0) as connection:
        yield connection


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# -- options ---------------------------------------------------------------------------------
def test_url_and_keyword_options() -> None:
    options = S7Options.from_url("s7://10.0.0.5?rack=0&slot=2&timeout=1.5")
    assert (options.host, options.port, options.rack, options.slot) == ("10.0.0.5", 102, 0, 2)
    assert options.timeout == 1.5
    options = S7Options.from_url("s7://127.0.0.1:10102?slot=2", slot=3, rack=1)
    assert (options.port, options.rack, options.slot) == (10102, 1, 3)
    assert isinstance(driver_for_url("s7://127.0.0.1:10102"), S7Driver)


@pytest.mark.parametrize(
    ("url", "kwargs", "fragment"),
    [
        ("s7://h", {"rack": 8}, "rack 8"),
        ("s7://h", {"slot": 32}, "slot 32"),
        ("s7://h?slot=x", {}, "slot='x'"),
        ("s7://h", {"rack": True}, "rack=True"),
        ("s7://h", {"timeout": 0}, "timeout"),
        ("s7://h", {"unit": 1}, "unknown S7 option 'unit'"),
        ("s7://h:99999", {}, "s7://h:99999"),
        ("s7://h", {"item_cost": -1}, "item_cost"),
    ],
)
def test_bad_options_are_configuration_errors(
    url: str, kwargs: dict[str, object], fragment: str
) -> None:
    with pytest.raises(bf.ConfigurationError) as info:
        S7Options.from_url(url, **kwargs)  # type: ignore[arg-type]
    assert fragment in str(info.value)


# -- decoding ---------------------------------------------------------------------------------
EXPECTED = {
    "DB1.DBB0": 0xA5,
    "DB1.DBB0:USINT": 0xA5,
    "DB1.DBB1:SINT": -100,
    "DB1.DBW2": 54321,
    "DB1.DBW2:UINT": 54321,
    "DB1.DBW4:INT": -12345,
    "DB1.DBD6": 3456789012,
    "DB1.DBD6:UDINT": 3456789012,
    "DB1.DBD10:DINT": -123456789,
    "DB1.DBD14:REAL": 123.456001281738,
    "DB1.DBD18:LREAL": -9876.54321,
    "DB1.DBD26:LINT": -1234567890123456789,
    "DB1.DBD34:ULINT": 17234567890123456789,
    "DB1.DBD34:LWORD": 17234567890123456789,
    "DB2.DBX0.0": True,
    "DB2.DBX0.1": False,
    "DB2.DBX0.2": True,
    "DB2.DBX0.7": True,
    "DB2.DBX0.6": False,
    "DB2.DBB10:STRING[20]": "hello",
    "DB2.DBB40:CHAR": "Z",
    "DB2.DBB50:STRING[2]": "ab",
    "MW10": 4242,
    "M3.1": True,
    "M3.0": False,
    "I0.0": True,
    "E0.1": False,
    "IW4:INT": -2,
    "Q1.2": True,
    "A1.3": False,
    "QD4:REAL": 2.5,
}


def test_every_type_and_area_decodes(plc: bf.Connection) -> None:
    frame = plc.read(list(EXPECTED))
    assert (frame["quality"] == "good").all()
    for address, expected in EXPECTED.items():
        value = frame.loc[address, "value"]
        if isinstance(expected, float):
            assert math.isclose(value, expected, rel_tol=1e-12), address
        else:
            assert value == expected, address
            assert type(value) is type(expected), address


def test_result_columns_keep_numpy_dtypes(url: str) -> None:
    async def main() -> None:
        async with bf.aio.connect(url) as plc:
            result = await plc.read_result(["DB1.DBD14:REAL", "DB1.DBW4:INT", "DB2.DBX0.0"])
            kinds = sorted(values.dtype.name for _, values in result.columns)
            assert kinds == ["bool", "float32", "int16"]

    asyncio.run(main())


def test_scale_and_offset_apply(url: str) -> None:
    tag = bf.Tag("heater", "DB1.DBW42:INT", scale=0.1, offset=1.0)
    with bf.connect(url, tags=[tag]) as plc:
        assert plc.read_value("heater") == pytest.approx(73.5)


# -- planning, counted on the server ------------------------------------------------------------
def test_scattered_tags_are_merged_into_few_requests(plc: bf.Connection, server: S7Server) -> None:
    tags = [f"DB9.DBD{16 * i}:REAL" for i in range(1000)]
    values = plc.read(tags)["value"].to_numpy(dtype=float)
    np.testing.assert_array_equal(values, np.arange(0, 4000, 4, dtype=float))
    assert server.read_requests == 35  # 16,000 bytes / 462 per PDU, not 1,000 items
    assert server.read_items == 35


def test_small_tags_in_many_areas_share_one_multi_item_request(
    plc: bf.Connection, server: S7Server
) -> None:
    tags = ["DB1.DBW4:INT", "DB2.DBX0.0", "DB9.DBD400:REAL", "MW10", "I0.0", "QD4:REAL"]
    frame = plc.read(tags)
    assert frame["value"].tolist() == [-12345, True, 100.0, 4242, True, 2.5]
    assert (server.read_requests, server.read_items) == (1, 6)


def test_a_read_larger_than_the_pdu_is_split(plc: bf.Connection, server: S7Server) -> None:
    tags = [f"DB9.DBD{4 * i}:REAL" for i in range(300)]  # 1,200 contiguous bytes
    values = plc.read(tags)["value"].to_numpy(dtype=float)
    np.testing.assert_array_equal(values, np.arange(300, dtype=float))
    assert server.read_requests == 3


def test_the_plan_follows_the_negotiated_pdu(url: str) -> None:
    driver = S7Driver(S7Options.from_url(url))
    plan = driver.compile_read([bf.Tag(f"t{i}", f"DB9.DBD{4 * i}:REAL") for i in range(300)])
    assert len(layout(plan, 480, driver.options).packets) == 3
    assert len(layout(plan, 240, driver.options).packets) == 6  # 222 bytes per request
    assert len(layout(plan, 960, driver.options).packets) == 2


def test_refused_items_give_bad_quality_for_those_tags_only(
    plc: bf.Connection, areas: Areas
) -> None:
    tags = ["DB1.DBW4:INT", "DB8.DBW0", f"DB1.DBW{SIZE - 2}", f"DB1.DBD{SIZE - 2}:REAL"]
    frame = plc.read(tags, errors="quality")
    assert frame["quality"].tolist() == ["good", "bad_protocol", "good", "bad_protocol"]
    assert frame["value"].iloc[0] == -12345
    with pytest.raises(bf.ProtocolError) as info:
        plc.read(tags)
    assert info.value.code in (0x05, 0x0A)
    assert info.value.tags in (("DB8.DBW0",), (f"DB1.DBD{SIZE - 2}:REAL",))


# -- writing --------------------------------------------------------------------------------------
def test_writes_need_a_writable_connection(plc: bf.Connection, server: S7Server) -> None:
    with pytest.raises(bf.WriteNotAllowed, match="read-only"):
        plc.write({"DB1.DBW4:INT": 1})
    assert server.write_requests == 0


def test_read_only_table_tags_and_inputs_are_refused(url: str, server: S7Server) -> None:
    tags = [bf.Tag("fixed", "DB1.DBW4:INT"), bf.Tag("sp", "DB1.DBD14:REAL", writable=True)]
    with bf.connect(url, tags=tags, writable=True) as plc:
        with pytest.raises(bf.WriteNotAllowed, match="fixed"):
            plc.write({"sp": 1.0, "fixed": 2})
        with pytest.raises(bf.WriteNotAllowed, match="process input"):
            plc.write({"IW4": 1})
    assert server.write_requests == 0


@pytest.mark.parametrize(
    ("address", "value", "fragment"),
    [
        ("DB1.DBW4:INT", 40000, "outside"),
        ("DB1.DBB0", -1, "outside"),
        ("DB1.DBB1:SINT", 1.5, "not representable"),
        ("DB1.DBD6", -1, "outside"),
        ("DB1.DBD14:REAL", "x", "not a number"),
        ("DB2.DBX0.0", 2, "bool"),
        ("DB2.DBB10:STRING[20]", "x" * 21, "room for 20"),
        ("DB2.DBB40:CHAR", "ab", "room for 1"),
    ],
)
def test_values_are_checked_before_anything_is_sent(
    url: str, server: S7Server, address: str, value: object, fragment: str
) -> None:
    with bf.connect(url, writable=True) as plc:
        with pytest.raises(bf.ValueOutOfRange, match=fragment):
            plc.write({"DB1.DBW2": 7, address: value})
        assert plc.read_value("DB1.DBW2") == 54321  # the valid value was not sent either
    assert server.write_requests == 0


WRITES = {
    "DB1.DBB0": 7,
    "DB1.DBB1:SINT": -7,
    "DB1.DBW2": 65535,
    "DB1.DBW4:INT": -32768,
    "DB1.DBD6": 4294967295,
    "DB1.DBD10:DINT": -2147483648,
    "DB1.DBD14:REAL": -1.5,
    "DB1.DBD18:LREAL": 1e300,
    "DB1.DBD26:LINT": -(2**63),
    "DB1.DBD34:ULINT": 2**64 - 1,
    "DB2.DBB10:STRING[20]": "Grüße",
    "DB2.DBB40:CHAR": "q",
    "MW20": 1234,
    "QD8:REAL": 9.75,
}


def test_writes_round_trip_every_type(url: str, areas: Areas) -> None:
    with bf.connect(url, writable=True) as plc:
        plc.write(WRITES)
        assert plc.read(list(WRITES))["value"].tolist() == list(WRITES.values())
    assert areas.db2[10:12] == bytes((20, 5))  # STRING header: maximum, current length


def test_a_bool_write_changes_only_its_bit(url: str, areas: Areas, server: S7Server) -> None:
    areas.db2[0] = 0b1010_1010
    areas.mk[5] = 0b1111_1111
    with bf.connect(url, writable=True) as plc:
        plc.write({"DB2.DBX0.0": True, "DB2.DBX0.1": False, "M5.3": False, "Q1.7": True})
        assert plc.read_value("DB2.DBX0.0") is True
    assert areas.db2[0] == 0b1010_1001
    assert areas.mk[5] == 0b1111_0111
    assert areas.pa[1] == 0b1000_0100
    assert server.write_requests == 4  # one bit-level request each, no read-modify-write
    assert server.read_requests == 1  # only the read_value above


def test_refused_writes_raise_protocol_errors(url: str) -> None:
    with bf.connect(url, writable=True) as plc:
        with pytest.raises(bf.ProtocolError, match=r"DB8\.DBW0") as info:
            plc.write({"DB8.DBW0": 1})
        assert info.value.code == 0x0A
        assert info.value.tags == ("DB8.DBW0",)
        with pytest.raises(bf.ProtocolError) as info:
            plc.write({f"DB1.DBD{SIZE - 2}:REAL": 1.0})
        assert info.value.code == 0x05


# -- info and browse ---------------------------------------------------------------------------
def test_info_has_cpu_order_code_and_data_blocks(plc: bf.Connection) -> None:
    info = plc.info()
    assert info["protocol"] == "s7"
    assert info["model"] == "CPU 315-2 PN/DP"
    assert info["order_code"] == "6ES7 315-2EH14-0AB0"
    assert info["firmware"] == "3.3.0"
    assert info["data_blocks"] == [DB1, DB2, DB9]
    assert info["blocks"]["DB"] == 3
    assert info["pdu_size"] == 480


def test_browse_lists_the_tag_table_with_s7_details(url: str) -> None:
    tags = [
        bf.Tag("level", "DB1.DBD14:REAL", unit="m", writable=True),
        bf.Tag("alarm", "DB2.DBX0.2"),
        bf.Tag("name", "DB2.DBB10:STRING[20]"),
    ]
    with bf.connect(url, tags=tags) as plc:
        frame = plc.browse()
    assert frame.loc["level", "dtype"] == "float32"
    assert frame.loc["level", "s7type"] == "REAL"
    assert frame.loc["level", "db"] == 1
    assert bool(frame.loc["level", "writable"]) is True
    assert frame.loc["alarm", "bit"] == 2
    assert frame.loc["name", "dtype"] == "string[20]"
    assert frame.loc["name", "bytes"] == 22


# -- errors -------------------------------------------------------------------------------------
def test_a_bad_address_fails_before_any_io(plc: bf.Connection, server: S7Server) -> None:
    with pytest.raises(bf.AddressError) as info:
        plc.read(["DB1.DBW4:INT", "DB1.DBD4:INT"])
    assert info.value.position == 9
    with pytest.raises(bf.TagNotFound):
        plc.read("no.such.tag")
    assert server.read_requests == 0


def test_nobody_listening_is_a_connection_error_naming_the_endpoint() -> None:
    port = free_port()
    started = time.monotonic()
    with pytest.raises(bf.ConnectionError, match=f"127.0.0.1:{port}") as info:
        bf.connect(f"s7://127.0.0.1:{port}", timeout=1.0)
    assert not isinstance(info.value, bf.TimeoutError)
    assert time.monotonic() - started < 5


def test_a_silent_peer_times_out_naming_the_endpoint() -> None:
    # Accepts TCP but never answers the ISO connection request.
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)
        port = listener.getsockname()[1]
        with pytest.raises(bf.TimeoutError, match=f"127.0.0.1:{port}.*0.5 s"):
            bf.connect(f"s7://127.0.0.1:{port}", timeout=0.5)


def test_a_stopped_server_is_a_connection_error_and_a_restart_recovers(
    no_thread_leak: None,
) -> None:
    areas = Areas()
    server = start_server(areas)
    port = server.bound_port
    try:
        with bf.connect(f"s7://127.0.0.1:{port}", timeout=1.0) as plc:
            assert plc.read_value("MW10") == 4242
            server.stop()
            with pytest.raises(bf.ConnectionError, match=f"127.0.0.1:{port}"):
                plc.read_value("MW10")
            assert not plc.connected
            with pytest.raises(bf.ConnectionError, match=f"127.0.0.1:{port}"):
                plc.read_value("MW10")  # reconnecting fails while the server is down
            server = start_server(areas, port)
            assert plc.read_value("MW10") == 4242
    finally:
        server.stop()


def test_close_leaves_no_thread_and_calls_share_one_worker(url: str, no_thread_leak: None) -> None:
    with bf.connect(url) as plc:
        results = []

        def reader() -> None:
            for _ in range(20):
                results.append(plc.read(["DB1.DBW4:INT", "MW10"])["value"].tolist())

        threads = [threading.Thread(target=reader) for _ in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(30)
        assert results == [[-12345, 4242]] * 80
        workers = [t for t in threading.enumerate() if t.name.startswith("bifrost-s7-")]
        assert len(workers) == 1


def test_concurrent_async_reads_are_serialised_off_the_loop(url: str) -> None:
    async def main() -> None:
        async with bf.aio.connect(url) as plc:
            ticks = 0

            async def ticker() -> None:
                nonlocal ticks
                while True:
                    ticks += 1
                    await asyncio.sleep(0)

            task = asyncio.create_task(ticker())
            frames = await asyncio.gather(*(plc.read(["DB9.DBD0:REAL"] * 1) for _ in range(30)))
            task.cancel()
            assert all(f["value"].iloc[0] == 0.0 for f in frames)
            assert ticks > 0  # the loop ran other work while the reads were in flight

    asyncio.run(main())


# -- TIA Portal import ----------------------------------------------------------------------------
TIA_XML = """<?xml version="1.0" encoding="utf-8"?>
<Document>
  <SW.Blocks.GlobalDB ID="0">
    <AttributeList>
      <Name>Plant</Name>
      <Number>1</Number>
      <MemoryLayout>Standard</MemoryLayout>
      <Interface>
        <Sections xmlns="http://www.siemens.com/automation/Openness/SW/Interface/v5">
          <Section Name="Static">
            <Member Name="Level" Datatype="Real" Offset="0" />
            <Member Name="Count" Datatype="Int" Offset="4" />
            <Member Name="Run" Datatype="Bool" Offset="6.1" />
            <Member Name="Recipe" Datatype="String[10]" Offset="8" />
          </Section>
        </Sections>
      </Interface>
    </AttributeList>
  </SW.Blocks.GlobalDB>
</Document>
"""


# TIA Portal's "Generate source from blocks" export of a standard (not optimised) DB.
def test_tags_from_a_tia_portal_export(tmp_path: Path) -> None:
    path = tmp_path / "plant.xml"
    path.write_text(TIA_XML, encoding="utf-8")
    table = tags_from_tia(path)
    addresses = {t.name.rsplit(".", 1)[-1]: t.address for t in table}
    assert addresses["Level"] == "DB1.DBD0:REAL"
    assert addresses["Count"] == "DB1.DBW4:INT"
    assert addresses["Run"] == "DB1.DBX6.1"
    assert addresses["Recipe"] == "DB1.DBB8:STRING[10]"
    with pytest.raises(bf.ConfigurationError, match="TIA Portal export"):
        tags_from_tia(tmp_path / "missing.xml")

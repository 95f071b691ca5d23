"""S7 connection types and refused access, against python-snap7's server.

The server (:class:`bifrost.protocols.s7.server.S7Server`) answers 0x0A for a data block
it does not have and 0x05 past a block's end, as a PLC does; with ``put_get = False`` it
refuses every request in the reply's header (0x8104), as an S7-1200/1500 with PUT/GET
access off does. A proxy between client and server records the connection request, so
the connection type is checked as it goes on the wire.
"""

from __future__ import annotations

import asyncio
import struct
from collections.abc import Iterator

import pytest
from snap7.error import S7ProtocolError
from snap7.type import SrvArea
from tcp_proxy import FaultyProxy

import bifrost as bf
from bifrost.protocols.s7.errors import FUNCTION_REFUSED, PUT_GET, diagnose, error_code
from bifrost.protocols.s7.preflight import preflight
from bifrost.protocols.s7.server import S7Server


class RecordingProxy(FaultyProxy):
    """Forwards to the server and keeps every chunk of bytes it saw, in order."""

    def __init__(self, target_port: int) -> None:
        super().__init__(target_port)
        self.chunks: list[bytes] = []

    async def _pipe(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while data := await reader.read(65536):
            self.chunks.append(data)
            writer.write(data)
            await writer.drain()
        writer.close()

    def called_tsap(self) -> bytes:
        """The remote TSAP of the first COTP connection request (TPKT, then 0xE0)."""
        request = next(c for c in self.chunks if len(c) > 5 and c[5] == 0xE0)
        at = request.index(b"\xc2\x02", 11)  # parameter code 0xC2, length 2
        return request[at + 2 : at + 4]


@pytest.fixture(scope="module")
def server() -> Iterator[S7Server]:
    s = S7Server()
    db1 = bytearray(64)
    struct.pack_into(">h", db1, 4, -321)
    s.register_area(SrvArea.DB, 1, db1)
    s.register_area(SrvArea.MK, 0, bytearray(16))
    s.start_to("127.0.0.1", 0)
    yield s
    s.stop()


@pytest.fixture
def url(server: S7Server) -> Iterator[str]:
    server.put_get = True
    yield f"s7://127.0.0.1:{server.bound_port}"
    server.put_get = True


# -- connection types -----------------------------------------------------------------------
@pytest.mark.parametrize(("kind", "byte"), [(None, 2), ("op", 2), ("pg", 1), ("basic", 3)])
def test_the_connection_type_goes_in_the_remote_tsap(server, kind, byte):
    proxy = RecordingProxy(server.bound_port).start()
    try:
        options = {} if kind is None else {"connection_type": kind}
        with bf.connect(f"s7://127.0.0.1:{proxy.port}?slot=1", timeout=2.0, **options) as plc:
            assert plc.read_value("DB1.DBW4:INT") == -321
            assert plc.info()["connection_type"] == (kind or "op")
        assert proxy.called_tsap() == bytes((byte, 0 << 5 | 1))  # type, then rack/slot
    finally:
        proxy.stop()


def test_an_unknown_connection_type_is_refused_before_connecting():
    with pytest.raises(bf.ConfigurationError, match=r"connection_type='tia' is not one of 'pg'"):
        bf.connect("s7://127.0.0.1:1", connection_type="tia")


# -- refusals the server produces ---------------------------------------------------------
def test_a_missing_data_block_names_it_and_what_to_check(url):
    with bf.connect(url, timeout=2.0) as plc:
        with pytest.raises(bf.ProtocolError) as caught:
            plc.read(["DB1.DBW4:INT", "DB8.DBW0"])
        assert caught.value.code == 0x0A
        message = str(caught.value)
        assert "DB8 does not exist in the CPU" in message
        assert "open DB8's Properties > Attributes" in message
        assert "'Optimized block access'" in message


def test_a_read_past_the_end_of_a_block_names_the_block(url):
    with bf.connect(url, timeout=2.0) as plc:
        frame = plc.read(["DB1.DBW4:INT", "DB1.DBD62:REAL"], errors="quality")
        assert frame["quality"].tolist() == ["good", "bad_protocol"]
        with pytest.raises(bf.ProtocolError, match="DB1 has no bytes at this offset") as caught:
            plc.read("DB1.DBD62:REAL")
        assert caught.value.code == 0x05


def test_put_get_off_says_what_to_change_in_tia_portal(url, server):
    server.put_get = False
    with bf.connect(url, timeout=2.0, writable=True) as plc:
        with pytest.raises(bf.ProtocolError) as caught:
            plc.read("DB1.DBW4:INT")
        assert caught.value.code == FUNCTION_REFUSED
        message = str(caught.value)
        assert "Permit access with PUT/GET communication" in message
        assert "open DB1's Properties" in message
        with pytest.raises(bf.ProtocolError, match="PUT/GET") as caught:
            plc.write({"MW2": 5})
        assert caught.value.code == FUNCTION_REFUSED
        assert "Optimized" not in str(caught.value)  # a marker is no data block


def test_preflight_answers_per_data_block(url, server):
    with bf.connect(url, timeout=2.0) as plc:
        report = preflight(plc, ["DB1.DBW4:INT", "DB1.DBW6", "DB8.DBW0", "MW2"])
        assert report["block"].tolist() == ["DB1", "DB8", "M"]
        assert report["tags"].tolist() == [2, 1, 1]
        assert report["ok"].tolist() == [True, False, True]
        assert report["code"].tolist() == ["", "0x0A", ""]
        assert "DB8 does not exist" in report["fix"].iloc[1]
        server.put_get = False
        refused = preflight(plc, ["DB1.DBW4:INT", "MW2"])
        assert refused["ok"].tolist() == [False, False]
        assert set(refused["code"]) == {"0x8104"}
        assert refused["fix"].str.contains("PUT/GET").all()


def test_preflight_is_for_s7_connections():
    with (
        bf.connect("memory://box") as plc,
        pytest.raises(bf.ConfigurationError, match="S7 connections"),
    ):
        preflight(plc, [])


# -- the mapping, code by code ---------------------------------------------------------------
def test_snap7_c_librarys_function_refused_maps_to_put_get_and_optimized_access():
    # What the C library (and bindings over it) report for a refused header.
    code = error_code(Exception("b'CLI : function refused by CPU (Unknown error)'"))
    assert code == 0x02300000
    advice = diagnose(code, "DB", 26)
    assert PUT_GET in advice
    assert "open DB26's Properties > Attributes" in advice


def test_python_snap7_header_errors_give_their_code():
    exc = S7ProtocolError("S7 protocol error (class=0x81, code=0x04): x", error_code=0x8104)
    assert error_code(exc) == 0x8104
    bare = Exception("S7 protocol error (class=0x85, code=0x00): wrong frames")
    assert error_code(bare) == 0x8500
    assert error_code(Exception("Read operation failed: Invalid address (0x05)")) == 0x05
    assert error_code(Exception("something else")) is None


@pytest.mark.parametrize(
    ("code", "area", "db", "fragment"),
    [
        (0x8104, "DB", 3, "open DB3's Properties"),
        (0x8104, "M", None, "PUT/GET"),
        (0xD0A1, "DB", 3, "Access level to 'Full access'"),
        (0x011A, "DB", 3, "connection_type ('op' or 'basic')"),
        (0x05, "DB", 3, "DB3 has no bytes at this offset"),
        (0x05, "Q", None, "outside the CPU's the output (Q) area"),
        (0x0A, "DB", 3, "DB3 does not exist"),
        (0x03, "DB", 3, "does not allow access to DB3"),
        (0x06, "DB", 3, "transport size"),
        (0x01, "I", None, "missing or faulty"),
    ],
)
def test_each_code_has_its_own_advice(code, area, db, fragment):
    assert fragment in diagnose(code, area, db)


def test_codes_without_advice_add_nothing():
    assert diagnose(None, "DB", 1) == ""
    assert diagnose(0x0B, "DB", 1) == ""

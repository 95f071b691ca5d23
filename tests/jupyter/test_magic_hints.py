"""Hints of the %bifrost errors use the address syntax of the connection's protocol."""

from __future__ import annotations

import pytest

import bifrost as bf
from bifrost.jupyter.magics import BifrostMagicError
from bifrost.jupyter.magics.hints import hint, protocol_of_url

MODBUS, S7, OPCUA = "hr:0:float32", "DB1.DBD0:REAL", "ns=2;s="


@pytest.mark.parametrize(
    ("protocol", "shown", "not_shown"),
    [
        ("modbus", MODBUS, (S7, OPCUA)),
        ("s7", S7, (MODBUS, OPCUA)),
        ("opcua", OPCUA, (MODBUS, S7)),
    ],
)
def test_address_hints_follow_the_protocol(protocol, shown, not_shown):
    for error in (bf.AddressError("bad", 0, "bad"), bf.TagNotFound("no such tag")):
        text = hint(error, "read", protocol)
        assert shown in text
        for other in not_shown:
            assert other not in text
    assert "/Objects/2:Plant/" in hint(bf.TagNotFound("x"), "read", "opcua")
    assert "/Objects/2:Plant/" in hint(bf.AddressError("x", 0, "bad"), "read", "opcua")


def test_refused_requests_are_explained_per_protocol():
    refused = {p: hint(bf.ProtocolError("refused"), "read", p) for p in ("modbus", "s7", "opcua")}
    assert "unit id" in refused["modbus"]
    assert "DB" in refused["s7"]
    assert "unit id" not in refused["s7"]
    assert "node" in refused["opcua"]
    assert "unit id" not in refused["opcua"]


def test_without_a_connection_the_hints_are_the_simulators_modbus_ones():
    assert hint(bf.AddressError("x", 0, "bad"), "tags") == hint(
        bf.AddressError("x", 0, "bad"), "tags", "modbus"
    )
    assert MODBUS in hint(bf.TagNotFound("x"), "read", None)


def test_an_unknown_protocol_gets_no_foreign_examples():
    for error in (bf.AddressError("x", 0, "bad"), bf.TagNotFound("x"), bf.ProtocolError("x")):
        text = hint(error, "read", "mqtt")
        assert text
        for example in (MODBUS, S7, OPCUA, "unit id"):
            assert example not in text


def test_hints_that_do_not_depend_on_the_protocol_stay_the_same():
    for protocol in ("modbus", "s7", "opcua", None):
        assert "--writable" in hint(bf.WriteNotAllowed("ro"), "write", protocol)
        assert "%bifrost status" in hint(bf.ConnectionError("down"), "read", protocol)
        assert hint(bf.ConfigurationError("x"), "read", protocol) == (
            "`%bifrost read --help` shows the arguments"
        )
        assert hint(bf.ConfigurationError("x"), "", protocol) == (
            "`%bifrost help` lists the commands"
        )


@pytest.mark.parametrize(
    ("url", "protocol"),
    [
        ("modbus://127.0.0.1:502", "modbus"),
        ("modbus+tcp://h", "modbus"),
        ("modbus+rtu:///dev/ttyUSB0?baudrate=19200", "modbus"),
        ("S7://plc", "s7"),
        ("opc.tcp://host:4840/path", "opcua"),
        ("mqtt://broker", "mqtt"),
        ("sim", None),
        ("not a url", None),
    ],
)
def test_protocol_of_url(url, protocol):
    assert protocol_of_url(url) == protocol


class _FakeConnection:
    """Stands in for a Connection of any protocol; every read fails with ``error``."""

    def __init__(self, protocol, error):
        self.protocol = protocol
        self.writable = False
        self.error = error

    def read(self, tags):
        raise self.error

    def close(self):
        pass


@pytest.mark.parametrize(("protocol", "shown"), [("modbus", MODBUS), ("s7", S7), ("opcua", OPCUA)])
def test_the_magic_passes_the_connections_protocol_to_the_hint(shell, protocol, shown):
    for error in (bf.AddressError("bad address", 0, "bad"), bf.TagNotFound("no tag")):
        shell.magics.state.connections["dev"] = _FakeConnection(protocol, error)
        with pytest.raises(BifrostMagicError) as caught:
            shell.run("%bifrost read dev x")
        assert shown in caught.value.hint


def test_a_failed_connect_hints_by_the_urls_scheme(shell, monkeypatch):
    from bifrost.jupyter.magics import commands

    def refuse(url, **kwargs):
        raise bf.ProtocolError("refused")

    monkeypatch.setattr(commands, "connect", refuse)
    with pytest.raises(BifrostMagicError) as caught:
        shell.run("%bifrost connect plc s7://127.0.0.1:1")
    assert caught.value.hint == hint(bf.ProtocolError("x"), "connect", "s7")
    with pytest.raises(BifrostMagicError) as caught:
        shell.run("%bifrost connect plc modbus://127.0.0.1:1")
    assert "unit id" in caught.value.hint


@pytest.fixture(scope="module")
def every_protocol_plant():
    pytest.importorskip("snap7")
    pytest.importorskip("asyncua")
    from bifrost.sim import Plant

    with Plant(seed=1) as p:
        p.serve(modbus=0, s7=0)
        yield p


def test_s7_errors_hint_s7_addresses(shell, every_protocol_plant):
    shell.magics.state.plant = every_protocol_plant
    try:
        shell.run("%bifrost connect s sim:s7")
        assert shell.ns["s"].protocol == "s7"
        with pytest.raises(BifrostMagicError) as caught:
            shell.run("%bifrost read s DB1.DBD0:REEL")
        assert isinstance(caught.value.error, bf.AddressError)
        assert S7 in caught.value.hint
        assert MODBUS not in caught.value.hint
        with pytest.raises(BifrostMagicError) as caught:
            shell.run("%bifrost read s tank.levle")
        assert S7 in caught.value.hint
        with pytest.raises(BifrostMagicError) as caught:
            shell.run("%bifrost read s DB99.DBD0:REAL")
        assert isinstance(caught.value.error, bf.ProtocolError)
        assert "unit id" not in caught.value.hint
    finally:
        # The plant is this module's, not the magics': unload must not close it.
        shell.magics.state.plant = None


def test_opcua_errors_hint_opcua_addresses(shell, every_protocol_plant):
    plc = every_protocol_plant.connect("opcua")
    shell.magics.state.connections["u"] = plc
    with pytest.raises(BifrostMagicError) as caught:
        shell.run("%bifrost read u ns=2;x=1")
    assert isinstance(caught.value.error, bf.AddressError)
    assert OPCUA in caught.value.hint
    assert "/Objects/2:Plant/" in caught.value.hint
    with pytest.raises(BifrostMagicError) as caught:
        shell.run("%bifrost read u ns=2;s=Nope")
    assert isinstance(caught.value.error, bf.ProtocolError)
    assert "node" in caught.value.hint

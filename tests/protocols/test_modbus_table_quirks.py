"""Device workarounds carried by a tag table (its ``quirks:`` section), on a real server.

The pymodbus server counts every request it receives, so each test proves what the
table's section changes on the wire.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from quirky_server import QuirkyServer

import bifrost as bf
from bifrost.tags import TableQuirks, TagTable

TABLE = """\
quirks:
  device: {vendor: Acme, model: PM-200}
  one_request_per_tag: true
  max_registers_per_request: 10
tags:
  - {name: a, address: "hr:0"}
  - {name: b, address: "hr:1"}
  - {name: c, address: "hr:2:int32"}
  - {name: d, address: "hr:4"}
"""


@pytest.fixture(scope="module")
def quirky() -> Iterator[QuirkyServer]:
    server = QuirkyServer()
    with server:
        server.set("hr", 0, [7 * i for i in range(40)])
        yield server


@pytest.fixture
def server(quirky: QuirkyServer) -> QuirkyServer:
    quirky.reset()
    return quirky


@pytest.fixture
def table(tmp_path: Path) -> Path:
    path = tmp_path / "plant.yaml"
    path.write_text(TABLE)
    return path


def test_the_tables_quirks_change_what_goes_on_the_wire(server: QuirkyServer, table: Path) -> None:
    plain = TagTable(TagTable.load(table))  # the same tags without the section
    assert plain.quirks is None
    with bf.connect(server.url, tags=plain, timeout=2.0) as plc:
        plc.read(plc.tags.names)
    assert [(s.address, s.count) for s in server.seen] == [(0, 5)]
    server.reset()
    with bf.connect(server.url, tags=table, timeout=2.0) as plc:
        frame = plc.read(plc.tags.names)
    assert [(s.address, s.count) for s in server.seen] == [(0, 1), (1, 1), (2, 2), (4, 1)]
    assert frame["quality"].eq("good").all()
    assert frame.loc["d", "value"] == 28


def test_explicit_options_and_a_quirks_file_win_over_the_table(
    server: QuirkyServer, table: Path, tmp_path: Path
) -> None:
    with bf.connect(server.url, tags=table, timeout=2.0, one_request_per_tag=False) as plc:
        plc.read(plc.tags.names)
    assert [(s.address, s.count) for s in server.seen] == [(0, 5)]
    server.reset()
    device = tmp_path / "device.yaml"
    device.write_text("max_registers_per_request: 3\none_request_per_tag: false\n")
    with bf.connect(server.url, tags=table, timeout=2.0, quirks=device) as plc:
        plc.read(plc.tags.names)
    # At most 3 registers a request (the int32 at hr:2 is not cut), tags merged again.
    assert [(s.address, s.count) for s in server.seen] == [(0, 2), (2, 3)]
    server.reset()
    # The URL's query is explicit too.
    with bf.connect(server.url + "?one_request_per_tag=no", tags=table, timeout=2.0) as plc:
        plc.read(plc.tags.names)
    assert len(server.seen) == 1


def test_the_table_keeps_its_quirks_through_to_yaml(table: Path, tmp_path: Path) -> None:
    loaded = TagTable.load(table)
    assert loaded.quirks is not None
    assert loaded.quirks.options() == {"one_request_per_tag": True, "max_registers_per_request": 10}
    assert loaded.quirks.values["device"] == {"vendor": "Acme", "model": "PM-200"}
    out = tmp_path / "again.yaml"
    loaded.to_yaml(out)
    again = TagTable.load(out)
    assert again == loaded
    assert again.quirks is not None
    assert dict(again.quirks.values) == dict(loaded.quirks.values)
    assert loaded[1:].quirks == loaded.quirks  # a slice is still for the same device
    assert TagTable(loaded, quirks={"merge_gap": 0}) != loaded


def test_a_bad_section_names_file_line_and_key(server: QuirkyServer, tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(
        "quirks:\n  max_registers_per_request: 300\n  bogus: 1\n"
        "tags:\n  - {name: a, address: hr:0}\n"
    )
    table = TagTable.load(path)  # the protocol checks the section when connecting
    with pytest.raises(bf.ConfigurationError) as caught:
        bf.connect(server.url, tags=table)
    text = str(caught.value)
    assert str(path) in text
    assert "line 2: max_registers_per_request: Input should be less than or equal to 125" in text
    assert "line 3: bogus: Extra inputs are not permitted" in text
    assert server.seen == []  # refused before anything went on the wire
    path.write_text("quirks: [1, 2]\ntags: []\n")
    with pytest.raises(bf.ConfigurationError, match="quirks are a mapping"):
        TagTable.load(path)


def test_a_protocol_without_the_option_names_the_key_and_the_protocol(table: Path) -> None:
    with pytest.raises(bf.ConfigurationError) as caught:
        bf.connect("s7://127.0.0.1:1", tags=table)
    text = str(caught.value)
    assert str(table) in text
    assert "S7 has no option 'one_request_per_tag'" in text
    assert "line 3" in text


def test_the_tables_quirks_apply_only_when_connecting(server: QuirkyServer, table: Path) -> None:
    with bf.connect(server.url, timeout=2.0) as plc:
        with pytest.raises(bf.ConfigurationError, match="apply when connecting"):
            plc.tags = table
        plc.tags = TagTable(TagTable.load(table))  # the tags alone are fine
        assert plc.tags.quirks is None
    assert TableQuirks({"merge_gap": 0}).options() == {"merge_gap": 0}


@pytest.mark.parametrize("url", ["modbus://127.0.0.1:1", "s7://127.0.0.1:1"])
def test_table_quirks_are_not_a_user_option(url: str) -> None:
    with pytest.raises(bf.ConfigurationError, match="set by the connection"):
        bf.connect(url + "?table_quirks=x")

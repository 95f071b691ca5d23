"""Tag tables from CSV and YAML, lookups and errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from bifrost import ConfigurationError, Tag, TagNotFound, TagTable

CSV = """name,address,unit,scale,offset,description,writable,area
tank.level,hr:0:float32,m,,,level in the buffer tank,false,north
reactor.setpoint,hr:8:float32,degC,1,0,setpoint,true,
raw.counter,40021:uint32:CDAB,,0.5,10,,no,
"""

YAML_LIST = """
tags:
  - {name: tank.level, address: "hr:0:float32", unit: m}
  - name: reactor.setpoint
    address: "hr:8:float32"
    writable: true
"""

YAML_MAP = """
tank.level: "hr:0:float32"
reactor.setpoint: {address: "hr:8:float32", unit: degC, writable: yes}
"""


def test_from_csv_text_and_file(tmp_path: Path):
    table = TagTable.from_csv(CSV)
    assert table.names == ["tank.level", "reactor.setpoint", "raw.counter"]
    level = table["tank.level"]
    assert (level.unit, level.scale, level.writable) == ("m", 1.0, False)
    assert level.meta == {"area": "north"}
    assert table["reactor.setpoint"].writable is True
    assert (table["raw.counter"].scale, table["raw.counter"].offset) == (0.5, 10.0)
    path = tmp_path / "tags.csv"
    path.write_text(CSV)
    assert TagTable.from_csv(path) == table
    assert TagTable.load(path) == table


@pytest.mark.parametrize("text", [YAML_LIST, YAML_MAP])
def test_from_yaml_shapes(text: str, tmp_path: Path):
    path = tmp_path / "tags.yaml"
    path.write_text(text)
    table = TagTable.from_yaml(path)
    assert table.names == ["tank.level", "reactor.setpoint"]
    assert table["reactor.setpoint"].writable is True
    assert TagTable.load(str(path)) == table


def test_round_trips(tmp_path: Path):
    table = TagTable.from_csv(CSV)
    table.to_csv(tmp_path / "out.csv")
    table.to_yaml(tmp_path / "out.yaml")
    assert TagTable.from_csv(tmp_path / "out.csv") == table
    assert TagTable.from_yaml(tmp_path / "out.yaml") == table


def test_unknown_name_suggests_close_ones():
    table = TagTable.from_csv(CSV)
    with pytest.raises(TagNotFound, match=r"did you mean 'tank\.level'"):
        table["tank.levle"]


def test_resolve_accepts_names_tags_and_addresses():
    table = TagTable.from_csv(CSV)
    assert table.resolve("tank.level") is table["tank.level"]
    tag = Tag("x", "hr:1")
    assert table.resolve(tag) is tag
    assert table.resolve("hr:5:int16", lambda s: s.startswith("hr:")).address == "hr:5:int16"
    with pytest.raises(TagNotFound, match=r"tank\.levl"):
        table.resolve("tank.levl", lambda s: s.startswith("hr:"))


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("name,address\ntank.level,hr:0\ntank.level,hr:1\n", "duplicate tag name 'tank.level'"),
        ("name,unit\ntank.level,m\n", "needs 'name' and 'address'"),
        ("name,address,scale\nt,hr:0,abc\n", "scale must be a number"),
        ("name,address,scale\nt,hr:0,0\n", "scale must be finite and non-zero"),
        ("name,address,writable\nt,hr:0,maybe\n", "'writable' must be true or false"),
        ("name,address\nt,\n", "tag #1"),
    ],
)
def test_bad_tables_say_what_is_wrong(text: str, fragment: str):
    with pytest.raises(ConfigurationError) as caught:
        TagTable.from_csv(text)
    assert fragment in str(caught.value)


def test_missing_file_and_bad_suffix(tmp_path: Path):
    with pytest.raises(ConfigurationError, match="does not exist"):
        TagTable.from_csv(tmp_path / "nope.csv")
    with pytest.raises(ConfigurationError, match=r"expected \.csv, \.yaml"):
        TagTable.load(tmp_path / "tags.txt")


def test_to_frame_is_indexed_by_name():
    frame = TagTable.from_csv(CSV).to_frame()
    assert list(frame.index) == ["tank.level", "reactor.setpoint", "raw.counter"]
    assert frame.loc["tank.level", "unit"] == "m"

"""Tag tables from CSV and YAML, lookups and errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from bifrost import (
    ArgumentTypeError,
    ConfigurationError,
    Tag,
    TagFileWarning,
    TagNotFound,
    TagTable,
)

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


# -- files as they come: encodings, shapes, paths ---------------------------------------------
CP1252_CSV = "name,address,unit\nboiler.temp,hr:0:float32,°C\n".encode("cp1252")


def test_a_cp1252_csv_is_read_with_a_warning(tmp_path: Path):
    path = tmp_path / "excel.csv"
    path.write_bytes(CP1252_CSV)
    with pytest.warns(TagFileWarning, match="not UTF-8.*Windows-1252.*encoding='cp1252'") as seen:
        table = TagTable.load(path)
    assert str(path) in str(seen[0].message)
    assert table["boiler.temp"].unit == "°C"


def test_an_explicit_encoding_reads_silently_or_says_what_failed(tmp_path: Path):
    path = tmp_path / "excel.csv"
    path.write_bytes(CP1252_CSV)
    assert TagTable.from_csv(path, encoding="cp1252")["boiler.temp"].unit == "°C"
    with pytest.raises(ConfigurationError, match=r"is not utf-8: byte 0xb0 at offset \d+"):
        TagTable.from_csv(path, encoding="utf-8")
    with pytest.raises(ConfigurationError, match="unknown encoding 'klingon'"):
        TagTable.from_csv(path, encoding="klingon")


def test_utf16_with_a_bom_and_undecodable_bytes(tmp_path: Path):
    path = tmp_path / "unicode.csv"
    path.write_bytes("name,address,unit\nt,hr:0,°C\n".encode("utf-16"))
    assert TagTable.from_csv(path)["t"].unit == "°C"
    path.write_bytes(b"name,address\nt,hr:0\x81\x8d\n")
    with pytest.raises(ConfigurationError, match=r"neither UTF-8 nor Windows-1252.*encoding="):
        TagTable.from_csv(path)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[" * 2000 + "]" * 2000, "nested too deeply"),
        ("t: 2001-13-45\n", "not valid YAML"),
        ("t: 0b_\n", "not valid YAML"),
        ("t: " + "9" * 5000 + "\n", "not valid YAML"),
        ("- {name: [a, b], address: 'hr:0'}\n", "'name' must be a text"),
        ("- {name: t, address: 'hr:0', scale: " + "9" * 400 + "}\n", "scale must be a number"),
        ("- {name: t, address: 'hr:0', writable: {a: 1}}\n", "'writable' must be true or false"),
        ("t: [1]\n", "needs an address"),
        ("tags: 5\n", "expected a list of tags"),
    ],
)
def test_bad_yaml_says_what_is_wrong(tmp_path: Path, text: str, fragment: str):
    path = tmp_path / "tags.yaml"
    path.write_text(text)
    with pytest.raises(ConfigurationError) as caught:
        TagTable.from_yaml(path)
    assert fragment in str(caught.value)
    assert str(path) in str(caught.value)


def test_yaml_numbers_are_addresses():
    assert TagTable.from_yaml("a: 40001\nb: hr:1\n")["a"].address == "40001"


def test_bad_csv_names_the_line():
    text = "name,address\nt,hr:0\nu," + '"' + "x" * 140_000 + "\n"
    with pytest.raises(ConfigurationError, match=r"<text>, line \d+: not valid CSV"):
        TagTable.from_csv(text)


def test_paths_that_are_no_file(tmp_path: Path):
    with pytest.raises(ConfigurationError, match="contains a NUL character"):
        TagTable.load(str(tmp_path / "a\0b.csv"))
    (tmp_path / "dir.yaml").mkdir()
    with pytest.raises(ConfigurationError, match="is a directory, not a file"):
        TagTable.load(tmp_path / "dir.yaml")
    with pytest.raises(ArgumentTypeError, match="not bytes"):
        TagTable.load(b"tags.csv")  # type: ignore[arg-type]
    with pytest.raises(ArgumentTypeError, match="got 5"):
        TagTable.load(5)  # type: ignore[arg-type]


def test_binary_streams_are_decoded_like_files():
    import io

    assert TagTable.from_csv(io.BytesIO(b"name,address\nt,hr:0\n")).names == ["t"]


@pytest.mark.parametrize("item", [None, 5, b"hr:1", ["a"]])
def test_resolve_names_an_item_of_the_wrong_kind(item: object):
    with pytest.raises(ArgumentTypeError) as caught:
        TagTable().resolve(item)  # type: ignore[arg-type]
    assert isinstance(caught.value, TypeError)
    assert repr(item) in str(caught.value)


@pytest.mark.parametrize(
    ("kwargs", "fragment"),
    [
        ({"name": "\ud800"}, "lone surrogate"),
        ({"unit": ["m"]}, "unit must be a string"),
        ({"scale": 10**400}, "scale must be finite"),
        ({"scale": "2"}, "scale must be finite"),
        ({"offset": float("nan")}, "offset must be finite"),
        ({"writable": [1]}, "writable must be True or False"),
    ],
)
def test_tags_check_their_fields(kwargs: dict[str, object], fragment: str):
    fields: dict[str, object] = {"name": "t", "address": "hr:0", **kwargs}
    with pytest.raises(ConfigurationError, match=fragment):
        Tag(**fields)  # type: ignore[arg-type]

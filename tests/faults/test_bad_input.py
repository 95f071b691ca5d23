"""Bad input of every kind, at every public entry point: only BifrostError escapes.

Each property feeds one entry point that takes user input (addresses of every protocol,
tags given to resolve/explain, tag files as bytes, values written to every data type,
device URLs and options) with generated input, well-formed and not, and asserts that a
refusal is a :class:`bifrost.BifrostError` whose message names the offending input. No
test does I/O: planning and checking happen before anything is sent.

Hypothesis profiles (``BIFROST_HYPOTHESIS_PROFILE``): ``ci`` (the default) is
derandomized with 100 examples per property, so runs are repeatable and the file takes
well under a minute; ``fuzz`` (``make fuzz``) runs ``BIFROST_FUZZ_EXAMPLES`` (5000)
randomized examples per property and keeps failures in Hypothesis' example database.
"""

from __future__ import annotations

import math
import os
import string
import warnings
from collections.abc import Callable, Coroutine
from decimal import Decimal
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import bifrost as bf
from bifrost.aio import AsyncConnection
from bifrost.exceptions import BifrostError, BifrostWarning, PrecisionWarning, value_repr
from bifrost.model import DataType, Tag
from bifrost.protocols.modbus.address import parse_modbus_address
from bifrost.protocols.opcua.address import parse_opcua_address
from bifrost.protocols.opcua.codec import NodeMeta, plain_value, to_variant
from bifrost.protocols.registry import driver_for_url
from bifrost.protocols.s7.address import parse_s7_address
from bifrost.values import check

_COMMON = {
    "deadline": None,
    "suppress_health_check": [HealthCheck.too_slow, HealthCheck.data_too_large],
}
settings.register_profile("ci", max_examples=100, derandomize=True, database=None, **_COMMON)
settings.register_profile(
    "fuzz", max_examples=int(os.environ.get("BIFROST_FUZZ_EXAMPLES", "5000")), **_COMMON
)
PROFILE = settings.get_profile(os.environ.get("BIFROST_HYPOTHESIS_PROFILE", "ci"))
"""Applied per test, not loaded globally, so other test files keep their own settings."""

CLOSED = "127.0.0.1:9"  # never contacted: every property stops before I/O


# -- strategies ---------------------------------------------------------------------------
# Characters that broke parsers: digits str.isdigit takes but int() does not, Unicode
# digits int() does take, letters that upper()/lower() map onto ASCII or lengthen, NUL,
# a lone surrogate.
TRICKY = [
    *("\u00b2", "\u0663", "\U0001d7d7", "\u0131", "\u017f", "\u00df", "\u212a", "\u0130"),
    *("\0", "\ud800", "\udfff", " ", "\t", "\n"),
]
LONG_DIGITS = st.integers(10, 6000).map(lambda n: "9" * n)


def _fragments(words: list[str]) -> st.SearchStrategy[str]:
    pieces = st.one_of(
        st.sampled_from(words),
        st.sampled_from(TRICKY),
        st.integers(0, 70000).map(str),
        LONG_DIGITS,
        st.text(max_size=4),
    )
    return st.lists(pieces, max_size=8).map("".join)


MODBUS_WORDS = [
    *("co", "di", "ir", "hr", "HR", ":", ":", "@", "[", "]", "40001", "400001", "00001"),
    *("int16", "uint16", "int32", "uint32", "int64", "uint64", "float32", "float64"),
    *("bool", "string[", "string[8]", "ABCD", "CDAB", "BADC", "DCBA"),
]
S7_WORDS = [
    *("DB", "DB1", ".", ".DB", "X", "B", "W", "D", "M", "I", "E", "Q", "A", "%", ":"),
    *("BOOL", "BYTE", "INT", "WORD", "DINT", "DWORD", "REAL", "LREAL", "LINT", "ULINT"),
    *("STRING[", "STRING[20]", "CHAR", "]"),
]
OPCUA_WORDS = [
    *("ns=", "2", ";", "s=", "i=", "g=", "b=", "/", "/Objects", "0:", "2:", "32768:"),
    *("&", "&/", "09087e75-8e5e-499b-954f-f2a9603db28a", "M/RbKBsRVkePCePcx24oRA=="),
]

NOT_STRINGS = st.one_of(
    st.none(),
    st.integers(),
    st.floats(),
    st.binary(max_size=8),
    st.lists(st.integers(), max_size=3),
    st.builds(np.int64, st.integers(-(2**63), 2**63 - 1)),
)


def _values() -> st.SearchStrategy[Any]:
    """Anything a user might pass as a value to write."""
    huge = st.integers(2**60, 2**1100) | st.integers(-(2**1100), -(2**60))
    scalars = st.one_of(
        st.none(),
        st.booleans(),
        st.integers(-(2**70), 2**70),
        huge,
        st.sampled_from([2**1024, -(2**1024), 10**4000, 16777217, 2**53 + 1]),
        st.floats(),
        st.floats(width=32),
        st.sampled_from([1e-46, 1e-40, 0.1, 0.123456789, 3.4028235e38, 3.5e38, -0.0]),
        st.text(max_size=12),
        st.sampled_from(["a\0b", "\ud800", "€", "°C", "x" * 300]),
        st.binary(max_size=4),
        st.builds(np.float32, st.floats(width=32)),
        st.builds(np.int16, st.integers(-(2**15), 2**15 - 1)),
        st.builds(np.uint64, st.integers(0, 2**64 - 1)),
        st.builds(np.bool_, st.booleans()),
        st.just(pd.NA),
        st.just(np.nan),
        st.builds(Decimal, st.integers(-10, 10)),
        st.builds(complex, st.floats(), st.floats()),
    )
    arrays = st.builds(np.array, st.lists(st.integers(0, 5), max_size=3))
    return st.one_of(scalars, st.lists(scalars, max_size=3), arrays)


def _tags_argument() -> st.SearchStrategy[Any]:
    """What a user might pass as ``tags`` to read/explain/resolve."""
    items = st.one_of(
        _fragments(MODBUS_WORDS + S7_WORDS + OPCUA_WORDS),
        st.sampled_from(["tank.level", "tank.levle", "", "  "]),
        NOT_STRINGS,
        st.builds(np.str_, st.sampled_from(["hr:1", "DB1.DBW0", "ns=2;i=5"])),
        st.just(Tag("custom", "hr:7:int16")),
        st.lists(st.text(max_size=3), max_size=2),
        st.dictionaries(st.text(max_size=2), st.integers(), max_size=2),
    )
    return st.one_of(items, st.lists(items, max_size=5), st.tuples(items, items))


# -- helpers ------------------------------------------------------------------------------
def _shown(item: Any) -> list[str]:
    """Ways a message may name ``item``."""
    forms = [value_repr(item)]
    if isinstance(item, str):
        forms += [repr(item), repr(str(item)), item.strip()]
    elif isinstance(item, Tag):
        forms += [repr(item.name), item.address]
    return [f for f in forms if f]


def _names(error: BaseException, candidates: list[Any]) -> bool:
    message = str(error)
    return any(form in message for item in candidates for form in _shown(item))


class _Caught:
    """Records warnings inside one example; only bifrost's own are acceptable."""

    def __enter__(self) -> list[warnings.WarningMessage]:
        self._context = warnings.catch_warnings(record=True)
        self.seen = self._context.__enter__()
        warnings.simplefilter("always")
        return self.seen

    def __exit__(self, *exc_info: object) -> None:
        self._context.__exit__(*exc_info)
        others = [w for w in self.seen if not issubclass(w.category, BifrostWarning)]
        assert not others, [str(w.message) for w in others]


def _outcome(call: Callable[[], Any]) -> tuple[Any, BifrostError | None]:
    """The call's result, or the BifrostError it raised (anything else propagates)."""
    try:
        return call(), None
    except BifrostError as error:
        return None, error


def _run(coro: Coroutine[Any, Any, Any]) -> Any:
    """Run a coroutine that must finish without suspending (no I/O was attempted)."""
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    coro.close()
    raise AssertionError("the call suspended: it tried to do I/O")


def _connection(url: str, **options: Any) -> AsyncConnection:
    connection = AsyncConnection(url, tags=_TABLE, writable=True, **options)
    sent: list[Any] = []

    async def execute_write(plan: Any) -> None:
        sent.append(plan)

    connection._driver.execute_write = execute_write  # type: ignore[method-assign]
    return connection


_TABLE = bf.TagTable(
    [
        Tag("tank.level", "hr:0:float32", writable=True),
        Tag("scaled", "hr:2:int16", scale=0.1, offset=5, writable=True),
        Tag("read.only", "hr:4"),
    ]
)
CONNECTIONS = {
    "modbus": _connection(f"modbus://{CLOSED}"),
    "s7": _connection(f"s7://{CLOSED}"),
    "opcua": _connection(f"opc.tcp://{CLOSED}", security="None"),
}


# -- addresses ----------------------------------------------------------------------------
PARSERS: dict[str, tuple[Callable[[str], Any], list[str]]] = {
    "modbus": (parse_modbus_address, MODBUS_WORDS),
    "s7": (parse_s7_address, S7_WORDS),
    "opcua": (parse_opcua_address, OPCUA_WORDS),
}
ALL_WORDS = MODBUS_WORDS + S7_WORDS + OPCUA_WORDS


@pytest.mark.parametrize("protocol", sorted(PARSERS))
@PROFILE
@given(text=st.one_of(_fragments(ALL_WORDS), st.text(max_size=30)))
@example(text="hr:\u00b2")
@example(text="hr:" + "1" * 5000)
@example(text="DB1.DBW\u00b2")
@example(text="ns=2;s=\ud800")
@example(text="/Objects/40000:Thing")
@example(text="\u0131W4")
def test_addresses_parse_or_raise_address_errors_naming_them(protocol: str, text: str) -> None:
    parse = PARSERS[protocol][0]
    parsed, error = _outcome(lambda: parse(text))
    if error is None:
        # What parses prints back to an address that parses to the same thing.
        assert parse(str(parsed)) == parsed
        return
    assert isinstance(error, bf.AddressError), f"{type(error).__name__}: {error}"
    assert error.address == text
    assert 0 <= error.position <= len(text)
    assert repr(text) in str(error)


@pytest.mark.parametrize("protocol", sorted(PARSERS))
@PROFILE
@given(value=NOT_STRINGS)
def test_addresses_that_are_not_strings_raise_argument_type_errors(
    protocol: str, value: Any
) -> None:
    with pytest.raises(bf.ArgumentTypeError) as caught:
        PARSERS[protocol][0](value)
    assert isinstance(caught.value, TypeError)
    assert _names(caught.value, [value])


# -- planning: resolve and explain --------------------------------------------------------
@pytest.mark.parametrize("protocol", sorted(CONNECTIONS))
@PROFILE
@given(tags=_tags_argument())
@example(tags=None)
@example(tags=5)
@example(tags=b"hr:1")
@example(tags=[["tank.level"]])
@example(tags=[np.int64(3)])
@example(tags="ns=2;s=\ud800")
def test_planning_reads_raises_only_bifrost_errors_naming_the_tag(protocol: str, tags: Any) -> None:
    connection = CONNECTIONS[protocol]
    items = list(tags) if isinstance(tags, list | tuple | dict) else [tags]
    for call in (connection.resolve, connection.explain):
        _, error = _outcome(lambda: call(tags))  # noqa: B023 (called at once)
        if error is None:
            continue
        if not items:
            assert "at least one tag" in str(error)
        else:
            assert _names(error, [tags, *items]), str(error)


# -- tag files ----------------------------------------------------------------------------
CSV_FIELD = st.one_of(
    st.text(max_size=10),
    st.sampled_from(["hr:0:float32", "40001", "°C", "1e400", "nan", "yes", '"', "\0", "\r"]),
)
CSV_TEXT = st.builds(
    lambda header, rows: "\n".join(",".join(r) for r in [header, *rows]),
    st.lists(
        st.sampled_from(["name", "address", "unit", "scale", "offset", "writable", "x"]),
        min_size=1,
        max_size=7,
    ),
    st.lists(st.lists(CSV_FIELD, max_size=8), max_size=5),
)
CSV_BYTES = st.one_of(
    st.binary(max_size=200),
    st.tuples(CSV_TEXT, st.sampled_from(["utf-8", "utf-8-sig", "cp1252", "utf-16"])).map(
        lambda pair: pair[0].encode(pair[1], errors="replace")
    ),
    st.just("name,address,unit\nt,hr:0,°C\n".encode("cp1252")),
    st.just(b"name,address\nt,hr:0\n" + b'"' + b"x" * 140_000),
)
YAML_TEXT = st.one_of(
    st.text(max_size=60),
    # Deep enough to exhaust the recursion limit in PyYAML's composer.
    st.sampled_from([3, 50, 400, 600]).map(lambda n: "[" * n + "]" * n),
    st.sampled_from([3, 50, 400, 600]).map(lambda n: "a: {" * n + "}" * n),
    st.sampled_from(
        [
            "t: 2001-13-45",
            "t: 0b_",
            "t: 0x_",
            "t: " + "9" * 5000,
            "tags: [1, 2]",
            "t: {address: [1, 2], name: x}",
            "- {name: [a], address: hr:0}",
            "- {name: t, address: hr:0, scale: [1]}",
            "- {name: t, address: hr:0, scale: " + "9" * 400 + "}",
            "- {name: t, address: hr:0, writable: {a: 1}}",
            "a: &x [1]\nb: *x",
            "? [1, 2]\n: x",
            "t: !!binary '@@'",
            "t: !!python/object:os.system x",
            "t: 40001",
            "t: {address: hr:0, unit: °C}",
        ]
    ),
)
YAML_BYTES = st.one_of(
    st.binary(max_size=200),
    st.tuples(YAML_TEXT, st.sampled_from(["utf-8", "cp1252", "utf-16"])).map(
        lambda pair: pair[0].encode(pair[1], errors="replace")
    ),
)


@pytest.fixture(scope="module")
def tag_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("tag_files")


def _load_bytes(path: Path, content: bytes) -> None:
    path.write_bytes(content)
    with _Caught() as seen:
        table, error = _outcome(lambda: bf.TagTable.load(path))
    if error is not None:
        assert str(path) in str(error), str(error)
        return
    assert isinstance(table, bf.TagTable)
    for warning in seen:
        assert str(path) in str(warning.message)


@PROFILE
@given(content=CSV_BYTES)
@example(content=b"name,address\n\0,\0\n\0,\0")  # a duplicate name names the file too
def test_csv_tag_files_load_or_raise_errors_naming_the_file(tag_dir: Path, content: bytes) -> None:
    _load_bytes(tag_dir / "tags.csv", content)


@PROFILE
@given(content=YAML_BYTES)
def test_yaml_tag_files_load_or_raise_errors_naming_the_file(tag_dir: Path, content: bytes) -> None:
    _load_bytes(tag_dir / "tags.yaml", content)


@PROFILE
@given(
    source=st.one_of(
        st.text(max_size=20).map(lambda t: t + ".csv"),
        st.sampled_from(["a\0b.csv", "", "missing.yaml", "x.txt", "dir.csv"]),
        NOT_STRINGS,
    )
)
def test_tag_file_sources_of_every_kind(tag_dir: Path, source: Any) -> None:
    (tag_dir / "dir.csv").mkdir(exist_ok=True)
    if isinstance(source, str) and source in ("a\0b.csv", "missing.yaml", "dir.csv"):
        source = str(tag_dir / source)
    _, error = _outcome(lambda: bf.TagTable.load(source))
    if error is not None:
        items = list(source) if isinstance(source, list | bytes) else []
        assert _names(error, [source, str(source), *items]), str(error)


# -- writes -------------------------------------------------------------------------------
ADDRESSES = {
    "modbus": [
        "co:1",
        *(f"hr:10:{t}" for t in ("int16", "uint16", "int32", "uint32", "int64", "uint64")),
        "hr:10:float32",
        "hr:10:float64",
        "hr:10:string[6]",
        "scaled",
        "tank.level",
        "read.only",
    ],
    "s7": [
        "DB1.DBX0.0",
        *(f"DB1.DB{w}8:{t}" for w, t in [("B", "SINT"), ("B", "BYTE"), ("W", "INT")]),
        *(f"DB1.DB{w}8:{t}" for w, t in [("W", "WORD"), ("D", "DINT"), ("D", "UDINT")]),
        *(f"DB1.DBD8:{t}" for t in ("LINT", "ULINT", "REAL", "LREAL")),
        "DB1.DBB8:STRING[6]",
        "DB1.DBB8:CHAR",
    ],
    "opcua": ["ns=2;s=Plant.X", "/Objects/2:Plant/2:X"],
}


@pytest.mark.parametrize("protocol", sorted(ADDRESSES))
@pytest.mark.parametrize("exact", [False, True])
@PROFILE
@given(data=st.data(), value=_values())
def test_writes_raise_only_bifrost_errors_naming_the_tag(
    protocol: str, exact: bool, data: st.DataObject, value: Any
) -> None:
    address = data.draw(st.sampled_from(ADDRESSES[protocol]), label="address")
    connection = CONNECTIONS[protocol]
    with _Caught() as seen:
        _, error = _outcome(lambda: _run(connection.write({address: value}, exact=exact)))
    if error is not None:
        assert _names(error, [address]), str(error)
    for warning in seen:
        assert issubclass(warning.category, PrecisionWarning)
        assert not exact
        assert address in str(warning.message) or "tank.level" in str(warning.message)


@PROFILE
@given(
    values=st.one_of(
        NOT_STRINGS,
        st.lists(st.tuples(st.text(max_size=3), st.integers()), max_size=2),
        st.dictionaries(NOT_STRINGS.filter(lambda k: k.__hash__ is not None), st.integers()),
    )
)
def test_write_arguments_of_the_wrong_kind(values: Any) -> None:
    _, error = _outcome(lambda: _run(CONNECTIONS["modbus"].write(values)))
    if error is not None:
        assert isinstance(error, bf.ArgumentTypeError | bf.TagNotFound), str(error)
        offenders = [values, *values] if isinstance(values, dict) else [values]
        assert _names(error, offenders), str(error)


# OPC UA learns a node's type from the server, then checks with the same rules as
# Modbus and S7: the same values are refused, and the same converted value is sent.
OPCUA_TYPES = {
    1: DataType.BOOL,
    2: DataType.INT8,
    3: DataType.UINT8,
    4: DataType.INT16,
    5: DataType.UINT16,
    6: DataType.INT32,
    7: DataType.UINT32,
    8: DataType.INT64,
    9: DataType.UINT64,
    10: DataType.FLOAT32,
    11: DataType.FLOAT64,
}
_TAG = Tag("t", "ns=2;s=T")


def _checked(convert: Callable[[], Any]) -> tuple[str, Any]:
    with _Caught() as seen:
        converted, error = _outcome(convert)
    if error is not None:
        assert isinstance(error, bf.ValueOutOfRange), str(error)
        assert "'t'" in str(error), str(error)
        return "refused", None
    return ("rounded" if seen else "exact"), converted


@pytest.mark.parametrize("type_id", sorted(OPCUA_TYPES))
@PROFILE
@given(value=_values().filter(lambda v: not isinstance(v, list | np.ndarray | str)))
@example(value=True)
@example(value=math.inf)
@example(value=16777217)
def test_opcua_and_modbus_apply_one_rule(type_id: int, value: Any) -> None:
    ua = pytest.importorskip("asyncua").ua
    dtype = OPCUA_TYPES[type_id]
    meta = NodeMeta(type_id, dtype.value, -1, 3, 3)
    ours = _checked(lambda: check(_TAG, value, dtype))
    theirs = _checked(lambda: to_variant(ua, "tag 't'", meta, plain_value(_TAG, value)).Value)
    assert ours[0] == theirs[0]
    if ours[0] != "refused":
        assert ours == theirs or (math.isnan(ours[1]) and math.isnan(theirs[1]))


# -- URLs and options ---------------------------------------------------------------------
OPTION_NAMES = [
    *("unit", "baudrate", "parity", "stopbits", "bytesize", "timeout", "max_gap_registers"),
    *("max_gap_bits", "allow_any_unit", "rack", "slot", "item_cost", "byte_cost"),
    *("multi_item", "security", "certificate", "private_key", "user", "password"),
    *("server_certificate", "trust_server", "max_nodes_per_read", "session_timeout", "bogus"),
]
OPTION_VALUES = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**70), 2**70),
    st.sampled_from([10**400, float("inf"), float("nan"), "None", "Basic256Sha256,Sign"]),
    st.floats(),
    st.text(max_size=8),
    st.lists(st.integers(), max_size=2),
)
URLS = st.builds(
    lambda scheme, host, port, query: f"{scheme}://{host}{port}{query}",
    st.sampled_from(["modbus", "modbus+tcp", "modbus+rtu", "s7", "opc.tcp", "http", "", "x"]),
    st.one_of(
        st.sampled_from(["127.0.0.1", "[::1]", "[::1", "u:pw@h", "", "h\ud800", "\uff48"]),
        st.text(string.printable, max_size=8),
        st.text(max_size=6),
    ),
    st.one_of(st.just(""), st.integers(-5, 70000).map(lambda p: f":{p}"), st.just(":x")),
    st.one_of(
        st.just(""),
        st.dictionaries(st.sampled_from(OPTION_NAMES), st.text(max_size=5), max_size=3).map(
            lambda q: "?" + "&".join(f"{k}={v}" for k, v in q.items())
        ),
    ),
)


def _mentions_url_part(message: str, url: Any) -> bool:
    if not isinstance(url, str):
        return False
    scheme = url.partition("://")[0].lower()
    return bool(scheme) and scheme in message


@PROFILE
@given(
    url=st.one_of(URLS, st.text(max_size=20), NOT_STRINGS),
    options=st.dictionaries(st.sampled_from(OPTION_NAMES), OPTION_VALUES, max_size=3),
)
@example(url="modbus://[::1", options={})
@example(url="modbus://h", options={"unit": float("inf")})
@example(url="s7://h", options={"timeout": 10**400})
def test_urls_and_options_raise_configuration_errors_naming_them(
    url: Any, options: dict[str, Any]
) -> None:
    driver, error = _outcome(lambda: driver_for_url(url, **options))
    if error is None:
        assert driver.protocol in ("modbus", "s7", "opcua")
        return
    assert isinstance(error, bf.ConfigurationError | bf.MissingDependency), str(error)
    message = str(error)
    assert ":pw@" not in message, message
    named = [url, *options, *(v for v in options.values() if isinstance(v, str))]
    assert _names(error, named) or _mentions_url_part(message, url), message

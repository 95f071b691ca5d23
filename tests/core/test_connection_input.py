"""What a connection does with bad arguments before any I/O: one error tree, naming them."""

from __future__ import annotations

import math
from collections.abc import Coroutine
from typing import Any

import numpy as np
import pytest

import bifrost as bf
from bifrost.aio import AsyncConnection
from bifrost.protocols.opcua.codec import NodeMeta, plain_value, to_variant
from bifrost.protocols.registry import driver_for_url
from bifrost.values import exact_writes

TABLE = bf.TagTable(
    [
        bf.Tag("setpoint", "hr:0:float32", writable=True),
        bf.Tag("name", "hr:10:string[8]", writable=True),
        bf.Tag("enable", "co:0", writable=True),
    ]
)


def finish(coro: Coroutine[Any, Any, Any]) -> Any:
    # The connection's port is closed: a call that suspends would be trying I/O.
    try:
        coro.send(None)
    except StopIteration as stop:
        return stop.value
    coro.close()
    raise AssertionError("the call tried I/O")


@pytest.fixture
def plc() -> tuple[AsyncConnection, list[Any]]:
    connection = AsyncConnection("modbus://127.0.0.1:9", tags=TABLE, writable=True)
    sent: list[Any] = []

    async def execute_write(plan: Any) -> None:
        sent.extend(plan)

    connection._driver.execute_write = execute_write  # type: ignore[method-assign]
    return connection, sent


@pytest.mark.parametrize(
    ("tags", "fragment"),
    [
        (None, "got None"),
        (5, "got 5"),
        (b"hr:1", "not bytes"),
        ([None], "got None"),
        ([np.int64(3)], "got np.int64(3)"),
        ([["setpoint"]], "got ['setpoint']"),  # the plan cache would fail: unhashable
        ([{"a": 1}], "got {'a': 1}"),
    ],
)
def test_tags_of_the_wrong_kind(plc: tuple[AsyncConnection, list[Any]], tags: Any, fragment: str):
    connection, _ = plc
    for call in (connection.resolve, connection.explain):
        with pytest.raises(bf.ArgumentTypeError) as caught:
            call(tags)
        assert isinstance(caught.value, TypeError)
        assert fragment in str(caught.value)


def test_a_lone_surrogate_in_a_raw_address_is_named():
    connection = AsyncConnection("opc.tcp://127.0.0.1:9", security="None")
    with pytest.raises(bf.ConfigurationError, match=r"'ns=2;s=\\ud800'.*position 7"):
        connection.explain("ns=2;s=\ud800")


@pytest.mark.parametrize(
    ("values", "error", "fragment"),
    [
        ([("setpoint", 1.0)], bf.ArgumentTypeError, "takes a mapping"),
        ("setpoint", bf.ArgumentTypeError, "takes a mapping"),
        ({1: 2.0}, bf.ArgumentTypeError, "keys are tag names"),
        ({None: 2.0}, bf.ArgumentTypeError, "got None"),
        ({"enable": np.array([1, 0])}, bf.ValueOutOfRange, "'enable' is bool"),
        ({"enable": float("nan")}, bf.ValueOutOfRange, "'enable' is bool"),
        ({"name": "ab\0c"}, bf.ValueOutOfRange, "NUL character at position 2"),
        ({"setpoint": True}, bf.ValueOutOfRange, "a bool, not a number"),
        ({"setpoint": math.inf}, bf.ValueOutOfRange, "not a finite number"),
        ({"setpoint": 2**1024}, bf.ValueOutOfRange, "overflows"),
    ],
)
def test_writes_of_the_wrong_kind(
    plc: tuple[AsyncConnection, list[Any]], values: Any, error: type, fragment: str
):
    connection, sent = plc
    with pytest.raises(error) as caught:
        finish(connection.write(values))
    assert isinstance(caught.value, bf.BifrostError)
    assert fragment in str(caught.value)
    assert not sent


def test_pd_na_to_a_bool_tag(plc: tuple[AsyncConnection, list[Any]]):
    import pandas as pd

    with pytest.raises(bf.ValueOutOfRange, match="'enable' is bool; got <NA>"):
        finish(plc[0].write({"enable": pd.NA}))


def test_float32_rounding_warns_or_with_exact_is_refused(plc: tuple[AsyncConnection, list[Any]]):
    connection, sent = plc
    with pytest.warns(bf.PrecisionWarning, match=r"'setpoint'.*16777217 is stored as 16777216\.0"):
        finish(connection.write({"setpoint": 16777217}))
    assert len(sent) == 1
    with pytest.raises(bf.ValueOutOfRange, match="exact=True refuses rounding"):
        finish(connection.write({"setpoint": 1e-46}, exact=True))
    assert len(sent) == 1
    finish(connection.write({"setpoint": 0.1}, exact=True))
    assert len(sent) == 2


@pytest.mark.parametrize(
    ("type_id", "type_name", "value", "fragment"),
    [
        (11, "Double", math.inf, "not a finite number"),
        (11, "Double", True, "a bool, not a number"),
        (10, "Float", 1e39, "32-bit"),
        (12, "String", "a\0b", "NUL character"),
        (1, "Boolean", 2, "Boolean"),
    ],
)
def test_opcua_follows_the_same_rule(type_id: int, type_name: str, value: Any, fragment: str):
    ua = pytest.importorskip("asyncua").ua
    meta = NodeMeta(type_id, type_name, -1, 3, 3)
    tag = bf.Tag("x", "ns=2;s=X")
    with pytest.raises(bf.ValueOutOfRange) as caught:
        to_variant(ua, "tag 'x'", meta, plain_value(tag, value))
    assert fragment in str(caught.value)
    assert "'x'" in str(caught.value)


def test_opcua_float_rounding_warns_too():
    ua = pytest.importorskip("asyncua").ua
    with pytest.warns(bf.PrecisionWarning, match="stored as 16777216.0"):
        variant = to_variant(ua, "tag 'x'", NodeMeta(10, "Float", -1, 3, 3), 16777217)
    assert variant.Value == 16777216.0
    with exact_writes(True), pytest.raises(bf.ValueOutOfRange, match="exact=True"):
        to_variant(ua, "tag 'x'", NodeMeta(10, "Float", -1, 3, 3), 16777217)


@pytest.mark.parametrize(
    ("url", "options", "fragment"),
    [
        ("modbus://[::1", {}, "is not a valid URL"),
        ("modbus://h", {"unit": math.inf}, "unit=inf is invalid"),
        ("s7://h", {"timeout": 10**400}, "timeout="),
        ("modbus://127.0.0.1:0", {}, "(URL 'modbus://127.0.0.1:0')"),
        ("ftp://user:secret@h", {}, "'ftp://user:***@h'"),
        (None, {}, "None is not a device URL"),
    ],
)
def test_urls_and_options(url: Any, options: dict[str, Any], fragment: str):
    with pytest.raises(bf.ConfigurationError) as caught:
        driver_for_url(url, **options)
    assert fragment in str(caught.value)
    assert "secret" not in str(caught.value)

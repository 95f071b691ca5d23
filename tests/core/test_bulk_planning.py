"""Cold planning at once (one regex over all addresses, Tags field by field) against the
tag-by-tag path it stands in for: the same plan columns, the same Tags, the same errors."""

from __future__ import annotations

import gc
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bifrost import aio
from bifrost.exceptions import BifrostError
from bifrost.model import Tag
from bifrost.planning import gc_paused
from bifrost.protocols.modbus import plan
from bifrost.protocols.modbus.address import parse_modbus_address
from bifrost.tags import TagTable

_DRIVER = aio.AsyncConnection("modbus://127.0.0.1:1502")._driver

# Plain addresses, the forms the full parser alone handles, and faults of every kind.
_PIECES = st.one_of(
    st.builds(
        lambda table, offset, kind, unit: f"{table}:{offset}{kind}{unit}",
        st.sampled_from(["hr", "ir", "co", "di", "HR", "Ir"]),
        st.sampled_from([0, 1, 17, 999, 65534, 65535, 65536, 99999]),
        st.sampled_from(
            ["", ":float32", ":INT32:CDAB", ":uint16:BADC", ":string[3]", ":bool", ":float64:dcba"]
        ),
        st.sampled_from(["", "@1", "@7", "@255", "@256", "@007"]),
    ),
    st.sampled_from(["40101", "40101:float32", "00001", " hr:3", "hr:3 ", "hr:x", "hr:", "@2"]),
)


def _tags(addresses: list[str]) -> list[Tag]:
    return [Tag(name=a, address=a) for a in addresses]


def _same_columns(tags: list[Tag]) -> None:
    at_once = plan._columns_at_once(tags, _DRIVER.options)
    try:
        one_by_one = plan._columns_one_by_one(tags, _DRIVER.options)
    except BifrostError:
        assert at_once is None  # the tag-by-tag pass raises the error that names the tag
        return
    if at_once is None:
        return  # odd lines: planned tag by tag
    assert list(at_once[0]) == list(one_by_one[0])
    for ours, reference in zip(at_once[1:], one_by_one[1:], strict=True):
        if isinstance(reference, np.ndarray):
            np.testing.assert_array_equal(ours, reference)
        else:
            assert ours == reference


@settings(max_examples=300, deadline=None)
@given(st.lists(_PIECES, min_size=1, max_size=30))
def test_columns_at_once_match_the_tag_by_tag_pass(addresses):
    _same_columns(_tags(addresses))


def test_a_long_plain_list_is_planned_at_once_and_matches():
    addresses = [
        f"hr:{i}" if i % 3 == 0 else f"ir:{i % 60000}:float32:cdab@2" if i % 3 else f"co:{i}"
        for i in range(5000)
    ]
    tags = _tags(addresses)
    assert plan._columns_at_once(tags, _DRIVER.options) is not None
    _same_columns(tags)
    compiled = plan.compile_read(tags, _DRIVER.options)
    assert compiled.addresses[4] == parse_modbus_address("ir:4:float32:cdab@2")
    assert [a.offset for a in compiled.addresses[:3]] == [0, 1, 2]


def test_a_unit_refused_by_the_options_falls_back_to_the_error_naming_the_tag():
    driver = aio.AsyncConnection("modbus://127.0.0.1:1502", unit=1)._driver
    tags = _tags(["hr:1", "hr:2@0"])
    assert plan._columns_at_once(tags, driver.options) is None
    with pytest.raises(BifrostError, match="hr:2@0"):
        plan.compile_read(tags, driver.options)


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.one_of(_PIECES, st.sampled_from(["level", "pump", "nonsense", "3"])), max_size=20)
)
def test_resolve_all_gives_the_tags_and_errors_of_resolve(items):
    table = TagTable([Tag(name="level", address="hr:10"), Tag(name="pump", address="co:1")])
    try:
        expected = [table.resolve(item, _DRIVER.is_address) for item in items]
    except BifrostError as exc:
        expected_error = exc
    else:
        expected_error = None
    if expected_error is not None:
        with pytest.raises(type(expected_error), match=re.escape(str(expected_error))):
            table.resolve_all(items, _DRIVER.is_address)
        return
    got = table.resolve_all(items, _DRIVER.is_address)
    assert got == expected
    assert [t.meta for t in got] == [{} for _ in got]
    raw = [t for t, item in zip(got, items, strict=True) if table.get(item) is None]
    assert len({id(t.meta) for t in raw}) == len(raw)  # no meta dict shared between Tags


def test_resolve_all_keeps_tag_objects_and_refuses_what_resolve_refuses():
    tag = Tag(name="x", address="hr:1")
    assert TagTable().resolve_all([tag, "hr:2"], _DRIVER.is_address)[0] is tag
    with pytest.raises(BifrostError, match="list"):
        TagTable().resolve_all(["hr:1", ["hr:2"]], _DRIVER.is_address)  # type: ignore[list-item]


def test_gc_paused_restores_the_collector_state():
    assert gc.isenabled()
    with gc_paused():
        assert not gc.isenabled()
    assert gc.isenabled()
    gc.disable()
    try:
        with gc_paused():
            pass
        assert not gc.isenabled()  # a collector the user turned off stays off
    finally:
        gc.enable()
    with pytest.raises(RuntimeError), gc_paused():
        raise RuntimeError
    assert gc.isenabled()

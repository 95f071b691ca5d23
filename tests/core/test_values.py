"""Values to write: engineering units undone once, then checked against the raw type."""

from __future__ import annotations

import math
from typing import Any

import pytest

from bifrost.exceptions import ValueOutOfRange
from bifrost.model import DataType, Tag
from bifrost.values import check, unscale


def to_raw(name: str, value: Any, dtype: DataType, *, length: int = 0, **scaling: float) -> Any:
    # The write path: aio unscales once, then the driver checks the raw value.
    tag = Tag(name, "hr:0", **scaling)
    return check(tag, unscale(tag, value), dtype, length)


@pytest.mark.parametrize(
    ("value", "dtype", "kwargs", "raw"),
    [
        (75.0, DataType.FLOAT32, {}, 75.0),
        (7.5, DataType.INT16, {"scale": 0.1}, 75),
        (20.0, DataType.UINT16, {"scale": 0.5, "offset": 10.0}, 20),
        (-32768, DataType.INT16, {}, -32768),
        (2**64 - 1, DataType.UINT64, {}, 2**64 - 1),
        (True, DataType.BOOL, {}, True),
        (0, DataType.BOOL, {}, False),
    ],
)
def test_to_raw_accepts_values_that_fit(value, dtype, kwargs, raw):
    assert to_raw("t", value, dtype, **kwargs) == raw


@pytest.mark.parametrize(
    ("value", "dtype", "kwargs", "fragment"),
    [
        (70000, DataType.INT16, {}, "outside -32768..32767"),
        (-1, DataType.UINT16, {}, "outside 0..65535"),
        (2**64, DataType.UINT64, {}, "outside"),
        (1.5, DataType.INT32, {}, "not an integer"),
        (7.55, DataType.INT16, {"scale": 0.1}, "not an integer"),
        (1e39, DataType.FLOAT32, {}, "overflows"),
        (math.inf, DataType.FLOAT64, {}, "not a finite"),
        ("12", DataType.INT16, {}, "not a number"),
        (True, DataType.INT16, {}, "not a number"),
        (2, DataType.BOOL, {}, "bool"),
        (12, DataType.STRING, {"length": 4}, "string"),
        ("too long", DataType.STRING, {"length": 4}, "room for 4"),
        ("€", DataType.STRING, {"length": 4}, "Latin-1"),
    ],
)
def test_to_raw_refuses_values_that_do_not_fit(value, dtype, kwargs, fragment):
    with pytest.raises(ValueOutOfRange, match=r"'tank\.x'") as caught:
        to_raw("tank.x", value, dtype, **kwargs)
    assert fragment in str(caught.value)

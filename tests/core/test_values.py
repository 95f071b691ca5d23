"""Values to write: engineering units undone once, then checked against the raw type."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest

from bifrost.exceptions import PrecisionWarning, ValueOutOfRange
from bifrost.model import DataType, Tag
from bifrost.values import check, exact_writes, unscale


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


# -- the one rule, shared by every protocol ---------------------------------------------------
@pytest.mark.parametrize(
    ("value", "dtype", "fragment"),
    [
        (True, DataType.FLOAT64, "a bool, not a number"),
        (np.bool_(False), DataType.INT32, "a bool, not a number"),
        (-math.inf, DataType.FLOAT32, "not a finite number"),
        (np.float64(math.inf), DataType.FLOAT64, "not a finite number"),
        (math.nan, DataType.INT16, "not a finite number"),
        (2**1024, DataType.FLOAT64, "overflows"),
        (2**1100, DataType.INT64, "outside"),
        pytest.param(-(10**5000), DataType.UINT16, "integer of about 5001", id="5001-digits"),
        (pd.NA, DataType.BOOL, "<NA>"),
        (np.array([1, 0]), DataType.BOOL, "ndarray"),
        (None, DataType.INT16, "None"),
        (complex(1, 0), DataType.FLOAT64, "not a number"),
        ("a\0b", DataType.STRING, "NUL character at position 1"),
        ("\ud800", DataType.STRING, "lone surrogate"),
    ],
)
def test_the_one_rule_refuses(value, dtype, fragment):
    with pytest.raises(ValueOutOfRange, match=r"'tank\.x'") as caught:
        to_raw("tank.x", value, dtype, length=8)
    assert fragment in str(caught.value)


def test_nan_is_written_to_float_tags():
    assert math.isnan(to_raw("t", math.nan, DataType.FLOAT32))
    assert math.isnan(to_raw("t", np.float32("nan"), DataType.FLOAT64))


def test_scaled_huge_ints_are_refused_not_overflowed():
    with pytest.raises(ValueOutOfRange, match="beyond the range"):
        to_raw("t", 2**1024, DataType.FLOAT64, scale=2.0)


@pytest.mark.parametrize(
    ("value", "dtype", "stored"),
    [
        (16777217, DataType.FLOAT32, "16777216.0"),
        (1e-46, DataType.FLOAT32, "0.0"),
        (0.123456789, DataType.FLOAT32, "0.12345679"),
        (2**53 + 1, DataType.FLOAT64, "9007199254740992.0"),
    ],
)
def test_rounded_floats_warn_or_are_refused_with_exact(value, dtype, stored):
    with pytest.warns(PrecisionWarning) as caught:
        to_raw("tank.x", value, dtype)
    message = str(caught[0].message)
    assert "'tank.x'" in message
    assert repr(value) in message
    assert f"stored as {stored}" in message
    with exact_writes(True), pytest.raises(ValueOutOfRange, match="exact=True"):
        to_raw("tank.x", value, dtype)


@pytest.mark.parametrize(
    ("value", "dtype"),
    [
        (0.1, DataType.FLOAT32),  # its shortest float32 form is 0.1: nothing visible lost
        (float(np.float32(0.1)), DataType.FLOAT32),
        (16777216, DataType.FLOAT32),
        (np.float32(3.3), DataType.FLOAT32),
        (0.1, DataType.FLOAT64),
        (2**53, DataType.FLOAT64),
    ],
)
def test_exact_floats_pass_silently(value, dtype):
    with exact_writes(True), warnings.catch_warnings():
        warnings.simplefilter("error")
        to_raw("t", value, dtype)

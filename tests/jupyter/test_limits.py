"""Engineering limits (min, max, step) as a user meets them: tag tables, writes, reads,
browse(), the TagBrowser and the magics. Writes go to the in-memory device, which logs
every request that reaches it, so "refused before anything is sent" is counted there.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import ipywidgets as widgets
import numpy as np
import pytest

import bifrost as bf
from bifrost.jupyter import TagBrowser
from bifrost.jupyter.magics import BifrostMagicError
from bifrost.testing import MemoryDevice, memory_device

TABLE = """name,address,unit,min,max,step,writable
setpoint,mem:setpoint,degC,0,150,0.5,true
speed,mem:speed,rpm,,1800,,true
level,mem:level,m,0,5,,false
free,mem:free,,,,,true
"""


@pytest.fixture
def device() -> Iterator[MemoryDevice]:
    with memory_device(values={"setpoint": 70.0, "speed": 1450.0, "level": 2.0, "free": 1.0}) as d:
        yield d


@pytest.fixture
def limited(device: MemoryDevice) -> Iterator[bf.Connection]:
    with bf.connect(device.url, tags=bf.TagTable.from_csv(TABLE), writable=True) as plc:
        yield plc


def test_tag_tables_read_and_write_limits(tmp_path):
    table = bf.TagTable.from_csv(TABLE)
    setpoint = table["setpoint"]
    assert (setpoint.min, setpoint.max, setpoint.step) == (0.0, 150.0, 0.5)
    assert setpoint.limits_text == "0 to 150 degC, step 0.5"
    assert table["speed"].limits_text == "<= 1800 rpm"
    assert not table["free"].has_limits
    yaml = bf.TagTable.from_yaml(
        "setpoint: {address: mem:setpoint, unit: degC, min: 0, max: 150, step: 0.5}\n"
        "free: mem:free\n"
    )
    assert yaml["setpoint"] == bf.Tag(
        "setpoint", "mem:setpoint", unit="degC", min=0, max=150, step=0.5
    )
    for path in (tmp_path / "t.csv", tmp_path / "t.yaml"):
        (table.to_csv if path.suffix == ".csv" else table.to_yaml)(path)
        assert bf.TagTable.load(path) == table
    # A table without limits writes no limit columns (files stay as they were).
    plain = bf.TagTable([bf.Tag("a", "mem:a")])
    plain.to_csv(tmp_path / "plain.csv")
    assert (tmp_path / "plain.csv").read_text().splitlines()[0].split(",")[-1] == "writable"


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("x,mem:x,,5,1,,", "min 5 is above max 1"),
        ("x,mem:x,,,,-1,", "step must be > 0"),
        ("x,mem:x,,low,,,", "min must be a number"),
        ("x,mem:x,,nan,,,", "min must be a finite number"),
    ],
)
def test_bad_limits_are_configuration_errors(row, message):
    with pytest.raises(bf.ConfigurationError, match=message):
        bf.TagTable.from_csv("name,address,unit,min,max,step,writable\n" + row + "\n")


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"setpoint": 1e9}, r"'setpoint': 1000000000.0 degC is above its maximum 150 degC"),
        ({"setpoint": -0.5}, r"'setpoint': -0.5 degC is below its minimum 0 degC"),
        ({"setpoint": 75.3}, r"'setpoint': 75.3 degC is not on its step of 0.5 degC.*75.5"),
        ({"setpoint": math.nan}, r"'setpoint': NaN is outside its range 0 to 150 degC"),
        ({"speed": 2000}, r"'speed': 2000 rpm is above its maximum 1800 rpm"),
        # One bad value stops the whole write: the good one is not sent either.
        ({"free": 3.0, "setpoint": 200.0}, r"'setpoint': 200.0 degC is above"),
        ({"setpoint": np.float32(151.0)}, r"above its maximum 150"),
    ],
)
def test_out_of_range_writes_send_nothing(limited, device, values, message):
    writes = device.count("write")
    with pytest.raises(bf.ValueOutOfRange, match=message) as caught:
        limited.write(values)
    assert "nothing was written" in str(caught.value)
    assert device.count("write") == writes  # nothing reached the device
    assert device["free"] == 1.0


def test_writes_within_the_limits_go_through(limited, device):
    limited.write({"setpoint": 150.0, "speed": -5.0, "free": 1e9})
    assert device["setpoint"] == 150.0
    assert device["free"] == 1e9
    limited.write({"setpoint": 0.5 * 3})  # on a step, float rounding notwithstanding
    assert device["setpoint"] == 1.5


def test_the_type_check_still_applies_within_the_limits(device):
    table = bf.TagTable([bf.Tag("small", "mem:small:int16", min=-1e6, max=1e6, writable=True)])
    with (
        bf.connect(device.url, tags=table, writable=True) as plc,
        pytest.raises(bf.ValueOutOfRange, match="small"),
    ):
        plc.write({"small": 100_000})  # within the limits, not within an int16
    assert device.count("write") == 0


def test_a_value_read_outside_its_limits_is_uncertain(limited, device):
    device["level"] = 7.5  # above the tank's 5 m
    device["speed"] = 1900.0
    frame = limited.read(["level", "speed", "setpoint", "free"])
    assert list(frame["quality"]) == ["uncertain", "uncertain", "good", "good"]
    assert frame.loc["level", "value"] == 7.5  # the value itself is kept
    rec = limited.record(["level", "setpoint"], interval="10ms", duration="50ms", progress=False)
    quality = rec.quality_frame()
    assert set(quality["level"]) == {"uncertain"}
    assert set(quality["setpoint"]) == {"good"}


def test_browse_and_the_tag_browser_show_the_limits(limited):
    frame = limited.browse()
    assert frame.loc["setpoint", "min"] == 0.0
    assert frame.loc["setpoint", "max"] == 150.0
    assert frame.loc["setpoint", "step"] == 0.5
    assert math.isnan(frame.loc["free", "max"])
    browser = TagBrowser(limited, live=False)
    try:

        def texts(name):
            return " ".join(c.value for c in browser._rows[name] if isinstance(c, widgets.HTML))

        assert "0 to 150 degC, step 0.5" in texts("setpoint")
        assert "&lt;= 1800 rpm" in texts("speed")
    finally:
        browser.close()


def test_the_plants_setpoint_has_its_range(plant):
    for protocol in ("modbus", "s7", "opcua"):
        setpoint = plant.tags(protocol)["reactor.setpoint"]
        assert (setpoint.min, setpoint.max) == (0.0, 150.0)
        assert setpoint.unit == "degC"


def test_the_magic_refuses_with_tag_value_and_range(shell, plant):
    # The issue: `%bifrost write plcw reactor.setpoint=1e9` wrote 1e9.
    shell.run(f"%bifrost connect plcw {plant.urls['modbus']} --writable")
    shell.ns["plcw"].tags = plant.tags("modbus")
    before = shell.run("%bifrost read plcw reactor.setpoint").loc["reactor.setpoint", "value"]
    with pytest.raises(BifrostMagicError) as caught:
        shell.run("%bifrost write plcw reactor.setpoint=1e9")
    message = str(caught.value)
    assert "reactor.setpoint" in message
    assert "1000000000.0 degC" in message
    assert "0 to 150 degC" in message
    assert "range" in caught.value.hint
    after = shell.run("%bifrost read plcw reactor.setpoint").loc["reactor.setpoint", "value"]
    assert after == before

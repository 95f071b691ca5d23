"""The widgets, driven headless by setting values and clicking, against the plant."""

from __future__ import annotations

import numpy as np
import pytest

import bifrost as bf
from bifrost.jupyter import DecodeProbe, LiveTrend, RecorderPanel, TagBrowser
from bifrost.jupyter.widgets import _minmax_indices, downsample_indices
from bifrost.model import ByteOrder, DataType, Quality, Tag
from bifrost.protocols.modbus.codec import encode_registers


# -- TagBrowser ------------------------------------------------------------------------------
def test_tag_browser_lists_filters_and_selects(plc):
    browser = TagBrowser(plc, live=False)
    try:
        assert list(browser.checks) == plc.tags.names
        browser.search.value = "reactor"
        assert browser.shown == ["reactor.temperature", "reactor.setpoint", "reactor.heater"]
        hidden = [n for n, row in browser._rows.items() if row[0].layout.display == "none"]
        assert set(hidden) == set(plc.tags.names) - set(browser.shown)
        browser.select_all.click()
        assert browser.selected == browser.shown
        browser.clear.click()
        assert browser.selected == []
        browser.search.value = "hr:0 float32"  # every word must match
        assert browser.shown == ["tank.level"]
    finally:
        browser.close()


def test_tag_browser_read_fills_the_value_column(plc):
    browser = TagBrowser(plc, live=False)
    try:
        browser.checks["tank.level"].value = True
        browser.checks["line.recipe"].value = True
        browser.read_button.click()
        assert list(browser.values.index) == ["tank.level", "line.recipe"]
        assert "PART-" in browser._cells["line.recipe"].value
        assert browser._cells["tank.level"].value != ""
        assert browser._cells["pump.speed"].value == ""
        assert "read 2 tags" in browser.status.value
    finally:
        browser.close()


def test_tag_browser_record_selected_produces_a_recording(plc, wait, no_thread_leak):
    browser = TagBrowser(plc, interval="50ms", refresh=0.1)
    try:
        browser.record_button.click()
        assert browser.recording is None
        assert "tick the tags" in browser.status.value
        browser.checks["tank.level"].value = True
        browser.checks["pump.speed"].value = True
        browser.record_button.click()
        rec = browser.recording
        assert isinstance(rec, bf.Recording)
        assert rec.running
        assert rec.names == ["tank.level", "pump.speed"]
        assert browser.record_button.disabled
        assert isinstance(browser.trend, LiveTrend)
        assert wait(lambda: len(rec) >= 3 and browser.trend.redraws >= 2)
        browser.stop_button.click()
        assert not rec.running
        assert not browser.record_button.disabled
        assert "recorded" in browser.status.value
        summary = browser.output.children[-1]
        assert "Recording" in summary.value
        assert f"{len(rec):,}" in summary.value
    finally:
        browser.close()


def test_tag_browser_shows_errors_in_the_widget(plc):
    browser = TagBrowser(plc, live=False)
    try:
        browser.checks["tank.level"].value = True
        browser.interval.value = "soon"
        browser.record_button.click()
        assert browser.recording is None
        assert "ConfigurationError" in browser.status.value
    finally:
        browser.close()


# -- LiveTrend -------------------------------------------------------------------------------
def _synthetic_recording(n: int) -> bf.Recording:
    tags = [Tag("wave", "hr:0:float32", unit="m"), Tag("text", "hr:16:string[4]")]
    rec = bf.Recording(tags, ["float32", "string[4]"], 0.01)
    times = np.arange(n, dtype=np.int64) * 10_000_000 + 1_700_000_000_000_000_000
    values = np.column_stack([np.sin(np.arange(n) / 500.0), np.zeros(n)])
    values[n // 3, 0] = 50.0  # one spike the plot must keep
    objects = np.empty((n, 2), dtype=object)
    quality = np.full((n, 2), Quality.GOOD, dtype=np.uint8)
    rec.buffer.extend(times, values, objects, quality)
    rec._finished.set()
    return rec


def test_live_trend_downsamples_long_recordings_and_keeps_spikes():
    rec = _synthetic_recording(200_000)
    trend = LiveTrend(rec, points=1000)
    try:
        assert trend.tags == ["wave"]  # strings are not plotted
        assert not trend.live  # a finished recording is drawn once
        assert bytes(trend.image.value).startswith(b"\x89PNG")
        _x, y = trend._lines[0].get_data()
        assert len(y) <= 1002
        assert np.max(y) == 50.0
        assert "200,000 samples" in trend.title.value
    finally:
        trend.close()


def test_minmax_indices_keep_extremes_of_every_bucket():
    rng = np.random.default_rng(1)
    y = rng.normal(size=10_001)
    y[1234] = np.nan
    picked = _minmax_indices(y, 100)
    assert len(picked) <= 102
    assert picked[0] == 0
    assert picked[-1] == len(y) - 1
    assert np.nanargmax(y) in picked
    assert np.nanargmin(y) in picked
    short = np.arange(10.0)
    assert list(downsample_indices(np.arange(10), short, 100)) == list(range(10))


def test_live_trend_rejects_unknown_tags():
    rec = _synthetic_recording(10)
    with pytest.raises(bf.ConfigurationError, match="'nope' not in the recording"):
        LiveTrend(rec, tags=["nope"])


# -- RecorderPanel ---------------------------------------------------------------------------
def test_recorder_panel_records_for_a_duration(plc, wait, no_thread_leak):
    panel = RecorderPanel(plc, ["tank.level", "reactor.temperature"], refresh=0.1)
    try:
        panel.interval.value = "50ms"
        panel.duration.value = "400ms"
        panel.live.value = False
        panel.start_button.click()
        rec = panel.recording
        assert rec is not None
        assert panel.stop_button.disabled is False
        assert wait(lambda: not rec.running)
        assert wait(lambda: "stopped" in panel.status.value)
        assert "samples" in panel.status.value
        assert "missed cycles" in panel.status.value
        assert "reconnects" in panel.status.value
        assert panel.start_button.disabled is False
        assert len(rec) >= 1
    finally:
        panel.close()


def test_recorder_panel_start_stop_with_live_trend(plc, wait, no_thread_leak):
    panel = RecorderPanel(plc, refresh=0.1)
    try:
        assert panel.tags == plc.tags.names
        panel.interval.value = "50ms"
        panel.start_button.click()
        rec = panel.recording
        assert isinstance(panel.trend, LiveTrend)
        assert wait(lambda: len(rec) >= 2)
        panel.stop_button.click()
        assert not rec.running
        assert "stopped" in panel.status.value
    finally:
        panel.close()


def test_recorder_panel_reports_bad_input(plc):
    panel = RecorderPanel(plc, ["tank.level"])
    try:
        panel.interval.value = "fast"
        panel.start_button.click()
        assert panel.recording is None
        assert "ConfigurationError" in panel.status.value
    finally:
        panel.close()


# -- DecodeProbe -----------------------------------------------------------------------------
@pytest.fixture
def still_plc(still_plant):
    with still_plant.connect("modbus", writable=True) as connection:
        yield connection


def test_decode_probe_finds_a_float_in_holding_registers(still_plant, still_plc):
    level = still_plant.snapshot()["tank.level"]
    probe = DecodeProbe(still_plc, "hr:0", count=4, expected=level)
    try:
        assert list(probe.matrix.columns) == ["hr:0", "hr:1", "hr:2", "hr:3", "hr:4"]
        assert probe.matrix.loc["float32 ABCD", "hr:0"] == pytest.approx(level, rel=1e-6)
        assert probe.matches[0][0] == "hr:0:float32"
        assert "hr:0:float32" in probe.view.value
        assert "background:#2da44e" in probe.view.value
    finally:
        probe.close()


def test_decode_probe_finds_a_word_swapped_float_one_register_off(still_plant, still_plc):
    vibration = still_plant.snapshot()["pump.vibration_rms"]
    # The datasheet said "register 1" (1-based): probe from ir:1, the value starts at ir:0.
    probe = DecodeProbe(still_plc, "ir:1", count=3, expected=vibration)
    try:
        assert probe.first == 0
        addresses = [m[0] for m in probe.matches]
        assert "ir:0:float32:CDAB" in addresses
        assert "ir:0:float32" not in addresses
    finally:
        probe.close()


def test_decode_probe_finds_scaled_integers(still_plant, still_plc):
    heater = still_plant.snapshot()["reactor.heater"]
    raw = round(heater * 10)
    probe = DecodeProbe(still_plc, "ir:4", count=1, expected=raw * 0.1)
    try:
        assert ("ir:4:int16", pytest.approx(raw * 0.1), 0.1) in probe.matches
    finally:
        probe.close()


@pytest.mark.parametrize(
    ("dtype", "order"),
    [
        (DataType.FLOAT64, ByteOrder.DCBA),
        (DataType.INT32, ByteOrder.BADC),
        (DataType.UINT64, ByteOrder.CDAB),
        (DataType.FLOAT32, ByteOrder.ABCD),
    ],
)
def test_decode_probe_shows_every_type_and_order(still_plc, dtype, order):
    value = {"float64": -1234.5, "int32": -70000, "uint64": 2**40 + 7, "float32": 0.25}[dtype.value]
    registers = encode_registers([value], dtype, order)[0]
    still_plc.write({f"hr:{910 + i}": int(r) for i, r in enumerate(registers)})
    probe = DecodeProbe(still_plc, "hr:910", count=len(registers), expected=float(value))
    try:
        row = f"{dtype.value} {order.value}"
        assert probe.matrix.loc[row, "hr:910"] == pytest.approx(value)
        suffix = "" if order is ByteOrder.ABCD else f":{order.value}"
        assert f"hr:910:{dtype.value}{suffix}" in [m[0] for m in probe.matches]
        window = probe.registers.filled(0)[1 : 1 + len(registers)]
        assert list(window) == [int(r) for r in registers]
    finally:
        probe.close()


def test_decode_probe_marks_refused_registers_and_implausible_floats(still_plc):
    probe = DecodeProbe(still_plc, "ir:14", count=4)
    try:
        mask = np.ma.getmaskarray(probe.registers)
        # ir:13..ir:18 read; the plant has input registers 0-15 only.
        assert list(mask) == [False, False, False, True, True, True]
        assert "refused" in probe.view.value
        assert probe.matrix.loc["uint16 ABCD", "ir:16"] is None
        assert probe.matrix.loc["float64 ABCD", "ir:13"] is None  # runs into a refused one
        assert probe.matrix.loc["uint16 ABCD", "ir:15"] is not None
        rows = probe.view.value.count("<tr>")
        probe.show_all.value = False  # rows without a single plausible value go
        assert probe.view.value.count("<tr>") < rows
    finally:
        probe.close()


def test_decode_probe_reacts_to_new_input(still_plant, still_plc):
    probe = DecodeProbe(still_plc, "hr:0", count=2)
    try:
        assert probe.matches == []
        assert "expect" in probe.view.value
        probe.expected.value = "123456789"
        assert probe.matches == []
        assert "No decoding gives" in probe.view.value
        probe.address.value = "hr:6"
        probe.expected.value = repr(still_plant.snapshot()["reactor.temperature"])
        probe.read_button.click()
        assert probe.matches[0][0] == "hr:6:float32"
        probe.address.value = "hr:6:float32:CDAB"
        probe.read_button.click()
        assert "▶ float32 CDAB" in probe.view.value
    finally:
        probe.close()


def test_decode_probe_refuses_bits_and_other_protocols(still_plc):
    with pytest.raises(bf.ConfigurationError, match="single bit"):
        DecodeProbe(still_plc, "co:0")
    with pytest.raises(bf.AddressError):
        DecodeProbe(still_plc, "hr:x")

"""The widgets, driven headless by setting values and clicking, against the plant."""

from __future__ import annotations

import datetime
import re
import zoneinfo

import ipywidgets as widgets
import numpy as np
import pytest

import bifrost as bf
from bifrost.jupyter import DecodeProbe, LiveTrend, RecorderPanel, TagBrowser
from bifrost.jupyter.widgets import _minmax_indices, downsample_indices
from bifrost.jupyter.widgets.decode_probe import (
    Tolerance,
    decode_window,
    rank_matches,
    typed_decimals,
)
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


def test_tag_browser_keeps_ticked_tags_in_sight_and_counts_them(plc):
    browser = TagBrowser(plc, live=False)
    try:
        assert browser.selected_count.value == "none selected"
        browser.checks["tank.level"].value = True
        browser.checks["pump.speed"].value = True
        assert browser.selected_count.value == "<b>2</b> selected"
        browser.search.value = "reactor"
        # The filter narrows what is offered, not what was picked (the bug: it hid them).
        shown = {n for n, row in browser._rows.items() if row[0].layout.display != "none"}
        assert shown == {"reactor.temperature", "reactor.setpoint", "reactor.heater"} | {
            "tank.level",
            "pump.speed",
        }
        assert browser.shown == ["reactor.temperature", "reactor.setpoint", "reactor.heater"]
        # Every control sits above the table: the actions are not below a scrolled list.
        children = list(browser.children)
        grid = next(c for c in children if isinstance(c, widgets.GridBox))
        buttons = [b for c in children[: children.index(grid)] for b in c.children]
        assert browser.read_button in buttons
        assert browser.record_button in buttons
        assert browser.stop_button in buttons
    finally:
        browser.close()


def test_widget_texts_count_in_the_singular_too(plc):
    panel = RecorderPanel(plc, ["tank.level"])
    try:
        assert panel.status.value == "ready to record 1 tag"
    finally:
        panel.close()
    browser = TagBrowser(plc, live=False, tz="UTC")
    try:
        browser.checks["tank.level"].value = True
        browser.read_button.click()
        assert re.search(r"read 1 tag at \d\d:\d\d:\d\d UTC$", browser.status.value)
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


def _recording_at(start: datetime.datetime, seconds: float, step_s: float) -> bf.Recording:
    """A finished recording of a slow ramp (plus an offset the y axis must not hide)."""
    tags = [Tag("level", "hr:0:float32", unit="m"), Tag("speed", "hr:2:float32", unit="rpm")]
    rec = bf.Recording(tags, ["float32", "float32"], step_s)
    n = round(seconds / step_s) + 1
    start_ns = int(start.timestamp()) * 10**9
    times = start_ns + np.arange(n, dtype=np.int64) * round(step_s * 1e9)
    values = np.column_stack([20788.891 + 1e-4 * np.sin(np.arange(n) / 5.0), np.arange(n) * 1.0])
    quality = np.full((n, 2), Quality.GOOD, dtype=np.uint8)
    rec.buffer.extend(times, values, np.empty((n, 2), dtype=object), quality)
    rec._finished.set()
    return rec


def _parse_tick(label: str) -> datetime.datetime:
    """A tick label as a time (and date, on a second line); raises if it is not one."""
    clock, _, day = label.partition("\n")
    pattern = "%H:%M:%S.%f" if "." in clock else "%H:%M:%S"
    if day:
        return datetime.datetime.strptime(f"{day} {clock}", f"%Y-%m-%d {pattern}")
    return datetime.datetime.strptime(clock, pattern)


@pytest.mark.parametrize(
    ("tz", "start", "seconds", "step_s"),
    [
        ("UTC", datetime.datetime(2026, 11, 29, 10, 49, 1, tzinfo=datetime.UTC), 4.0, 0.1),
        ("UTC", datetime.datetime(2026, 11, 29, 10, 0, 0, tzinfo=datetime.UTC), 7200.0, 5.0),
        # 23:59:50 in Berlin: the span crosses local midnight, not UTC's.
        (
            "Europe/Berlin",
            datetime.datetime(2026, 11, 29, 22, 59, 50, tzinfo=datetime.UTC),
            20.0,
            0.1,
        ),
    ],
)
def test_live_trend_time_axis_reads_wall_clock_time(tz, start, seconds, step_s):
    from matplotlib.dates import DateFormatter

    rec = _recording_at(start, seconds, step_s)
    trend = LiveTrend(rec, tz=tz)
    try:
        # Tick labels come from a date formatter, whatever data the lines were made with
        # (the bug: an empty float line kept a number formatter and printed 0.00022).
        formatter = trend._axes[-1].xaxis.get_major_formatter()
        assert isinstance(formatter, DateFormatter)
        labels = trend.tick_labels()
        assert len(labels) >= 3
        zone = zoneinfo.ZoneInfo(tz)
        first = start.astimezone(zone).replace(tzinfo=None)
        last = first + datetime.timedelta(seconds=seconds)
        ticks = [_parse_tick(label) for label in labels]
        if first.date() == last.date():
            assert all("\n" not in label for label in labels)
            ticks = [datetime.datetime.combine(first.date(), t.time()) for t in ticks]
        else:
            # Crossing midnight: the first tick names its date, and so does the first tick
            # of the new day; the others are times of the day before them.
            assert "\n" in labels[0]
            assert any(label.startswith("00:00:00\n") for label in labels[1:])
            day = first.date()
            dated = []
            for label, tick in zip(labels, ticks, strict=True):
                day = tick.date() if "\n" in label else day
                dated.append(datetime.datetime.combine(day, tick.time()))
            ticks = dated
        span = datetime.timedelta(seconds=seconds)
        assert first - 0.1 * span <= ticks[0]
        assert ticks[-1] <= last + 0.1 * span
        assert ticks == sorted(ticks)
        assert len(set(ticks)) == len(ticks)  # enough decimals to tell ticks apart
        assert trend._axes[-1].get_xlabel() == f"time ({tz})"
        assert f'data-ticks="time ({tz}): {labels[0].replace(chr(10), " ")}' in trend.title.value
        # The y axis shows values as they are: no offset, no multiplier, units labelled.
        level_axis = trend._axes[0]
        assert level_axis.yaxis.get_offset_text().get_text() == ""
        assert all(
            t.get_text().startswith("20788.89")
            for t in level_axis.get_yticklabels()
            if t.get_text()
        )
        assert level_axis.get_ylabel() == "level\n[m]"
    finally:
        trend.close()


def test_live_trend_axis_defaults_to_the_kernels_zone_and_knows_no_samples():
    tags = [Tag("level", "hr:0:float32", unit="m")]
    empty = bf.Recording(tags, ["float32"], 0.5)
    empty.started_ns = (
        int(datetime.datetime(2026, 11, 29, 3, 0, tzinfo=datetime.UTC).timestamp()) * 10**9
    )
    empty._finished.set()
    trend = LiveTrend(empty)
    try:
        local = datetime.datetime.now().astimezone().tzname()
        assert trend._axes[-1].get_xlabel() == f"time ({local})"
        # No samples yet: the axis shows the seconds after the start, not 1970.
        expected = datetime.datetime.fromtimestamp(empty.started_ns / 1e9).strftime("%H:%M")
        assert trend.tick_labels()
        assert all(label.startswith(expected) for label in trend.tick_labels())
        assert "0 samples of 1 tag " in trend.title.value
    finally:
        trend.close()
    with pytest.raises(bf.ConfigurationError, match="unknown timezone 'Mars/Olympus'"):
        LiveTrend(empty, tz="Mars/Olympus")


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
        assert ("ir:4:int16", pytest.approx(raw * 0.1), 0.1, True) in probe.matches
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


# -- DecodeProbe: ranking, tolerance, plausibility, live mode ---------------------------------
def _image(*parts: tuple[float | int, DataType, ByteOrder]) -> np.ma.MaskedArray:
    """Registers holding each value in turn (encoded as a device would), none refused."""
    words = np.concatenate([encode_registers([v], d, o)[0] for v, d, o in parts]).astype(np.uint16)
    return np.ma.MaskedArray(words, mask=np.zeros(len(words), dtype=bool))


def test_decode_ranking_puts_exact_decodings_before_near_misses():
    # hr:0 holds 2.318 as a float, hr:2 2318 (a uint16 of scale 0.001), hr:3 2.3125: the
    # near miss the old probe reported as a match (within 0.5 % of 2.318).
    registers = _image(
        (2.318, DataType.FLOAT32, ByteOrder.ABCD),
        (2318, DataType.UINT16, ByteOrder.ABCD),
        (2.3125, DataType.FLOAT32, ByteOrder.ABCD),
    )
    matrix, valid = decode_window(registers, "hr", 0)
    sighting = [(0.0, 2.318, typed_decimals("2.318"))]
    matches = rank_matches([(0.0, matrix)], sighting, Tolerance.parse("0.5%"), valid)
    exact = [m for m in matches if m.exact]
    close = [m for m in matches if not m.exact]
    assert [(m.address, m.scale) for m in exact] == [
        ("hr:0:float32", 1.0),
        ("hr:2:int16", 0.001),  # 2318 is an int16 too
        ("hr:2:uint16", 0.001),
    ]
    assert ("hr:3:float32", pytest.approx(2.3125), 1.0, False) in close
    assert matches[: len(exact)] == exact  # every exact one ranks before every close one
    # An absolute tolerance narrower than the miss leaves the exact ones only.
    narrow = rank_matches([(0.0, matrix)], sighting, Tolerance.parse("0.001"), valid)
    assert narrow == exact


def test_decode_tolerance_parses_relative_and_absolute():
    assert Tolerance.parse("0.5%") == Tolerance(0.005, relative=True)
    assert Tolerance.parse("± 2 %").allowed(50.0) == pytest.approx(1.0)
    assert Tolerance.parse("0.01") == Tolerance(0.01, relative=False)
    assert Tolerance.parse(0.2).allowed(1e6) == 0.2
    assert str(Tolerance.parse("0.5%")) == "±0.5 %"
    for bad in ("wide", "-1", "nan%"):
        with pytest.raises(bf.ConfigurationError, match="tolerance"):
            Tolerance.parse(bad)


def test_decode_plausibility_rejects_64_bit_garbage_and_denormals():
    registers = _image(
        (1.5, DataType.FLOAT32, ByteOrder.ABCD),  # two floats side by side...
        (2.5, DataType.FLOAT32, ByteOrder.ABCD),  # ...read as one int64: 4.6e18
        (1, DataType.UINT32, ByteOrder.ABCD),  # 0x0000 0x0001: a denormal float32
        (123_456, DataType.INT64, ByteOrder.ABCD),
    )
    matrix, valid = decode_window(registers, "hr", 0)
    columns = list(matrix.columns)
    assert abs(matrix.loc["int64 ABCD", "hr:0"]) > 1e18
    assert not valid["int64 ABCD"][columns.index("hr:0")]
    assert not valid["uint64 ABCD"][columns.index("hr:0")]
    assert 0 < matrix.loc["float32 ABCD", "hr:4"] < 1e-40
    assert not valid["float32 ABCD"][columns.index("hr:4")]
    assert valid["int64 ABCD"][columns.index("hr:6")]  # a real 64-bit count
    assert valid["float32 ABCD"][columns.index("hr:0")]


def test_decode_probe_shows_exact_and_close_matches_apart(still_plc):
    # A zero register between them, so no word-swapped pair combines the two.
    still_plc.write({"hr:930:float32": 2.318, "hr:932:float32": 0.0, "hr:934:float32": 2.3125})
    probe = DecodeProbe(still_plc, "hr:930", count=6, expected=2.318)
    try:
        assert [m.address for m in probe.matches if m.exact] == ["hr:930:float32"]
        assert probe.matches[0].address == "hr:930:float32"
        assert "hr:934:float32" in [m.address for m in probe.matches if not m.exact]
        assert "Exact: addresses that give 2.318" in probe.view.value
        assert "Within ±0.5 % of 2.318" in probe.view.value
        assert "background:#fff8c5" in probe.view.value  # the close ones, not green
        probe.tolerance_field.value = "0.0001"
        assert [m.address for m in probe.matches] == ["hr:930:float32"]
        assert "Within" not in probe.view.value
    finally:
        probe.close()


def test_decode_probe_live_keeps_the_decodings_that_follow_the_trend(still_plc):
    # hr:940 drifts 1.30, 1.31, ... per reading; hr:944 sits at 1.31 (a zero register
    # between, so no word-swapped pair mixes them). The HMI showed 1.31 two readings
    # before it was typed: a single reading finds nothing within 0.1 %.
    clock = iter(range(100))
    still_plc.write({"hr:940:float32": 1.30, "hr:942:float32": 0.0, "hr:944:float32": 1.31})
    probe = DecodeProbe(still_plc, "hr:940", count=6, tolerance="0.1%", lag=2.5, read=False)
    probe._now = lambda: float(next(clock))
    try:
        probe.read()  # t=0: 1.30
        probe.live.value = True  # t=1, stops ticking at once below: the test reads itself
        probe._stop_ticker()
        still_plc.write({"hr:940:float32": 1.31})
        probe.read()  # t=2: 1.31
        still_plc.write({"hr:940:float32": 1.32})
        probe.read()  # t=3: 1.32
        probe.expected.value = "1.31"  # typed at t=4, the reading at t=2 saw it
        assert {m.address for m in probe.matches} == {"hr:940:float32", "hr:944:float32"}
        still_plc.write({"hr:940:float32": 1.33})
        probe.read()  # t=5
        probe.expected.value = "1.33"  # t=6: the constant one does not follow
        assert [m.address for m in probe.matches] == ["hr:940:float32"]
        assert probe.matches[0].exact
        assert probe.matches[0].value == pytest.approx(1.33, rel=1e-6)
        assert "gave every value seen" in probe.status.value
        probe.live.value = False  # one reading, one sighting again
        assert len(probe.readings) == 1
        assert [s[1] for s in probe.sightings] == [1.33]
    finally:
        probe.close()
    # Without live mode the same drift finds nothing: the reading moved on.
    still_plc.write({"hr:940:float32": 1.32})
    static = DecodeProbe(still_plc, "hr:940", count=2, tolerance="0.1%", expected=1.31)
    try:
        assert static.matches == []
        assert "tick <i>live</i> if the value drifts" in static.view.value
    finally:
        static.close()


def test_decode_probe_live_mode_rereads_by_itself(still_plc, wait, no_thread_leak):
    probe = DecodeProbe(still_plc, "hr:0", count=2, refresh=0.05)
    try:
        probe.live.value = True
        assert wait(lambda: len(probe.readings) >= 3)
        assert "live" in probe.status.value
    finally:
        probe.close()
    assert probe._ticker is None

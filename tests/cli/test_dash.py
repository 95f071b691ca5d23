"""The dashboard driven by Textual's own pilot against the simulated plant over Modbus TCP."""

from __future__ import annotations

import asyncio
import math
import sys
import time
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("textual")
pytest.importorskip("textual_plot")

from rich.text import Text
from textual.pilot import Pilot
from textual.widgets import Button, Input, Static

import bifrost as bf
from bifrost.cli.dash import run
from bifrost.cli.dash.app import DashApp
from bifrost.cli.dash.live import format_cell, quality_style
from bifrost.cli.dash.widgets import (
    TagList,
    TrendChart,
    ValuesTable,
    _runs,
    decimated,
    scaled,
)
from bifrost.cli.dash.write import WriteDialog, parse_value
from bifrost.model import Quality

SIZE = (140, 40)


@pytest.fixture(scope="module")
def plant() -> Iterator[bf.sim.Plant]:
    with bf.sim.Plant(seed=3) as plant:
        plant.serve(modbus=0)
        yield plant


def drive(app: DashApp, script: Callable[[Pilot[int]], Awaitable[None]]) -> None:
    """Run ``script`` against the app headless; the app must have quit by the end."""

    async def main() -> None:
        async with app.run_test(size=SIZE) as pilot:
            await script(pilot)
        assert app.return_code == 0

    asyncio.run(main())


async def until(pilot: Pilot[int], condition: Callable[[], Any], what: str) -> None:
    deadline = time.monotonic() + 15.0
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await pilot.pause(0.05)


def cell(app: DashApp, tag: str, column: str) -> Text:
    table = app.query_one(ValuesTable)
    value = table.get_cell(tag, column)
    assert isinstance(value, Text)
    return value


def status(app: DashApp) -> str:
    return str(app.query_one("#status", Static).render())


@pytest.mark.usefixtures("no_thread_leak")  # the poller and bifrost's loop thread end on q
def test_live_values_change_and_are_coloured_by_quality(plant: bf.sim.Plant) -> None:
    plc = plant.connect("modbus")
    app = DashApp(plc, ["plant.heartbeat", "tank.level"], interval=0.2)
    seen: list[str] = []

    async def script(pilot: Pilot[int]) -> None:
        await until(pilot, lambda: "plant.heartbeat" in app.live.latest, "a first reading")
        rows = [str(key.value) for key in app.query_one(ValuesTable).rows]
        assert rows == ["plant.heartbeat", "tank.level"]
        first = cell(app, "plant.heartbeat", "value").plain
        seen.append(first)
        await until(
            pilot,
            lambda: cell(app, "plant.heartbeat", "value").plain != first,
            "the heartbeat's cell to change",
        )
        shown = cell(app, "tank.level", "value")
        reading = app.live.latest["tank.level"]
        assert shown.plain == format_cell(reading.value)
        assert 0.0 <= float(shown.plain) <= 5.0  # the plant's tank holds 0-5 m
        assert cell(app, "tank.level", "quality").plain == "good"
        assert str(shown.style) == "green"
        seconds, values = app.live.trend("tank.level")
        assert len(values) >= 2
        assert (seconds <= 0).all()
        await pilot.press("q")

    drive(app, script)
    assert seen
    assert not plc.connected


def test_search_narrows_the_list_and_space_selects(plant: bf.sim.Plant) -> None:
    plc = plant.connect("modbus")
    app = DashApp(plc, ["tank.level"], interval=0.2)

    async def script(pilot: Pilot[int]) -> None:
        tags = app.query_one(TagList)
        assert len(tags.shown) == len(plc.tags)
        await pilot.press("slash")
        assert isinstance(app.focused, Input)
        await pilot.press(*"reactor.temp")
        assert [e.name for e in tags.shown] == ["reactor.temperature"]
        await pilot.press("enter")  # from the search field to the table
        await pilot.press("space")
        assert app.selected == ["tank.level", "reactor.temperature"]
        await until(pilot, lambda: "reactor.temperature" in app.live.latest, "the new tag's read")
        assert 0.0 < app.live.latest["reactor.temperature"].value < 200.0
        await pilot.press("space")  # again: deselected, and its row leaves the values
        assert app.selected == ["tank.level"]
        assert [str(k.value) for k in app.query_one(ValuesTable).rows] == ["tank.level"]
        await pilot.press("q")

    drive(app, script)
    assert not plc.connected


def test_record_starts_and_stops_into_a_file_that_opens(
    plant: bf.sim.Plant, tmp_path: Path
) -> None:
    plc = plant.connect("modbus")
    app = DashApp(plc, ["tank.level", "plant.heartbeat"], record_dir=tmp_path, interval=0.05)

    async def script(pilot: Pilot[int]) -> None:
        await pilot.press("r")
        assert app.recorder.running
        recording = app.recorder.recording
        assert recording is not None
        await until(pilot, lambda: recording.stats.samples >= 5, "five samples")
        assert "● recording" in status(app)
        await pilot.press("r")
        await until(pilot, lambda: not app.recorder.running, "the recording to stop")
        await until(pilot, lambda: "recorded" in status(app), "the status to say so")
        await pilot.press("q")

    drive(app, script)
    path = app.recorder.path
    assert path is not None
    assert path.parent == tmp_path
    assert path.exists()
    saved = bf.open_recording(path).to_pandas()
    assert {"tank.level", "plant.heartbeat"} <= set(saved.columns)
    assert len(saved) >= 5
    heartbeat = saved["plant.heartbeat"].dropna()
    assert heartbeat.nunique() > 1  # sampled live, not one value repeated


def test_write_dialog_shows_old_and_new_and_writes_after_confirmation(
    plant: bf.sim.Plant,
) -> None:
    plc = plant.connect("modbus", writable=True)
    app = DashApp(plc, ["reactor.setpoint"], writable=True, interval=0.2)
    old = float(plc.read_value("reactor.setpoint"))
    new = 42.5 if not math.isclose(old, 42.5) else 47.5

    async def script(pilot: Pilot[int]) -> None:
        await until(pilot, lambda: "reactor.setpoint" in app.live.latest, "a first reading")
        app.query_one(ValuesTable).focus()
        await pilot.press("w")
        await until(pilot, lambda: isinstance(app.screen, WriteDialog), "the dialog")
        dialog = app.screen
        assert isinstance(dialog, WriteDialog)
        await until(pilot, lambda: dialog.old is not None, "the current value")
        await pilot.press(*str(new), "enter")
        change = str(dialog.query_one("#write-change", Static).render())
        assert change == f"reactor.setpoint: {format_cell(dialog.old)} → {format_cell(new)}"
        # Proposed, not confirmed: nothing has gone to the device yet.
        assert math.isclose(float(plc.read_value("reactor.setpoint")), old, abs_tol=1e-3)
        await pilot.click("#write-confirm")
        await until(pilot, lambda: not isinstance(app.screen, WriteDialog), "the dialog to close")
        await pilot.press("q")

    drive(app, script)
    assert math.isclose(plant.snapshot()["reactor.setpoint"], new, abs_tol=1e-3)
    with plant.connect("modbus") as check:
        assert math.isclose(float(check.read_value("reactor.setpoint")), new, abs_tol=1e-3)


def test_a_refused_write_shows_why_in_the_dialog(plant: bf.sim.Plant) -> None:
    plc = plant.connect("modbus", writable=True)
    app = DashApp(plc, ["reactor.setpoint"], writable=True, interval=0.2)
    before = plant.snapshot()["reactor.setpoint"]

    async def script(pilot: Pilot[int]) -> None:
        await until(pilot, lambda: "reactor.setpoint" in app.live.latest, "a first reading")
        app.query_one(ValuesTable).focus()
        await pilot.press("w")
        await until(pilot, lambda: isinstance(app.screen, WriteDialog), "the dialog")
        dialog = app.screen
        assert isinstance(dialog, WriteDialog)
        await until(pilot, lambda: dialog.old is not None, "the current value")
        await pilot.press(*"1000", "enter")  # above the tag's maximum of 150
        await pilot.click("#write-confirm")
        error = dialog.query_one("#write-error", Static)
        await until(pilot, lambda: "not written" in str(error.render()), "the refusal")
        assert "reactor.setpoint" in str(error.render())
        assert "150" in str(error.render())
        assert isinstance(app.screen, WriteDialog)  # still open: fix the value or cancel
        await pilot.press("escape", "q")

    drive(app, script)
    assert plant.snapshot()["reactor.setpoint"] == before


@pytest.mark.parametrize(
    ("code", "colour"),
    [(Quality.GOOD, "green"), (Quality.UNCERTAIN, "yellow"), (Quality.BAD_TIMEOUT, "bold red")],
)
def test_quality_colours(code: Quality, colour: str) -> None:
    assert quality_style(code) == colour


def test_write_dialog_is_absent_on_a_read_only_connection(plant: bf.sim.Plant) -> None:
    plc = plant.connect("modbus")  # read-only, although the app is asked for writes
    app = DashApp(plc, ["reactor.setpoint"], writable=True, interval=0.2)

    async def script(pilot: Pilot[int]) -> None:
        assert "w" not in app.active_bindings
        assert "r" in app.active_bindings  # the footer's other keys are there
        await pilot.press("w")
        await pilot.pause(0.2)
        assert not isinstance(app.screen, WriteDialog)
        assert not app.query(Button)
        await pilot.press("q")

    drive(app, script)
    assert not plc.connected


def test_cancelled_write_sends_nothing(plant: bf.sim.Plant) -> None:
    plc = plant.connect("modbus", writable=True)
    app = DashApp(plc, ["reactor.setpoint"], writable=True, interval=0.2)
    before = plant.snapshot()["reactor.setpoint"]

    async def script(pilot: Pilot[int]) -> None:
        app.query_one(TagList).table.focus()
        await pilot.press("w")
        await until(pilot, lambda: isinstance(app.screen, WriteDialog), "the dialog")
        await pilot.press(*"99", "enter", "escape")
        await until(pilot, lambda: not isinstance(app.screen, WriteDialog), "the dialog to close")
        await pilot.press("q")

    drive(app, script)
    assert plant.snapshot()["reactor.setpoint"] == before


def test_a_read_error_shows_in_the_ui_and_the_app_keeps_running() -> None:
    with bf.sim.Plant(seed=4) as lost:
        plc = lost.connect("modbus", timeout=0.3)
        app = DashApp(plc, ["tank.level"], interval=0.2)

        async def script(pilot: Pilot[int]) -> None:
            await until(pilot, lambda: "tank.level" in app.live.latest, "a first reading")
            lost.close()  # the device goes away under the dashboard
            await until(pilot, lambda: app.live.error is not None, "the read to fail")
            await until(pilot, lambda: "read error" in status(app), "the error on screen")
            reading = app.live.latest["tank.level"]
            assert reading.value is None
            assert reading.quality.is_bad
            assert cell(app, "tank.level", "value").plain == "—"
            _, values = app.live.trend("tank.level")
            assert np.isfinite(values[0])
            assert np.isnan(values[-1])  # the trend has a gap, not the last good value
            assert "red" in str(cell(app, "tank.level", "quality").style)
            assert app.is_running
            await pilot.press("q")

        drive(app, script)
        assert not plc.connected


def test_run_refuses_a_bad_address_before_the_screen_and_closes(plant: bf.sim.Plant) -> None:
    plc = plant.connect("modbus")
    with pytest.raises(bf.AddressError, match="hr:x"):
        run(plc, ["hr:x"])
    assert not plc.connected


def test_run_without_textual_plot_names_the_install_command(
    plant: bf.sim.Plant, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "textual_plot", None)  # as if not installed
    plc = plant.connect("modbus")
    with pytest.raises(bf.MissingDependency, match="pip install bifrost-cli"):
        run(plc, ["tank.level"])
    assert not plc.connected


@pytest.mark.parametrize(
    ("text", "old", "expected"),
    [
        ("75", 70.0, 75.0),
        ("3", 1, 3),
        ("off", True, False),
        ("PART-1", "PART-4711", "PART-1"),
        ("1.5", None, 1.5),
        ("true", None, True),
    ],
)
def test_typed_values_take_the_current_values_type(text: str, old: Any, expected: Any) -> None:
    value = parse_value("t", text, old)
    assert value == expected
    assert type(value) is type(expected)


@pytest.mark.parametrize(("text", "old"), [("", 1.0), ("abc", 1.0), ("1.5", 2), ("x", [1, 2])])
def test_values_that_do_not_fit_are_refused(text: str, old: Any) -> None:
    with pytest.raises(bf.ConfigurationError, match="t: "):
        parse_value("t", text, old)


def test_scaled_trend_maps_each_line_to_its_own_range() -> None:
    nan = float("nan")
    assert scaled(np.array([1450.0, 1500.0, nan, 1475.0])).tolist()[:2] == [0.0, 1.0]
    assert scaled(np.array([2.0, 2.0])).tolist() == [0.5, 0.5]
    assert np.isnan(scaled(np.array([1.0, nan, 3.0]))[1])


def test_s_toggles_the_scaled_trend(plant: bf.sim.Plant) -> None:
    plc = plant.connect("modbus")
    app = DashApp(plc, ["pump.speed", "tank.level"], interval=0.2)

    async def script(pilot: Pilot[int]) -> None:
        chart = app.query_one(TrendChart)
        await until(pilot, lambda: app.live.numeric("tank.level"), "a first reading")
        assert not chart.scaled
        await pilot.press("s")
        assert chart.scaled
        assert "min-max" in chart.border_subtitle
        await pilot.press("s", "q")
        assert not chart.scaled

    drive(app, script)


def test_decimated_lines_keep_their_spikes_order_and_newest_point() -> None:
    x = np.arange(600.0)
    y = np.sin(x / 20.0)
    y[333], y[100] = 5.0, -5.0
    dx, dy = decimated(x, y, 100)
    assert len(dx) <= 101
    assert dy.max() == 5.0
    assert dy.min() == -5.0
    assert (np.diff(dx) > 0).all()
    assert dx[-1] == 599.0
    assert np.array_equal(dy, y[dx.astype(int)])  # points of the line, not averages
    short, _ = decimated(x[:50], y[:50], 100)
    assert len(short) == 50


def test_the_trend_is_drawn_in_stretches_of_good_values() -> None:
    nan = float("nan")
    values = np.array([1.0, 2.0, nan, 3.0, nan, nan, 4.0, 5.0])
    assert [(r.start, r.stop) for r in _runs(values)] == [(0, 2), (3, 4), (6, 8)]
    assert _runs(np.array([nan])) == []


@pytest.mark.parametrize("protocol", ["s7", "opcua"])
def test_live_values_over_each_protocol(plant: bf.sim.Plant, protocol: str) -> None:
    plc = plant.connect(protocol)
    app = DashApp(plc, ["plant.heartbeat", "tank.level"], interval=0.2)

    async def script(pilot: Pilot[int]) -> None:
        await until(pilot, lambda: "plant.heartbeat" in app.live.latest, "a first reading")
        first = cell(app, "plant.heartbeat", "value").plain
        await until(
            pilot,
            lambda: cell(app, "plant.heartbeat", "value").plain != first,
            "the heartbeat's cell to change",
        )
        assert cell(app, "tank.level", "quality").plain == "good"
        await pilot.press("q")

    drive(app, script)
    assert not plc.connected


def test_without_a_tag_table_an_opcua_servers_variables_are_listed(plant: bf.sim.Plant) -> None:
    plant.connect("opcua").close()  # serves OPC UA if no test did yet
    plc = bf.connect(plant.urls["opcua"], security="None")
    assert not len(plc.tags)
    app = DashApp(plc, None, interval=0.2)
    level = "ns=2;s=Plant.Tank.Level"

    async def script(pilot: Pilot[int]) -> None:
        tags = app.query_one(TagList)
        await until(pilot, lambda: any(e.name == level for e in tags.entries), "the browse")
        entry = next(e for e in tags.entries if e.name == level)
        assert entry.address == "/Objects/2:Plant/2:Tank/2:Level"
        await pilot.press("slash", *"tank/2:level", "enter")
        assert [e.name for e in tags.shown] == [level]
        await pilot.press("space")
        await until(pilot, lambda: level in app.live.latest, "the variable's read")
        assert 0.0 <= app.live.latest[level].value <= 5.0
        await pilot.press("q")

    drive(app, script)
    assert not plc.connected


def test_a_raw_address_on_the_command_line_is_listed_and_read(plant: bf.sim.Plant) -> None:
    plc = plant.connect("modbus")
    address = "ir:5:uint16"  # the heartbeat's register, named by address
    app = DashApp(plc, [address], interval=0.2)

    async def script(pilot: Pilot[int]) -> None:
        names = [e.name for e in app.query_one(TagList).entries]
        assert names[: len(plc.tags)] == plc.tags.names
        assert address in names
        assert app.selected == [address]
        await until(pilot, lambda: address in app.live.latest, "the address's read")
        shown = app.live.latest[address].value
        assert isinstance(shown, int)
        assert abs(shown - plc.read_value("plant.heartbeat")) < 1000  # the same counter
        await pilot.press("q")

    drive(app, script)

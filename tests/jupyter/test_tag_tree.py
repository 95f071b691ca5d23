"""TagBrowser on OPC UA: a lazily browsed tree, driven headless against the plant.

One plant per module serves OPC UA (the server takes about a second to start); every
test opens its own connection and closes its widgets.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import bifrost as bf
from bifrost.jupyter import LiveTrend, TagBrowser
from bifrost.sim import Plant

pytest.importorskip("asyncua")

PLANT = "/Objects/2:Plant"
TANK = "/Objects/2:Plant/2:Tank"


@pytest.fixture(scope="module")
def ua_plant() -> Iterator[Plant]:
    with Plant(seed=1) as plant:
        plant.serve(opcua=0)
        yield plant


@pytest.fixture
def ua(ua_plant: Plant) -> Iterator[bf.Connection]:
    with ua_plant.connect("opcua") as connection:
        yield connection


class BrowseSpy:
    """Counts the connection's browse calls (the tree must browse lazily)."""

    def __init__(self, plc: bf.Connection) -> None:
        self.calls: list[tuple[Any, int]] = []
        self._browse = plc.browse
        plc.browse = self  # type: ignore[method-assign]

    def __call__(self, path: str | None = None, depth: int = 1) -> Any:
        self.calls.append((path, depth))
        return self._browse(path, depth)


def test_tree_starts_with_one_browse_and_expands_lazily(ua: bf.Connection) -> None:
    spy = BrowseSpy(ua)
    browser = TagBrowser(ua, live=False)
    try:
        assert browser.mode == "tree"
        assert spy.calls == [("/Objects", 1)]
        assert [n.path for n in browser._top] == [
            "/Objects/Locations",
            "/Objects/Server",
            "/Objects/Aliases",
            PLANT,
        ]
        assert browser.checks == {}  # no variable loaded yet
        plant_node = browser._top[-1]
        assert plant_node.children is None
        plant_node.toggle.value = True  # what a click does
        assert spy.calls[-1] == (PLANT, 1)
        assert [c.label for c in plant_node.children] == [
            "Tank",
            "Reactor",
            "Pump",
            "Line",
            "Heartbeat",
        ]
        assert plant_node.box.layout.display is None
        assert plant_node.toggle.icon == "caret-down"
        plant_node.toggle.value = False
        assert plant_node.box.layout.display == "none"
        plant_node.toggle.value = True  # children are kept: no second browse
        assert spy.calls.count((PLANT, 1)) == 1
        assert len(spy.calls) == 2
        assert "5 nodes below /Objects/2:Plant" in browser.status.value
    finally:
        browser.close()


def test_variables_have_checkboxes_named_by_the_tag_table(ua: bf.Connection) -> None:
    browser = TagBrowser(ua, live=False)
    try:
        children = browser.expand(TANK)
        assert children == [f"{TANK}/2:Level", f"{TANK}/2:Inflow", f"{TANK}/2:Outflow",
                            f"{TANK}/2:HighAlarm", f"{TANK}/2:SetLevel",
                            f"{TANK}/2:HighLevel"]  # fmt: skip
        # Variables in the tag table go by their tag name, folders have no checkbox.
        assert browser.shown == [
            "tank.level",
            "tank.inflow",
            "tank.outflow",
            "tank.high_alarm",
            "plant.heartbeat",
        ]
        assert set(browser.checks) == set(browser.shown)
        tank = browser._top[-1].children[0]
        assert tank.toggle is not None
        assert not tank.variable
        variables = tank.children[:4]  # then the SetLevel method and the HighLevel alarm
        assert all(c.variable and c.toggle is None for c in variables)
        assert not any(c.variable for c in tank.children[4:])
        assert "Float" in tank.children[0].row.children[1].value
        with pytest.raises(bf.ConfigurationError, match="no folder in the tree"):
            browser.expand(f"{TANK}/2:Nope")
    finally:
        browser.close()


def test_variables_outside_the_tag_table_go_by_node_id(ua: bf.Connection) -> None:
    browser = TagBrowser(ua, live=False)
    try:
        browser.expand("/Objects/Server")
        status = "i=2256"  # Server/ServerStatus, a standard structure variable
        assert status in browser.checks
        browser.checks[status].value = True
        frame = browser.read()
        assert frame is not None
        assert list(frame.index) == [status]
        assert frame["quality"].iloc[0] == "good"
        cell = browser._cells[status].value
        assert "ServerStatusDataType" in cell
        assert cell.endswith("…</span>")  # a long structure is cut in the cell
    finally:
        browser.close()


def test_read_fills_values_and_shortens_arrays(ua: bf.Connection, ua_plant: Plant) -> None:
    browser = TagBrowser(ua, live=False)
    try:
        browser.expand(TANK)
        browser.expand("/Objects/2:Plant/2:Pump")
        browser.checks["tank.level"].value = True
        browser.checks["pump.vibration"].value = True
        browser.read_button.click()
        assert browser.values is not None
        assert list(browser.values.index) == ["tank.level", "pump.vibration"]
        assert 0.0 <= float(browser.values.loc["tank.level", "value"]) <= 5.0
        assert "[64 values: " in browser._cells["pump.vibration"].value
        assert browser._cells["pump.speed"].value == ""
        assert "read 2 tags" in browser.status.value
        # Nothing ticked: Read reads what is shown (the expanded folders' variables).
        browser.clear.click()
        browser.read_button.click()
        assert list(browser.values.index) == browser.shown
    finally:
        browser.close()


def test_search_filters_loaded_nodes_and_keeps_the_path(ua: bf.Connection) -> None:
    browser = TagBrowser(ua, live=False)
    try:
        browser.expand(TANK)
        browser.expand("/Objects/2:Plant/2:Reactor")
        browser.collapse()
        assert browser.shown == []  # every folder closed: no variable visible
        browser.search.value = "temperature"
        assert browser.shown == ["reactor.temperature", "reactor.setpoint"]  # by description
        plant_node = browser._top[-1]
        tank, reactor = plant_node.children[0], plant_node.children[1]
        assert plant_node.row.layout.display is None  # the path to a match stays
        assert plant_node.box.layout.display is None  # and opens while filtering
        assert reactor.box.layout.display is None
        assert tank.row.layout.display == "none"
        assert browser._top[1].row.layout.display == "none"  # /Objects/Server
        assert "2 of" in browser.status.value
        assert "loaded nodes match" in browser.status.value
        browser.select_all.click()
        assert browser.selected == ["reactor.temperature", "reactor.setpoint"]
        browser.search.value = "ns=2;s=plant.tank.level"  # node ids match too
        assert browser.shown == ["tank.level"]
        browser.search.value = ""
        # The filter leaves the folders as they were: all collapsed.
        assert plant_node.box.layout.display == "none"
        assert tank.row.layout.display is None
        assert browser.shown == []
    finally:
        browser.close()


def test_record_selected_produces_a_recording(
    ua: bf.Connection, wait: Any, no_thread_leak: Any
) -> None:
    browser = TagBrowser(ua, interval="50ms", refresh=0.1)
    try:
        browser.expand(TANK)
        browser.checks["tank.level"].value = True
        browser.checks["tank.inflow"].value = True
        browser.record_button.click()
        rec = browser.recording
        assert isinstance(rec, bf.Recording)
        assert rec.running
        assert rec.names == ["tank.level", "tank.inflow"]
        assert rec.metadata["protocol"] == "opcua"
        assert isinstance(browser.trend, LiveTrend)
        assert wait(lambda: len(rec) >= 3 and browser.trend.redraws >= 2)
        browser.stop_button.click()
        assert not rec.running
        assert not browser.record_button.disabled
        assert "recorded" in browser.status.value
        levels = rec.to_pandas()["tank.level"]
        assert levels.between(0.0, 5.0).all()
    finally:
        browser.close()


def test_a_refused_browse_shows_in_the_widget(ua_plant: Plant) -> None:
    plc = ua_plant.connect("opcua")
    browser = TagBrowser(plc, live=False)
    try:
        plc.close()
        plant_node = browser._top[-1]
        plant_node.toggle.value = True
        assert plant_node.toggle.value is False  # collapsed again
        assert plant_node.children is None
        assert "ConnectionError" in browser.status.value
        assert "closed" in browser.status.value
    finally:
        browser.close()
        plc.close()


def test_root_and_a_missing_root(ua: bf.Connection) -> None:
    browser = TagBrowser(ua, live=False, root=PLANT)
    try:
        assert [n.label for n in browser._top] == ["Tank", "Reactor", "Pump", "Line", "Heartbeat"]
        assert list(browser.checks) == ["plant.heartbeat"]
        assert f"5 nodes below {PLANT}" in browser.status.value
    finally:
        browser.close()
    with pytest.raises(bf.ProtocolError, match="does not exist"):
        TagBrowser(ua, root="/Objects/2:Nowhere")


def test_table_mode_has_no_tree(plc: bf.Connection) -> None:
    browser = TagBrowser(plc, live=False)
    try:
        assert browser.mode == "table"
        with pytest.raises(bf.ConfigurationError, match="OPC UA trees"):
            browser.expand("/Objects")
    finally:
        browser.close()

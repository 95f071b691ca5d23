"""Tab completion through IPython's own completer APIs: what Jupyter and the terminal ask."""

from __future__ import annotations

import warnings

import pytest
from IPython.core.completer import provisionalcompleter

from bifrost.jupyter.completion import bifrost_completions
from bifrost.jupyter.magics import COMMANDS


@pytest.fixture
def completing(shell, plant):
    shell.run(f"%bifrost connect m {plant.urls['modbus']}")
    shell.ns["m"].tags = plant.tags("modbus")
    shell.ns["plc"] = shell.ns["m"]
    shell.ns["table"] = plant.tags("modbus")
    return shell


def complete(shell, text):
    """The completions Jupyter shows (provisional API), checked against the legacy API."""
    with provisionalcompleter():
        found = [c.text for c in shell.ip.Completer.completions(text, len(text))]
    with warnings.catch_warnings():
        # The legacy API (IPython's terminal, older front ends) is pending deprecation.
        warnings.simplefilter("ignore", PendingDeprecationWarning)
        _, legacy = shell.ip.complete("", line=text, cursor_pos=len(text))
    assert list(legacy) == found, text
    return found


def test_commands_complete_instead_of_ipythons_magics(completing):
    # The bug: `%bifrost re<Tab>` offered %recall, %rehashx, %reset...
    assert complete(completing, "%bifrost re") == ["read", "record"]
    everything = complete(completing, "%bifrost ")
    assert everything == [c.name for c in COMMANDS if not c.cell]
    assert complete(completing, "%%bifrost t") == ["tags"]


def test_flags_and_choices_complete(completing):
    assert complete(completing, "%bifrost record m --in") == ["--interval"]
    assert "--duration" in complete(completing, "%bifrost record m tank.level --")
    assert complete(completing, "%bifrost sim st") == ["start", "stop", "status"]
    assert complete(completing, "%bifrost help wr") == ["write"]


def test_connection_and_tag_names_complete_after_the_command(completing):
    assert complete(completing, "%bifrost read ") == ["m"]
    assert complete(completing, "%bifrost read m tank.") == [
        "tank.level",
        "tank.inflow",
        "tank.outflow",
        "tank.high_alarm",
    ]
    # Tags already named are not offered again; a flag's value is not a tag.
    assert "tank.level" not in complete(completing, "%bifrost read m tank.level tank.")
    assert complete(completing, "%bifrost record m -i 100ms pump.sp") == ["pump.speed"]
    # Only writable tags, ready for their value.
    assert complete(completing, "%bifrost write m re") == ["reactor.setpoint="]
    assert complete(completing, "x = %bifrost read m line.st") == ["line.state"]
    assert complete(completing, "%bifrost connect other si") == [
        "sim",
        "sim:modbus",
        "sim:s7",
        "sim:opcua",
    ]
    assert complete(completing, "%bifrost connect x y --tags ta") == ["table"]


def test_tag_names_complete_inside_python_calls(completing):
    assert complete(completing, 'plc.read(["tank.') == [
        "tank.level",
        "tank.inflow",
        "tank.outflow",
        "tank.high_alarm",
    ]
    assert complete(completing, 'plc.read(["tank.level", "reactor.t') == ["reactor.temperature"]
    assert complete(completing, "plc.record(['pump.s") == ["pump.speed"]
    assert complete(completing, 'plc.read_value("line.rec') == ["line.recipe"]
    assert complete(completing, 'plc.write({"re') == ["reactor.setpoint"]
    assert complete(completing, 'plc.tags["reactor.s') == ["reactor.setpoint"]
    assert complete(completing, "table['line.e") == ["line.enable"]
    # IPython's own key completion asks the table too.
    assert completing.ns["table"]._ipython_key_completions_() == completing.ns["table"].names


def test_nothing_is_offered_outside_a_string_or_for_other_objects(completing):
    completing.ns["other"] = {"tank.level": 1}
    assert "tank.level" not in complete(completing, 'other.read(["tank.')
    # Past a closed string the cursor is outside any tag name: IPython's own matchers
    # (keyword arguments, names) are not suppressed.
    assert bifrost_completions('plc.read(["tank.level"], err', completing.ns) is None
    assert bifrost_completions("plc.read(x", completing.ns) is None


def test_unloading_removes_the_completer(ipython, shell):
    ids = [getattr(m, "matcher_identifier", "") for m in ipython.Completer.custom_matchers]
    assert ids.count("bifrost.jupyter.completion") == 1
    shell.run("%reload_ext bifrost")
    ids = [getattr(m, "matcher_identifier", "") for m in ipython.Completer.custom_matchers]
    assert ids.count("bifrost.jupyter.completion") == 1

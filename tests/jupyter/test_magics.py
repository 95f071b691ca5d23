"""The %bifrost magics, driven headless through a real IPython shell against the plant."""

from __future__ import annotations

import sys
import types

import pandas as pd
import pytest

import bifrost as bf
from bifrost.jupyter.magics import COMMANDS, BifrostMagicError, BifrostMagics, apply_nest_asyncio
from bifrost.jupyter.widgets import LiveTrend


def connect(shell, plant, name="plc", extra=""):
    shell.run(f"%bifrost connect {name} {plant.urls['modbus']} {extra}")
    shell.ns[name].tags = plant.tags("modbus")
    return shell.ns[name]


def test_load_ext_registers_the_magics_and_their_options(shell):
    assert "bifrost" in shell.ip.magics_manager.magics["line"]
    assert "bifrost" in shell.ip.magics_manager.magics["cell"]
    assert isinstance(shell.magics, BifrostMagics)
    assert shell.magics in shell.ip.configurables
    # Loading twice keeps one instance (and one set of connections).
    shell.run("%reload_ext bifrost")
    assert isinstance(shell.magics, BifrostMagics)


def test_help_lists_every_command_and_each_command_has_real_help(shell, capsys):
    shell.run("%bifrost help")
    text = capsys.readouterr().out
    for command in ("connect", "read", "browse", "write", "record", "stop", "status", "sim"):
        assert f"%bifrost {command}" in text
    assert "%%bifrost tags" in text
    shell.run("%bifrost record --help")
    usage = capsys.readouterr().out
    assert "%bifrost record" in usage
    assert "--interval" in usage
    assert "--background" in usage
    shell.run("%bifrost help write")
    assert "TAG=VALUE" in capsys.readouterr().out


def test_every_declared_command_has_its_help_line_and_its_own_help(shell, capsys):
    assert [c.name for c in COMMANDS] == [
        "connect", "read", "browse", "write", "record", "stop", "status", "sim", "nest",
        "help", "tags",
    ]  # fmt: skip
    shell.run("%bifrost help")
    overview = capsys.readouterr().out.splitlines()
    shell.run("%bifrost --help")
    assert capsys.readouterr().out.splitlines() == overview
    for command in COMMANDS:
        assert command.description
        listed = [line for line in overview if line.split()[:2] == command.invocation.split()]
        assert len(listed) == 1, command.name
        assert listed[0].endswith(command.description)
        body = "\nunused\n" if command.cell else ""
        for asked in (
            f"{command.invocation} --help{body}",
            f"{command.invocation} -h{body}",
            f"%bifrost help {command.name}",
        ):
            shell.run(asked)
            text = capsys.readouterr().out
            assert text.strip() == command.help().strip(), asked
            assert text.splitlines()[0].split()[:2] == command.invocation.split(), asked
            assert command.description in text
            for action in command.parser._actions:
                if action.option_strings:
                    shown = action.option_strings
                elif action.choices:
                    shown = ["{" + ",".join(action.choices) + "}"]
                else:
                    shown = [action.metavar or action.dest]
                for flag in shown:
                    assert flag in text, (command.name, flag)


def test_unknown_command_lists_the_declared_line_commands(shell):
    from IPython.core.error import UsageError

    listed = ", ".join(c.name for c in COMMANDS if not c.cell)
    assert listed == "connect, read, browse, write, record, stop, status, sim, nest, help"
    for line in ("%bifrost raed plc tank.level", "%bifrost help raed"):
        with pytest.raises(UsageError) as caught:
            shell.run(line)
        assert str(caught.value) == f"unknown command 'raed'; commands: {listed}"


def test_unknown_command_and_bad_arguments_are_usage_errors(shell):
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match="unknown command 'raed'"):
        shell.run("%bifrost raed plc tank.level")
    with pytest.raises(UsageError):
        shell.run("%bifrost record plc --interval")


def test_connect_read_and_out_store_and_return_the_frame(shell, plant):
    plc = connect(shell, plant)
    assert isinstance(plc, bf.Connection)
    assert plc.connected
    result = shell.run("%bifrost read plc tank.level hr:2:int16 line.recipe --out df")
    assert result is shell.ns["df"]
    assert isinstance(result, pd.DataFrame)
    assert list(result.index) == ["tank.level", "hr:2:int16", "line.recipe"]
    assert (result["quality"] == "good").all()
    assert 0.0 <= result.loc["tank.level", "value"] <= 5.0
    assert result.loc["line.recipe", "value"] == plant.snapshot()["line.recipe"]


def test_connect_takes_a_tag_table_variable_and_options(shell, plant):
    shell.run("%%bifrost tags mine\nname,address,unit\nlevel,hr:0:float32,m\n")
    shell.run(f"%bifrost connect plc {plant.urls['modbus']} --tags mine --unit 1 --timeout 2")
    plc = shell.ns["plc"]
    assert plc.tags.names == ["level"]
    assert plc.timeout == 2.0
    frame = shell.run("%bifrost read plc")
    assert list(frame.index) == ["level"]


def test_reconnecting_a_name_closes_the_old_connection(shell, plant):
    first = connect(shell, plant)
    second = connect(shell, plant)
    assert not first.connected
    assert second.connected


def test_browse_filters_and_stores(shell, plant):
    connect(shell, plant)
    frame = shell.run("%bifrost browse plc --filter reactor --out tags_df")
    assert set(frame.index) == {"reactor.temperature", "reactor.setpoint", "reactor.heater"}
    assert shell.ns["tags_df"] is frame


def test_write_needs_a_writable_connection_and_says_so_briefly(shell, plant):
    connect(shell, plant)
    with pytest.raises(BifrostMagicError) as caught:
        shell.run("%bifrost write plc reactor.setpoint=75")
    error = caught.value
    assert isinstance(error.error, bf.WriteNotAllowed)
    assert isinstance(error.__cause__, bf.WriteNotAllowed)
    lines = error._render_traceback_()
    assert len(lines) == 2
    assert "--writable" in lines[1]
    connect(shell, plant, "rw", "--writable")
    shell.run("%bifrost write rw reactor.setpoint=75.5 line.enable=true")
    frame = shell.run("%bifrost read rw reactor.setpoint line.enable")
    assert frame.loc["reactor.setpoint", "value"] == 75.5
    assert frame.loc["line.enable", "value"] is True or frame.loc["line.enable", "value"] == True  # noqa: E712
    with pytest.raises(BifrostMagicError) as caught:
        shell.run("%bifrost write rw tank.level=1")
    assert "tank.level" in str(caught.value)
    with pytest.raises(BifrostMagicError) as caught:
        shell.run("%bifrost write rw reactor.setpoint=hot")
    assert isinstance(caught.value.error, bf.ValueOutOfRange)
    assert "reactor.setpoint" in str(caught.value)


def test_errors_name_the_tag_or_address_and_what_to_do(shell, plant):
    connect(shell, plant)
    with pytest.raises(BifrostMagicError) as caught:
        shell.run("%bifrost read plc tank.levle")
    assert "tank.levle" in str(caught.value)
    assert "tank.level" in str(caught.value)  # the suggestion
    assert "%bifrost browse" in caught.value.hint
    with pytest.raises(BifrostMagicError) as caught:
        shell.run("%bifrost read plc hr:0:float33")
    assert isinstance(caught.value.error, bf.AddressError)
    assert "hr:0:float33" in str(caught.value)
    with pytest.raises(BifrostMagicError) as caught:
        shell.run("%bifrost read plc hr:5000")
    assert isinstance(caught.value.error, bf.ProtocolError)
    with pytest.raises(BifrostMagicError) as caught:
        shell.run("%bifrost read nope tank.level")
    assert "no connection named 'nope' (known: plc)" in str(caught.value)
    assert "%bifrost sim start --connect NAME" in caught.value.hint
    assert "%bifrost connect NAME URL" in caught.value.hint


def test_short_errors_can_be_turned_off(shell, plant):
    connect(shell, plant)
    shell.run("%config BifrostMagics.short_errors = False")
    with pytest.raises(bf.WriteNotAllowed):
        shell.run("%bifrost write plc reactor.setpoint=70")


def test_the_shell_prints_a_short_message_not_a_traceback(shell, plant, capsys):
    connect(shell, plant)
    result = shell.ip.run_cell("%bifrost write plc reactor.setpoint=70", store_history=False)
    assert isinstance(result.error_in_exec, BifrostMagicError)
    printed = capsys.readouterr()
    text = printed.out + printed.err
    assert "WriteNotAllowed" in text
    assert "Traceback" not in text
    assert len(text.strip().splitlines()) <= 3


def test_blocking_record_returns_the_recording(shell, plant):
    connect(shell, plant)
    rec = shell.run(
        "%bifrost record plc tank.level reactor.temperature --interval 50ms --duration 300ms "
        "--out run"
    )
    assert rec is shell.ns["run"]
    assert isinstance(rec, bf.Recording)
    assert not rec.running
    assert rec.names == ["tank.level", "reactor.temperature"]
    assert len(rec) >= 1
    assert rec.interval_s == pytest.approx(0.05)


def test_background_live_record_keeps_going_and_stop_leaves_it_in_the_variable(shell, plant, wait):
    connect(shell, plant)
    shell.run("%config BifrostMagics.live_refresh = 0.1")
    assert (
        shell.run("%bifrost record plc tank.level pump.speed -i 50ms --background --live") is None
    )
    rec = shell.ns["rec"]
    assert rec.running
    trend = shell.magics.state.recordings["rec"].trend
    assert isinstance(trend, LiveTrend)
    assert trend.live
    # Other cells run meanwhile; the recording and the trend keep going.
    shell.run("x = sum(range(1000))")
    assert wait(lambda: len(rec) >= 3 and trend.redraws >= 2)
    stopped = shell.run("%bifrost stop rec")
    assert stopped is rec
    assert shell.ns["rec"] is rec
    assert not rec.running
    assert not trend.live
    samples = len(rec)
    assert samples >= 3
    assert rec.to_pandas().shape == (samples, 2)
    assert "rec" not in shell.magics.state.recordings


def test_status_lists_connections_and_their_recordings(shell, plant, monkeypatch):
    import bifrost.jupyter.magics.commands as magics_module

    connect(shell, plant)
    shell.run("%bifrost record plc tank.level -i 100ms --background --out bg")
    shown = []
    monkeypatch.setattr(magics_module, "_show", shown.append)
    shell.run("%bifrost status")
    html = shown[0].data
    assert "<code>plc</code>" in html
    assert plant.urls["modbus"] in html
    assert "bg (" in html
    assert "running" in html
    shell.run("%bifrost stop bg")


def test_status_sees_the_notebooks_own_plant_and_connections(shell, plant, monkeypatch, capsys):
    import bifrost.jupyter.magics.commands as magics_module

    shown = []
    monkeypatch.setattr(magics_module, "_show", shown.append)
    with plant.connect("modbus") as mine:
        shell.ns["my_plant"] = plant
        shell.ns["mine"] = mine
        shell.run("%bifrost status")
    html = shown[0].data
    # The bug: "simulator: not running" while a bf.sim.Plant served the notebook.
    assert "simulator: my_plant serves modbus://127.0.0.1:" in html
    assert "not running" not in html
    assert "bifrost: 1 connection ·" in html
    assert "<code>mine</code>" in html
    shell.ns["my_plant"] = plant
    shell.run("%bifrost sim status")
    assert capsys.readouterr().out.startswith("my_plant: <Plant")


def test_write_hints_say_what_is_read_only(shell, plant):
    connect(shell, plant, "rw", "--writable")
    with pytest.raises(BifrostMagicError) as caught:
        shell.run("%bifrost write rw tank.level=1")
    # The connection may write; "connect with --writable" would send the user in circles.
    assert "--writable" not in caught.value.hint
    assert "not this tag" in caught.value.hint


def test_a_blocking_record_without_duration_names_the_flag(shell, plant):
    connect(shell, plant)
    with pytest.raises(BifrostMagicError) as caught:
        shell.run("%bifrost record plc tank.level")
    assert "--duration" in str(caught.value)
    assert "duration=" not in str(caught.value)


def test_printed_counts_use_the_singular(shell, plant, capsys):
    connect(shell, plant)
    shell.run("%bifrost record plc tank.level -i 100ms --background --out one")
    assert "recording 1 tag from plc" in capsys.readouterr().out
    shell.run("%bifrost stop one")


def test_help_starts_with_the_usage_and_lines_up(shell, capsys):
    shell.run("%bifrost read --help")
    text = capsys.readouterr().out
    assert text.startswith("%bifrost read [--out VAR] name [tags ...]")
    shell.run("%bifrost help")
    overview = [line for line in capsys.readouterr().out.splitlines() if "bifrost " in line][1:]
    # Descriptions start in one column, the cell magic's included.
    starts = {len(line) - len(line.split(None, 2)[2]) for line in overview}
    assert len(starts) == 1, overview


def test_stop_names_unknown_recordings(shell):
    with pytest.raises(BifrostMagicError, match="no background recording named 'nope'"):
        shell.run("%bifrost stop nope")


def test_default_interval_is_a_traitlet(shell, plant):
    connect(shell, plant)
    shell.run("%config BifrostMagics.default_interval = '200ms'")
    assert shell.magics.default_interval == "200ms"
    shell.run("%bifrost record plc tank.level --background --out slow")
    assert shell.ns["slow"].interval_s == pytest.approx(0.2)
    shell.run("%bifrost stop slow")


def test_tags_cell_magic_reads_csv_and_yaml_and_attaches(shell, plant):
    table = shell.run(
        "%%bifrost tags csv_tags\n"
        "name,address,unit,scale\n"
        "level,hr:0:float32,m,1\n"
        "heater,ir:4:int16,%,0.1\n"
    )
    assert table is shell.ns["csv_tags"]
    assert table.names == ["level", "heater"]
    assert table["heater"].scale == 0.1
    connect(shell, plant)
    table = shell.run(
        "%%bifrost tags yaml_tags --attach plc\n"
        "level: hr:0:float32\n"
        "temperature:\n"
        "  address: hr:6:float32\n"
        "  unit: degC\n"
    )
    assert table.names == ["level", "temperature"]
    assert shell.ns["plc"].tags is table
    frame = shell.run("%bifrost read plc")
    assert list(frame.index) == ["level", "temperature"]
    with pytest.raises(BifrostMagicError):
        shell.run("%%bifrost tags broken --format csv\nname,unit\nx,m\n")


def test_tags_is_only_a_cell_magic(shell):
    from IPython.core.error import UsageError

    with pytest.raises(UsageError, match="cell magic"):
        shell.run("%bifrost tags x")


def test_sim_start_connect_and_stop(shell, capsys):
    shell.run("%bifrost sim start --seed 3 --connect sim_plc")
    out = capsys.readouterr().out
    assert "modbus://127.0.0.1:" in out
    plant = shell.magics.state.plant
    assert plant.seed == 3
    assert shell.ns["plant"] is plant
    frame = shell.run("%bifrost read sim_plc tank.level")
    assert frame.loc["tank.level", "quality"] == "good"
    shell.run("%bifrost connect other sim")
    assert shell.ns["other"].tags == plant.tags("modbus")
    shell.run("%bifrost sim stop")
    assert plant.closed
    with pytest.raises(BifrostMagicError, match="sim start"):
        shell.run("%bifrost connect again sim")


def test_unload_closes_connections_recordings_and_the_simulator(ipython, plant):
    ipython.run_line_magic("load_ext", "bifrost")
    from bifrost.jupyter.magics import _INSTANCES

    magics = _INSTANCES[id(ipython)]
    ipython.run_line_magic("bifrost", f"connect u {plant.urls['modbus']}")
    ipython.run_line_magic("bifrost", "record u hr:0:float32 -i 50ms --background --out urec")
    rec = ipython.user_ns["urec"]
    connection = ipython.user_ns["u"]
    ipython.run_line_magic("unload_ext", "bifrost")
    assert "bifrost" not in ipython.magics_manager.magics["line"]
    assert magics not in ipython.configurables
    assert not connection.connected
    assert rec.wait(10.0) is rec
    for name in ("u", "urec"):
        del ipython.user_ns[name]


class _FakeNest(types.ModuleType):
    def __init__(self):
        super().__init__("nest_asyncio")
        self.applied = 0

    def apply(self):
        self.applied += 1


def test_nest_is_opt_in_and_applies_nest_asyncio(shell, monkeypatch, capsys):
    fake = _FakeNest()
    monkeypatch.setitem(sys.modules, "nest_asyncio", fake)
    assert shell.magics.nest_asyncio is False
    shell.run("%bifrost nest")
    assert fake.applied == 1
    assert shell.magics.nest_asyncio is True
    assert "asyncio.run()" in capsys.readouterr().out


def test_nest_through_config(shell, monkeypatch):
    fake = _FakeNest()
    monkeypatch.setitem(sys.modules, "nest_asyncio", fake)
    shell.run("%config BifrostMagics.nest_asyncio = True")
    assert fake.applied == 1


def test_nest_without_the_package_names_the_pip_command(monkeypatch):
    # None in sys.modules makes the import fail, as if nothing were installed.
    monkeypatch.setitem(sys.modules, "nest_asyncio", None)
    monkeypatch.setitem(sys.modules, "nest_asyncio2", None)
    with pytest.raises(bf.MissingDependency, match="pip install nest-asyncio"):
        apply_nest_asyncio()

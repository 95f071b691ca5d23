"""What users see of bifrost's errors: short tracebacks in scripts, message and hint in IPython."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import bifrost as bf
from bifrost._portal import debug, user_facing
from bifrost.jupyter import register_ipython_hooks
from bifrost.jupyter.errors import compact_error, error_display_registered

ROOT = Path(__file__).resolve().parents[2]
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _script(body: str, **env: str) -> str:
    """Run ``body`` as a script against a plant; its stderr."""
    source = textwrap.dedent(
        """
        import bifrost as bf
        plant = bf.sim.Plant(seed=1)
        plant.serve(modbus=0)
        plc = plant.connect("modbus")
        try:
        {body}
        finally:
            plc.close()
            plant.close()
        """
    ).format(body=textwrap.indent(textwrap.dedent(body), "    "))
    done = subprocess.run(
        [sys.executable, "-c", source],
        check=False,  # it must fail; the assertion below says how
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
        env={**os.environ, "BIFROST_DEBUG": "", **env},
    )
    assert done.returncode == 1, done.stderr
    return done.stderr


def test_a_script_sees_its_own_line_and_the_message_only():
    stderr = _script('plc.read(["tank.levle"])')
    lines = stderr.strip().splitlines()
    # Traceback header, the script's frame and its line, the message: no portal,
    # concurrent.futures or driver frames (there were 35 lines, 76 in a notebook).
    assert lines[0] == "Traceback (most recent call last):"
    assert lines[-1].startswith("bifrost.exceptions.TagNotFound: no tag named 'tank.levle'")
    assert len(lines) <= 5, stderr
    assert "bifrost/" not in stderr.replace("bifrost.exceptions", "")
    assert "concurrent" not in stderr


def test_bifrost_debug_keeps_every_frame():
    stderr = _script('plc.read(["tank.levle"])', BIFROST_DEBUG="1")
    assert "_portal.py" in stderr
    assert "aio.py" in stderr
    assert "tags.py" in stderr


def test_a_cause_stays_without_its_frames():
    def driver() -> None:
        raise OSError("socket closed by the peer")

    @user_facing
    def read() -> None:
        try:
            driver()
        except OSError as exc:
            raise bf.ConnectionError("the connection was lost") from exc

    previous = debug()
    try:
        debug(False)
        with pytest.raises(bf.ConnectionError) as caught:
            read()
        error = caught.value
        assert isinstance(error.__cause__, OSError)
        assert error.__cause__.__traceback__ is None  # the driver's frames are gone
        assert error.__traceback__ is not None
        assert (
            error.__traceback__.tb_frame.f_code.co_name == "test_a_cause_stays_without_its_frames"
        )
        assert error.__traceback__.tb_next is None  # raised from the caller's frame
        debug(True)
        with pytest.raises(bf.ConnectionError) as caught:
            read()
        assert caught.value.__cause__.__traceback__ is not None
    finally:
        debug(previous)


def test_other_exceptions_keep_their_frames():
    @user_facing
    def broken() -> None:
        raise RuntimeError("a bug")

    with pytest.raises(RuntimeError) as caught:
        broken()
    assert caught.value.__traceback__.tb_next is not None


# -- IPython -----------------------------------------------------------------------------------
@pytest.fixture
def hooked(ipython, plc):
    """The shell with bifrost's hooks (as `import bifrost` gives them) and a connection."""
    fresh = not error_display_registered(ipython)
    register_ipython_hooks(ipython)
    ipython.user_ns["plc"] = plc
    try:
        yield ipython
    finally:
        ipython.user_ns.pop("plc", None)
        if fresh:
            from bifrost.jupyter.completion import unregister_completions
            from bifrost.jupyter.errors import unregister_error_display

            unregister_error_display(ipython)
            unregister_completions(ipython)


def _shown(ipython, capsys, source):
    result = ipython.run_cell(source, store_history=False)
    printed = capsys.readouterr()
    return result, ANSI.sub("", printed.out + printed.err).strip().splitlines()


def test_ipython_shows_a_bifrost_error_as_message_hint_and_one_details_line(hooked, capsys):
    result, lines = _shown(hooked, capsys, 'plc.read(["tank.levle"])')
    assert isinstance(result.error_in_exec, bf.TagNotFound)  # the cell failed: Run All stops
    assert len(lines) <= 6, lines
    assert lines[0].startswith("TagNotFound: no tag named 'tank.levle'")
    assert "did you mean 'tank.level'" in lines[0]
    assert (
        lines[1] == "  hint: `plc.tags.names` lists the tags; raw addresses (hr:0:float32) work too"
    )
    assert "%tb" in lines[-1]
    assert "bifrost.debug(True)" in lines[-1]
    assert not any("Traceback" in line or ".py" in line for line in lines)
    # %tb and %debug find it.
    assert sys.last_value is result.error_in_exec


def test_ipython_hints_follow_the_connection(hooked, capsys, plant):
    _, lines = _shown(hooked, capsys, 'plc.write({"reactor.setpoint": 70})')
    assert lines[0].startswith("WriteNotAllowed")
    assert "writable=True" in lines[1]
    with plant.connect("modbus", writable=True) as rw:
        hooked.user_ns["rw"] = rw
        try:
            _, lines = _shown(hooked, capsys, 'rw.write({"tank.level": 1.0})')
        finally:
            del hooked.user_ns["rw"]
    # The connection may write: the tag is what is read-only.
    assert lines[0].startswith("WriteNotAllowed")
    assert "writable=True" not in lines[1]
    assert "not this tag" in lines[1]
    _, lines = _shown(hooked, capsys, 'plc.read(["hr:0:float33"])')
    assert lines[0].startswith("AddressError")
    assert any("addresses look like hr:0:float32" in line for line in lines)
    assert len(lines) <= 6


def test_ipython_in_debug_mode_shows_the_whole_traceback(hooked, capsys):
    previous = debug(True)
    try:
        _, lines = _shown(hooked, capsys, 'plc.read(["tank.levle"])')
    finally:
        debug(previous)
    assert any("_portal.py" in line for line in lines)


def test_the_compact_lines_name_the_users_variable(plc):
    try:
        plc.read(["nope"])
    except bf.TagNotFound as error:
        lines = compact_error(error, {"line3": plc})
    assert "`line3.tags.names`" in lines[1]


def test_other_errors_and_a_plain_interrupt_look_as_usual(hooked, capsys):
    result, lines = _shown(hooked, capsys, "1 / 0")
    assert isinstance(result.error_in_exec, ZeroDivisionError)
    assert any("ZeroDivisionError" in line for line in lines)
    result, lines = _shown(hooked, capsys, "raise KeyboardInterrupt")
    assert isinstance(result.error_in_exec, KeyboardInterrupt)
    assert any("KeyboardInterrupt" in line for line in lines)


def test_a_handler_installed_before_keeps_its_exceptions(ipython, capsys):
    class Theirs(Exception):
        pass

    seen = []

    def handler(shell, etype, value, tb, tb_offset=None):
        seen.append(value)
        return ["theirs"]

    from bifrost.jupyter.errors import unregister_error_display

    # `import bifrost` inside IPython (this test session) registered bifrost's display
    # already: start from a shell without it, where another package's handler came first.
    unregister_error_display(ipython)
    ipython.set_custom_exc((Theirs,), handler)
    try:
        assert register_ipython_hooks(ipython)
        ipython.user_ns["Theirs"] = Theirs
        ipython.run_cell("raise Theirs()", store_history=False)
        assert len(seen) == 1
        unregister_error_display(ipython)
        assert ipython.custom_exceptions == (Theirs,)
    finally:
        ipython.user_ns.pop("Theirs", None)
        ipython.set_custom_exc((), None)
        from bifrost.jupyter.completion import unregister_completions

        unregister_completions(ipython)
    capsys.readouterr()


def test_outside_ipython_registering_does_nothing():
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, bifrost.jupyter as j; print(j.register_ipython_hooks(), "
            "'IPython' in sys.modules)",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.split() == ["False", "False"]

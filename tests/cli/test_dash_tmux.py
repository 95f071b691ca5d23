"""One run of ``python -m bifrost.cli.dash`` in a real terminal: tmux, send-keys, capture-pane."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

import bifrost as bf

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")
TMUX = shutil.which("tmux") or "tmux"
TAGS = ["plant.heartbeat", "tank.level"]
SCRIPT = Path(sys.executable).with_name("bifrost")  # the installed console script
# The launcher of bifrost.cli.dash read-only, and the `bifrost dash` verb with writes on.
LAUNCHERS = {
    "module": ([sys.executable, "-m", "bifrost.cli.dash"], []),
    "script": ([str(SCRIPT), "dash"], ["--writable"]),
}


@pytest.fixture(scope="module")
def plant() -> Iterator[bf.sim.Plant]:
    with bf.sim.Plant(seed=5) as plant:
        plant.serve(modbus=0)
        yield plant


def tmux(*args: str) -> str:
    done = subprocess.run([TMUX, *args], capture_output=True, text=True, check=True, timeout=10)
    return done.stdout


def heartbeat(screen: str) -> str | None:
    """The heartbeat's value in the live values table (its row: name, then a number)."""
    found = re.search(r"plant\.heartbeat\s+(\d+)\s+good", screen)
    return found.group(1) if found else None


@pytest.mark.parametrize("launcher", sorted(LAUNCHERS))
def test_dash_in_a_real_terminal_shows_changing_values_and_q_quits(
    plant: bf.sim.Plant, tmp_path: Path, launcher: str
) -> None:
    if launcher == "script" and not SCRIPT.exists():
        pytest.skip("the bifrost console script is not installed next to this Python")
    start, flags = LAUNCHERS[launcher]
    table = tmp_path / "plant.csv"
    plant.tags("modbus").to_csv(table)
    session = f"bifrost-dash-{uuid.uuid4().hex[:8]}"
    exit_file = tmp_path / "exit-code"
    command = " ".join(
        [
            *start,
            plant.urls["modbus"],
            *TAGS,
            "--tags",
            str(table),
            "--record-dir",
            str(tmp_path),
            *flags,
        ]
    )
    # The shell writes the dashboard's exit code, so the test sees how it ended, then
    # keeps the pane (and what the program printed) until the session is killed.
    shell = f"{command}; echo $? > {exit_file}; sleep 60"
    env = {**os.environ, "TERM": "xterm-256color", "COLORTERM": "truecolor"}
    try:
        subprocess.run(
            [TMUX, "new-session", "-d", "-s", session, "-x", "140", "-y", "40", shell],
            check=True,
            timeout=10,
            env=env,
            cwd=tmp_path,
        )
        values: list[str] = []
        screen = ""
        deadline = time.monotonic() + 60.0
        while len(set(values)) < 2:
            assert time.monotonic() < deadline, f"no changing values on screen:\n{screen}"
            time.sleep(0.3)
            screen = tmux("capture-pane", "-p", "-t", session)
            assert not exit_file.exists(), f"the dashboard ended early:\n{screen}"
            value = heartbeat(screen)
            if value is not None:
                values.append(value)
        assert "tank.level" in screen
        assert "modbus://127.0.0.1" in screen
        assert "Quit" in screen  # the footer's keys
        # The write key is offered on a writable connection only.
        assert ("Write" in screen) == ("--writable" in flags)
        assert ("writable)" in screen) == ("--writable" in flags)
        tmux("send-keys", "-t", session, "q")
        deadline = time.monotonic() + 30.0
        while not exit_file.exists():
            assert time.monotonic() < deadline, "the dashboard did not end on q"
            time.sleep(0.2)
        assert exit_file.read_text().strip() == "0"
    finally:
        # The session may have ended already; nothing to check then.
        subprocess.run(
            [TMUX, "kill-session", "-t", session], check=False, capture_output=True, timeout=10
        )

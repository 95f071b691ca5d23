"""Live displays in a real terminal (a pseudo-terminal): watch redraws, record shows progress."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import termios
import time
from pathlib import Path

from cli_support import SCRIPT, CliPlant

import bifrost as bf


def _in_terminal(
    args: list[str], *, interrupt_when: tuple[str, int] | None = None, timeout: float = 60
) -> tuple[int, str]:
    """Run ``bifrost ARGS`` on a pty (160x40); SIGINT it once ``(text, n)``: text shown n times."""
    assert SCRIPT is not None
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 160, 0, 0))
    env = {k: v for k, v in os.environ.items() if k not in ("NO_COLOR", "COLUMNS", "LINES")}
    process = subprocess.Popen(
        [SCRIPT, *args],
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env={**env, "TERM": "xterm-256color"},
        close_fds=True,
    )
    os.close(slave)
    seen = b""
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.1)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: the program ended and closed the terminal
                    break
                if not chunk:
                    break
                seen += chunk
                if interrupt_when and seen.count(interrupt_when[0].encode()) >= interrupt_when[1]:
                    process.send_signal(signal.SIGINT)
                    interrupt_when = None
            elif process.poll() is not None:
                break
        return process.wait(timeout=30), seen.decode(errors="replace")
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(10)
        os.close(master)


def test_watch_redraws_a_coloured_table(cli_plant: CliPlant):
    code, screen = _in_terminal(
        ["watch", *cli_plant.args("modbus"), "tank.level", "-i", "100ms", "-d", "0.8"]
    )
    assert code == 0, screen
    with cli_plant.connect("modbus") as plc:
        level = plc.read_value("tank.level")
    assert screen.count("tank.level") >= 3  # redrawn in place, cycle after cycle
    assert "\x1b[1A" in screen  # the cursor goes back up to redraw
    assert "\x1b[32mgood" in screen  # quality in colour
    assert f"{level:.6g}" in screen


def test_record_shows_progress_and_sigint_keeps_the_file(cli_plant: CliPlant, tmp_path: Path):
    out = tmp_path / "run.parquet"
    args = ["record", *cli_plant.args("modbus"), "tank.level", "-i", "50ms", "-o", str(out)]
    # Four progress redraws (every 0.25 s): about a second of samples, then Ctrl-C.
    code, screen = _in_terminal(args, interrupt_when=("missed cycles", 4))
    assert code == 0, screen
    assert "samples (" in screen
    assert "/s)" in screen  # samples per second
    assert "reconnects 0" in screen
    assert "Ctrl-C stops and keeps the file" in screen
    rec = bf.open_recording(out)
    assert len(rec) >= 5
    assert f"interrupted; {len(rec)} samples" in screen

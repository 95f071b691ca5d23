"""Helpers of the CLI tests: the installed ``bifrost`` script in a subprocess, the plant.

``cli_plant`` (conftest.py) serves the simulated plant over Modbus TCP, S7 and OPC UA
without advancing it (``realtime=False``), so a value printed by the command and one
read here through a Connection are the same number.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import bifrost as bf

SCRIPT = shutil.which("bifrost", path=str(Path(sys.executable).parent))
PROTOCOLS = ("modbus", "s7", "opcua")


def bifrost(
    *args: str,
    input: str | None = None,
    timeout: float = 60,
    **env: str,
) -> subprocess.CompletedProcess[str]:
    """Run ``bifrost ARGS...`` (the console script of this venv); never raises on failure."""
    assert SCRIPT is not None, "the bifrost script is not installed in this venv"
    # The developer's own profiles and colour settings stay out of the tests.
    inherited = {k: v for k, v in os.environ.items() if k not in ("BIFROST_PROFILES", "NO_COLOR")}
    environment = {**inherited, "COLUMNS": "200", **env}
    return subprocess.run(
        [SCRIPT, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        input=input if input is not None else "",
        env=environment,
    )


@dataclass
class CliPlant:
    """The plant, its URL per protocol and its tag table per protocol as a YAML file."""

    plant: bf.sim.Plant
    urls: dict[str, str]
    tag_files: dict[str, Path]

    def args(self, protocol: str) -> list[str]:
        """URL, tag file and options of ``protocol`` as command-line arguments."""
        extra = ["-O", "security=None"] if protocol == "opcua" else []
        return [self.urls[protocol], "-t", str(self.tag_files[protocol]), *extra]

    def connect(self, protocol: str, **options: object) -> bf.Connection:
        """A Connection to the same server with the same tag table."""
        extra = {"security": "None"} if protocol == "opcua" else {}
        return bf.connect(self.urls[protocol], tags=self.tag_files[protocol], **extra, **options)

"""Fixtures of the CLI tests (helpers in cli_support.py, next to this file)."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import bifrost as bf

sys.path.insert(0, str(Path(__file__).parent))

from cli_support import PROTOCOLS, CliPlant


@pytest.fixture(scope="module")
def cli_plant(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CliPlant]:
    folder = tmp_path_factory.mktemp("tags")
    with bf.sim.Plant(seed=1, realtime=False) as plant:
        plant.step(50)  # away from the initial state, then frozen
        urls = plant.serve(modbus=0, s7=0, opcua=0)
        files = {}
        for protocol in PROTOCOLS:
            files[protocol] = folder / f"{protocol}.yaml"
            plant.tags(protocol).to_yaml(files[protocol])
        yield CliPlant(plant, urls, files)

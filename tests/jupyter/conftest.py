"""Fixtures for the Jupyter layer: a simulated plant on a free port and a test shell.

The shell is IPython's ``InteractiveShell.instance()`` (never mixed with
``globalipapp`` in this process); ``Shell.run`` re-raises a cell's error instead of
printing it, like jupysql's test shell, so a failing magic fails the test.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from waiting import wait_for

pytest.importorskip("IPython")
pytest.importorskip("ipywidgets")

from IPython.core.interactiveshell import InteractiveShell
from traitlets.config import Config

import bifrost as bf
from bifrost.sim import Plant


class Shell:
    """An IPython shell whose cells raise their errors."""

    def __init__(self, ip: InteractiveShell) -> None:
        self.ip = ip

    def run(self, source: str) -> Any:
        result = self.ip.run_cell(source, store_history=False)
        result.raise_error()
        return result.result

    @property
    def ns(self) -> dict[str, Any]:
        return self.ip.user_ns

    @property
    def magics(self) -> Any:
        from bifrost.jupyter.magics import _INSTANCES

        return _INSTANCES[id(self.ip)]


@pytest.fixture(scope="session")
def ipython() -> InteractiveShell:
    config = Config()
    config.HistoryManager.hist_file = ":memory:"
    config.HistoryManager.enabled = False
    return InteractiveShell.instance(config=config)


@pytest.fixture
def shell(ipython: InteractiveShell) -> Iterator[Shell]:
    ipython.run_line_magic("load_ext", "bifrost")
    before = set(ipython.user_ns)
    try:
        yield Shell(ipython)
    finally:
        ipython.run_line_magic("unload_ext", "bifrost")
        # %config writes into the shell's config, which a new instance would inherit.
        ipython.config.pop("BifrostMagics", None)
        for name in set(ipython.user_ns) - before:
            del ipython.user_ns[name]


@pytest.fixture(scope="module")
def plant() -> Iterator[Plant]:
    """A running plant (realtime) served over Modbus on a free loopback port."""
    with Plant(seed=1) as p:
        p.serve(modbus=0)
        yield p


@pytest.fixture(scope="module")
def still_plant() -> Iterator[Plant]:
    """A plant whose time stands still: every read gives the same values."""
    with Plant(seed=1, realtime=False) as p:
        p.serve(modbus=0)
        p.step(100)
        yield p


@pytest.fixture
def plc(plant: Plant) -> Iterator[bf.Connection]:
    with plant.connect("modbus") as connection:
        yield connection


@pytest.fixture
def wait() -> Any:
    """``wait(predicate, timeout=10)``: poll until true; returns whether it became true."""
    return wait_for

"""Shared fixtures: real servers on free loopback ports, stopped after use."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from modbus_server import ModbusTestServer


@pytest.fixture(scope="module")
def modbus_server() -> Iterator[ModbusTestServer]:
    with ModbusTestServer() as server:
        yield server


@pytest.fixture
def no_thread_leak() -> Iterator[None]:
    before = {t.ident for t in threading.enumerate()}
    yield
    # Give stopping threads a moment to finish their join before judging.
    for _ in range(50):
        extra = [t for t in threading.enumerate() if t.ident not in before and t.is_alive()]
        if not extra:
            return
        threading.Event().wait(0.05)
    pytest.fail(f"threads left running: {[t.name for t in extra]}")
